//! `sysc info NAME`: one container in detail, for people (`list --format json` is for programs).

use chrono::{DateTime, Utc};
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::{Container, ContainerState, ExitStatus, GetRequest};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format;
use crate::list::state_name;

pub async fn show(channel: Channel, name: String) -> anyhow::Result<()> {
    let container = ContainersClient::new(channel)
        .get(GetRequest { name })
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&render(&container, Utc::now()))?;
    Ok(())
}

fn render(c: &Container, now: DateTime<Utc>) -> String {
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
        ("Image", c.image.clone()),
        ("Fingerprint", c.image_fingerprint.clone()),
        ("Created", format::local_time(c.created_at.as_ref()).unwrap_or_default()),
        ("Privileged", if c.privileged { "yes" } else { "no" }.to_string()),
        ("ID map", id_map(c)),
        ("Halt signal", c.halt_signal.clone()),
        ("Last exit", last_exit(c.last_exit.as_ref())),
    ]);
    let mut out: String = fields.iter().map(|(label, value)| field(label, value)).collect();

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

    out += "Config:\n";
    let mut config: Vec<_> = c.config.iter().collect();
    config.sort();
    if config.is_empty() {
        out += "  (none)\n";
    }
    for (key, value) in config {
        out += &format!("  {key}: {value}\n");
    }
    out
}

/// "Label:" padded so values line up; a dash stands in for a value the daemon left empty.
fn field(label: &str, value: &str) -> String {
    let value = if value.is_empty() { "-" } else { value };
    format!("{:<13}{value}\n", format!("{label}:"))
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

    fn now() -> DateTime<Utc> {
        // 133 seconds after the sample's start.
        DateTime::from_timestamp(1_714_568_533, 500_000_000).unwrap()
    }

    #[test]
    fn running_container_shows_uptime_and_id_range() {
        let text = render(&sample_container(), now());
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
        let text = render(&container, now());
        for expected in [
            "State:       ERROR\nDetail:      monitor process vanished\n",
            "PID:         -\n",
            "Uptime:      -\n",
            "Privileged:  yes\n",
            "ID map:      none (privileged: container ids are host ids)\n",
            "Last exit:   none\n",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }
}
