//! Start-up: finish or undo what a crash interrupted, re-attach to the monitors of
//! running containers, record how the others ended, and autostart.

use std::sync::Arc;

use super::{Live, Manager};
use crate::db::{ContainerRecord, RecordStatus};
use crate::error::Result;
use crate::keys;
use crate::storage::{VolumeKind, is_temporary};

impl Manager {
    pub async fn recover(self: &Arc<Self>) -> Result<()> {
        self.images.recover()?;
        let mut deletions = Vec::new();
        for record in self.db.containers()? {
            let name = record.name.clone();
            // One container that cannot be mended (say its pool is full) must not keep
            // the daemon from serving the others: it is retried at the next start.
            let mended = match &record.status {
                RecordStatus::Ready => Ok(()),
                RecordStatus::Creating => {
                    tracing::info!(container = %name, "undoing a create that was interrupted");
                    self.undo_create(&name).await;
                    Ok(())
                }
                RecordStatus::Deleting => {
                    deletions.push(name);
                    continue;
                }
                RecordStatus::Renaming { to } => {
                    tracing::info!(container = %name, new_name = %to, "finishing a rename that was interrupted");
                    let result = self.finish_rename(&record, to).await;
                    if result.is_err() {
                        self.undo_rename(&record, to).await;
                    }
                    result
                }
            };
            if let Err(e) = mended {
                tracing::error!(container = %name, "could not finish what a crash interrupted: {e}");
            }
        }
        self.recover_snapshots().await?;
        for (pool, storage) in self.pools.all() {
            for name in storage.list(VolumeKind::Container)? {
                if is_temporary(&name) {
                    storage.delete(VolumeKind::Container, &name)?;
                } else if self.db.container(&name)?.is_none_or(|r| r.pool != pool) {
                    tracing::warn!(pool = %pool, volume = %name, "container volume without a record; left alone");
                }
            }
        }
        for record in self.db.containers()? {
            if record.status != RecordStatus::Ready {
                continue;
            }
            if let Err(e) = self.reattach(&record).await {
                tracing::error!(container = %record.name, "{e}");
            }
        }
        self.finish_deletes(deletions);
        Ok(())
    }

    /// Deletes that a crash interrupted are finished in the background: removing a large
    /// volume takes a while, and the API is served meanwhile (their records say they
    /// are being deleted, so nothing else touches them).
    fn finish_deletes(self: &Arc<Self>, names: Vec<String>) {
        if names.is_empty() {
            return;
        }
        let manager = self.clone();
        tokio::spawn(async move {
            for name in names {
                tracing::info!(container = %name, "finishing a delete that was interrupted");
                let _guard = manager.locks.lock(&name).await;
                match manager.finish_delete(&name).await {
                    Ok(()) => tracing::info!(container = %name, "deleted"),
                    Err(e) => tracing::error!(container = %name, "could not finish an interrupted delete: {e}"),
                }
            }
        });
    }

    /// Watches a running container again, or records how a stopped one ended.
    async fn reattach(self: &Arc<Self>, record: &ContainerRecord) -> Result<()> {
        let name = record.name.clone();
        let _guard = self.locks.lock(&name).await;
        match self.probe(&name).await {
            Live::Running { pid, frozen, .. } => {
                let marker = self.settings.freeze_marker(&name);
                if frozen && marker.exists() {
                    tracing::info!(container = %name, "thawing: frozen for a snapshot the daemon did not finish");
                    self.freezer(&name, false).await?;
                }
                let _ = std::fs::remove_file(&marker);
                tracing::info!(container = %name, pid, "re-attached to running container");
                self.watch(&name);
            }
            Live::Lost => {
                self.clean_up_lost(record).await?;
            }
            Live::Stopped => {
                if let Some(exit) = self.collect_exit(&name).await? {
                    tracing::info!(container = %name, "ended while the daemon was down: {}", exit.describe());
                    if exit.is_reboot() {
                        self.restart_after_reboot(&name).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts every stopped container with boot.autostart=true, in the background so
    /// the API is served meanwhile.
    pub fn autostart(self: &Arc<Self>) {
        let manager = self.clone();
        tokio::spawn(async move {
            let Ok(records) = manager.db.containers() else { return };
            let starts = records
                .into_iter()
                .filter(|r| r.status == RecordStatus::Ready && keys::get_bool(&r.config, "boot.autostart"))
                .map(|r| {
                    let manager = manager.clone();
                    async move {
                        if manager.probe(&r.name).await == Live::Stopped {
                            match manager.start(&r.name).await {
                                Ok(_) => tracing::info!(container = %r.name, "autostarted"),
                                Err(e) => tracing::warn!(container = %r.name, "autostart failed: {e}"),
                            }
                        }
                    }
                });
            futures::future::join_all(starts).await;
        });
    }
}
