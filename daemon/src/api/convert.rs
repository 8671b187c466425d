//! Daemon types → API messages.

use sysc_proto::Timestamp;
use sysc_proto::v1 as pb;

use crate::containers::SnapshotView;
use crate::containers::{ContainerView, Live};
use crate::db::ImageRecord;
use crate::images::Template;
use crate::monitor::protocol::ExitRecord;
use crate::network::addresses::InterfaceAddress;
use crate::runtime::signals;

/// A client's window size; 0 or missing dimensions mean the classic 24×80.
pub fn window_size(size: Option<&pb::WindowSize>) -> crate::exec::WindowSize {
    let clamp = |v: u32, default: u16| {
        if v == 0 {
            default
        } else {
            v.min(u32::from(u16::MAX)) as u16
        }
    };
    crate::exec::WindowSize {
        rows: clamp(size.map(|s| s.rows).unwrap_or(0), 24),
        cols: clamp(size.map(|s| s.cols).unwrap_or(0), 80),
    }
}

pub fn timestamp(ms: i64) -> Option<Timestamp> {
    (ms > 0).then(|| Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

pub fn container(view: ContainerView) -> pb::Container {
    let record = view.record;
    let (state, pid, started_at) = match view.live {
        Live::Running {
            pid,
            started_at_ms,
            frozen,
            ..
        } => {
            let state = if frozen {
                pb::ContainerState::Paused
            } else {
                pb::ContainerState::Running
            };
            (state, pid, timestamp(started_at_ms))
        }
        Live::Stopped => (pb::ContainerState::Stopped, 0, None),
        Live::Lost => (pb::ContainerState::Error, 0, None),
    };
    let status_detail = match view.live {
        Live::Lost => "the container's monitor is gone; stop or start it to clean up".to_string(),
        _ => String::new(),
    };
    let idmap = record.idmap();
    pb::Container {
        name: record.name.clone(),
        state: state as i32,
        pid: i64::from(pid),
        ipv4: view.ipv4.iter().map(|a| a.address.to_string()).collect(),
        ipv4_addresses: view.ipv4.iter().map(interface_address).collect(),
        image: record.image.label(),
        image_fingerprint: record.image.fingerprint.clone(),
        created_at: timestamp(record.created_at_ms),
        started_at,
        privileged: record.privileged(),
        idmap_base: idmap.map(|m| m.host_base).unwrap_or(0),
        idmap_size: idmap.map(|m| m.size).unwrap_or(0),
        last_exit: view.last_exit.as_ref().map(exit_status),
        paths: Some(pb::Paths {
            directory: view.directory.display().to_string(),
            rootfs: view.rootfs.display().to_string(),
            backup_file: view.backup_file.display().to_string(),
            console_log: view.console_log.display().to_string(),
        }),
        halt_signal: record.image.halt_signal.clone(),
        status_detail,
        usage: view.usage.map(|u| pb::Usage {
            memory_bytes: u.memory_bytes,
            memory_peak_bytes: u.memory_peak_bytes,
            cpu_nanoseconds: u.cpu_nanoseconds,
            processes: u.processes,
        }),
        pool: record.pool.clone(),
        snapshot_count: view.snapshot_count as u32,
        config: record.config.into_iter().collect(),
        devices: record
            .devices
            .into_iter()
            .map(|(name, config)| {
                (
                    name,
                    pb::Device {
                        config: config.into_iter().collect(),
                    },
                )
            })
            .collect(),
    }
}

fn interface_address(address: &InterfaceAddress) -> pb::InterfaceAddress {
    pb::InterfaceAddress {
        interface: address.interface.clone(),
        address: address.address.to_string(),
        prefix_length: address.prefix_length,
    }
}

pub fn exit_status(exit: &ExitRecord) -> pb::ExitStatus {
    pb::ExitStatus {
        code: exit.code,
        signal: exit.signal,
        signal_name: exit.signal.map(signals::name).unwrap_or_default(),
        at: timestamp(exit.at_ms),
        description: exit.describe(),
    }
}

pub fn image(record: ImageRecord, used_by: Vec<String>) -> pb::Image {
    pb::Image {
        fingerprint: record.fingerprint,
        template: record.template,
        release: record.release,
        arch: record.arch,
        description: record.description,
        size_bytes: record.size_bytes,
        created_at: timestamp(record.created_at_ms),
        used_by,
        pool: record.pool,
    }
}

pub fn template(template: Template) -> pb::Template {
    pb::Template {
        name: template.name,
        description: template.description,
        path: template.path.display().to_string(),
        default_release: template.default_release,
        halt_signal: template.halt_signal,
    }
}

pub fn snapshot(view: SnapshotView) -> pb::Snapshot {
    let record = view.record;
    pb::Snapshot {
        container: record.container,
        name: record.name,
        created_at: timestamp(record.created_at_ms),
        expires_at: record.expires_at_ms.and_then(timestamp),
        size_bytes: view.size_bytes,
        schedule: record.schedule,
        config: record.config.into_iter().collect(),
        taken_running: record.taken_running,
        path: view.path.display().to_string(),
    }
}
