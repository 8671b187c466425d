//! `sysc info NAME`: one container in detail, for people (`list --format json` is for programs);
//! `sysc info --host`: the daemon and its host.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::server_client::ServerClient;
use sysc_proto::v1::{
    Container, ContainerState, Device, ExitStatus, GetRequest, ServerInfo, ServerInfoRequest, Snapshot,
};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::device;
use crate::format;
use crate::list::state_name;
use crate::snapshot;

/// The width of "Label:" and its padding in `field`, where values start.
const LABEL_WIDTH: usize = 13;

/// Snapshots `info` lists, the newest; `sysc snapshot list` has them all.
const SNAPSHOTS_SHOWN: usize = 10;

pub async fn show(channel: Channel, name: String) -> anyhow::Result<()> {
    let (container, snapshots) = fetch(channel, name).await?;
    format::print(&render(&container, &snapshots, Utc::now()))?;
    Ok(())
}

/// The container and its snapshots. Most containers have none, and the count in the
/// container saves the second request then.
async fn fetch(channel: Channel, name: String) -> anyhow::Result<(Container, Vec<Snapshot>)> {
    let container = ContainersClient::new(channel.clone())
        .get(GetRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    let snapshots = if container.snapshot_count > 0 {
        snapshot::fetch(channel, container.name.clone()).await?
    } else {
        Vec::new()
    };
    Ok((container, snapshots))
}

pub async fn show_host(channel: Channel) -> anyhow::Result<()> {
    let info = ServerClient::new(channel)
        .info(ServerInfoRequest {})
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render_host(&info))?;
    Ok(())
}

fn render_host(info: &ServerInfo) -> String {
    // A daemon that does not know a value leaves it empty (or 0); `field` shows a dash.
    let cgroups = match (info.cgroup_layout.as_str(), info.cgroup_parent.as_str()) {
        (layout, "") => layout.to_string(),
        ("", parent) => format!("parent {parent}"),
        (layout, parent) => format!("{layout}, parent {parent}"),
    };
    let storage = match (info.storage_driver.as_str(), info.storage_source.as_str()) {
        (driver, "") => driver.to_string(),
        (driver, source) => format!("{driver} on {source}"),
    };
    let memory = match info.memory_bytes {
        0 => String::new(),
        bytes => format::human_size(bytes),
    };
    [
        ("Version", info.version.clone()),
        ("Kernel", info.kernel.clone()),
        ("Cgroups", cgroups),
        ("Storage", storage),
        ("Root dir", info.root_dir.clone()),
        ("Run dir", info.run_dir.clone()),
        ("CPUs", info.cpus.clone()),
        ("Memory", memory),
        ("ID map base", info.idmap_base.to_string()),
    ]
    .iter()
    .map(|(label, value)| field(label, value))
    .collect()
}

/// `snapshots` is what `fetch` found; it is newer than the container's count.
fn render(c: &Container, snapshots: &[Snapshot], now: DateTime<Utc>) -> String {
    // Unset values stay empty here; `field` shows them as a dash.
    let mut fields = vec![("Name", c.name.clone()), ("State", state_name(c.state).to_string())];
    if c.state == ContainerState::Error as i32 && !c.status_detail.is_empty() {
        fields.push(("Detail", c.status_detail.clone()));
    }
    fields.extend([
        ("PID", if c.pid == 0 { String::new() } else { c.pid.to_string() }),
        ("Started", format::local_time(c.started_at.as_ref()).unwrap_or_default()),
        (
            "Uptime",
            c.started_at
                .as_ref()
                .and_then(|started| format::elapsed_since(started, now))
                .map(format::humanize_duration)
                .unwrap_or_default(),
        ),
        ("IPv4", ipv4(&crate::list::labelled_ipv4(c))),
        ("Image", c.image.clone()),
        ("Fingerprint", c.image_fingerprint.clone()),
        ("Pool", c.pool.clone()),
        ("Created", format::local_time(c.created_at.as_ref()).unwrap_or_default()),
        ("Privileged", privileged(c).to_string()),
        ("ID map", id_map(c)),
        ("Halt signal", c.halt_signal.clone()),
        ("Last exit", last_exit(c.last_exit.as_ref())),
    ]);
    let mut out: String = fields.iter().map(|(label, value)| field(label, value)).collect();

    let live = [ContainerState::Running as i32, ContainerState::Paused as i32].contains(&c.state);
    if live || c.usage.is_some() {
        out += &resources(c);
    }

    let paths = c.paths.clone().unwrap_or_default();
    out += "Paths:\n";
    for (label, value) in [
        ("Directory", &paths.directory),
        ("Rootfs", &paths.rootfs),
        ("Backup file", &paths.backup_file),
        ("Console log", &paths.console_log),
    ] {
        out += &format!("  {}", field(label, value));
    }

    out += &config_section(&c.config);
    out += &devices_section(&c.devices);
    out += &snapshots_section(&c.name, snapshots);
    out
}

/// The addresses a line each, lined up under the first; empty when there are none, for
/// `field` to show a dash.
fn ipv4(addresses: &[String]) -> String {
    addresses.join(&format!("\n{:LABEL_WIDTH$}", ""))
}

/// "Devices:" and a line per device, by name: its type, then its keys.
fn devices_section(devices: &HashMap<String, Device>) -> String {
    let rows: Vec<Vec<String>> = device::by_name(devices)
        .iter()
        .map(|device| {
            vec![
                device.name.clone(),
                device.kind().to_string(),
                device.settings().join(" "),
            ]
        })
        .collect();
    list_section("Devices", &aligned(&rows))
}

/// "Config:" and the keys, sorted, a line each.
pub fn config_section(config: &HashMap<String, String>) -> String {
    let mut config: Vec<_> = config.iter().collect();
    config.sort();
    let lines: Vec<String> = config.iter().map(|(key, value)| format!("{key}: {value}")).collect();
    list_section("Config", &lines)
}

/// Rows as lines of columns padded to line up, two spaces apart; for the tables inside a
/// section, where a boxed table would be too heavy.
pub fn aligned(rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        widths.resize(widths.len().max(row.len()), 0);
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

/// "Title:" and a line per item below it, or "(none)".
pub fn list_section(title: &str, lines: &[String]) -> String {
    let mut out = format!("{title}:\n");
    if lines.is_empty() {
        out += "  (none)\n";
    }
    for line in lines {
        out += &format!("  {line}\n");
    }
    out
}

/// The count, and the newest snapshots with when they were taken and when they expire.
fn snapshots_section(container: &str, snapshots: &[Snapshot]) -> String {
    if snapshots.is_empty() {
        return field("Snapshots", "none");
    }
    let count = snapshots.len();
    let mut out = if count > SNAPSHOTS_SHOWN {
        field(
            "Snapshots",
            &format!("{count} (the newest {SNAPSHOTS_SHOWN}; sysc snapshot list {container} shows all)"),
        )
    } else {
        field("Snapshots", &count.to_string())
    };
    let newest = &snapshots[count.saturating_sub(SNAPSHOTS_SHOWN)..];
    let width = newest.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in newest {
        let taken = format::local_time(s.created_at.as_ref()).unwrap_or_else(|| "-".to_string());
        out += &format!("  {:<width$}  taken {taken}  expires {}\n", s.name, snapshot::expiry(s));
    }
    out
}

/// Live usage; dashes if the daemon did not measure it.
fn resources(c: &Container) -> String {
    let usage = c.usage.as_ref();
    let mut out = "Resources:\n".to_string();
    for (label, value) in [
        ("Memory (current)", usage.map(|u| format::human_size(u.memory_bytes))),
        ("Memory (peak)", usage.map(|u| format::human_size(u.memory_peak_bytes))),
        ("CPU time", usage.map(|u| format::cpu_seconds(u.cpu_nanoseconds))),
        ("Processes", usage.map(|u| u.processes.to_string())),
    ] {
        let value = value.unwrap_or_else(|| "-".to_string());
        out += &format!("  {:<18}{value}\n", format!("{label}:"));
    }
    out
}

/// "Label:" padded so values line up; a dash stands in for a value the daemon left empty.
pub fn field(label: &str, value: &str) -> String {
    let value = if value.is_empty() { "-" } else { value };
    format!("{:<LABEL_WIDTH$}{value}\n", format!("{label}:"))
}

fn privileged(c: &Container) -> &'static str {
    if c.privileged {
        "yes (root in the container is root on the host)"
    } else {
        "no"
    }
}

/// Host ids of container ids 0.., as a range a user can match against `ps` or `ls -n`.
fn id_map(c: &Container) -> String {
    if c.idmap_size == 0 {
        return if c.privileged {
            "none (privileged: container ids are host ids)".to_string()
        } else {
            "none".to_string()
        };
    }
    let last = u64::from(c.idmap_base) + u64::from(c.idmap_size) - 1;
    format!("{}-{last} ({} ids)", c.idmap_base, c.idmap_size)
}

fn last_exit(exit: Option<&ExitStatus>) -> String {
    let Some(exit) = exit else {
        return "none".to_string();
    };
    match format::local_time(exit.at.as_ref()) {
        Some(at) => format!("{} at {at}", exit.description),
        None => exit.description.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::tests::sample_container;
    use crate::snapshot::tests::sample_snapshots;

    fn now() -> DateTime<Utc> {
        // 133 seconds after the sample's start.
        DateTime::from_timestamp(1_714_568_533, 500_000_000).unwrap()
    }

    #[test]
    fn running_container_shows_uptime_and_id_range() {
        let text = render(&sample_container(), &[], now());
        for expected in [
            "Name:        web1\n",
            "State:       RUNNING\n",
            "PID:         4242\n",
            "Uptime:      2m 13s\n",
            "Privileged:  no\n",
            "ID map:      1000000-1065535 (65536 ids)\n",
            "Halt signal: SIGRTMIN+3\n",
            "  Rootfs:      /var/lib/sysc/containers/web1/rootfs\n",
            "Config:\n  boot.autostart: true\n  volatile.idmap.base: 1000000\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        assert!(text.contains("Last exit:   halted (SIGINT) at "), "{text}");
        assert!(!text.contains("Detail:"), "{text}");
        assert!(
            text.contains(
                "Resources:\n  Memory (current): 45.2 MiB\n  Memory (peak):    60.1 MiB\n  CPU time:         12.4s\n  Processes:        7\nPaths:\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn addresses_and_devices_are_listed() {
        let mut container = sample_container();
        let text = render(&container, &[], now());
        assert!(
            text.contains(
                "Uptime:      2m 13s\nIPv4:        10.0.3.15 (eth0)\n             192.168.1.7 (eth1)\nImage:"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Devices:\n  \
                 eth0  nic    name=eth0 network=sysc0\n  \
                 http  proxy  connect=tcp:127.0.0.1:80 listen=tcp:0.0.0.0:8080\n\
                 Snapshots:"
            ),
            "{text}"
        );

        container.ipv4_addresses.clear();
        container.devices.clear();
        let text = render(&container, &[], now());
        assert!(text.contains("IPv4:        -\n"), "{text}");
        assert!(text.contains("Devices:\n  (none)\nSnapshots:"), "{text}");
    }

    #[test]
    fn aligned_rows_pad_every_column_but_the_last() {
        let rows = [
            vec!["a".to_string(), "bbb".to_string(), "c".to_string()],
            vec!["dddd".to_string(), "e".to_string(), String::new()],
        ];
        assert_eq!(aligned(&rows), ["a     bbb  c", "dddd  e"]);
        assert!(aligned(&[]).is_empty());
    }

    #[test]
    fn pool_and_snapshots_are_shown_newest_last() {
        let mut container = sample_container();
        let snapshots = sample_snapshots();
        let text = render(&container, &snapshots, now());
        assert!(
            text.contains("Fingerprint: 3f2a9c1d8e7b00112233\nPool:        default\n"),
            "{text}"
        );
        let section = &text[text.find("Snapshots:").expect("a snapshot section")..];
        let lines: Vec<&str> = section.lines().collect();
        assert_eq!(lines.len(), 3, "{section}");
        assert_eq!(lines[0], "Snapshots:   2");
        assert!(lines[1].starts_with("  snap0    taken 2024-05-0"), "{section}");
        assert!(lines[1].ends_with("  expires never"), "{section}");
        assert!(lines[2].starts_with("  daily-3  taken "), "{section}");

        container.snapshot_count = 0;
        assert!(render(&container, &[], now()).ends_with("Snapshots:   none\n"));

        let many: Vec<Snapshot> = (0..12)
            .map(|i| Snapshot {
                name: format!("snap{i}"),
                ..snapshots[0].clone()
            })
            .collect();
        let text = render(&container, &many, now());
        assert!(
            text.contains("Snapshots:   12 (the newest 10; sysc snapshot list web1 shows all)\n  snap2 "),
            "{text}"
        );
        assert!(!text.contains("snap1 "), "{text}");
        assert!(text.contains("  snap11  taken "), "{text}");
    }

    #[tokio::test]
    async fn snapshots_are_asked_for_only_when_there_are_some() {
        use crate::fake_daemon::{FakeDaemon, container};
        let mut with = container("web1", ContainerState::Running, &[]);
        with.snapshot_count = 2;
        // The fake holds snapshots of "quiet" too; its count of 0 says not to ask.
        let without = container("quiet", ContainerState::Stopped, &[]);
        let daemon = FakeDaemon::start(vec![with, without]).await;
        let mut snapshots = sample_snapshots();
        snapshots.push(Snapshot {
            container: "quiet".into(),
            ..snapshots[0].clone()
        });
        daemon.add_snapshots(snapshots);

        let (container, snapshots) = fetch(daemon.channel.clone(), "web1".into()).await.unwrap();
        assert_eq!(container.name, "web1");
        assert_eq!(snapshots, sample_snapshots());
        let (_, snapshots) = fetch(daemon.channel.clone(), "quiet".into()).await.unwrap();
        assert!(snapshots.is_empty());
        let err = fetch(daemon.channel.clone(), "nope".into()).await.unwrap_err();
        assert_eq!(err.to_string(), "container nope not found");
    }

    #[test]
    fn paused_container_shows_its_resources_and_stopped_one_does_not() {
        let mut container = sample_container();
        container.state = ContainerState::Paused as i32;
        let text = render(&container, &[], now());
        assert!(text.contains("State:       PAUSED\n"), "{text}");
        assert!(text.contains("  Processes:        7\n"), "{text}");

        // A daemon that does not report usage yet.
        container.usage = None;
        let text = render(&container, &[], now());
        assert!(
            text.contains("  Memory (current): -\n  Memory (peak):    -\n"),
            "{text}"
        );

        container.state = ContainerState::Stopped as i32;
        assert!(!render(&container, &[], now()).contains("Resources:"));
    }

    #[test]
    fn host_info_lists_the_daemon_and_its_host() {
        let info = ServerInfo {
            version: "0.1.0".into(),
            root_dir: "/var/lib/sysc".into(),
            run_dir: "/run/sysc".into(),
            cgroup_layout: "hybrid".into(),
            cgroup_parent: "sysc".into(),
            storage_driver: "btrfs".into(),
            storage_source: "/var/lib/sysc/storage".into(),
            kernel: "6.12.0-amd64".into(),
            idmap_base: 1_000_000,
            cpus: "0-3".into(),
            memory_bytes: 8 * 1024 * 1024 * 1024,
        };
        assert_eq!(
            render_host(&info),
            "Version:     0.1.0\n\
             Kernel:      6.12.0-amd64\n\
             Cgroups:     hybrid, parent sysc\n\
             Storage:     btrfs on /var/lib/sysc/storage\n\
             Root dir:    /var/lib/sysc\n\
             Run dir:     /run/sysc\n\
             CPUs:        0-3\n\
             Memory:      8.0 GiB\n\
             ID map base: 1000000\n"
        );

        // What a daemon that does not measure the host yet sends.
        let info = ServerInfo {
            cpus: String::new(),
            memory_bytes: 0,
            storage_source: String::new(),
            ..info
        };
        let text = render_host(&info);
        for expected in ["CPUs:        -\n", "Memory:      -\n", "Storage:     btrfs\n"] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn broken_container_explains_itself() {
        let mut container = sample_container();
        container.state = ContainerState::Error as i32;
        container.status_detail = "monitor process vanished".into();
        container.pid = 0;
        container.started_at = None;
        container.last_exit = None;
        container.privileged = true;
        container.idmap_base = 0;
        container.idmap_size = 0;
        let text = render(&container, &[], now());
        for expected in [
            "State:       ERROR\nDetail:      monitor process vanished\n",
            "PID:         -\n",
            "Uptime:      -\n",
            "Privileged:  yes (root in the container is root on the host)\n",
            "ID map:      none (privileged: container ids are host ids)\n",
            "Last exit:   none\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }
}
