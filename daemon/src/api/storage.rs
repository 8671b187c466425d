//! sysc.v1.Storage

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::storage_server::Storage;
use tonic::{Request, Response, Status};

use crate::containers::Manager;
use crate::db::PoolRecord;
use crate::storage::DEFAULT_POOL;

pub struct StorageService {
    manager: Arc<Manager>,
}

impl StorageService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }

    fn pool(&self, record: PoolRecord) -> Result<pb::StoragePool, Status> {
        let driver = self.manager.pools.get(&record.name)?;
        let space = driver.space();
        let used_by = self
            .manager
            .db
            .containers()?
            .into_iter()
            .filter(|c| c.pool == record.name)
            .map(|c| c.name)
            .collect();
        let images = self
            .manager
            .db
            .images()?
            .into_iter()
            .filter(|i| i.pool == record.name)
            .map(|i| i.fingerprint)
            .collect();
        let mut config = std::collections::BTreeMap::new();
        if let Some(size) = record.size_bytes {
            config.insert("size".to_string(), size.to_string());
        }
        if let Some(source) = &record.source {
            config.insert("source".to_string(), source.display().to_string());
        }
        Ok(pb::StoragePool {
            is_default: record.name == DEFAULT_POOL,
            name: record.name,
            driver: record.driver,
            source: driver.source(),
            path: driver.root().display().to_string(),
            total_bytes: space.total,
            used_bytes: space.used,
            free_bytes: space.free,
            used_by,
            images,
            config: config.into_iter().collect(),
        })
    }
}

#[tonic::async_trait]
impl Storage for StorageService {
    async fn create_pool(&self, request: Request<pb::CreatePoolRequest>) -> Result<Response<pb::StoragePool>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let config = request.config.into_iter().collect();
        let record =
            super::detached(async move { manager.pools.create(&request.name, &request.driver, &config).await }).await?;
        Ok(Response::new(self.pool(record)?))
    }

    async fn list_pools(
        &self,
        _request: Request<pb::ListPoolsRequest>,
    ) -> Result<Response<pb::ListPoolsResponse>, Status> {
        let pools = self
            .manager
            .db
            .pools()?
            .into_iter()
            .filter_map(|record| self.pool(record).ok())
            .collect();
        Ok(Response::new(pb::ListPoolsResponse { pools }))
    }

    async fn get_pool(&self, request: Request<pb::GetPoolRequest>) -> Result<Response<pb::StoragePool>, Status> {
        let record = self.manager.pools.record(&request.into_inner().name)?;
        Ok(Response::new(self.pool(record)?))
    }

    async fn delete_pool(
        &self,
        request: Request<pb::DeletePoolRequest>,
    ) -> Result<Response<pb::DeletePoolResponse>, Status> {
        let manager = self.manager.clone();
        let name = request.into_inner().name;
        super::detached(async move { manager.pools.delete(&name).await }).await?;
        Ok(Response::new(pb::DeletePoolResponse {}))
    }
}
