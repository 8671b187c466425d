//! rename (stopped containers only). The record says Renaming{to} (flushed) before
//! anything changes, so recovery can finish a rename a crash interrupted. The one step
//! that needs space on the pool, the new hostname in the rootfs, comes first: if it
//! fails (a full pool) the rename is undone while nothing has moved yet.

use std::sync::Arc;

use super::{Live, Manager};
use crate::db::{ContainerRecord, RecordStatus};
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::names;
use crate::storage::VolumeKind;

impl Manager {
    pub async fn rename(self: &Arc<Self>, old: &str, new: &str) -> Result<super::ContainerView> {
        names::validate(new)?;
        let _guards = self.locks.lock_all(&[old, new]).await;
        self.record(old)?;
        if old == new {
            return Err(Error::AlreadyExists(format!("container {new} already exists")));
        }
        self.check_name_free(new, Some(old))?;
        if self.probe(old).await != Live::Stopped {
            return Err(Error::FailedPrecondition(format!(
                "container {old} is running; stop it before renaming"
            )));
        }
        self.collect_exit(old).await?;
        let mut record = self.record(old)?;
        record.status = RecordStatus::Renaming { to: new.to_string() };
        self.db.put_container(&record)?;
        self.db.flush().await?;
        if let Err(e) = self.finish_rename(&record, new).await {
            self.undo_rename(&record, new).await;
            return Err(e);
        }
        tracing::info!(container = %old, new_name = %new, "renamed");
        self.lifecycle("container-renamed", new, &[("old_name", old)]);
        let record = self.record(new)?;
        Ok(self.view_of(record).await)
    }

    /// Renames the hostname inside (while the volume has not moved), then moves the
    /// volume, the snapshots, the link and the record.
    pub(super) async fn finish_rename(&self, record: &ContainerRecord, new: &str) -> Result<()> {
        let old = record.name.clone();
        let storage = self.pool_of(record)?;
        if storage.exists(VolumeKind::Container, &old) {
            // Again after a crash, which is harmless: a name already changed is not found.
            let rootfs = crate::storage::volume_rootfs(&self.volume_of(record)?);
            super::setup::rename(&rootfs, &old, new)?;
        }
        self.forget_nics(record).await;
        let (from, to) = (old.clone(), new.to_string());
        blocking(move || {
            if storage.exists(VolumeKind::Container, &from) && !storage.exists(VolumeKind::Container, &to) {
                storage.rename(VolumeKind::Container, &from, &to)?;
            }
            storage.rename_snapshots(&from, &to)
        })
        .await?;
        let _ = std::fs::remove_file(self.settings.container_link(&old));
        let _ = std::fs::remove_dir_all(self.settings.monitor_dir(&old));
        let mut renamed = record.clone();
        renamed.name = new.to_string();
        renamed.status = RecordStatus::Ready;
        self.db.move_container(&old, &renamed)?;
        self.db.remove_schedule_runs(&old)?;
        self.db.flush().await?;
        self.link(new)?;
        self.write_backup(&renamed);
        Ok(())
    }

    /// Puts a rename that failed before its volume moved back as it was; after that (only
    /// renames within the pool and the database remain) it is left for recovery to finish.
    pub(super) async fn undo_rename(&self, record: &ContainerRecord, new: &str) {
        let old = &record.name;
        let moved = self
            .pool_of(record)
            .map(|storage| !storage.exists(VolumeKind::Container, old))
            .unwrap_or(true);
        if moved {
            tracing::error!(container = %old, new_name = %new, "rename failed after the volume moved; the next start of syscd finishes it");
            return;
        }
        if let Ok(volume) = self.volume_of(record) {
            // Best effort: the hostname write that failed may have been half done.
            let _ = super::setup::rename(&crate::storage::volume_rootfs(&volume), new, old);
        }
        let mut restored = record.clone();
        restored.status = RecordStatus::Ready;
        let result = match self.db.put_container(&restored) {
            Ok(()) => self.db.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::error!(container = %old, "undoing a failed rename: {e}");
        }
    }
}
