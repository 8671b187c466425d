//! sysc.v1.Networks

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::networks_server::Networks;
use tonic::{Request, Response, Status};

use crate::containers::Manager;
use crate::network::NetworkView;

pub struct NetworksService {
    manager: Arc<Manager>,
}

impl NetworksService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }

    async fn network(&self, view: NetworkView) -> Result<pb::Network, Status> {
        let used_by = self.manager.network_users(&view.record.name)?;
        let statics = self.manager.static_addresses(&view.record.name)?;
        let leases = view
            .leases
            .iter()
            .map(|lease| pb::Lease {
                hostname: lease.hostname.clone(),
                mac: lease.mac.clone(),
                ipv4: lease.address.to_string(),
                expires_at: Some(prost_types::Timestamp {
                    seconds: lease.expires_at,
                    nanos: 0,
                }),
                kind: if statics.contains(&lease.address) {
                    "static"
                } else {
                    "dynamic"
                }
                .into(),
            })
            .collect();
        let settings = view.settings.as_ref();
        Ok(pb::Network {
            name: view.record.name.clone(),
            ipv4_address: settings.map(|s| s.gateway.to_string()).unwrap_or_default(),
            nat: settings.is_some_and(|s| s.nat),
            domain: settings.map(|s| s.domain.clone()).unwrap_or_default(),
            config: view.record.config.clone().into_iter().collect(),
            used_by,
            state: if view.up { "up" } else { "down" }.into(),
            dnsmasq_pid: view.dnsmasq_pid.map(i64::from).unwrap_or(0),
            leases,
            is_default: view.is_default,
        })
    }
}

#[tonic::async_trait]
impl Networks for NetworksService {
    async fn create(&self, request: Request<pb::CreateNetworkRequest>) -> Result<Response<pb::Network>, Status> {
        let request = request.into_inner();
        let networks = self.manager.networks.clone();
        let config = request.config.into_iter().collect();
        let record = super::detached(async move { networks.create(&request.name, config).await }).await?;
        let view = self.manager.networks.view(record).await;
        Ok(Response::new(self.network(view).await?))
    }

    async fn list(
        &self,
        _request: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let mut networks = Vec::new();
        for record in self.manager.networks.list()? {
            let view = self.manager.networks.view(record).await;
            networks.push(self.network(view).await?);
        }
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn get(&self, request: Request<pb::GetNetworkRequest>) -> Result<Response<pb::Network>, Status> {
        let record = self.manager.networks.get(&request.into_inner().name)?;
        let view = self.manager.networks.view(record).await;
        Ok(Response::new(self.network(view).await?))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteNetworkRequest>,
    ) -> Result<Response<pb::DeleteNetworkResponse>, Status> {
        let name = request.into_inner().name;
        let manager = self.manager.clone();
        super::detached(async move { manager.delete_network(&name).await }).await?;
        Ok(Response::new(pb::DeleteNetworkResponse {}))
    }
}
