//! Snapshots: take (frozen for the instant it takes when running), list, delete,
//! rename. Each change marks the snapshot's record first (flushed), so start-up
//! recovery finishes or undoes a change a crash interrupted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{Live, Manager};
use crate::db::{ContainerRecord, SnapshotRecord, SnapshotStatus};
use crate::error::{Error, Result};
use crate::images::blocking;
use crate::keys;
use crate::schedule::{self, Expiry};
use crate::storage::{VolumeKind, snapshot_volume};

/// How a manual snapshot's expiry was asked for.
#[derive(Debug, Clone, Default)]
pub enum ExpiryRequest {
    /// snapshots.expiry.manual, else snapshots.expiry, else kept.
    #[default]
    FromConfig,
    Never,
    After(String),
}

#[derive(Debug, Clone)]
pub struct SnapshotView {
    pub record: SnapshotRecord,
    pub size_bytes: u64,
    pub path: PathBuf,
}

/// What the schedule that takes a snapshot says about it.
pub(super) struct Origin {
    /// "" manual, "default", or a named schedule.
    pub schedule: String,
    pub pattern: String,
    pub expiry: Option<Expiry>,
}

pub(super) fn config_expiry(config: &BTreeMap<String, String>, key: &str) -> Result<Option<Expiry>> {
    match config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        Some(text) => Expiry::parse(text)
            .map(Some)
            .map_err(|e| Error::InvalidArgument(format!("config key {key}: {e}"))),
        None => Ok(None),
    }
}

pub(super) fn pattern(config: &BTreeMap<String, String>, key: &str, default: &str) -> String {
    config
        .get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

impl Manager {
    pub async fn snapshot_create(
        self: &Arc<Self>,
        container: &str,
        name: &str,
        expiry: ExpiryRequest,
    ) -> Result<SnapshotView> {
        if !name.is_empty() {
            check_name(name)?;
        }
        let _guard = self.locks.lock(container).await;
        let record = self.record(container)?;
        let expiry = match expiry {
            ExpiryRequest::Never => None,
            ExpiryRequest::After(text) => {
                Some(Expiry::parse(text.trim()).map_err(|e| Error::InvalidArgument(format!("snapshot expiry: {e}")))?)
            }
            ExpiryRequest::FromConfig => match config_expiry(&record.config, "snapshots.expiry.manual")? {
                Some(expiry) => Some(expiry),
                None => config_expiry(&record.config, "snapshots.expiry")?,
            },
        };
        let origin = Origin {
            schedule: String::new(),
            pattern: pattern(&record.config, "snapshots.pattern", "snap%d"),
            expiry,
        };
        let snapshot = self.take_snapshot_locked(&record, name, origin).await?;
        self.snapshot_view(&record, snapshot, false)
    }

    /// Takes a snapshot; the caller holds the container's lock. An empty name takes
    /// the next one from the origin's pattern.
    pub(super) async fn take_snapshot_locked(
        &self,
        record: &ContainerRecord,
        name: &str,
        origin: Origin,
    ) -> Result<SnapshotRecord> {
        let container = &record.name;
        let name = if name.is_empty() {
            let existing = self.db.snapshots_of(container)?;
            let names: Vec<&str> = existing.iter().map(|s| s.name.as_str()).collect();
            schedule::next_name(&origin.pattern, &names)
                .map_err(|e| Error::InvalidArgument(format!("snapshot of {container}: {e}")))?
        } else {
            name.to_string()
        };
        let storage = self.pool_of(record)?;
        let running = matches!(self.probe(container).await, Live::Running { .. });
        let created_at_ms = crate::time::now_ms();
        let mut snapshot = SnapshotRecord {
            container: container.clone(),
            name: name.clone(),
            status: SnapshotStatus::Creating,
            created_at_ms,
            expires_at_ms: origin.expiry.map(|e| e.expires_at(created_at_ms)),
            schedule: origin.schedule,
            config: record.config.clone(),
            taken_running: running,
        };
        // Not flushed yet: after a crash, recovery removes a snapshot volume whose record
        // did not reach the disk, so the one flush below (of the Ready record) suffices.
        self.db.insert_snapshot(&snapshot)?;
        let taken = self
            .clone_frozen(
                record,
                (VolumeKind::Container, container),
                &snapshot_volume(container, &name),
                &storage,
            )
            .await;
        if let Err(e) = taken {
            let volume = snapshot_volume(container, &name);
            let _ = blocking(move || storage.delete(VolumeKind::Snapshot, &volume)).await;
            self.db.remove_snapshot(container, &name)?;
            self.db.flush().await?;
            return Err(Error::Internal(format!("snapshot {container}/{name}: {e}")));
        }
        snapshot.status = SnapshotStatus::Ready;
        self.db.put_snapshot(&snapshot)?;
        self.db.flush().await?;
        tracing::info!(container = %container, snapshot = %name, "snapshot taken");
        self.snapshot_lifecycle("snapshot-created", container, &name, &[]);
        Ok(snapshot)
    }

    /// Clones a volume of a container into a snapshot volume of the same pool with the
    /// container frozen meanwhile if it runs (and is not paused already), so what is
    /// cloned is one instant of it.
    pub(super) async fn clone_frozen(
        &self,
        record: &ContainerRecord,
        from: (VolumeKind, &str),
        to_snapshot: &str,
        storage: &crate::storage::SharedDriver,
    ) -> Result<()> {
        let freeze = matches!(self.probe(&record.name).await, Live::Running { frozen: false, .. });
        let marker = self.settings.freeze_marker(&record.name);
        if freeze {
            std::fs::write(&marker, b"").map_err(|e| Error::internal(format!("write {}", marker.display()), e))?;
            if let Err(e) = self.freezer(&record.name, true).await {
                // The driver left it running as it was; no thaw is owed.
                let _ = std::fs::remove_file(&marker);
                return Err(e);
            }
        }
        let (storage, from_name, to) = (storage.clone(), from.1.to_string(), to_snapshot.to_string());
        let kind = from.0;
        let cloned = blocking(move || {
            storage
                .clone_volume((kind, &from_name), (VolumeKind::Snapshot, &to))
                .map(drop)
        })
        .await;
        if freeze {
            match self.freezer(&record.name, false).await {
                Ok(()) => {
                    let _ = std::fs::remove_file(&marker);
                }
                Err(e) => tracing::error!(container = %record.name, "thawing after a snapshot: {e}"),
            }
        }
        cloned
    }

    /// A container's complete snapshots, oldest first; none when `skip`.
    pub(super) fn ready_snapshots(&self, container: &str, skip: bool) -> Result<Vec<SnapshotRecord>> {
        if skip {
            return Ok(Vec::new());
        }
        Ok(self
            .db
            .snapshots_of(container)?
            .into_iter()
            .filter(|s| s.status == SnapshotStatus::Ready)
            .collect())
    }

    pub async fn snapshots(&self, container: &str) -> Result<Vec<SnapshotView>> {
        let record = self.record(container)?;
        self.db
            .snapshots_of(container)?
            .into_iter()
            .filter(|s| s.status == SnapshotStatus::Ready)
            .map(|s| self.snapshot_view(&record, s, true))
            .collect()
    }

    pub async fn snapshot_get(&self, container: &str, name: &str) -> Result<SnapshotView> {
        let record = self.record(container)?;
        let snapshot = self.snapshot_record(container, name)?;
        self.snapshot_view(&record, snapshot, true)
    }

    /// Measuring a snapshot walks all of its files, so only listings do it (`measure`);
    /// taking or renaming one stays as quick as the pool can be.
    fn snapshot_view(&self, record: &ContainerRecord, snapshot: SnapshotRecord, measure: bool) -> Result<SnapshotView> {
        let storage = self.pool_of(record)?;
        let volume = snapshot_volume(&snapshot.container, &snapshot.name);
        Ok(SnapshotView {
            size_bytes: if measure {
                storage.exclusive_size(VolumeKind::Snapshot, &volume)
            } else {
                0
            },
            path: storage.path(VolumeKind::Snapshot, &volume),
            record: snapshot,
        })
    }

    /// A complete snapshot's record.
    pub(super) fn snapshot_record(&self, container: &str, name: &str) -> Result<SnapshotRecord> {
        match self.db.snapshot(container, name)? {
            Some(s) if s.status == SnapshotStatus::Ready => Ok(s),
            Some(_) => Err(Error::FailedPrecondition(format!(
                "snapshot {container}/{name} is being created, renamed or deleted"
            ))),
            None => Err(Error::NotFound(format!("snapshot {container}/{name} not found"))),
        }
    }

    pub async fn snapshot_delete(self: &Arc<Self>, container: &str, name: &str) -> Result<()> {
        let _guard = self.locks.lock(container).await;
        let record = self.record(container)?;
        let mut snapshot = self.snapshot_record(container, name)?;
        snapshot.status = SnapshotStatus::Deleting;
        self.db.put_snapshot(&snapshot)?;
        self.db.flush().await?;
        self.finish_snapshot_delete(&record, name).await?;
        tracing::info!(container = %container, snapshot = %name, "snapshot deleted");
        self.snapshot_lifecycle("snapshot-deleted", container, name, &[]);
        Ok(())
    }

    pub(super) async fn finish_snapshot_delete(&self, record: &ContainerRecord, name: &str) -> Result<()> {
        let storage = self.pool_of(record)?;
        let volume = snapshot_volume(&record.name, name);
        blocking(move || storage.delete(VolumeKind::Snapshot, &volume)).await?;
        self.db.remove_snapshot(&record.name, name)?;
        self.db.flush().await
    }

    pub async fn snapshot_rename(self: &Arc<Self>, container: &str, name: &str, new: &str) -> Result<SnapshotView> {
        check_name(new)?;
        let _guard = self.locks.lock(container).await;
        let record = self.record(container)?;
        let mut snapshot = self.snapshot_record(container, name)?;
        if name == new || self.db.snapshot(container, new)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "snapshot {container}/{new} already exists"
            )));
        }
        snapshot.status = SnapshotStatus::Renaming { to: new.to_string() };
        self.db.put_snapshot(&snapshot)?;
        self.db.flush().await?;
        let renamed = self.finish_snapshot_rename(&record, &snapshot, new).await?;
        tracing::info!(container = %container, snapshot = %name, new_name = %new, "snapshot renamed");
        self.snapshot_lifecycle("snapshot-renamed", container, new, &[("old_name", name)]);
        self.snapshot_view(&record, renamed, false)
    }

    pub(super) async fn finish_snapshot_rename(
        &self,
        record: &ContainerRecord,
        snapshot: &SnapshotRecord,
        new: &str,
    ) -> Result<SnapshotRecord> {
        let storage = self.pool_of(record)?;
        let (from, to) = (
            snapshot_volume(&record.name, &snapshot.name),
            snapshot_volume(&record.name, new),
        );
        blocking(move || {
            if storage.exists(VolumeKind::Snapshot, &from) && !storage.exists(VolumeKind::Snapshot, &to) {
                storage.rename(VolumeKind::Snapshot, &from, &to)?;
            }
            Ok(())
        })
        .await?;
        let mut renamed = snapshot.clone();
        renamed.name = new.to_string();
        renamed.status = SnapshotStatus::Ready;
        self.db.move_snapshot(&snapshot.name, &renamed)?;
        self.db.flush().await?;
        Ok(renamed)
    }

    /// Start-up: finish or undo snapshot changes a crash interrupted, and drop the
    /// temporary volumes of interrupted snapshots, copies and exports.
    pub(super) async fn recover_snapshots(&self) -> Result<()> {
        for snapshot in self.db.all_snapshots()? {
            let Some(record) = self.db.container(&snapshot.container)? else {
                self.db.remove_snapshot(&snapshot.container, &snapshot.name)?;
                continue;
            };
            match &snapshot.status {
                SnapshotStatus::Ready => {}
                SnapshotStatus::Creating | SnapshotStatus::Deleting => {
                    tracing::info!(container = %record.name, snapshot = %snapshot.name, "removing a snapshot an interrupted change left");
                    self.finish_snapshot_delete(&record, &snapshot.name).await?;
                }
                SnapshotStatus::Renaming { to } => {
                    let to = to.clone();
                    self.finish_snapshot_rename(&record, &snapshot, &to).await?;
                }
            }
        }
        for (pool, storage) in self.pools.all() {
            for volume in storage.list(VolumeKind::Snapshot)? {
                let Some((container, snapshot)) = volume.split_once('/') else {
                    continue;
                };
                let recorded = self.db.snapshot(container, snapshot)?.is_some()
                    && self.db.container(container)?.is_some_and(|c| c.pool == pool);
                if crate::storage::is_temporary(&volume) || !recorded {
                    tracing::info!(pool = %pool, volume = %volume, "removing a snapshot volume an interrupted change left");
                    storage.delete(VolumeKind::Snapshot, &volume)?;
                }
            }
        }
        self.db.flush().await
    }
}

fn check_name(name: &str) -> Result<()> {
    schedule::validate_snapshot_name(name).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// The schedules a container's config sets: (name, spec, runs when stopped, pattern,
/// expiry key).
pub(super) fn schedules(config: &BTreeMap<String, String>) -> Vec<ScheduleConfig> {
    let mut found = Vec::new();
    if let Some(spec) = config.get("snapshots.schedule").filter(|s| !s.trim().is_empty()) {
        found.push(ScheduleConfig {
            name: "default".into(),
            spec: spec.clone(),
            when_stopped: keys::get_bool(config, "snapshots.schedule.stopped"),
            pattern: pattern(config, "snapshots.pattern", "snap%d"),
            expiry_key: "snapshots.expiry".into(),
        });
    }
    for (key, spec) in config {
        let Some(name) = key
            .strip_prefix("snapshots.")
            .and_then(|rest| rest.strip_suffix(".schedule"))
            .filter(|name| keys::is_schedule_name(name))
        else {
            continue;
        };
        if spec.trim().is_empty() {
            continue;
        }
        found.push(ScheduleConfig {
            name: name.to_string(),
            spec: spec.clone(),
            when_stopped: keys::get_bool(config, &format!("snapshots.{name}.stopped")),
            pattern: pattern(config, &format!("snapshots.{name}.pattern"), &format!("{name}-%d")),
            expiry_key: format!("snapshots.{name}.expiry"),
        });
    }
    found
}

pub(super) struct ScheduleConfig {
    pub name: String,
    pub spec: String,
    pub when_stopped: bool,
    pub pattern: String,
    pub expiry_key: String,
}
