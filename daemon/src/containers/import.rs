//! import: a container from an exported tarball streamed by the client. The archive is
//! checked as it is read; the new record says Creating until every file is in place,
//! so a refused or interrupted import leaves nothing behind (recovery removes what a
//! crash left).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::backup_file::{self, BackupFile};
use super::{ContainerView, Manager};
use crate::archive::{ArchiveError, Reader};
use crate::db::{RecordStatus, SnapshotStatus};
use crate::error::{Error, Result};
use crate::events::OperationProgress;
use crate::events::operations::mebibytes;
use crate::images::blocking;
use crate::keys;
use crate::names;
use crate::storage::{VolumeKind, snapshot_volume, volume_rootfs};

/// Chunks of the archive as the client sends them; an Err is the client's stream failing.
pub type ImportData = mpsc::Receiver<std::result::Result<Vec<u8>, String>>;

impl Manager {
    /// Imports a container as an operation every client sees.
    pub async fn import(self: &Arc<Self>, name: &str, pool: &str, data: ImportData) -> Result<ContainerView> {
        let description = match name {
            "" => "Importing a container".to_string(),
            name => format!("Importing container {name}"),
        };
        let operation = self.operation("import", description, name);
        let imported = self.import_container(name, pool, data, operation.reporter()).await;
        operation.finish(&imported);
        imported
    }

    async fn import_container(
        self: &Arc<Self>,
        name: &str,
        pool: &str,
        data: ImportData,
        progress: OperationProgress,
    ) -> Result<ContainerView> {
        let pool = if pool.is_empty() {
            crate::storage::DEFAULT_POOL
        } else {
            pool
        };
        let storage = self.pools.get(pool)?;
        let (reader, backup) = tokio::task::spawn_blocking(move || {
            let mut reader = Reader::new(ChannelReader::new(data)).map_err(bad_archive)?;
            let yaml = reader
                .read_first(backup_file::NAME, backup_file::LIMIT)
                .map_err(bad_archive)?;
            let backup: BackupFile = serde_yaml::from_slice(&yaml)
                .map_err(|e| Error::InvalidArgument(format!("import: backup.yaml is not valid: {e}")))?;
            Ok::<_, Error>((reader, backup))
        })
        .await
        .map_err(|e| Error::internal("import task", e))??;
        if backup.format != backup_file::FORMAT {
            return Err(Error::InvalidArgument(format!(
                "import: backup format {} is not supported (this daemon reads format {})",
                backup.format,
                backup_file::FORMAT
            )));
        }
        let original = backup.container.name.clone();
        let name = if name.is_empty() {
            original.clone()
        } else {
            name.to_string()
        };
        names::validate(&name)?;
        for snapshot in &backup.snapshots {
            crate::schedule::validate_snapshot_name(&snapshot.name)
                .map_err(|e| Error::InvalidArgument(format!("import: {e}")))?;
        }
        let mut config = BTreeMap::new();
        for (key, value) in &backup.container.config {
            if !key.starts_with(keys::VOLATILE_PREFIX) {
                config.insert(key.clone(), keys::validate(key, value)?);
            }
        }

        let _guard = self.locks.lock(&name).await;
        self.check_name_free(&name, None)?;
        let mut image = backup.container.image.clone();
        image.pool = pool.to_string();
        let devices = self.devices_for_import(&backup.container.devices);
        let record = self.claim(&name, image, config, devices, pool).await?;
        let (volumes, container, snapshots) = (storage.clone(), name.clone(), backup.snapshots.clone());
        let made = blocking(move || {
            let mut targets = Vec::new();
            for snapshot in &snapshots {
                let volume =
                    volumes.create_empty(VolumeKind::Snapshot, &snapshot_volume(&container, &snapshot.name))?;
                targets.push((backup_file::snapshot_prefix(&snapshot.name), volume_rootfs(&volume)));
            }
            let volume = volumes.create_empty(VolumeKind::Container, &container)?;
            targets.push((backup_file::ROOTFS_PREFIX.to_string(), volume_rootfs(&volume)));
            Ok(targets)
        })
        .await;
        let targets = match made {
            Ok(targets) => targets,
            Err(e) => {
                self.undo_create(&name).await;
                return Err(e);
            }
        };
        let extracted =
            tokio::task::spawn_blocking(move || reader.extract(&targets, &mut |done| progress.report(mebibytes(done))))
                .await
                .map_err(|e| Error::internal("import task", e))
                .and_then(|r| r.map_err(|e| archive_error(&name, e)));
        let finished = match extracted {
            Ok(()) => self.finish_import(&record, &backup, &original).await,
            Err(e) => Err(e),
        };
        if let Err(e) = finished {
            self.undo_create(&name).await;
            return Err(e);
        }
        tracing::info!(container = %name, "imported");
        self.lifecycle("container-imported", &name, &[("original_name", &original)]);
        let record = self.record(&name)?;
        Ok(self.view_of(record).await)
    }

    async fn finish_import(
        &self,
        record: &crate::db::ContainerRecord,
        backup: &BackupFile,
        original: &str,
    ) -> Result<()> {
        let storage = self.pool_of(record)?;
        for snapshot in &backup.snapshots {
            let mut imported = snapshot.clone();
            imported.container = record.name.clone();
            imported.status = SnapshotStatus::Ready;
            let (storage, volume) = (storage.clone(), snapshot_volume(&record.name, &snapshot.name));
            blocking(move || storage.seal(VolumeKind::Snapshot, &volume)).await?;
            self.db.put_snapshot(&imported)?;
        }
        self.link(&record.name)?;
        if original != record.name {
            let rootfs = volume_rootfs(&self.volume_of(record)?);
            super::setup::rename(&rootfs, original, &record.name)?;
        }
        let mut record = record.clone();
        record.status = RecordStatus::Ready;
        self.save(&record).await
    }
}

fn bad_archive(e: ArchiveError) -> Error {
    if e.is_bad_input() {
        Error::InvalidArgument(format!("import: the archive is not a valid export: {e}"))
    } else {
        Error::Internal(format!("import: {e}"))
    }
}

fn archive_error(name: &str, e: ArchiveError) -> Error {
    if e.is_bad_input() {
        Error::InvalidArgument(format!("import {name}: the archive is not a valid export: {e}"))
    } else {
        Error::Internal(format!("import {name}: {e}"))
    }
}

/// The client's chunks as a byte stream for the archive reader.
struct ChannelReader {
    rx: ImportData,
    chunk: Vec<u8>,
    at: usize,
}

impl ChannelReader {
    fn new(rx: ImportData) -> Self {
        Self {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(format!("the client's stream failed: {e}"))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
