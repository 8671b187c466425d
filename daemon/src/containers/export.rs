//! export: a container (and its snapshots) as one tarball streamed to the client. The
//! container's own files are archived from a snapshot volume taken for the purpose, so
//! a running container is frozen only for the instant that takes, and the container's
//! lock is not held while the archive streams.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::Manager;
use super::backup_file::{self, BackupFile};
use crate::archive::{self, Compression, Writer};
use crate::error::{Error, Result};
use crate::events::OperationHandle;
use crate::images::blocking;
use crate::storage::{SharedDriver, VolumeKind, snapshot_volume, temporary_name, volume_rootfs};

/// Chunks handed to the gRPC stream.
const CHUNK: usize = 1 << 20;
/// Chunks in flight: the archive waits for a slow client instead of filling memory.
const IN_FLIGHT: usize = 4;

pub enum ExportEvent {
    Data(Vec<u8>),
    Progress(u64),
}

pub struct Export {
    pub total_bytes: u64,
    pub snapshots: u32,
    /// Ends after the last chunk, or with an error.
    pub events: mpsc::Receiver<Result<ExportEvent>>,
}

impl Manager {
    /// Exports a container as an operation every client sees; it ends when the whole
    /// archive is written (or the client went away).
    pub async fn export(self: &Arc<Self>, name: &str, instance_only: bool, compression: Compression) -> Result<Export> {
        let mut operation = Some(self.operation("export", format!("Exporting container {name}"), name));
        let export = self
            .export_container(name, instance_only, compression, &mut operation)
            .await;
        if let Some(operation) = operation {
            operation.finish(&export.as_ref().map(drop));
        }
        export
    }

    /// Takes `operation` once the archive is being written, to finish it at the end.
    async fn export_container(
        self: &Arc<Self>,
        name: &str,
        instance_only: bool,
        compression: Compression,
        operation: &mut Option<OperationHandle>,
    ) -> Result<Export> {
        let guard = self.locks.lock(name).await;
        let record = self.record(name)?;
        let storage = self.pool_of(&record)?;
        let snapshots: Vec<_> = self.ready_snapshots(name, instance_only)?;
        // A stopped container on a dir pool is archived in place, its lock held until
        // the archive is written: a staging copy there would cost a full copy of the
        // files (and fail on a pool less than half free). Otherwise a snapshot volume
        // is staged: instant on btrfs, and one consistent instant of a running
        // container on dir.
        let in_place = storage.name() == "dir" && self.probe(name).await == super::Live::Stopped;
        let (source, staging, held) = if in_place {
            (storage.path(VolumeKind::Container, name), None, Some(guard))
        } else {
            let staging = temporary_name(&snapshot_volume(
                name,
                &format!("export-{}", hex::encode(rand::random::<[u8; 6]>())),
            ));
            self.clone_frozen(&record, (VolumeKind::Container, name), &staging, &storage)
                .await
                .map_err(|e| Error::Internal(format!("export {name}: {e}")))?;
            drop(guard);
            (storage.path(VolumeKind::Snapshot, &staging), Some(staging), None)
        };

        let mut trees = Vec::new();
        for snapshot in &snapshots {
            let volume = storage.path(VolumeKind::Snapshot, &snapshot_volume(name, &snapshot.name));
            trees.push((backup_file::snapshot_prefix(&snapshot.name), volume_rootfs(&volume)));
        }
        trees.push((backup_file::ROOTFS_PREFIX.to_string(), volume_rootfs(&source)));
        let sizes = trees.clone();
        let total_bytes: u64 = blocking(move || Ok(sizes.iter().map(|(_, dir)| archive::tree_size(dir)).sum())).await?;

        let mut container = record.clone();
        container.last_exit = None;
        let backup = BackupFile {
            format: backup_file::FORMAT,
            container,
            snapshots: snapshots.clone(),
        };
        let yaml = serde_yaml::to_string(&backup).map_err(|e| Error::internal("encode backup.yaml", e))?;
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let container = name.to_string();
        let (manager, operation) = (self.clone(), operation.take());
        tokio::task::spawn_blocking(move || {
            let reporter = operation.as_ref().map(OperationHandle::reporter);
            let report = |done: u64| {
                if let Some(reporter) = &reporter {
                    reporter.report(format!("{}%", (done.saturating_mul(100) / total_bytes.max(1)).min(100)));
                }
            };
            let written = write_archive(&tx, compression, yaml.as_bytes(), &trees, &report);
            drop(held);
            if let Some(staging) = staging {
                remove_staging(&storage, &staging);
            }
            if written.is_ok() {
                manager.lifecycle("container-exported", &container, &[]);
            }
            if let Some(operation) = operation {
                operation.finish(&written);
            }
            if let Err(e) = written {
                let _ = tx.blocking_send(Err(Error::Internal(format!("export {container}: {e}"))));
            }
        });
        Ok(Export {
            total_bytes,
            snapshots: snapshots.len() as u32,
            events: rx,
        })
    }
}

fn write_archive(
    tx: &mpsc::Sender<Result<ExportEvent>>,
    compression: Compression,
    backup_yaml: &[u8],
    trees: &[(String, std::path::PathBuf)],
    report: &dyn Fn(u64),
) -> std::result::Result<(), String> {
    let out = ChannelWriter {
        tx: tx.clone(),
        buffer: Vec::with_capacity(CHUNK),
    };
    let mut writer = Writer::new(out, compression).map_err(|e| e.to_string())?;
    writer
        .add_bytes(backup_file::NAME, backup_yaml)
        .map_err(|e| e.to_string())?;
    let mut progress = |done: u64| {
        report(done);
        let _ = tx.blocking_send(Ok(ExportEvent::Progress(done)));
    };
    for (prefix, dir) in trees {
        writer.add_tree(prefix, dir, &mut progress).map_err(|e| e.to_string())?;
    }
    let mut out = writer.finish().map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}

fn remove_staging(storage: &SharedDriver, staging: &str) {
    if let Err(e) = storage.delete(VolumeKind::Snapshot, staging) {
        tracing::warn!(volume = %staging, "removing an export's snapshot volume: {e}");
    }
}

/// Collects the archive into chunks for the gRPC stream; fails once the client is gone,
/// which ends the export.
struct ChannelWriter {
    tx: mpsc::Sender<Result<ExportEvent>>,
    buffer: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(ExportEvent::Data(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = CHUNK - self.buffer.len();
        let taken = room.min(data.len());
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == CHUNK {
            self.send()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
