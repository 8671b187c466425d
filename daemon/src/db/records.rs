//! What the database stores. These are also what backup.yaml holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::keys;
use crate::monitor::protocol::ExitRecord;
use crate::runtime::IdMap;

/// Where a container is in a multi-step change. Anything but Ready found at start-up
/// is a change a crash interrupted, which the daemon finishes or undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Creating,
    Ready,
    Deleting,
    Renaming { to: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    pub status: RecordStatus,
    pub image: ImageRecord,
    pub created_at_ms: i64,
    pub config: BTreeMap<String, String>,
    pub pool: String,
    pub last_exit: Option<ExitRecord>,
    /// Devices by name, each its keys including `type` (nic, proxy).
    #[serde(default)]
    pub devices: Devices,
}

impl ContainerRecord {
    pub fn privileged(&self) -> bool {
        keys::get_bool(&self.config, "security.privileged")
    }

    pub fn idmap(&self) -> Option<IdMap> {
        if self.privileged() {
            return None;
        }
        let base = self.config.get(keys::IDMAP_BASE)?.parse().ok()?;
        let size = self.config.get(keys::IDMAP_SIZE)?.parse().ok()?;
        Some(IdMap { host_base: base, size })
    }

    #[cfg(test)]
    pub fn new_for_test(name: &str) -> Self {
        Self {
            name: name.to_string(),
            status: RecordStatus::Ready,
            image: ImageRecord::default(),
            created_at_ms: 0,
            config: BTreeMap::new(),
            pool: "default".into(),
            last_exit: None,
            devices: BTreeMap::new(),
        }
    }
}

/// A template's output, cached: the root filesystem every container from the same
/// template and options is cloned from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    pub fingerprint: String,
    pub template: String,
    pub release: String,
    pub arch: String,
    pub description: String,
    /// The signal that makes this image's init shut down cleanly.
    pub halt_signal: String,
    pub init: Vec<String>,
    pub size_bytes: u64,
    pub created_at_ms: i64,
    pub pool: String,
}

impl ImageRecord {
    /// "debian/bookworm (3f2a9c1d8e7b)"
    pub fn label(&self) -> String {
        let short: String = self.fingerprint.chars().take(12).collect();
        if self.release.is_empty() {
            format!("{} ({short})", self.template)
        } else {
            format!("{}/{} ({short})", self.template, self.release)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoolRecord {
    pub name: String,
    /// "btrfs" or "dir".
    pub driver: String,
    /// For btrfs: the loop file backing the pool, if the daemon made one.
    pub loop_file: Option<std::path::PathBuf>,
    pub size_bytes: Option<u64>,
    /// A directory the user gave (`source=`) that holds the pool's volumes; else the
    /// pool lives under the root dir.
    #[serde(default)]
    pub source: Option<std::path::PathBuf>,
}

/// Where a snapshot is in a multi-step change; anything but Ready at start-up is
/// finished or undone by recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    Creating,
    Ready,
    Deleting,
    Renaming { to: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub container: String,
    pub name: String,
    pub status: SnapshotStatus,
    pub created_at_ms: i64,
    /// None: kept until deleted.
    pub expires_at_ms: Option<i64>,
    /// The schedule that took it: "" manual, "default" for snapshots.schedule, else the
    /// NAME of snapshots.NAME.schedule.
    pub schedule: String,
    /// The container's config when the snapshot was taken.
    pub config: BTreeMap<String, String>,
    pub taken_running: bool,
}

impl SnapshotRecord {
    pub fn key(&self) -> String {
        snapshot_key(&self.container, &self.name)
    }
}

pub fn snapshot_key(container: &str, name: &str) -> String {
    format!("{container}/{name}")
}

/// Devices by name, each its keys including `type`.
pub type Devices = BTreeMap<String, BTreeMap<String, String>>;

/// Whether a device's keys say it is of type `kind` (nic, proxy).
pub fn device_is(keys: &BTreeMap<String, String>, kind: &str) -> bool {
    keys.get("type").map(String::as_str) == Some(kind)
}

/// A managed network; its name is its bridge's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub status: RecordStatus,
    /// ipv4.address (the gateway, always concrete once created), ipv4.nat, dns.domain.
    pub config: BTreeMap<String, String>,
}
