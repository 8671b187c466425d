//! backup.yaml inside an export: the container's record and its snapshots' records.

use serde::{Deserialize, Serialize};

use crate::db::{ContainerRecord, SnapshotRecord};

/// Raised when the archive layout changes incompatibly.
pub const FORMAT: u32 = 1;
pub const NAME: &str = "backup.yaml";
/// backup.yaml is small; anything larger is not ours.
pub const LIMIT: usize = 4 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupFile {
    pub format: u32,
    pub container: ContainerRecord,
    /// Oldest first; each is archived as snapshots/<name>/rootfs.
    pub snapshots: Vec<SnapshotRecord>,
}

pub fn snapshot_prefix(name: &str) -> String {
    format!("snapshots/{name}/rootfs")
}

pub const ROOTFS_PREFIX: &str = "rootfs";
