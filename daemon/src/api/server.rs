//! sysc.v1.Server

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::server_server::Server;
use tonic::{Request, Response, Status};

use crate::containers::Manager;
use crate::trust::TrustHub;

pub struct ServerService {
    manager: Arc<Manager>,
    trust: Arc<TrustHub>,
}

impl ServerService {
    pub fn new(manager: Arc<Manager>, trust: Arc<TrustHub>) -> Self {
        Self { manager, trust }
    }

    fn config(&self, config: std::collections::BTreeMap<String, String>) -> pb::ServerConfig {
        pb::ServerConfig {
            config: config.into_iter().collect(),
            certificate_fingerprint: self.trust.identity.fingerprint.clone(),
            certificate: self.trust.identity.certificate_pem.clone(),
            listening_on: self.trust.listening_on().map(|a| a.to_string()).unwrap_or_default(),
        }
    }
}

#[tonic::async_trait]
impl Server for ServerService {
    async fn info(&self, _request: Request<pb::ServerInfoRequest>) -> Result<Response<pb::ServerInfo>, Status> {
        let settings = &self.manager.settings;
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let host = self.manager.host().ok();
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            root_dir: settings.root.display().to_string(),
            run_dir: settings.run_dir.display().to_string(),
            cgroup_layout: settings.cgroup.layout.as_str().to_string(),
            cgroup_parent: settings.cgroup.parent.clone(),
            storage_driver: self.manager.pools.default_pool().name().to_string(),
            storage_source: self.manager.pools.default_pool().source(),
            kernel,
            idmap_base: settings.idmap_base,
            cpus: host
                .as_ref()
                .map(|h| crate::keys::values::format_cpu_list(&h.cpus))
                .unwrap_or_default(),
            memory_bytes: host.map(|h| h.memory).unwrap_or(0),
        }))
    }

    async fn get_config(
        &self,
        _request: Request<pb::GetServerConfigRequest>,
    ) -> Result<Response<pb::ServerConfig>, Status> {
        Ok(Response::new(self.config(self.trust.config()?)))
    }

    async fn update_config(
        &self,
        request: Request<pb::UpdateServerConfigRequest>,
    ) -> Result<Response<pb::ServerConfig>, Status> {
        let request = request.into_inner();
        let config = self
            .trust
            .update(request.set.into_iter().collect(), request.unset)
            .await?;
        tracing::info!("server configuration changed");
        Ok(Response::new(self.config(config)))
    }

    async fn config_keys(
        &self,
        _request: Request<pb::ConfigKeysRequest>,
    ) -> Result<Response<pb::ConfigKeysResponse>, Status> {
        let keys = crate::keys::KEYS
            .iter()
            .map(|key| pb::ConfigKey {
                name: key.display_name(),
                r#type: key.kind.name().to_string(),
                default: key.default.to_string(),
                live: key.live,
                description: key.description.to_string(),
            })
            .collect();
        Ok(Response::new(pb::ConfigKeysResponse { keys }))
    }
}
