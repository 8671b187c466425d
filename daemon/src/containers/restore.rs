//! snapshot restore: the container's volume is replaced by a clone of the snapshot in
//! one atomic exchange, and its config goes back to the snapshot's (its id range stays).

use std::sync::Arc;

use super::{ContainerView, Live, Manager};
use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::keys;
use crate::rootfs_files;
use crate::storage::{VolumeKind, snapshot_volume, temporary_name, volume_rootfs};

impl Manager {
    pub async fn snapshot_restore(self: &Arc<Self>, container: &str, name: &str) -> Result<ContainerView> {
        let _guard = self.locks.lock(container).await;
        let mut record = self.record(container)?;
        let snapshot = self.snapshot_record(container, name)?;
        let was_running = match self.probe(container).await {
            Live::Stopped => false,
            // Restarted after the restore, it would come back running: not what was asked.
            Live::Running { frozen: true, .. } => {
                return Err(Error::FailedPrecondition(format!(
                    "container {container} is paused; resume it (or stop it) before restoring a snapshot"
                )));
            }
            _ => {
                self.stop_locked(&record, false, super::lifecycle::DEFAULT_STOP_TIMEOUT)
                    .await?;
                true
            }
        };
        self.swap_in_snapshot(&record, name)
            .await
            .map_err(|e| Error::Internal(format!("restore {container}/{name}: {e}")))?;
        let mut config = snapshot.config.clone();
        // The id range stays, and so do the nics' MACs: devices are not part of a snapshot.
        let hwaddr_keys = record
            .config
            .keys()
            .chain(snapshot.config.keys())
            .filter(|key| key.starts_with(keys::VOLATILE_PREFIX) && key.ends_with(".hwaddr"))
            .cloned()
            .collect::<Vec<_>>();
        let kept = [keys::IDMAP_BASE.to_string(), keys::IDMAP_SIZE.to_string()];
        for key in kept.iter().chain(&hwaddr_keys) {
            match record.config.get(key) {
                Some(value) => config.insert(key.clone(), value.clone()),
                None => config.remove(key),
            };
        }
        record.config = config;
        self.save(&record).await?;
        tracing::info!(container = %container, snapshot = %name, "restored");
        self.snapshot_lifecycle("snapshot-restored", container, name, &[]);
        if was_running {
            self.start_locked(&record).await?;
        }
        Ok(self.view_of(record).await)
    }

    async fn swap_in_snapshot(&self, record: &ContainerRecord, name: &str) -> Result<()> {
        let storage = self.pool_of(record)?;
        let container = record.name.clone();
        let snapshot = snapshot_volume(&container, name);
        blocking(move || {
            let tmp = temporary_name(&container);
            storage.delete(VolumeKind::Container, &tmp)?;
            storage.clone_volume((VolumeKind::Snapshot, &snapshot), (VolumeKind::Container, &tmp))?;
            // The console log belongs to the container's runs, not to its files.
            let (current, restored) = (
                storage.path(VolumeKind::Container, &container),
                storage.path(VolumeKind::Container, &tmp),
            );
            for log in ["console.log", "console.log.1"] {
                let _ = std::fs::copy(current.join(log), restored.join(log));
            }
            storage.exchange(VolumeKind::Container, &tmp, &container)?;
            storage.delete(VolumeKind::Container, &tmp)
        })
        .await?;
        // A snapshot taken before a rename holds the old hostname.
        let rootfs = volume_rootfs(&self.volume_of(record)?);
        let hostname = rootfs_files::read(&rootfs, "/etc/hostname", 4096)
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        if !hostname.is_empty() && hostname != record.name {
            super::setup::rename(&rootfs, &hostname, &record.name)?;
        }
        Ok(())
    }
}
