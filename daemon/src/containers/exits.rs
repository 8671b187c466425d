//! Learning how a container's run ended: from the monitor's exit record, whether the
//! daemon was up at the time (a watcher per running container) or not (start-up).

use std::sync::Arc;

use super::Manager;
use super::monitor_client::MonitorClient;
use crate::error::Result;
use crate::monitor::protocol::ExitRecord;

impl Manager {
    /// Moves a pending exit record into the database. Idempotent; the caller holds
    /// the container's lock.
    pub(super) async fn collect_exit(&self, name: &str) -> Result<Option<ExitRecord>> {
        let path = self.settings.exit_record(name);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let exit: Option<ExitRecord> = serde_json::from_slice(&bytes).ok();
        if let (Some(exit), Some(mut record)) = (&exit, self.db.container(name)?) {
            self.release_leases(&record).await;
            record.last_exit = Some(exit.clone());
            self.save(&record).await?;
        }
        let _ = std::fs::remove_file(&path);
        Ok(exit)
    }

    /// Waits in the background for the container's init to end, then records how.
    /// A reboot from inside (`reboot`: the kernel ends the init with SIGHUP) starts the
    /// container again, as on a real machine.
    pub(super) fn watch(self: &Arc<Self>, name: &str) {
        let manager = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            let socket = manager.settings.monitor_socket(&name);
            if let Ok(mut waiter) = MonitorClient::new(socket).waiter().await {
                let _ = waiter.exited().await;
            }
            let _guard = manager.locks.lock(&name).await;
            match manager.collect_exit(&name).await {
                Ok(Some(exit)) => {
                    tracing::info!(container = %name, "{}", exit.describe());
                    let reason = if exit.is_reboot() { "reboot" } else { "exited" };
                    manager.lifecycle(
                        "container-stopped",
                        &name,
                        &[("reason", reason), ("exit", &exit.describe())],
                    );
                    if exit.is_reboot() {
                        manager.restart_after_reboot(&name).await;
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(container = %name, "recording the exit: {e}"),
            }
        });
    }

    /// Starts a container whose init asked for a reboot; the caller holds its lock.
    pub(super) async fn restart_after_reboot(self: &Arc<Self>, name: &str) {
        let Ok(record) = self.record(name) else { return };
        tracing::info!(container = %name, "rebooting");
        if let Err(e) = self.start_locked(&record).await {
            tracing::warn!(container = %name, "starting again after reboot: {e}");
        }
    }
}
