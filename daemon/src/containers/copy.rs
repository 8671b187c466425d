//! copy: a new container from an existing one (or one of its snapshots). Like create,
//! the new record says Creating until everything is in place, so recovery removes a
//! copy a crash interrupted; the source is only read.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ContainerView, Manager};
use crate::db::{ContainerRecord, RecordStatus, SnapshotRecord};
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::keys;
use crate::names;
use crate::storage::{SharedDriver, VolumeKind, snapshot_volume, temporary_name, volume_rootfs};

#[derive(Debug, Clone, Default)]
pub struct CopyParams {
    pub source: String,
    /// Copy this snapshot of the source instead.
    pub snapshot: String,
    pub name: String,
    pub instance_only: bool,
    /// Empty: the source's pool.
    pub pool: String,
    pub config: BTreeMap<String, String>,
}

impl Manager {
    /// Copies a container as an operation every client sees.
    pub async fn copy(self: &Arc<Self>, params: CopyParams) -> Result<ContainerView> {
        let source = match params.snapshot.as_str() {
            "" => params.source.clone(),
            snapshot => format!("{}/{snapshot}", params.source),
        };
        let operation = self.operation("copy", format!("Copying {source} to {}", params.name), &params.name);
        let copied = self.copy_container(params).await;
        operation.finish(&copied);
        copied
    }

    async fn copy_container(self: &Arc<Self>, params: CopyParams) -> Result<ContainerView> {
        names::validate(&params.name)?;
        let mut overrides = BTreeMap::new();
        for (key, value) in &params.config {
            overrides.insert(key.clone(), keys::validate(key, value)?);
        }
        let (source, name) = (params.source.as_str(), params.name.as_str());
        let _guards = self.locks.lock_all(&[source, name]).await;
        let source_record = self.record(source)?;
        if source == name {
            return Err(Error::AlreadyExists(format!("container {name} already exists")));
        }
        self.check_name_free(name, None)?;
        let from_snapshot = if params.snapshot.is_empty() {
            None
        } else {
            Some(self.snapshot_record(source, &params.snapshot)?)
        };
        let mut config: BTreeMap<String, String> = from_snapshot
            .as_ref()
            .map(|s| s.config.clone())
            .unwrap_or_else(|| source_record.config.clone())
            .into_iter()
            .filter(|(k, _)| !k.starts_with(keys::VOLATILE_PREFIX))
            .collect();
        // The source's pinned range is the source's: the copy gets a free one unless
        // given a pin of its own. The size stays, as the copied files may use every id.
        config.remove(super::idmap::BASE_KEY);
        config.extend(overrides);
        if keys::get_bool(&source_record.config, "security.privileged")
            != keys::get_bool(&config, "security.privileged")
        {
            return Err(Error::InvalidArgument(
                "config key security.privileged: a copy keeps the source's setting".into(),
            ));
        }
        super::limits::resolve(name, &config, &self.host()?)?;
        let pool = if params.pool.is_empty() {
            source_record.pool.clone()
        } else {
            params.pool.clone()
        };
        let target = self.pools.get(&pool)?;
        let devices = source_record.devices.clone();
        let record = self
            .claim(name, source_record.image.clone(), config, devices, &pool)
            .await?;
        let snapshots = self.ready_snapshots(source, params.instance_only || from_snapshot.is_some())?;
        let copied = self
            .copy_volumes(&source_record, from_snapshot.as_ref(), &snapshots, &record, &target)
            .await;
        if let Err(e) = copied {
            self.undo_create(name).await;
            return Err(Error::Internal(format!("copy {source} to {name}: {e}")));
        }
        let record = self.record(name)?;
        tracing::info!(container = %source, copy = %name, "copied");
        self.lifecycle("container-copied", name, &[("source", source)]);
        Ok(self.view_of(record).await)
    }

    async fn copy_volumes(
        &self,
        source: &ContainerRecord,
        from_snapshot: Option<&SnapshotRecord>,
        snapshots: &[SnapshotRecord],
        record: &ContainerRecord,
        target: &SharedDriver,
    ) -> Result<()> {
        let origin = self.pool_of(source)?;
        let same_pool = source.pool == record.pool;
        let name = record.name.clone();
        for snapshot in snapshots {
            let (from, to) = (
                snapshot_volume(&source.name, &snapshot.name),
                snapshot_volume(&name, &snapshot.name),
            );
            let (origin, target) = (origin.clone(), target.clone());
            blocking(move || {
                if same_pool {
                    origin.clone_volume((VolumeKind::Snapshot, &from), (VolumeKind::Snapshot, &to))?;
                } else {
                    target.copy_in(&origin.path(VolumeKind::Snapshot, &from), VolumeKind::Snapshot, &to)?;
                    target.seal(VolumeKind::Snapshot, &to)?;
                }
                Ok(())
            })
            .await?;
            let mut copied = snapshot.clone();
            copied.container = name.clone();
            super::idmap::copy_keys(&record.config, &mut copied.config);
            self.db.put_snapshot(&copied)?;
        }
        match from_snapshot {
            Some(snapshot) => {
                let from = snapshot_volume(&source.name, &snapshot.name);
                let (origin, target, to) = (origin.clone(), target.clone(), name.clone());
                blocking(move || {
                    if same_pool {
                        origin.clone_volume((VolumeKind::Snapshot, &from), (VolumeKind::Container, &to))
                    } else {
                        target.copy_in(&origin.path(VolumeKind::Snapshot, &from), VolumeKind::Container, &to)
                    }
                })
                .await?;
            }
            None if same_pool && self.probe(&source.name).await == super::Live::Stopped => {
                let (storage, from, to) = (origin.clone(), source.name.clone(), name.clone());
                blocking(move || storage.clone_volume((VolumeKind::Container, &from), (VolumeKind::Container, &to)))
                    .await?;
            }
            None => {
                // Through a snapshot volume: the one clone a pool can take of a running
                // container while it is frozen.
                let staging = temporary_name(&snapshot_volume(&source.name, &format!("copy-{name}")));
                self.clone_frozen(source, (VolumeKind::Container, &source.name), &staging, &origin)
                    .await?;
                let (storage, target, to, staged) = (origin.clone(), target.clone(), name.clone(), staging.clone());
                let copied = blocking(move || {
                    if same_pool {
                        storage.clone_volume((VolumeKind::Snapshot, &staged), (VolumeKind::Container, &to))
                    } else {
                        target.copy_in(&storage.path(VolumeKind::Snapshot, &staged), VolumeKind::Container, &to)
                    }
                })
                .await;
                blocking(move || origin.delete(VolumeKind::Snapshot, &staging)).await?;
                copied?;
            }
        }
        self.link(&name)?;
        let volume = self.volume_of(record)?;
        for log in ["console.log", "console.log.1", "monitor.log"] {
            let _ = std::fs::remove_file(volume.join(log));
        }
        super::setup::reidentify(&volume_rootfs(&volume), &source.name, &name)?;
        let mut record = record.clone();
        record.status = RecordStatus::Ready;
        self.save(&record).await
    }
}
