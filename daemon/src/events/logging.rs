//! The daemon's own log lines (info and above) as "logging" events, for
//! `sysc monitor --type logging`: a tracing Layer beside the one that writes the log.

use std::fmt::Write;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::{Event, EventBus, Kind};

/// The bus log lines go to, once the daemon has one.
static LOG_BUS: OnceLock<EventBus> = OnceLock::new();

/// Sends the daemon's log lines to `bus` from now on (the first bus given wins).
pub fn forward_logs(bus: &EventBus) {
    let _ = LOG_BUS.set(bus.clone());
}

/// Add to the daemon's subscriber: forwards its own events (target `syscd...`) of level
/// info and above while anyone listens.
pub struct LogLayer;

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() > Level::INFO || !metadata.target().starts_with("syscd") {
            return;
        }
        let Some(bus) = LOG_BUS.get().filter(|bus| bus.has_listeners()) else {
            return;
        };
        let mut line = Line::default();
        event.record(&mut line);
        bus.send(Event {
            kind: Kind::Logging,
            at_ms: crate::time::now_ms(),
            action: String::new(),
            source: String::new(),
            context: Default::default(),
            operation: None,
            message: line.text(),
            level: metadata.level().as_str().to_ascii_lowercase(),
        });
    }
}

/// A log line: its message, then its other fields as key=value.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn text(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.record_debug(field, &format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{}={value:?}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[tokio::test]
    async fn log_lines_of_info_and_above_become_events() {
        let bus = EventBus::default();
        forward_logs(&bus);
        let bus = LOG_BUS.get().unwrap();
        let mut listener = bus.subscribe(&[Kind::Logging]);
        let subscriber = tracing_subscriber::registry().with(LogLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("too chatty");
            tracing::warn!(container = %"web1", count = 3, "something odd");
        });
        let event = listener.next().await.unwrap();
        assert_eq!(event.level, "warn");
        assert_eq!(event.message, "something odd container=web1 count=3");
    }
}
