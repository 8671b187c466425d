//! sysc.v1.Events

use std::pin::Pin;
use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::events_server::Events;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::timestamp;
use super::operations::operation;
use crate::containers::Manager;
use crate::events::{Event, Kind};

pub struct EventsService {
    manager: Arc<Manager>,
}

impl EventsService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

type MonitorStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl Events for EventsService {
    type MonitorStream = MonitorStream;

    async fn monitor(&self, request: Request<pb::MonitorRequest>) -> Result<Response<Self::MonitorStream>, Status> {
        let mut kinds = Vec::new();
        for name in &request.get_ref().types {
            let kind = Kind::parse(name).ok_or_else(|| {
                Status::invalid_argument(format!(
                    "unknown event type {name:?}: expected lifecycle, operation or logging"
                ))
            })?;
            kinds.push(kind);
        }
        // Subscribed before the answer goes out: once the client has it, it misses nothing.
        let subscription = self.manager.events.bus.subscribe(&kinds);
        let shown: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        tracing::info!(types = %shown.join(","), "event listener connected");
        // Ends when the client goes away (tonic drops the stream) or the daemon stops.
        let events = futures::stream::unfold(subscription, |mut subscription| async move {
            let event = subscription.next().await?;
            Some((Ok(event_message(event)), subscription))
        });
        Ok(Response::new(Box::pin(events)))
    }
}

fn event_message(event: Event) -> pb::Event {
    pb::Event {
        r#type: event.kind.as_str().to_string(),
        at: timestamp(event.at_ms),
        action: event.action,
        source: event.source,
        context: event.context.into_iter().collect(),
        operation: event.operation.map(operation),
        message: event.message,
        level: event.level,
    }
}
