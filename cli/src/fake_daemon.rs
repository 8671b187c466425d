//! A stand-in for syscd in unit tests: the Containers, Snapshots, Backups and Networks services
//! on a unix socket in a temporary directory, holding a few containers, snapshots and networks
//! in memory and recording the requests that change them.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sysc_proto::v1 as pb;
use sysc_proto::v1::backups_server::{Backups, BackupsServer};
use sysc_proto::v1::containers_server::{Containers, ContainersServer};
use sysc_proto::v1::networks_server::{Networks, NetworksServer};
use sysc_proto::v1::snapshots_server::{Snapshots, SnapshotsServer};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::snapshot::SnapshotName;

/// A request that changes something, as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    UpdateConfig(pb::UpdateConfigRequest),
    Pause(String),
    Resume(String),
    RestoreSnapshot(SnapshotName),
    Export(pb::ExportRequest),
    /// What an import sent: its header, the size of each data message, and the data.
    Import {
        header: pb::ImportHeader,
        chunks: Vec<usize>,
        data: Vec<u8>,
    },
    AddDevice(pb::AddDeviceRequest),
    UpdateDevice(pb::UpdateDeviceRequest),
    RemoveDevice(pb::RemoveDeviceRequest),
    CreateNetwork(pb::CreateNetworkRequest),
    DeleteNetwork(String),
}

#[derive(Default)]
struct State {
    containers: BTreeMap<String, pb::Container>,
    snapshots: Vec<pb::Snapshot>,
    networks: BTreeMap<String, pb::Network>,
    /// What the next Export streams.
    export: Vec<Result<pb::ExportResponse, Status>>,
    /// Whether the next Export then stalls instead of ending.
    export_stalls: bool,
    calls: Vec<Call>,
}

pub struct FakeDaemon {
    state: Arc<Mutex<State>>,
    _dir: tempfile::TempDir,
    pub channel: Channel,
}

impl FakeDaemon {
    /// Serves `containers` until the runtime ends. UpdateConfig refuses (INVALID_ARGUMENT)
    /// any key holding "bad" and volatile keys, as syscd does; otherwise it applies the request.
    pub async fn start(containers: Vec<pb::Container>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("unix.socket");
        let listener = UnixListener::bind(&socket).unwrap();
        let state = Arc::new(Mutex::new(State {
            containers: containers.into_iter().map(|c| (c.name.clone(), c)).collect(),
            ..State::default()
        }));
        let service = Service { state: state.clone() };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ContainersServer::new(service.clone()))
                .add_service(SnapshotsServer::new(service.clone()))
                .add_service(BackupsServer::new(service.clone()))
                .add_service(NetworksServer::new(service))
                .serve_with_incoming(UnixListenerStream::new(listener)),
        );
        let channel = crate::connect::connect(&socket).await.unwrap();
        Self {
            state,
            _dir: dir,
            channel,
        }
    }

    /// Serves the same services over TLS on a loopback port too, as a remote syscd does;
    /// returns its host:port.
    pub async fn serve_tls(&self, acceptor: tokio_rustls::TlsAcceptor) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (connections, incoming) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                // A client that fails its handshake (a test's impostor) just goes away.
                if let Ok(tls) = acceptor.accept(tcp).await
                    && connections.send(Ok::<_, std::io::Error>(tls)).await.is_err()
                {
                    break;
                }
            }
        });
        let service = Service {
            state: self.state.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ContainersServer::new(service.clone()))
                .add_service(NetworksServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(incoming)),
        );
        address
    }

    /// Snapshots of containers the fake serves, in the order List returns them.
    pub fn add_snapshots(&self, snapshots: Vec<pb::Snapshot>) {
        self.state.lock().unwrap().snapshots.extend(snapshots);
    }

    pub fn add_network(&self, network: pb::Network) {
        self.state
            .lock()
            .unwrap()
            .networks
            .insert(network.name.clone(), network);
    }

    pub fn network_names(&self) -> Vec<String> {
        self.state.lock().unwrap().networks.keys().cloned().collect()
    }

    /// What the next Export streams, error statuses included.
    pub fn script_export(&self, responses: Vec<Result<pb::ExportResponse, Status>>) {
        let mut state = self.state.lock().unwrap();
        state.export = responses;
        state.export_stalls = false;
    }

    /// Like `script_export`, but the stream never ends after these.
    pub fn script_stalled_export(&self, responses: Vec<Result<pb::ExportResponse, Status>>) {
        let mut state = self.state.lock().unwrap();
        state.export = responses;
        state.export_stalls = true;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn config(&self, name: &str) -> BTreeMap<String, String> {
        self.state.lock().unwrap().containers[name]
            .config
            .clone()
            .into_iter()
            .collect()
    }

    /// The container's devices and their keys, sorted.
    pub fn devices(&self, name: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        self.state.lock().unwrap().containers[name]
            .devices
            .iter()
            .map(|(device, keys)| (device.clone(), keys.config.clone().into_iter().collect()))
            .collect()
    }
}

pub fn container(name: &str, state: pb::ContainerState, config: &[(&str, &str)]) -> pb::Container {
    pb::Container {
        name: name.to_string(),
        state: state as i32,
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

#[derive(Clone)]
struct Service {
    state: Arc<Mutex<State>>,
}

fn not_found(name: &str) -> Status {
    Status::not_found(format!("container {name} not found"))
}

impl Service {
    fn change(
        &self,
        name: &str,
        call: Call,
        change: impl FnOnce(&mut pb::Container) -> Result<(), Status>,
    ) -> Result<Response<pb::Container>, Status> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(call);
        let container = state.containers.get_mut(name).ok_or_else(|| not_found(name))?;
        change(container)?;
        Ok(Response::new(container.clone()))
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Containers for Service {
    type CreateStream = ResponseStream<pb::CreateEvent>;
    type ExecStream = ResponseStream<pb::ExecResponse>;
    type ConsoleStream = ResponseStream<pb::ConsoleResponse>;

    async fn create(&self, _: Request<pb::CreateRequest>) -> Result<Response<Self::CreateStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn start(&self, _: Request<pb::StartRequest>) -> Result<Response<pb::Container>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn stop(&self, _: Request<pb::StopRequest>) -> Result<Response<pb::Container>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn restart(&self, _: Request<pb::RestartRequest>) -> Result<Response<pb::Container>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn delete(&self, _: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn rename(&self, _: Request<pb::RenameRequest>) -> Result<Response<pb::Container>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn update_config(
        &self,
        request: Request<pb::UpdateConfigRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let name = request.name.clone();
        self.change(&name, Call::UpdateConfig(request.clone()), |container| {
            for key in request.set.keys().chain(&request.unset) {
                if key.contains("bad") {
                    return Err(Status::invalid_argument(format!("unknown config key {key}")));
                }
                if key.starts_with("volatile.") {
                    return Err(Status::invalid_argument(format!(
                        "config key {key} is set by the daemon and cannot be changed"
                    )));
                }
            }
            if request.replace {
                container.config.retain(|key, _| key.starts_with("volatile."));
            }
            for key in &request.unset {
                container.config.remove(key);
            }
            container.config.extend(request.set);
            Ok(())
        })
    }

    async fn pause(&self, request: Request<pb::PauseRequest>) -> Result<Response<pb::Container>, Status> {
        let name = request.into_inner().name;
        self.change(&name, Call::Pause(name.clone()), |container| {
            container.state = pb::ContainerState::Paused as i32;
            Ok(())
        })
    }

    async fn resume(&self, request: Request<pb::ResumeRequest>) -> Result<Response<pb::Container>, Status> {
        let name = request.into_inner().name;
        self.change(&name, Call::Resume(name.clone()), |container| {
            container.state = pb::ContainerState::Running as i32;
            Ok(())
        })
    }

    async fn list(&self, _: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let containers = self.state.lock().unwrap().containers.values().cloned().collect();
        Ok(Response::new(pb::ListResponse { containers }))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Container>, Status> {
        let name = request.into_inner().name;
        let state = self.state.lock().unwrap();
        let container = state.containers.get(&name).ok_or_else(|| not_found(&name))?;
        Ok(Response::new(container.clone()))
    }

    async fn exec(&self, _: Request<Streaming<pb::ExecRequest>>) -> Result<Response<Self::ExecStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn console(
        &self,
        _: Request<Streaming<pb::ConsoleRequest>>,
    ) -> Result<Response<Self::ConsoleStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn console_log(&self, _: Request<pb::ConsoleLogRequest>) -> Result<Response<pb::ConsoleLogResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn copy(&self, _: Request<pb::CopyRequest>) -> Result<Response<pb::Container>, Status> {
        Err(Status::unimplemented("fake"))
    }

    /// Refuses a device name the container has already, as syscd does.
    async fn add_device(&self, request: Request<pb::AddDeviceRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let name = request.name.clone();
        self.change(&name, Call::AddDevice(request.clone()), |container| {
            if container.devices.contains_key(&request.device) {
                return Err(Status::already_exists(format!(
                    "device {} already exists on {name}",
                    request.device
                )));
            }
            let device = pb::Device { config: request.config };
            container.devices.insert(request.device, device);
            Ok(())
        })
    }

    async fn update_device(
        &self,
        request: Request<pb::UpdateDeviceRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let name = request.name.clone();
        self.change(&name, Call::UpdateDevice(request.clone()), |container| {
            let device = container
                .devices
                .get_mut(&request.device)
                .ok_or_else(|| device_not_found(&request.device, &name))?;
            for key in &request.unset {
                device.config.remove(key);
            }
            device.config.extend(request.set);
            Ok(())
        })
    }

    async fn remove_device(
        &self,
        request: Request<pb::RemoveDeviceRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let name = request.name.clone();
        self.change(&name, Call::RemoveDevice(request.clone()), |container| {
            container
                .devices
                .remove(&request.device)
                .map(drop)
                .ok_or_else(|| device_not_found(&request.device, &name))
        })
    }
}

fn device_not_found(device: &str, container: &str) -> Status {
    Status::not_found(format!("device {device} not found on {container}"))
}

fn network_not_found(name: &str) -> Status {
    Status::not_found(format!("network {name} not found"))
}

/// Networks as the test set them up; a created one holds its config and nothing else.
#[tonic::async_trait]
impl Networks for Service {
    async fn create(&self, request: Request<pb::CreateNetworkRequest>) -> Result<Response<pb::Network>, Status> {
        let request = request.into_inner();
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call::CreateNetwork(request.clone()));
        if state.networks.contains_key(&request.name) {
            return Err(Status::already_exists(format!(
                "network {} already exists",
                request.name
            )));
        }
        let network = pb::Network {
            name: request.name.clone(),
            config: request.config,
            ..Default::default()
        };
        state.networks.insert(request.name, network.clone());
        Ok(Response::new(network))
    }

    async fn list(&self, _: Request<pb::ListNetworksRequest>) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let networks = self.state.lock().unwrap().networks.values().cloned().collect();
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn get(&self, request: Request<pb::GetNetworkRequest>) -> Result<Response<pb::Network>, Status> {
        let name = request.into_inner().name;
        let state = self.state.lock().unwrap();
        let network = state.networks.get(&name).ok_or_else(|| network_not_found(&name))?;
        Ok(Response::new(network.clone()))
    }

    /// Refuses a network with users, as syscd does.
    async fn delete(
        &self,
        request: Request<pb::DeleteNetworkRequest>,
    ) -> Result<Response<pb::DeleteNetworkResponse>, Status> {
        let name = request.into_inner().name;
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call::DeleteNetwork(name.clone()));
        let network = state.networks.get(&name).ok_or_else(|| network_not_found(&name))?;
        if !network.used_by.is_empty() {
            let mut users = network.used_by.clone();
            users.sort();
            return Err(Status::failed_precondition(format!(
                "network {name} is in use by {}",
                users.join(", ")
            )));
        }
        state.networks.remove(&name);
        Ok(Response::new(pb::DeleteNetworkResponse {}))
    }
}

#[tonic::async_trait]
impl Snapshots for Service {
    async fn create(&self, _: Request<pb::CreateSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn list(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let name = request.into_inner().container;
        let state = self.state.lock().unwrap();
        if !state.containers.contains_key(&name) {
            return Err(not_found(&name));
        }
        let snapshots = state
            .snapshots
            .iter()
            .filter(|s| s.container == name)
            .cloned()
            .collect();
        Ok(Response::new(pb::ListSnapshotsResponse { snapshots }))
    }

    async fn get(&self, _: Request<pb::GetSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn restore(&self, request: Request<pb::RestoreSnapshotRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let snapshot = SnapshotName {
            container: request.container.clone(),
            snapshot: request.name.clone(),
        };
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call::RestoreSnapshot(snapshot.clone()));
        if !state
            .snapshots
            .iter()
            .any(|s| s.container == request.container && s.name == request.name)
        {
            return Err(Status::not_found(format!(
                "snapshot {}/{} not found",
                request.container, request.name
            )));
        }
        let container = state
            .containers
            .get(&request.container)
            .ok_or_else(|| not_found(&request.container))?;
        Ok(Response::new(container.clone()))
    }

    async fn delete(
        &self,
        _: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn rename(&self, _: Request<pb::RenameSnapshotRequest>) -> Result<Response<pb::Snapshot>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

#[tonic::async_trait]
impl Backups for Service {
    type ExportStream = ResponseStream<pb::ExportResponse>;

    async fn export(&self, request: Request<pb::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call::Export(request.into_inner()));
        let responses = tokio_stream::iter(std::mem::take(&mut state.export));
        Ok(Response::new(if state.export_stalls {
            Box::pin(responses.chain(tokio_stream::pending()))
        } else {
            Box::pin(responses)
        }))
    }

    /// Refuses an archive without data, as syscd refuses a truncated one.
    async fn import(&self, request: Request<Streaming<pb::ImportRequest>>) -> Result<Response<pb::Container>, Status> {
        let mut requests = request.into_inner();
        let mut header = None;
        let (mut chunks, mut data) = (Vec::new(), Vec::new());
        while let Some(request) = requests.message().await? {
            match (request.request, &header) {
                (Some(pb::import_request::Request::Header(first)), None) => header = Some(first),
                (Some(pb::import_request::Request::Data(chunk)), Some(_)) => {
                    chunks.push(chunk.len());
                    data.extend(chunk);
                }
                _ => return Err(Status::invalid_argument("the header must come first, and once")),
            }
        }
        let header = header.ok_or_else(|| Status::invalid_argument("no header"))?;
        if data.is_empty() {
            return Err(Status::invalid_argument("the archive is truncated"));
        }
        let name = header.name.clone();
        self.state
            .lock()
            .unwrap()
            .calls
            .push(Call::Import { header, chunks, data });
        Ok(Response::new(pb::Container {
            name,
            ..Default::default()
        }))
    }
}
