//! rename (stopped containers only). The record says Renaming{to} (flushed) before the
//! volume moves, so recovery can finish a rename a crash interrupted.

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
        if old == new || self.db.container(new)?.is_some() {
            return Err(Error::AlreadyExists(format!("container {new} already exists")));
        }
        if self.probe(old).await != Live::Stopped {
            return Err(Error::FailedPrecondition(format!(
                "container {old} is running; stop it before renaming"
            )));
        }
        self.collect_exit(old).await?;
        let mut record = self.record(old)?;
        // The next start registers the nics under the new name.
        self.forget_nics(&record).await;
        record.status = RecordStatus::Renaming { to: new.to_string() };
        self.db.put_container(&record)?;
        self.db.flush().await?;
        self.finish_rename(&record, new).await?;
        tracing::info!(container = %old, new_name = %new, "renamed");
        self.lifecycle("container-renamed", new, &[("old_name", old)]);
        let record = self.record(new)?;
        Ok(self.view_of(record).await)
    }

    /// Moves the volume (if it has not moved yet), the link and the record.
    pub(super) async fn finish_rename(&self, record: &ContainerRecord, new: &str) -> Result<()> {
        let old = record.name.clone();
        let storage = self.pool_of(record)?;
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
        let rootfs = crate::storage::volume_rootfs(&self.volume_of(&renamed)?);
        super::setup::rename(&rootfs, &old, new)?;
        self.db.move_container(&old, &renamed)?;
        self.db.remove_schedule_runs(&old)?;
        self.db.flush().await?;
        self.link(new)?;
        self.write_backup(&renamed);
        Ok(())
    }
}
