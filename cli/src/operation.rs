//! `sysc operation list|show`: the daemon's long operations (create and launch, export,
//! import, copy), running or finished in the last 5 minutes, whichever client began them.

use clap::Subcommand;
use serde::Serialize;
use sysc_proto::v1::operations_client::OperationsClient;
use sysc_proto::v1::{GetOperationRequest, ListOperationsRequest, Operation};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};
use crate::info;

#[derive(Subcommand)]
pub enum OperationCommand {
    /// List the daemon's operations: running ones first, then those finished in the last
    /// 5 minutes, newest first
    #[command(visible_alias = "ls")]
    List {
        /// The remote whose operations to list [default: the default remote]
        #[arg(value_name = "REMOTE:")]
        remote: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Show one operation: what it does, how far it is, how it ended
    Show {
        /// The operation's id, or a unique prefix of at least 4 digits
        #[arg(value_name = "[REMOTE:]ID")]
        id: String,
    },
}

pub async fn run(channel: Channel, command: OperationCommand) -> anyhow::Result<()> {
    match command {
        OperationCommand::List { format, .. } => list(channel, format).await,
        OperationCommand::Show { id } => show(channel, id).await,
    }
}

async fn list(channel: Channel, format: OutputFormat) -> anyhow::Result<()> {
    let operations = OperationsClient::new(channel)
        .list(ListOperationsRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner()
        .operations;
    format::print(&format::render(&operations, format)?)?;
    Ok(())
}

async fn show(channel: Channel, id: String) -> anyhow::Result<()> {
    let operation = OperationsClient::new(channel)
        .get(GetOperationRequest { id })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render(&operation))?;
    Ok(())
}

fn render(op: &Operation) -> String {
    let fields = [
        ("ID", op.id.clone()),
        ("Kind", op.kind.clone()),
        ("Description", op.description.clone()),
        ("Status", op.status.clone()),
        ("Error", op.error.clone()),
        ("Progress", op.progress.clone()),
        ("Resources", op.resources.join(", ")),
        (
            "Created",
            format::local_time(op.created_at.as_ref()).unwrap_or_default(),
        ),
        (
            "Updated",
            format::local_time(op.updated_at.as_ref()).unwrap_or_default(),
        ),
    ];
    fields.iter().map(|(label, value)| info::field(label, value)).collect()
}

/// One operation in `operation list --format json|yaml` and in `monitor`'s operation
/// events; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct OperationRecord {
    id: String,
    kind: String,
    description: String,
    /// running, success or failure.
    status: String,
    error: String,
    progress: String,
    resources: Vec<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

impl Listing for Operation {
    type Record = OperationRecord;
    const HEADER: &'static [&'static str] = &["ID", "KIND", "DESCRIPTION", "STATUS", "PROGRESS", "CREATED"];

    fn record(&self) -> OperationRecord {
        OperationRecord {
            id: self.id.clone(),
            kind: self.kind.clone(),
            description: self.description.clone(),
            status: self.status.clone(),
            error: self.error.clone(),
            progress: self.progress.clone(),
            resources: self.resources.clone(),
            created_at: format::rfc3339(self.created_at.as_ref()),
            updated_at: format::rfc3339(self.updated_at.as_ref()),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let status = match (self.status.as_str(), self.error.as_str()) {
            ("failure", error) if !error.is_empty() && layout == Layout::Table => format!("failure: {error}"),
            (status, _) => status.to_string(),
        };
        let or_empty = |value: &str| match value {
            "" => layout.empty().to_string(),
            value => value.to_string(),
        };
        vec![
            format::fingerprint_cell(layout, &self.id),
            self.kind.clone(),
            self.description.clone(),
            status,
            or_empty(&self.progress),
            format::local_time(self.created_at.as_ref()).unwrap_or_else(|| layout.empty().to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation() -> Operation {
        Operation {
            id: "0123456789abcdef0123456789abcdef".into(),
            kind: "export".into(),
            description: "Exporting container web1".into(),
            status: "failure".into(),
            error: "the client went away".into(),
            created_at: Some(sysc_proto::Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
            updated_at: None,
            progress: "34%".into(),
            resources: vec!["containers/web1".into()],
        }
    }

    #[test]
    fn tables_shorten_ids_and_csv_keeps_them() {
        let op = operation();
        let table = op.cells(Layout::Table);
        assert_eq!(table[0], "0123456789ab");
        assert_eq!(table[3], "failure: the client went away");
        let csv = op.cells(Layout::Csv);
        assert_eq!(csv[0], op.id);
        assert_eq!(csv[3], "failure");
    }

    #[test]
    fn monitor_and_operation_verbs_take_a_remote() {
        use clap::Parser;
        let routed = |args: &[&str]| {
            let mut command = crate::Cli::try_parse_from(args).expect("valid usage").command;
            let remote = crate::remote::route::route(&mut command, "local")
                .map(|route| route.remote)
                .map_err(|e| e.to_string());
            (remote, command)
        };
        assert_eq!(routed(&["sysc", "monitor"]).0.unwrap(), "local");
        let (remote, command) = routed(&["sysc", "monitor", "h1:", "--type", "lifecycle,operation"]);
        assert_eq!(remote.unwrap(), "h1");
        assert!(matches!(command, crate::Command::Monitor(args) if args.types.len() == 2));
        assert!(routed(&["sysc", "monitor", "h1:web1"]).0.is_err());
        assert_eq!(routed(&["sysc", "operation", "ls", "h1:"]).0.unwrap(), "h1");
        let (remote, command) = routed(&["sysc", "operation", "show", "h1:0123abcd"]);
        assert_eq!(remote.unwrap(), "h1");
        assert!(matches!(
            command,
            crate::Command::Operation { command: OperationCommand::Show { id } } if id == "0123abcd"
        ));
    }

    #[test]
    fn json_carries_every_field() {
        let json = format::render(&[operation()], OutputFormat::Json).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value[0]["status"], "failure");
        assert_eq!(value[0]["created_at"], "2024-05-01T12:00:00Z");
        assert_eq!(value[0]["updated_at"], serde_json::Value::Null);
        assert_eq!(value[0]["resources"][0], "containers/web1");
    }
}
