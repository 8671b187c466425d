//! `sysc monitor`: the daemon's events as they happen (containers created, started,
//! stopped, deleted, snapshots taken, operations' progress, the daemon's log), until
//! Ctrl-C.

use std::collections::BTreeMap;

use clap::{Args, ValueEnum};
use serde::Serialize;
use sysc_proto::v1::events_client::EventsClient;
use sysc_proto::v1::{Event, MonitorRequest};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Listing};
use crate::operation::OperationRecord;

#[derive(Args)]
pub struct MonitorArgs {
    /// The remote whose events to show [default: the default remote]
    #[arg(value_name = "REMOTE:")]
    pub remote: Option<String>,
    /// Which events: lifecycle, operation, logging (repeatable, or comma-separated)
    /// [default: all]
    #[arg(long = "type", value_name = "TYPE", value_enum, value_delimiter = ',')]
    pub types: Vec<EventType>,
    /// How each event is shown: yaml (a document each), json (an object per line) or
    /// pretty (a line each, for people)
    #[arg(long, value_enum, default_value_t = MonitorFormat::Yaml)]
    pub format: MonitorFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventType {
    Lifecycle,
    Operation,
    Logging,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MonitorFormat {
    Yaml,
    Json,
    Pretty,
}

pub async fn monitor(channel: Channel, args: MonitorArgs) -> anyhow::Result<()> {
    let types = args
        .types
        .iter()
        .filter_map(|t| t.to_possible_value().map(|v| v.get_name().to_string()))
        .collect();
    let mut events = EventsClient::new(channel)
        .monitor(MonitorRequest { types })
        .await
        .map_err(rpc_error)?
        .into_inner();
    while let Some(event) = events.message().await.map_err(rpc_error)? {
        format::print(&render(&event, args.format)?)?;
    }
    anyhow::bail!("the daemon ended the event stream (it stopped?)")
}

/// One event in `monitor --format json|yaml`; scripts rely on these field names. Fields
/// that do not apply to an event's type are left out.
#[derive(Debug, Serialize)]
struct EventRecord {
    r#type: String,
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    source: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    context: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<OperationRecord>,
    #[serde(skip_serializing_if = "String::is_empty")]
    level: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
}

fn record(event: &Event) -> EventRecord {
    EventRecord {
        r#type: event.r#type.clone(),
        timestamp: format::rfc3339(event.at.as_ref()),
        action: event.action.clone(),
        source: event.source.clone(),
        context: event.context.clone().into_iter().collect(),
        operation: event.operation.as_ref().map(Listing::record),
        level: event.level.clone(),
        message: event.message.clone(),
    }
}

fn render(event: &Event, format: MonitorFormat) -> anyhow::Result<String> {
    Ok(match format {
        MonitorFormat::Json => serde_json::to_string(&record(event))? + "\n",
        MonitorFormat::Yaml => format!("---\n{}", serde_yaml::to_string(&record(event))?),
        MonitorFormat::Pretty => pretty(event) + "\n",
    })
}

/// "2024-05-01 12:00:00 lifecycle container-started containers/web1 (reason=...)".
fn pretty(event: &Event) -> String {
    let time = format::local_time(event.at.as_ref()).unwrap_or_default();
    let detail = match (event.r#type.as_str(), &event.operation) {
        ("logging", _) => format!("{} {}", event.level.to_uppercase(), event.message),
        ("operation", Some(op)) => {
            let mut text = format!("{} {} {}", &op.id[..op.id.len().min(12)], op.status, op.description);
            if !op.progress.is_empty() && op.status == "running" {
                text += &format!(" ({})", op.progress);
            }
            if !op.error.is_empty() {
                text += &format!(": {}", op.error);
            }
            text
        }
        _ => {
            let mut text = format!("{} {}", event.action, event.source);
            if !event.context.is_empty() {
                let context: BTreeMap<_, _> = event.context.iter().collect();
                let pairs: Vec<String> = context.iter().map(|(k, v)| format!("{k}={v}")).collect();
                text += &format!(" ({})", pairs.join(", "));
            }
            text
        }
    };
    format!("{time} {} {detail}", event.r#type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Event {
        Event {
            r#type: "lifecycle".into(),
            at: Some(sysc_proto::Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
            action: "container-stopped".into(),
            source: "containers/web1".into(),
            context: [("reason".to_string(), "exited".to_string())].into_iter().collect(),
            ..Default::default()
        }
    }

    #[test]
    fn json_is_one_line_per_event_without_empty_fields() {
        let text = render(&started(), MonitorFormat::Json).unwrap();
        assert_eq!(text.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "lifecycle");
        assert_eq!(value["action"], "container-stopped");
        assert_eq!(value["source"], "containers/web1");
        assert_eq!(value["context"]["reason"], "exited");
        assert_eq!(value["timestamp"], "2024-05-01T12:00:00Z");
        assert!(value.get("message").is_none() && value.get("operation").is_none());
    }

    #[test]
    fn yaml_is_a_document_per_event_and_pretty_a_line() {
        let yaml = render(&started(), MonitorFormat::Yaml).unwrap();
        assert!(yaml.starts_with("---\ntype: lifecycle\n"), "{yaml}");
        let line = render(&started(), MonitorFormat::Pretty).unwrap();
        assert!(
            line.ends_with(" lifecycle container-stopped containers/web1 (reason=exited)\n"),
            "{line}"
        );
    }
}
