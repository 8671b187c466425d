//! Container lifecycle: the daemon's records (sled) on one side, the monitors that
//! run containers on the other. Every change to one container holds that container's
//! lock, so requests on it are serialized.

mod backup_file;
mod config;
mod console;
mod copy;
mod create;
mod delete;
mod devices;
mod exec;
mod exits;
mod export;
pub mod files;
mod helper_process;
mod idmap;
mod import;
mod launcher;
mod lifecycle;
pub mod limits;
pub mod monitor_client;
mod network;
mod notify;
mod pause;
mod proxies;
mod recover;
mod rename;
mod restore;
mod scheduler;
mod security;
mod seqpacket;
mod setup;
mod snapshots;
mod view;

use std::sync::Arc;

pub use console::ConsoleConnection;
pub use copy::CopyParams;
pub use create::CreateParams;
pub use exec::{ExecIo, ExecParams, ExecSession};
pub use export::{Export, ExportEvent};
pub use import::ImportData;
pub use lifecycle::stop_timeout;
pub use seqpacket::SeqPacket as SeqPacketHandle;
pub use snapshots::{ExpiryRequest, SnapshotView};
pub use view::{ContainerView, Live};

use crate::db::{ContainerRecord, Db, RecordStatus};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::images::Images;
use crate::locks::KeyedLocks;
use crate::network::Networks;
use crate::settings::Settings;
use crate::storage::{Pools, SharedDriver, VolumeKind};

pub struct Manager {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub pools: Arc<Pools>,
    pub images: Arc<Images>,
    pub networks: Arc<Networks>,
    /// Lifecycle events and long operations, for every client that asks (sysc monitor).
    pub events: Events,
    locks: KeyedLocks,
    launcher: launcher::Launcher,
    /// Serializes the step that picks an id range and claims a name.
    claim: tokio::sync::Mutex<()>,
}

impl Manager {
    pub fn new(
        settings: Arc<Settings>,
        db: Db,
        pools: Arc<Pools>,
        images: Arc<Images>,
        networks: Arc<Networks>,
    ) -> Arc<Self> {
        Arc::new(Self {
            launcher: launcher::Launcher::new(&settings.monitor_exe),
            settings,
            db,
            pools,
            images,
            networks,
            events: Events::default(),
            locks: KeyedLocks::default(),
            claim: tokio::sync::Mutex::new(()),
        })
    }

    /// The record of an existing, complete container.
    /// Refuses a name a container has, also one that differs only in case: names are DNS
    /// names on the networks, where Web and web are one. `except` is a container the name
    /// may match (its own, for a rename that changes only the case).
    fn check_name_free(&self, name: &str, except: Option<&str>) -> Result<()> {
        let taken = self
            .db
            .containers()?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name) && Some(c.name.as_str()) != except);
        match taken {
            None => Ok(()),
            Some(c) if c.name == name => Err(Error::AlreadyExists(format!("container {name} already exists"))),
            Some(c) => Err(Error::AlreadyExists(format!(
                "container {} already exists; names must differ by more than case (they are DNS names)",
                c.name
            ))),
        }
    }

    fn record(&self, name: &str) -> Result<ContainerRecord> {
        match self.db.container(name)? {
            Some(record) if record.status == RecordStatus::Ready => Ok(record),
            Some(_) => Err(Error::FailedPrecondition(format!(
                "container {name} is being created, renamed or deleted"
            ))),
            None => Err(Error::NotFound(format!("container {name} not found"))),
        }
    }

    /// The pool holding a container.
    fn pool_of(&self, record: &ContainerRecord) -> Result<SharedDriver> {
        self.pools.get(&record.pool)
    }

    fn volume_of(&self, record: &ContainerRecord) -> Result<std::path::PathBuf> {
        Ok(self.pool_of(record)?.path(VolumeKind::Container, &record.name))
    }

    /// The volume of a container that has a record, whatever its status.
    fn volume(&self, name: &str) -> Result<std::path::PathBuf> {
        let record = self
            .db
            .container(name)?
            .ok_or_else(|| Error::NotFound(format!("container {name} not found")))?;
        self.volume_of(&record)
    }

    /// Saves a record and makes it durable, with its backup.yaml beside the rootfs.
    async fn save(&self, record: &ContainerRecord) -> Result<()> {
        self.db.put_container(record)?;
        self.db.flush().await?;
        self.write_backup(record);
        Ok(())
    }

    /// backup.yaml: enough to rebuild the database from disk. Failing to write it is
    /// logged, not fatal: the database stays the source of truth.
    fn write_backup(&self, record: &ContainerRecord) {
        let path = match self.volume_of(record) {
            Ok(volume) => volume.join("backup.yaml"),
            Err(e) => {
                tracing::warn!(container = %record.name, "writing backup.yaml: {e}");
                return;
            }
        };
        let result = serde_yaml::to_string(record)
            .map_err(std::io::Error::other)
            .and_then(|yaml| crate::fsutil::write_atomic(&path, yaml.as_bytes()));
        if let Err(e) = result {
            tracing::warn!(container = %record.name, "writing {}: {e}", path.display());
        }
    }
}
