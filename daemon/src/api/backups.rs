//! sysc.v1.Backups

use std::pin::Pin;
use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::backups_server::Backups;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::{convert, detached};
use crate::archive::Compression;
use crate::containers::{ExportEvent, Manager};

pub struct BackupsService {
    manager: Arc<Manager>,
}

impl BackupsService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportResponse, Status>> + Send>>;

/// Import chunks buffered ahead of the archive reader.
const IMPORT_IN_FLIGHT: usize = 4;

fn response(response: pb::export_response::Response) -> pb::ExportResponse {
    pb::ExportResponse {
        response: Some(response),
    }
}

#[tonic::async_trait]
impl Backups for BackupsService {
    type ExportStream = ExportStream;

    async fn export(&self, request: Request<pb::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let request = request.into_inner();
        let compression = match pb::Compression::try_from(request.compression) {
            Ok(pb::Compression::None) => Compression::None,
            Ok(pb::Compression::Zstd | pb::Compression::Unspecified) => Compression::Zstd,
            Err(_) => return Err(Status::invalid_argument("unknown compression")),
        };
        let manager = self.manager.clone();
        let export =
            detached(async move { manager.export(&request.name, request.instance_only, compression).await }).await?;
        let header = response(pb::export_response::Response::Header(pb::ExportHeader {
            total_bytes: export.total_bytes,
            snapshots: export.snapshots,
        }));
        let events = tokio_stream::wrappers::ReceiverStream::new(export.events).map(|event| match event {
            Ok(ExportEvent::Data(data)) => Ok(response(pb::export_response::Response::Data(data))),
            Ok(ExportEvent::Progress(done)) => Ok(response(pb::export_response::Response::Progress(done))),
            Err(e) => Err(Status::from(e)),
        });
        Ok(Response::new(Box::pin(tokio_stream::once(Ok(header)).chain(events))))
    }

    async fn import(&self, request: Request<Streaming<pb::ImportRequest>>) -> Result<Response<pb::Container>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ImportRequest {
                request: Some(pb::import_request::Request::Header(header)),
            }) => header,
            _ => return Err(Status::invalid_argument("import: the first message must be the header")),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(IMPORT_IN_FLIGHT);
        tokio::spawn(async move {
            loop {
                let chunk = match stream.message().await {
                    Ok(Some(pb::ImportRequest {
                        request: Some(pb::import_request::Request::Data(data)),
                    })) => Ok(data),
                    Ok(None) => break,
                    Ok(Some(_)) => Err("a message after the header that is not data".to_string()),
                    Err(status) => Err(status.message().to_string()),
                };
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        let manager = self.manager.clone();
        let view = detached(async move { manager.import(&header.name, &header.pool, rx).await }).await?;
        Ok(Response::new(convert::container(view)))
    }
}
