//! sysc.v1.Snapshots

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::snapshots_server::Snapshots;
use tonic::{Request, Response, Status};

use super::{convert, detached};
use crate::containers::{ExpiryRequest, Manager};

pub struct SnapshotsService {
    manager: Arc<Manager>,
}

impl SnapshotsService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

#[tonic::async_trait]
impl Snapshots for SnapshotsService {
    async fn create(&self, request: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        let request = request.into_inner();
        let expiry = match (request.no_expiry, request.expiry.trim().is_empty()) {
            (true, true) => ExpiryRequest::Never,
            (true, false) => {
                return Err(Status::invalid_argument(
                    "snapshot expiry: give an expiry or no_expiry, not both",
                ));
            }
            (false, true) => ExpiryRequest::FromConfig,
            (false, false) => ExpiryRequest::After(request.expiry),
        };
        let manager = self.manager.clone();
        let view =
            detached(async move { manager.snapshot_create(&request.container, &request.name, expiry).await }).await?;
        Ok(Response::new(convert::snapshot(view)))
    }

    async fn list(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let manager = self.manager.clone();
        let container = request.into_inner().container;
        let views = detached(async move { manager.snapshots(&container).await }).await?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            snapshots: views.into_iter().map(convert::snapshot).collect(),
        }))
    }

    async fn get(&self, request: Request<pb::GetSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        let request = request.into_inner();
        let view = self.manager.snapshot_get(&request.container, &request.name).await?;
        Ok(Response::new(convert::snapshot(view)))
    }

    async fn restore(&self, request: Request<pb::RestoreSnapshotRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let view = detached(async move { manager.snapshot_restore(&request.container, &request.name).await }).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        detached(async move { manager.snapshot_delete(&request.container, &request.name).await }).await?;
        Ok(Response::new(pb::DeleteSnapshotResponse {}))
    }

    async fn rename(&self, request: Request<pb::RenameSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let view = detached(async move {
            manager
                .snapshot_rename(&request.container, &request.name, &request.new_name)
                .await
        })
        .await?;
        Ok(Response::new(convert::snapshot(view)))
    }
}
