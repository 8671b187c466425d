//! Events: what happens on the daemon, told to every client that listens (`sysc monitor`).
//! One broadcast bus carries lifecycle events (a container started, a snapshot taken),
//! operation events (see `operations`) and the daemon's own log lines (`LogLayer`).
//! A listener that falls behind loses the events it missed and goes on with the next.

mod logging;
pub mod operations;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{broadcast, watch};

pub use logging::{LogLayer, forward_logs};
pub use operations::{OperationHandle, OperationProgress, OperationView, Operations, Status};

/// Events held for listeners that have not read them yet; past that, the slowest lag.
const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lifecycle,
    Operation,
    Logging,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Lifecycle, Kind::Operation, Kind::Logging];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lifecycle => "lifecycle",
            Kind::Operation => "operation",
            Kind::Logging => "logging",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: Kind,
    pub at_ms: i64,
    /// e.g. "container-started"; "operation-updated"; empty for log lines.
    pub action: String,
    /// e.g. "containers/web1", "containers/web1/snapshots/snap0", "operations/ID".
    pub source: String,
    pub context: BTreeMap<String, String>,
    pub operation: Option<OperationView>,
    /// Log lines: the text and its level.
    pub message: String,
    pub level: String,
}

impl Event {
    pub fn lifecycle(action: &str, source: String, context: &[(&str, &str)]) -> Self {
        Self {
            kind: Kind::Lifecycle,
            at_ms: crate::time::now_ms(),
            action: action.to_string(),
            source,
            context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            operation: None,
            message: String::new(),
            level: String::new(),
        }
    }
}

/// "containers/NAME": the source of a container's events.
pub fn container_source(name: &str) -> String {
    format!("containers/{name}")
}

/// "containers/NAME/snapshots/SNAPSHOT".
pub fn snapshot_source(container: &str, snapshot: &str) -> String {
    format!("containers/{container}/snapshots/{snapshot}")
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// Set when the daemon stops: every subscription ends, so no listener's stream
    /// keeps the server's graceful shutdown waiting.
    closed: Arc<watch::Sender<bool>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl EventBus {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity).0,
            closed: Arc::new(watch::channel(false).0),
        }
    }

    /// Ends every subscription, now and to come.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Completes when the bus is closed: when the daemon stops.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closed = self.closed.subscribe();
        async move {
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }

    /// Tells every listener; nobody listening is fine.
    pub fn send(&self, event: Event) {
        let _ = self.sender.send(event);
    }

    pub fn has_listeners(&self) -> bool {
        self.sender.receiver_count() > 0
    }

    /// Events of `kinds` (all when empty) from now on.
    pub fn subscribe(&self, kinds: &[Kind]) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
            closed: self.closed.subscribe(),
            kinds: if kinds.is_empty() {
                Kind::ALL.to_vec()
            } else {
                kinds.to_vec()
            },
        }
    }
}

pub struct Subscription {
    receiver: broadcast::Receiver<Event>,
    closed: watch::Receiver<bool>,
    kinds: Vec<Kind>,
}

impl Subscription {
    /// The next event of the kinds asked for; None once the bus is closed or gone.
    /// Events missed by falling behind are skipped, not an error.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let received = tokio::select! {
                biased;
                _ = self.closed.wait_for(|closed| *closed) => return None,
                received = self.receiver.recv() => received,
            };
            match received {
                Ok(event) if self.kinds.contains(&event.kind) => return Some(event),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The bus and the operation registry, shared by the daemon's parts and the API.
pub struct Events {
    pub bus: EventBus,
    pub operations: Arc<Operations>,
}

impl Default for Events {
    fn default() -> Self {
        let bus = EventBus::default();
        Self {
            operations: Arc::new(Operations::new(bus.clone())),
            bus,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: Kind, action: &str) -> Event {
        Event {
            kind,
            ..Event::lifecycle(action, container_source("c1"), &[])
        }
    }

    #[tokio::test]
    async fn every_listener_gets_the_kinds_it_asked_for() {
        let bus = EventBus::default();
        let mut all = bus.subscribe(&[]);
        let mut lifecycle = bus.subscribe(&[Kind::Lifecycle]);
        bus.send(event(Kind::Logging, "")); // only `all` wants it
        bus.send(event(Kind::Lifecycle, "container-started"));
        assert_eq!(all.next().await.unwrap().kind, Kind::Logging);
        assert_eq!(all.next().await.unwrap().action, "container-started");
        let got = lifecycle.next().await.unwrap();
        assert_eq!(
            (got.action.as_str(), got.source.as_str()),
            ("container-started", "containers/c1")
        );
    }

    #[tokio::test]
    async fn a_listener_that_lags_gets_the_rest() {
        let bus = EventBus::with_capacity(4);
        let mut slow = bus.subscribe(&[]);
        for n in 0..10 {
            bus.send(event(Kind::Lifecycle, &format!("e{n}")));
        }
        // The oldest are gone; the newest four are there, in order.
        for n in 6..10 {
            assert_eq!(slow.next().await.unwrap().action, format!("e{n}"));
        }
        bus.send(event(Kind::Lifecycle, "later"));
        assert_eq!(slow.next().await.unwrap().action, "later");
    }

    #[tokio::test]
    async fn nobody_listening_is_fine_and_a_closed_bus_ends_streams() {
        let bus = EventBus::default();
        assert!(!bus.has_listeners());
        bus.send(event(Kind::Lifecycle, "unheard"));
        let mut listener = bus.subscribe(&[Kind::Operation]);
        assert!(bus.has_listeners());
        drop(bus);
        assert_eq!(listener.next().await, None);
    }

    #[tokio::test]
    async fn closing_the_bus_ends_every_subscription() {
        let bus = EventBus::default();
        let mut before = bus.subscribe(&[]);
        let clone = bus.clone();
        clone.close();
        assert_eq!(before.next().await, None);
        assert_eq!(bus.subscribe(&[]).next().await, None);
    }

    #[test]
    fn kinds_parse() {
        assert_eq!(Kind::parse("operation"), Some(Kind::Operation));
        assert_eq!(Kind::parse("lifecycles"), None);
    }
}
