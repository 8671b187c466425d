//! sysc.v1.Containers

use std::pin::Pin;
use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::containers_server::Containers;
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

use super::convert;
use crate::containers::{CopyParams, CreateParams, Manager, stop_timeout};
use crate::progress::{Event, Progress};

pub struct ContainersService {
    manager: Arc<Manager>,
}

impl ContainersService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::CreateEvent, Status>> + Send>>;

fn progress_event(event: Event) -> pb::CreateEvent {
    let event = match event {
        Event::Stage(stage) => pb::create_event::Event::Stage(stage),
        Event::Output { stderr, line } => pb::create_event::Event::TemplateOutput(pb::TemplateOutput {
            stream: if stderr {
                pb::template_output::Stream::Stderr
            } else {
                pb::template_output::Stream::Stdout
            } as i32,
            line,
        }),
    };
    pb::CreateEvent { event: Some(event) }
}

#[tonic::async_trait]
impl Containers for ContainersService {
    type CreateStream = EventStream;

    async fn create(&self, request: Request<pb::CreateRequest>) -> Result<Response<Self::CreateStream>, Status> {
        let request = request.into_inner();
        let params = CreateParams {
            name: request.name,
            template: request.template,
            release: request.release,
            arch: request.arch,
            config: request.config.into_iter().collect(),
            start: request.start,
            pool: request.pool,
            network: request.network,
        };
        let (progress_tx, progress_rx) = tokio::sync::mpsc::unbounded_channel();
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let manager = self.manager.clone();
        // The create runs to its end even if the client goes away.
        let work = tokio::spawn(async move { manager.create(params, Progress::new(progress_tx)).await });
        tokio::spawn(async move {
            let mut progress = UnboundedReceiverStream::new(progress_rx);
            while let Some(event) = tokio_stream::StreamExt::next(&mut progress).await {
                let _ = out_tx.send(Ok(progress_event(event)));
            }
            let last = match work.await {
                Ok(Ok(view)) => Ok(pb::CreateEvent {
                    event: Some(pb::create_event::Event::Created(convert::container(view))),
                }),
                Ok(Err(e)) => Err(Status::from(e)),
                Err(e) => Err(Status::internal(format!("create task failed: {e}"))),
            };
            let _ = out_tx.send(last);
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(out_rx))))
    }

    async fn start(&self, request: Request<pb::StartRequest>) -> Result<Response<pb::Container>, Status> {
        let view = self.manager.start(&request.into_inner().name).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn stop(&self, request: Request<pb::StopRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let timeout = stop_timeout(request.timeout_seconds);
        let view = self.manager.stop(&request.name, request.force, timeout).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn restart(&self, request: Request<pb::RestartRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let timeout = stop_timeout(request.timeout_seconds);
        let view = self.manager.restart(&request.name, request.force, timeout).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn delete(&self, request: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        let request = request.into_inner();
        self.manager.delete(&request.name, request.force).await?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn rename(&self, request: Request<pb::RenameRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let view = self.manager.rename(&request.name, &request.new_name).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn copy(&self, request: Request<pb::CopyRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let params = CopyParams {
            source: request.source,
            snapshot: request.snapshot,
            name: request.name,
            instance_only: request.instance_only,
            pool: request.pool,
            config: request.config.into_iter().collect(),
        };
        let manager = self.manager.clone();
        let view = super::detached(async move { manager.copy(params).await }).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn list(&self, _request: Request<pb::ListRequest>) -> Result<Response<pb::ListResponse>, Status> {
        let containers = self.manager.list().await?.into_iter().map(convert::container).collect();
        Ok(Response::new(pb::ListResponse { containers }))
    }

    type ExecStream = super::exec::ExecStream;

    async fn exec(
        &self,
        request: Request<tonic::Streaming<pb::ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let stream = super::exec::serve(self.manager.clone(), request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    type ConsoleStream = super::console::ConsoleStream;

    async fn console(
        &self,
        request: Request<tonic::Streaming<pb::ConsoleRequest>>,
    ) -> Result<Response<Self::ConsoleStream>, Status> {
        let stream = super::console::serve(self.manager.clone(), request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn console_log(
        &self,
        request: Request<pb::ConsoleLogRequest>,
    ) -> Result<Response<pb::ConsoleLogResponse>, Status> {
        let log = self.manager.console_log(&request.into_inner().name).await?;
        Ok(Response::new(pb::ConsoleLogResponse { log }))
    }

    async fn update_config(
        &self,
        request: Request<pb::UpdateConfigRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let view = self
            .manager
            .update_config(
                &request.name,
                request.set.into_iter().collect(),
                request.unset,
                request.replace,
                request.if_unchanged.map(|read| read.config.into_iter().collect()),
            )
            .await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn pause(&self, request: Request<pb::PauseRequest>) -> Result<Response<pb::Container>, Status> {
        let view = self.manager.pause(&request.into_inner().name).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn resume(&self, request: Request<pb::ResumeRequest>) -> Result<Response<pb::Container>, Status> {
        let view = self.manager.resume(&request.into_inner().name).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Container>, Status> {
        let view = self.manager.get(&request.into_inner().name).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn add_device(&self, request: Request<pb::AddDeviceRequest>) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let config = request.config.into_iter().collect();
        let view =
            super::detached(async move { manager.add_device(&request.name, &request.device, config).await }).await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn update_device(
        &self,
        request: Request<pb::UpdateDeviceRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let set = request.set.into_iter().collect();
        let view = super::detached(async move {
            manager
                .update_device(&request.name, &request.device, set, request.unset)
                .await
        })
        .await?;
        Ok(Response::new(convert::container(view)))
    }

    async fn remove_device(
        &self,
        request: Request<pb::RemoveDeviceRequest>,
    ) -> Result<Response<pb::Container>, Status> {
        let request = request.into_inner();
        let manager = self.manager.clone();
        let view = super::detached(async move { manager.remove_device(&request.name, &request.device).await }).await?;
        Ok(Response::new(convert::container(view)))
    }
}
