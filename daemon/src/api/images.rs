//! sysc.v1.Images

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::images_server::Images;
use tonic::{Request, Response, Status};

use super::convert;
use crate::containers::Manager;

pub struct ImagesService {
    manager: Arc<Manager>,
}

impl ImagesService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

#[tonic::async_trait]
impl Images for ImagesService {
    async fn list_templates(
        &self,
        _request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        let templates = self
            .manager
            .images
            .templates()
            .into_iter()
            .map(convert::template)
            .collect();
        Ok(Response::new(pb::ListTemplatesResponse { templates }))
    }

    async fn list_images(
        &self,
        _request: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let containers = self.manager.db.containers()?;
        let images = self
            .manager
            .images
            .list()?
            .into_iter()
            .map(|image| {
                let used_by = containers
                    .iter()
                    .filter(|c| c.image.fingerprint == image.fingerprint && c.pool == image.pool)
                    .map(|c| c.name.clone())
                    .collect();
                convert::image(image, used_by)
            })
            .collect();
        Ok(Response::new(pb::ListImagesResponse { images }))
    }

    async fn delete_image(
        &self,
        request: Request<pb::DeleteImageRequest>,
    ) -> Result<Response<pb::DeleteImageResponse>, Status> {
        self.manager.images.delete(&request.into_inner().fingerprint).await?;
        Ok(Response::new(pb::DeleteImageResponse {}))
    }
}
