//! sysc.v1.Operations

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::operations_server::Operations;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use crate::containers::Manager;
use crate::events::OperationView;

pub struct OperationsService {
    manager: Arc<Manager>,
}

impl OperationsService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

pub(super) fn operation(view: OperationView) -> pb::Operation {
    pb::Operation {
        id: view.id,
        kind: view.kind,
        description: view.description,
        status: view.status.as_str().to_string(),
        error: view.error,
        created_at: timestamp(view.created_at_ms),
        updated_at: timestamp(view.updated_at_ms),
        progress: view.progress,
        resources: view.resources,
    }
}

#[tonic::async_trait]
impl Operations for OperationsService {
    async fn list(
        &self,
        _request: Request<pb::ListOperationsRequest>,
    ) -> Result<Response<pb::ListOperationsResponse>, Status> {
        let operations = self
            .manager
            .events
            .operations
            .list()
            .into_iter()
            .map(operation)
            .collect();
        Ok(Response::new(pb::ListOperationsResponse { operations }))
    }

    async fn get(&self, request: Request<pb::GetOperationRequest>) -> Result<Response<pb::Operation>, Status> {
        let view = self.manager.events.operations.get(&request.get_ref().id)?;
        Ok(Response::new(operation(view)))
    }
}
