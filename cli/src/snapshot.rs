//! `sysc snapshot create|list|show|restore|delete|rename`: snapshots of a container's root
//! filesystem and config.

use std::collections::BTreeMap;

use serde::Serialize;
use sysc_proto::v1::snapshots_client::SnapshotsClient;
use sysc_proto::v1::{
    CreateSnapshotRequest, DeleteSnapshotRequest, GetSnapshotRequest, ListSnapshotsRequest, RenameSnapshotRequest,
    RestoreSnapshotRequest, Snapshot,
};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};
use crate::info;

/// One snapshot of one container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotName {
    pub container: String,
    pub snapshot: String,
}

/// A container and maybe one of its snapshots, from `NAME [SNAP]` or `NAME/SNAP`.
pub fn parse_target(first: &str, second: Option<&str>) -> Result<(String, Option<String>), String> {
    let (container, snapshot) = match (first.split_once('/'), second) {
        (None, snapshot) => (first, snapshot),
        (Some((container, snapshot)), None) => (container, Some(snapshot)),
        (Some(_), Some(extra)) => {
            return Err(format!(
                "{first} names the snapshot already, so {extra} is one argument too many"
            ));
        }
    };
    if container.is_empty() {
        return Err(format!("{first}: the container name before '/' is empty"));
    }
    if snapshot.is_some_and(str::is_empty) {
        return Err(match second {
            Some(_) => "the snapshot name is empty".to_string(),
            None => format!("{first}: the snapshot name after '/' is empty"),
        });
    }
    Ok((container.to_string(), snapshot.map(str::to_string)))
}

/// `NAME SNAP` or `NAME/SNAP`, for the verbs that act on one snapshot.
pub fn parse_snapshot(first: &str, second: Option<&str>) -> Result<SnapshotName, String> {
    match parse_target(first, second)? {
        (container, Some(snapshot)) => Ok(SnapshotName { container, snapshot }),
        (container, None) => Err(format!(
            "no snapshot given for {container}: expected NAME SNAP or NAME/SNAP"
        )),
    }
}

/// `NAME SNAP NEWSNAP` or `NAME/SNAP NEWSNAP`. NEWSNAP may be written as NAME/NEWSNAP too,
/// as long as NAME stays the same: a snapshot cannot move to another container.
pub fn parse_rename(first: &str, second: &str, third: Option<&str>) -> Result<(SnapshotName, String), String> {
    let (snapshot, new_name) = match third {
        Some(new_name) => (parse_snapshot(first, Some(second))?, new_name),
        None if first.contains('/') => (parse_snapshot(first, None)?, second),
        None => return Err("no new name: expected NAME SNAP NEWSNAP or NAME/SNAP NEWSNAP".to_string()),
    };
    let new_name = match new_name.split_once('/') {
        None => new_name,
        Some((container, new_name)) if container == snapshot.container => new_name,
        Some((container, _)) => {
            return Err(format!(
                "a snapshot of {} cannot be renamed into {container}; copy the container instead",
                snapshot.container
            ));
        }
    };
    if new_name.is_empty() {
        return Err("the new snapshot name is empty".to_string());
    }
    Ok((snapshot, new_name.to_string()))
}

/// `name` None lets the daemon pick one from the container's snapshots.pattern; `expiry`
/// None leaves it to the container's snapshots.expiry keys.
pub async fn create(
    channel: Channel,
    container: String,
    name: Option<String>,
    expiry: Option<String>,
    no_expiry: bool,
) -> anyhow::Result<()> {
    let snapshot = SnapshotsClient::new(channel)
        .create(CreateSnapshotRequest {
            container,
            name: name.unwrap_or_default(),
            expiry: expiry.unwrap_or_default(),
            no_expiry,
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    // The name is news when the daemon picked it, and scripts may want it.
    format::print(&format!("Snapshot {}/{} taken\n", snapshot.container, snapshot.name))?;
    Ok(())
}

/// The container's snapshots, oldest first, as the daemon orders them.
pub async fn fetch(channel: Channel, container: String) -> anyhow::Result<Vec<Snapshot>> {
    Ok(SnapshotsClient::new(channel)
        .list(ListSnapshotsRequest { container })
        .await
        .map_err(rpc_error)?
        .into_inner()
        .snapshots)
}

pub async fn list(channel: Channel, container: String, format: OutputFormat) -> anyhow::Result<()> {
    let snapshots = fetch(channel, container).await?;
    format::print(&format::render(&snapshots, format)?)?;
    Ok(())
}

pub async fn show(channel: Channel, name: SnapshotName) -> anyhow::Result<()> {
    let snapshot = SnapshotsClient::new(channel)
        .get(GetSnapshotRequest {
            container: name.container,
            name: name.snapshot,
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render(&snapshot))?;
    Ok(())
}

pub async fn restore(channel: Channel, name: SnapshotName) -> anyhow::Result<()> {
    SnapshotsClient::new(channel)
        .restore(RestoreSnapshotRequest {
            container: name.container,
            name: name.snapshot,
        })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

pub async fn delete(channel: Channel, name: SnapshotName) -> anyhow::Result<()> {
    SnapshotsClient::new(channel)
        .delete(DeleteSnapshotRequest {
            container: name.container,
            name: name.snapshot,
        })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

pub async fn rename(channel: Channel, name: SnapshotName, new_name: String) -> anyhow::Result<()> {
    SnapshotsClient::new(channel)
        .rename(RenameSnapshotRequest {
            container: name.container,
            name: name.snapshot,
            new_name,
        })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

/// When the snapshot goes, in local time, or "never".
pub fn expiry(snapshot: &Snapshot) -> String {
    format::local_time(snapshot.expires_at.as_ref()).unwrap_or_else(|| "never".to_string())
}

/// The schedule that took it, or "manual" for one taken by hand.
fn schedule(snapshot: &Snapshot) -> &str {
    match snapshot.schedule.as_str() {
        "" => "manual",
        schedule => schedule,
    }
}

fn render(s: &Snapshot) -> String {
    let fields = [
        ("Name", s.name.clone()),
        ("Container", s.container.clone()),
        (
            "Taken at",
            format::local_time(s.created_at.as_ref()).unwrap_or_default(),
        ),
        ("Expires at", expiry(s)),
        ("Size", format::human_size(s.size_bytes)),
        ("Schedule", schedule(s).to_string()),
        ("Was running", if s.taken_running { "yes" } else { "no" }.to_string()),
        ("Path", s.path.clone()),
    ];
    let mut out: String = fields.iter().map(|(label, value)| info::field(label, value)).collect();
    out += &info::config_section(&s.config);
    out
}

/// One snapshot in `snapshot list --format json|yaml`; scripts rely on these field names.
#[derive(Debug, Serialize)]
pub struct SnapshotRecord {
    name: String,
    taken_at: Option<String>,
    /// Null: kept until deleted.
    expires_at: Option<String>,
    size_bytes: u64,
    /// Empty for a snapshot taken by hand, as in the API.
    schedule: String,
    taken_running: bool,
    path: String,
    config: BTreeMap<String, String>,
}

impl Listing for Snapshot {
    type Record = SnapshotRecord;
    const HEADER: &'static [&'static str] = &["NAME", "TAKEN AT", "EXPIRES AT", "SIZE", "SCHEDULE"];

    fn record(&self) -> SnapshotRecord {
        SnapshotRecord {
            name: self.name.clone(),
            taken_at: format::rfc3339(self.created_at.as_ref()),
            expires_at: format::rfc3339(self.expires_at.as_ref()),
            size_bytes: self.size_bytes,
            schedule: self.schedule.clone(),
            taken_running: self.taken_running,
            path: self.path.clone(),
            config: self.config.clone().into_iter().collect(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        vec![
            self.name.clone(),
            format::local_time(self.created_at.as_ref()).unwrap_or_else(|| layout.empty().to_string()),
            expiry(self),
            format::human_size(self.size_bytes),
            schedule(self).to_string(),
        ]
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use sysc_proto::Timestamp;

    fn name(container: &str, snapshot: &str) -> SnapshotName {
        SnapshotName {
            container: container.into(),
            snapshot: snapshot.into(),
        }
    }

    #[test]
    fn a_snapshot_is_named_with_two_arguments_or_one_slash() {
        assert_eq!(parse_snapshot("web1", Some("snap0")), Ok(name("web1", "snap0")));
        assert_eq!(parse_snapshot("web1/snap0", None), Ok(name("web1", "snap0")));

        assert_eq!(parse_target("web1", None), Ok(("web1".into(), None)));
        assert_eq!(
            parse_target("web1/daily", None),
            Ok(("web1".into(), Some("daily".into())))
        );
        assert_eq!(
            parse_target("web1", Some("daily")),
            Ok(("web1".into(), Some("daily".into())))
        );
    }

    #[test]
    fn a_snapshot_named_twice_or_half_is_refused() {
        let err = parse_snapshot("web1/snap0", Some("snap1")).unwrap_err();
        assert_eq!(
            err,
            "web1/snap0 names the snapshot already, so snap1 is one argument too many"
        );
        assert_eq!(
            parse_snapshot("web1", None).unwrap_err(),
            "no snapshot given for web1: expected NAME SNAP or NAME/SNAP"
        );
        assert!(
            parse_snapshot("web1/", None)
                .unwrap_err()
                .contains("snapshot name after '/' is empty")
        );
        assert!(
            parse_target("/snap0", None)
                .unwrap_err()
                .contains("container name before '/' is empty")
        );
        assert_eq!(
            parse_target("web1", Some("")).unwrap_err(),
            "the snapshot name is empty"
        );
    }

    #[test]
    fn rename_takes_three_arguments_or_a_slash_and_one_more() {
        let expected = Ok((name("web1", "snap0"), "before-upgrade".to_string()));
        assert_eq!(parse_rename("web1", "snap0", Some("before-upgrade")), expected);
        assert_eq!(parse_rename("web1/snap0", "before-upgrade", None), expected);
        assert_eq!(parse_rename("web1/snap0", "web1/before-upgrade", None), expected);
        assert_eq!(parse_rename("web1", "snap0", Some("web1/before-upgrade")), expected);

        assert!(
            parse_rename("web1", "snap0", None)
                .unwrap_err()
                .starts_with("no new name")
        );
        assert!(
            parse_rename("web1/snap0", "web2/x", None)
                .unwrap_err()
                .contains("cannot be renamed into web2")
        );
        assert!(parse_rename("web1/snap0", "snap1", Some("snap2")).is_err());
        assert!(parse_rename("web1/snap0", "web1/", None).is_err());
    }

    pub fn sample_snapshots() -> Vec<Snapshot> {
        let at = |seconds| Some(Timestamp { seconds, nanos: 0 });
        vec![
            Snapshot {
                container: "web1".into(),
                name: "snap0".into(),
                created_at: at(1_714_564_800),
                expires_at: None,
                size_bytes: 1_572_864,
                schedule: String::new(),
                config: [("boot.autostart".to_string(), "true".to_string())].into(),
                taken_running: true,
                path: "/var/lib/sysc/storage-pools/default/snapshots/web1/snap0".into(),
            },
            Snapshot {
                container: "web1".into(),
                name: "daily-3".into(),
                created_at: at(1_714_651_200),
                expires_at: at(1_715_256_000),
                size_bytes: 0,
                schedule: "default".into(),
                config: Default::default(),
                taken_running: false,
                path: "/var/lib/sysc/storage-pools/default/snapshots/web1/daily-3".into(),
            },
        ]
    }

    #[test]
    fn list_table_says_never_and_manual_for_what_is_unset() {
        let snapshots = sample_snapshots();
        let first = snapshots[0].cells(Layout::Table);
        assert_eq!(first[0], "snap0");
        assert_eq!(first[1].len(), "2024-05-01 12:00:00".len());
        assert_eq!(first[2..], ["never", "1.5 MiB", "manual"]);
        let second = snapshots[1].cells(Layout::Table);
        assert_eq!(second[2].len(), "2024-05-09 12:00:00".len());
        assert_eq!(second[3..], ["0 B", "default"]);

        let table = format::render(&snapshots, OutputFormat::Table).unwrap();
        for text in ["NAME", "TAKEN AT", "EXPIRES AT", "SIZE", "SCHEDULE", "snap0", "daily-3"] {
            assert!(table.contains(text), "{text} missing from\n{table}");
        }
        assert!(
            table.find("snap0") < table.find("daily-3"),
            "the daemon's order, oldest first"
        );

        let csv = format::render(&snapshots, OutputFormat::Csv).unwrap();
        assert!(
            csv.starts_with("NAME,TAKEN AT,EXPIRES AT,SIZE,SCHEDULE\nsnap0,"),
            "{csv}"
        );
    }

    #[test]
    fn list_json_has_the_documented_fields() {
        let json: serde_json::Value =
            serde_json::from_str(&format::render(&sample_snapshots(), OutputFormat::Json).unwrap()).unwrap();
        assert_eq!(
            json[0],
            serde_json::json!({
                "name": "snap0",
                "taken_at": "2024-05-01T12:00:00Z",
                "expires_at": null,
                "size_bytes": 1_572_864,
                "schedule": "",
                "taken_running": true,
                "path": "/var/lib/sysc/storage-pools/default/snapshots/web1/snap0",
                "config": {"boot.autostart": "true"},
            })
        );
        assert_eq!(json[1]["expires_at"], "2024-05-09T12:00:00Z");
        assert_eq!(json[1]["schedule"], "default");
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&format::render(&sample_snapshots(), OutputFormat::Yaml).unwrap()).unwrap();
        assert_eq!(yaml[1]["size_bytes"], 0);
    }

    #[test]
    fn show_prints_every_field_and_the_config() {
        let text = render(&sample_snapshots()[0]);
        for expected in [
            "Name:        snap0\n",
            "Container:   web1\n",
            "Expires at:  never\n",
            "Size:        1.5 MiB\n",
            "Schedule:    manual\n",
            "Was running: yes\n",
            "Path:        /var/lib/sysc/storage-pools/default/snapshots/web1/snap0\n",
            "Config:\n  boot.autostart: true\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        assert!(text.contains("Taken at:    2024-05-0"), "{text}");
        assert!(render(&sample_snapshots()[1]).ends_with("Config:\n  (none)\n"));
    }

    #[tokio::test]
    async fn verbs_send_what_was_named() {
        use crate::fake_daemon::{Call, FakeDaemon, container};
        use sysc_proto::v1::ContainerState;
        let daemon = FakeDaemon::start(vec![container("web1", ContainerState::Running, &[])]).await;
        daemon.add_snapshots(sample_snapshots());

        let snapshots = fetch(daemon.channel.clone(), "web1".into()).await.unwrap();
        assert_eq!(snapshots, sample_snapshots());
        assert!(fetch(daemon.channel.clone(), "web2".into()).await.is_err());

        restore(daemon.channel.clone(), parse_snapshot("web1/daily-3", None).unwrap())
            .await
            .unwrap();
        let err = restore(daemon.channel.clone(), name("web1", "nope")).await.unwrap_err();
        assert_eq!(err.to_string(), "snapshot web1/nope not found");
        assert_eq!(
            daemon.calls(),
            [
                Call::RestoreSnapshot(name("web1", "daily-3")),
                Call::RestoreSnapshot(name("web1", "nope"))
            ]
        );
    }
}
