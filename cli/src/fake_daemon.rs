//! A stand-in for syscd in unit tests: the Containers service on a unix socket in a temporary
//! directory, holding a few containers in memory and recording the requests that change them.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sysc_proto::v1 as pb;
use sysc_proto::v1::containers_server::{Containers, ContainersServer};
use tokio::net::UnixListener;
use tokio_stream::Stream;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

/// A request that changes something, as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    UpdateConfig(pb::UpdateConfigRequest),
    Pause(String),
    Resume(String),
}

#[derive(Default)]
struct State {
    containers: BTreeMap<String, pb::Container>,
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
            calls: Vec::new(),
        }));
        let service = Service { state: state.clone() };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ContainersServer::new(service))
                .serve_with_incoming(UnixListenerStream::new(listener)),
        );
        let channel = crate::connect::connect(&socket).await.unwrap();
        Self {
            state,
            _dir: dir,
            channel,
        }
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
}

pub fn container(name: &str, state: pb::ContainerState, config: &[(&str, &str)]) -> pb::Container {
    pb::Container {
        name: name.to_string(),
        state: state as i32,
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

struct Service {
    state: Arc<Mutex<State>>,
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
        let container = state
            .containers
            .get_mut(name)
            .ok_or_else(|| Status::not_found(format!("container {name} not found")))?;
        change(container)?;
        Ok(Response::new(container.clone()))
    }
}

type Unused<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Containers for Service {
    type CreateStream = Unused<pb::CreateEvent>;
    type ExecStream = Unused<pb::ExecResponse>;
    type ConsoleStream = Unused<pb::ConsoleResponse>;

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
        let container = state
            .containers
            .get(&name)
            .ok_or_else(|| Status::not_found(format!("container {name} not found")))?;
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
}
