//! delete. Marked Deleting (flushed) before anything is removed, so a crash midway is
//! finished by start-up recovery instead of leaving a record without a rootfs.

use std::sync::Arc;

use super::{Live, Manager};
use crate::db::RecordStatus;
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::storage::VolumeKind;

impl Manager {
    pub async fn delete(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        let (_guard, killed) = self.lock_forcing(name, force).await?;
        let mut record = self.record(name)?;
        match self.probe(name).await {
            Live::Stopped => {}
            _ if !force => {
                return Err(Error::FailedPrecondition(format!(
                    "container {name} is running; stop it first or use --force"
                )));
            }
            _ => {
                self.stop_after_forcing(&record, killed, true, std::time::Duration::ZERO)
                    .await?;
            }
        }
        record.status = RecordStatus::Deleting;
        self.db.put_container(&record)?;
        self.db.flush().await?;
        self.finish_delete(name).await?;
        tracing::info!(container = %name, "deleted");
        self.lifecycle("container-deleted", name, &[]);
        Ok(())
    }

    pub(super) async fn finish_delete(&self, name: &str) -> Result<()> {
        if let Some(record) = self.db.container(name)? {
            self.forget_nics(&record).await;
        }
        self.remove_volumes(name).await?;
        let _ = std::fs::remove_file(self.settings.container_link(name));
        let _ = std::fs::remove_dir_all(self.settings.monitor_dir(name));
        self.db.remove_schedule_runs(name)?;
        self.db.remove_container(name)?;
        self.db.flush().await
    }

    /// Removes a container's volume and its snapshots (volumes, then records), for a
    /// container that has a record.
    pub(super) async fn remove_volumes(&self, name: &str) -> Result<()> {
        let Some(record) = self.db.container(name)? else {
            return Ok(());
        };
        let storage = self.pool_of(&record)?;
        let snapshots = self.db.snapshots_of(name)?;
        let container = name.to_string();
        let names: Vec<String> = snapshots.iter().map(|s| s.name.clone()).collect();
        blocking(move || {
            for snapshot in storage.snapshots_of(&container)? {
                storage.delete(VolumeKind::Snapshot, &snapshot)?;
            }
            storage.remove_snapshot_dir(&container)?;
            storage.delete(VolumeKind::Container, &container)
        })
        .await?;
        for snapshot in names {
            self.db.remove_snapshot(name, &snapshot)?;
        }
        Ok(())
    }
}
