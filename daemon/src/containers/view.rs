//! A container as clients see it: its record plus what its monitor says right now.

use std::path::PathBuf;

use super::Manager;
use super::monitor_client::MonitorClient;
use crate::cgroup::Usage;
use crate::db::ContainerRecord;
use crate::error::Result;
use crate::monitor::protocol::{ExitRecord, Request, Response};
use crate::network::addresses::InterfaceAddress;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Live {
    /// `frozen`: paused (every process stopped by the cgroup freezer).
    Running {
        pid: i32,
        monitor_pid: i32,
        started_at_ms: i64,
        frozen: bool,
    },
    Stopped,
    /// The monitor's socket is there but nobody answers: the monitor died.
    Lost,
}

#[derive(Debug, Clone)]
pub struct ContainerView {
    pub record: ContainerRecord,
    pub live: Live,
    /// The record's last exit, or a newer one the monitor left that the daemon has not
    /// collected yet.
    pub last_exit: Option<ExitRecord>,
    /// Resource use right now; None unless running.
    pub usage: Option<Usage>,
    pub directory: PathBuf,
    pub rootfs: PathBuf,
    pub backup_file: PathBuf,
    pub console_log: PathBuf,
    pub snapshot_count: usize,
    /// The addresses the running container has.
    pub ipv4: Vec<InterfaceAddress>,
}

impl Manager {
    pub(super) async fn probe(&self, name: &str) -> Live {
        let socket = self.settings.monitor_socket(name);
        match MonitorClient::new(socket.clone()).request(&Request::Status).await {
            Ok(Response::Running {
                pid,
                monitor_pid,
                started_at_ms,
            }) => Live::Running {
                pid,
                monitor_pid,
                started_at_ms,
                frozen: self.settings.cgroup.driver().is_frozen(name),
            },
            _ if socket.exists() && !self.settings.exit_record(name).exists() => {
                // The monitor may be between removing its socket and exiting.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if socket.exists() { Live::Lost } else { Live::Stopped }
            }
            _ => Live::Stopped,
        }
    }

    pub(super) async fn view_of(&self, record: ContainerRecord) -> ContainerView {
        let live = self.probe(&record.name).await;
        let (usage, ipv4) = match live {
            Live::Running { pid, .. } => {
                let usage = self.settings.cgroup.driver().usage(&record.name).ok();
                (usage, crate::network::addresses::of_container(pid).await)
            }
            _ => (None, Vec::new()),
        };
        self.view_from(record, live, usage, ipv4)
    }

    /// A container whose start just returned, as its monitor reported it: it has used
    /// next to nothing and has no address yet, so neither is looked up.
    pub(super) fn started_view(&self, record: ContainerRecord, live: Live) -> ContainerView {
        self.view_from(record, live, None, Vec::new())
    }

    fn view_from(
        &self,
        record: ContainerRecord,
        live: Live,
        usage: Option<Usage>,
        ipv4: Vec<InterfaceAddress>,
    ) -> ContainerView {
        let pending = std::fs::read(self.settings.exit_record(&record.name))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let volume = self
            .volume_of(&record)
            .unwrap_or_else(|_| self.settings.container_link(&record.name));
        let snapshot_count = self.db.snapshots_of(&record.name).map(|s| s.len()).unwrap_or(0);
        ContainerView {
            usage,
            last_exit: pending.or_else(|| record.last_exit.clone()),
            directory: self.settings.container_link(&record.name),
            rootfs: crate::storage::volume_rootfs(&volume),
            backup_file: volume.join("backup.yaml"),
            console_log: volume.join("console.log"),
            snapshot_count,
            ipv4,
            record,
            live,
        }
    }

    pub async fn get(&self, name: &str) -> Result<ContainerView> {
        let record = self.record(name)?;
        Ok(self.view_of(record).await)
    }

    pub async fn list(&self) -> Result<Vec<ContainerView>> {
        let records = self.db.containers()?;
        // Probed all at once: listing many running containers costs one round trip.
        let views = records
            .into_iter()
            .filter(|r| r.status == crate::db::RecordStatus::Ready)
            .map(|r| self.view_of(r));
        let mut views = futures::future::join_all(views).await;
        views.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        Ok(views)
    }
}
