//! Every storage pool the daemon knows: the default one (made on first start) and those
//! made with `sysc storage create`. Records in the database say how to open each; the
//! record of a new pool is written only once the pool is usable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::command::{is_available, run};
use super::pool::{DEFAULT_POOL, DriverChoice, is_mount_point, make_loop_btrfs, open, open_default, pool_root};
use super::{SharedDriver, VolumeKind, pool_dir};
use crate::db::{Db, PoolRecord};
use crate::error::{Error, Result};
use crate::keys::values::{Size, parse_size};

/// What a loop-file btrfs pool gets without `size=`.
const DEFAULT_LOOP_SIZE: u64 = 20 << 30;
/// Below this, mkfs.btrfs refuses (it needs room for its chunks).
const MIN_LOOP_SIZE: u64 = 128 << 20;

pub struct Pools {
    root: PathBuf,
    db: Db,
    drivers: RwLock<BTreeMap<String, SharedDriver>>,
    /// Serializes pool creation and deletion.
    changes: tokio::sync::Mutex<()>,
}

impl Pools {
    /// Opens every pool, creating the default one on first start; the note says what
    /// was created, for the daemon's log.
    pub fn open(root: &Path, db: &Db, choice: DriverChoice, size_bytes: u64) -> Result<(Arc<Self>, Option<String>)> {
        let (default, note) = open_default(root, db, choice, size_bytes)?;
        let mut drivers = BTreeMap::from([(DEFAULT_POOL.to_string(), default)]);
        for record in db.pools()?.into_iter().filter(|r| r.name != DEFAULT_POOL) {
            match open(root, &record) {
                Ok(driver) => {
                    drivers.insert(record.name.clone(), driver);
                }
                Err(e) => tracing::error!(pool = %record.name, "storage pool cannot be opened: {e}"),
            }
        }
        let pools = Self {
            root: root.to_path_buf(),
            db: db.clone(),
            drivers: RwLock::new(drivers),
            changes: tokio::sync::Mutex::new(()),
        };
        Ok((Arc::new(pools), note))
    }

    pub fn get(&self, name: &str) -> Result<SharedDriver> {
        let name = if name.is_empty() { DEFAULT_POOL } else { name };
        self.drivers
            .read()
            .expect("pool table poisoned")
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("storage pool {name} not found")))
    }

    pub fn default_pool(&self) -> SharedDriver {
        self.get(DEFAULT_POOL).expect("the default pool is always open")
    }

    /// Open pools by name.
    pub fn all(&self) -> Vec<(String, SharedDriver)> {
        let drivers = self.drivers.read().expect("pool table poisoned");
        drivers.iter().map(|(n, d)| (n.clone(), d.clone())).collect()
    }

    pub fn record(&self, name: &str) -> Result<PoolRecord> {
        self.db
            .pool(name)?
            .ok_or_else(|| Error::NotFound(format!("storage pool {name} not found")))
    }

    pub async fn create(&self, name: &str, driver: &str, config: &BTreeMap<String, String>) -> Result<PoolRecord> {
        validate_name(name)?;
        let _changes = self.changes.lock().await;
        if self.db.pool(name)?.is_some() {
            return Err(Error::AlreadyExists(format!("storage pool {name} already exists")));
        }
        let record = self.plan(name, driver, config)?;
        let plan = record.clone();
        tokio::task::spawn_blocking(move || make(&plan))
            .await
            .map_err(|e| Error::internal("storage pool task", e))??;
        let opened = open(&self.root, &record);
        let driver = match opened {
            Ok(driver) => driver,
            Err(e) => {
                unmake(&self.root, &record);
                return Err(e);
            }
        };
        self.db.put_pool(&record)?;
        self.db.flush().await?;
        self.drivers
            .write()
            .expect("pool table poisoned")
            .insert(name.to_string(), driver);
        tracing::info!(pool = %name, driver = %record.driver, "storage pool created");
        Ok(record)
    }

    /// Checks a request and says what will be made; nothing is touched yet.
    fn plan(&self, name: &str, driver: &str, config: &BTreeMap<String, String>) -> Result<PoolRecord> {
        for key in config.keys() {
            if key != "size" && key != "source" {
                return Err(Error::InvalidArgument(format!(
                    "unknown storage pool option {key} (known: size, source)"
                )));
            }
        }
        let source = config.get("source").map(PathBuf::from);
        if let Some(source) = &source {
            check_source(source, driver)?;
            self.check_source_apart(source)?;
        }
        let mut record = PoolRecord {
            name: name.to_string(),
            driver: driver.to_string(),
            loop_file: None,
            size_bytes: None,
            source: source.clone(),
        };
        match driver {
            "dir" => {
                if config.contains_key("size") {
                    return Err(Error::InvalidArgument(
                        "storage pool option size: a dir pool takes the space of the filesystem it is on".into(),
                    ));
                }
            }
            "btrfs" => {
                if source.is_none() {
                    if !is_available("mkfs.btrfs") {
                        return Err(Error::FailedPrecondition(
                            "mkfs.btrfs is not installed (apt install btrfs-progs)".into(),
                        ));
                    }
                    let size = match config.get("size") {
                        Some(size) => match parse_size(size) {
                            Ok(Size::Bytes(bytes)) => Some(bytes),
                            _ => None,
                        }
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!("storage pool option size: {size:?} is not a size"))
                        })?,
                        None => DEFAULT_LOOP_SIZE,
                    };
                    if size < MIN_LOOP_SIZE {
                        return Err(Error::InvalidArgument(format!(
                            "storage pool option size: {} is below the minimum of 128MiB",
                            config["size"]
                        )));
                    }
                    record.loop_file = Some(self.root.join("disks").join(format!("{name}.img")));
                    record.size_bytes = Some(size);
                } else if config.contains_key("size") {
                    return Err(Error::InvalidArgument(
                        "storage pool options size and source exclude each other".into(),
                    ));
                }
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown storage driver {other:?} (known: btrfs, dir)"
                )));
            }
        }
        Ok(record)
    }

    /// Like Incus: a source is an empty directory outside the daemon's root and apart from
    /// every other pool, so that no two pools, nor a pool and the daemon's own state, can
    /// share a file (deleting a container in one would delete another's).
    fn check_source_apart(&self, source: &Path) -> Result<()> {
        let shown = source.display();
        let real = canonical(source)?;
        let root = canonical(&self.root)?;
        if real.starts_with(&root) || root.starts_with(&real) {
            return Err(Error::InvalidArgument(format!(
                "storage pool option source: {shown} overlaps syscd's root {}",
                self.root.display()
            )));
        }
        for other in self.db.pools()? {
            let Ok(other_root) = std::fs::canonicalize(pool_root(&self.root, &other)) else {
                continue;
            };
            if real.starts_with(&other_root) || other_root.starts_with(&real) {
                return Err(Error::InvalidArgument(format!(
                    "storage pool option source: {shown} overlaps storage pool {} at {}",
                    other.name,
                    other_root.display()
                )));
            }
        }
        let mut entries =
            std::fs::read_dir(&real).map_err(|e| Error::internal(format!("read directory {shown}"), e))?;
        if entries.next().is_some() {
            return Err(Error::InvalidArgument(format!(
                "storage pool option source: {shown} is not empty"
            )));
        }
        Ok(())
    }

    /// Deletes a pool nothing uses; the images cached in it go with it.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let _changes = self.changes.lock().await;
        let record = self.record(name)?;
        if name == DEFAULT_POOL {
            return Err(Error::FailedPrecondition(
                "storage pool default is the daemon's default pool and cannot be deleted".into(),
            ));
        }
        let users: Vec<String> = self
            .db
            .containers()?
            .into_iter()
            .filter(|c| c.pool == name)
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "storage pool {name} is used by containers {}",
                users.join(", ")
            )));
        }
        let driver = self.get(name)?;
        let images: Vec<String> = self
            .db
            .images()?
            .into_iter()
            .filter(|i| i.pool == name)
            .map(|i| i.fingerprint)
            .collect();
        for fingerprint in &images {
            self.db.remove_image(name, fingerprint)?;
        }
        self.db.remove_pool(name)?;
        self.db.flush().await?;
        self.drivers.write().expect("pool table poisoned").remove(name);
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || {
            for fingerprint in images {
                let _ = driver.delete(VolumeKind::Image, &fingerprint);
            }
            drop(driver);
            unmake(&root, &record);
        })
        .await
        .map_err(|e| Error::internal("storage pool task", e))?;
        tracing::info!(pool = %name, "storage pool deleted");
        Ok(())
    }
}

/// 1 to 63 lower-case letters, digits and '-', starting with a letter.
fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid storage pool name {name:?}: use 1 to 63 lower-case letters, digits and '-', starting with a letter"
        )))
    }
}

fn check_source(source: &Path, driver: &str) -> Result<()> {
    if !source.is_absolute() {
        return Err(Error::InvalidArgument(format!(
            "storage pool option source: {} is not an absolute path",
            source.display()
        )));
    }
    if !source.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "storage pool option source: {} is not a directory",
            source.display()
        )));
    }
    if driver == "btrfs" {
        let on_btrfs = nix::sys::statfs::statfs(source)
            .map(|st| st.filesystem_type() == nix::sys::statfs::BTRFS_SUPER_MAGIC)
            .unwrap_or(false);
        if !on_btrfs {
            return Err(Error::InvalidArgument(format!(
                "storage pool option source: {} is not on a btrfs filesystem",
                source.display()
            )));
        }
    }
    Ok(())
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| Error::internal(format!("resolve {}", path.display()), e))
}

/// Makes what backs a planned pool (a formatted loop file); undone if it fails.
fn make(record: &PoolRecord) -> Result<()> {
    if let (Some(file), Some(size)) = (&record.loop_file, record.size_bytes) {
        if file.exists() {
            // Left by a create that crashed before writing its record: not ours to trust.
            std::fs::remove_file(file).map_err(|e| Error::internal(format!("remove {}", file.display()), e))?;
        }
        make_loop_btrfs(file, size)?;
    }
    Ok(())
}

/// Removes what a pool made: its mount, its loop file, its directories (a user's
/// `source` directory itself stays).
fn unmake(root: &Path, record: &PoolRecord) {
    let dir = pool_root(root, record);
    if record.loop_file.is_some()
        && is_mount_point(&dir)
        && let Err(e) = run("umount", &[dir.as_os_str()])
    {
        tracing::warn!(pool = %record.name, "unmounting {}: {e}", dir.display());
        let _ = run("umount", &["-l".as_ref(), dir.as_os_str()]);
    }
    if let Some(file) = &record.loop_file {
        let _ = std::fs::remove_file(file);
    }
    for kind in ["images", "containers", "snapshots"] {
        let _ = std::fs::remove_dir(dir.join(kind));
    }
    if record.source.is_none() {
        let _ = std::fs::remove_dir(pool_dir(root, &record.name));
    }
}
