//! The daemon's database (sled), the source of truth for containers, images and
//! storage pools. Values are JSON. Every write that changes state is flushed before the
//! request that made it returns, and multi-key changes are one transaction.

mod records;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

pub use records::{
    ContainerRecord, Devices, ImageRecord, NetworkRecord, PoolRecord, RecordStatus, SnapshotRecord, SnapshotStatus,
    device_is, snapshot_key,
};

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct Db {
    db: sled::Db,
    containers: sled::Tree,
    images: sled::Tree,
    pools: sled::Tree,
    snapshots: sled::Tree,
    /// When each snapshot schedule last ran, by "container/schedule".
    schedule_runs: sled::Tree,
    networks: sled::Tree,
    /// Facts about the daemon itself, such as whether it made its default network.
    meta: sled::Tree,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records always serialize")
}

fn decode<T: DeserializeOwned>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::Internal(format!(
            "database: corrupt {tree} record {}: {e}",
            String::from_utf8_lossy(key)
        ))
    })
}

/// Databases from before pools had more than one keep images by fingerprint alone.
fn migrate_image_keys(images: &sled::Tree) -> Result<()> {
    for item in images.iter() {
        let (key, value) = item?;
        if key.contains(&b'/') {
            continue;
        }
        let record: ImageRecord = decode("image", &key, &value)?;
        images.insert(image_key(&record.pool, &record.fingerprint), value)?;
        images.remove(key)?;
    }
    Ok(())
}

fn image_key(pool: &str, fingerprint: &str) -> String {
    format!("{pool}/{fingerprint}")
}

/// sled reports its file lock being held only in an error message.
fn is_lock_conflict(error: &std::io::Error) -> bool {
    error.to_string().starts_with("could not acquire lock")
}

impl Db {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new().path(path).open().map_err(|e| match e {
            sled::Error::Io(io) if is_lock_conflict(&io) => Error::FailedPrecondition(format!(
                "database {} is in use (is another syscd running with this --root?)",
                path.display()
            )),
            other => Error::Db(other),
        })?;
        let images = db.open_tree("images")?;
        migrate_image_keys(&images)?;
        Ok(Self {
            containers: db.open_tree("containers")?,
            images,
            pools: db.open_tree("pools")?,
            snapshots: db.open_tree("snapshots")?,
            schedule_runs: db.open_tree("schedule_runs")?,
            networks: db.open_tree("networks")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// A tree of this database for a module that keeps its own records (the trust store).
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// For start-up code that runs before the async runtime matters.
    pub fn flush_blocking(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Makes every write so far durable. sled's own flush_async can lose its wake-up
    /// when several run at once (spacejam/sled#1241) and hang forever, so the blocking
    /// flush runs on tokio's blocking pool instead.
    pub async fn flush(&self) -> Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| Error::internal("database flush task", e))??;
        Ok(())
    }

    fn get<T: DeserializeOwned>(tree: &sled::Tree, name: &str, key: &str) -> Result<Option<T>> {
        tree.get(key)?.map(|v| decode(name, key.as_bytes(), &v)).transpose()
    }

    fn all<T: DeserializeOwned>(tree: &sled::Tree, name: &str) -> Result<Vec<T>> {
        tree.iter()
            .map(|item| {
                let (k, v) = item?;
                decode(name, &k, &v)
            })
            .collect()
    }

    pub fn container(&self, name: &str) -> Result<Option<ContainerRecord>> {
        Self::get(&self.containers, "container", name)
    }

    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        Self::all(&self.containers, "container")
    }

    /// Inserts a new container; refuses a name that is taken.
    pub fn insert_container(&self, record: &ContainerRecord) -> Result<()> {
        let previous = self
            .containers
            .compare_and_swap(&record.name, None::<&[u8]>, Some(encode(record)))?;
        previous.map_err(|_| Error::AlreadyExists(format!("container {} already exists", record.name)))
    }

    pub fn put_container(&self, record: &ContainerRecord) -> Result<()> {
        self.containers.insert(&record.name, encode(record))?;
        Ok(())
    }

    pub fn remove_container(&self, name: &str) -> Result<()> {
        self.containers.remove(name)?;
        Ok(())
    }

    /// Moves a record to a new name in one transaction, with its snapshots' records;
    /// refuses a taken name.
    pub fn move_container(&self, old: &str, record: &ContainerRecord) -> Result<()> {
        let value = encode(record);
        let snapshots = self.snapshots_of(old)?;
        (&self.containers, &self.snapshots).transaction(|(tree, snaps)| {
            if tree.get(&record.name)?.is_some() {
                return Err(ConflictableTransactionError::Abort(Error::AlreadyExists(format!(
                    "container {} already exists",
                    record.name
                ))));
            }
            tree.remove(old)?;
            tree.insert(record.name.as_bytes(), value.clone())?;
            for snapshot in &snapshots {
                snaps.remove(snapshot.key().as_bytes())?;
                let mut moved = snapshot.clone();
                moved.container = record.name.clone();
                snaps.insert(moved.key().as_bytes(), encode(&moved))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Images are kept per pool: one record per (pool, fingerprint).
    pub fn image(&self, pool: &str, fingerprint: &str) -> Result<Option<ImageRecord>> {
        Self::get(&self.images, "image", &image_key(pool, fingerprint))
    }

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        Self::all(&self.images, "image")
    }

    pub fn put_image(&self, record: &ImageRecord) -> Result<()> {
        self.images
            .insert(image_key(&record.pool, &record.fingerprint), encode(record))?;
        Ok(())
    }

    pub fn remove_image(&self, pool: &str, fingerprint: &str) -> Result<()> {
        self.images.remove(image_key(pool, fingerprint))?;
        Ok(())
    }

    pub fn snapshot(&self, container: &str, name: &str) -> Result<Option<SnapshotRecord>> {
        Self::get(&self.snapshots, "snapshot", &snapshot_key(container, name))
    }

    /// A container's snapshots, oldest first.
    pub fn snapshots_of(&self, container: &str) -> Result<Vec<SnapshotRecord>> {
        let mut snapshots = self
            .snapshots
            .scan_prefix(format!("{container}/"))
            .map(|item| {
                let (k, v) = item?;
                decode::<SnapshotRecord>("snapshot", &k, &v)
            })
            .collect::<Result<Vec<_>>>()?;
        snapshots.sort_by(|a, b| (a.created_at_ms, &a.name).cmp(&(b.created_at_ms, &b.name)));
        Ok(snapshots)
    }

    pub fn all_snapshots(&self) -> Result<Vec<SnapshotRecord>> {
        Self::all(&self.snapshots, "snapshot")
    }

    /// Inserts a new snapshot; refuses a name the container already has.
    pub fn insert_snapshot(&self, record: &SnapshotRecord) -> Result<()> {
        let previous = self
            .snapshots
            .compare_and_swap(record.key(), None::<&[u8]>, Some(encode(record)))?;
        previous
            .map_err(|_| Error::AlreadyExists(format!("snapshot {}/{} already exists", record.container, record.name)))
    }

    pub fn put_snapshot(&self, record: &SnapshotRecord) -> Result<()> {
        self.snapshots.insert(record.key(), encode(record))?;
        Ok(())
    }

    pub fn remove_snapshot(&self, container: &str, name: &str) -> Result<()> {
        self.snapshots.remove(snapshot_key(container, name))?;
        Ok(())
    }

    /// Moves a snapshot's record to its new name in one transaction.
    pub fn move_snapshot(&self, old: &str, record: &SnapshotRecord) -> Result<()> {
        let old_key = snapshot_key(&record.container, old);
        let value = encode(record);
        (&self.snapshots,).transaction(|(tree,)| {
            if tree.get(record.key().as_bytes())?.is_some() {
                return Err(ConflictableTransactionError::Abort(Error::AlreadyExists(format!(
                    "snapshot {}/{} already exists",
                    record.container, record.name
                ))));
            }
            tree.remove(old_key.as_bytes())?;
            tree.insert(record.key().as_bytes(), value.clone())?;
            Ok(())
        })?;
        Ok(())
    }

    /// When a container's schedule last ran (or was first seen), in ms.
    pub fn schedule_run(&self, container: &str, schedule: &str) -> Result<Option<i64>> {
        Self::get(&self.schedule_runs, "schedule run", &snapshot_key(container, schedule))
    }

    pub fn put_schedule_run(&self, container: &str, schedule: &str, at_ms: i64) -> Result<()> {
        self.schedule_runs
            .insert(snapshot_key(container, schedule), encode(&at_ms))?;
        Ok(())
    }

    /// Forgets a container's schedule runs (it was deleted or renamed).
    pub fn remove_schedule_runs(&self, container: &str) -> Result<()> {
        for key in self.schedule_runs.scan_prefix(format!("{container}/")).keys() {
            self.schedule_runs.remove(key?)?;
        }
        Ok(())
    }

    pub fn pool(&self, name: &str) -> Result<Option<PoolRecord>> {
        Self::get(&self.pools, "pool", name)
    }

    pub fn put_pool(&self, record: &PoolRecord) -> Result<()> {
        self.pools.insert(&record.name, encode(record))?;
        Ok(())
    }

    pub fn pools(&self) -> Result<Vec<PoolRecord>> {
        Self::all(&self.pools, "pool")
    }

    pub fn remove_pool(&self, name: &str) -> Result<()> {
        self.pools.remove(name)?;
        Ok(())
    }

    pub fn network(&self, name: &str) -> Result<Option<NetworkRecord>> {
        Self::get(&self.networks, "network", name)
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        Self::all(&self.networks, "network")
    }

    pub fn put_network(&self, record: &NetworkRecord) -> Result<()> {
        self.networks.insert(&record.name, encode(record))?;
        Ok(())
    }

    pub fn remove_network(&self, name: &str) -> Result<()> {
        self.networks.remove(name)?;
        Ok(())
    }

    pub fn flag(&self, key: &str) -> Result<bool> {
        Ok(self.meta.get(key)?.is_some())
    }

    pub fn set_flag(&self, key: &str) -> Result<()> {
        self.meta.insert(key, b"1".as_slice())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> ContainerRecord {
        ContainerRecord::new_for_test(name)
    }

    #[test]
    fn names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.insert_container(&record("web1")).unwrap();
        let err = db.insert_container(&record("web1")).unwrap_err();
        assert_eq!(err.to_string(), "container web1 already exists");
        assert_eq!(db.containers().unwrap().len(), 1);
    }

    #[test]
    fn move_is_atomic_and_refuses_taken_names() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.insert_container(&record("a")).unwrap();
        db.insert_container(&record("b")).unwrap();
        assert!(matches!(
            db.move_container("a", &record("b")),
            Err(Error::AlreadyExists(_))
        ));
        assert!(db.container("a").unwrap().is_some());
        db.move_container("a", &record("c")).unwrap();
        assert!(db.container("a").unwrap().is_none());
        assert_eq!(db.container("c").unwrap().unwrap().name, "c");
    }

    #[test]
    fn images_keyed_by_fingerprint_alone_move_under_their_pool() {
        let dir = tempfile::tempdir().unwrap();
        let image = ImageRecord {
            fingerprint: "abc123".into(),
            pool: "default".into(),
            ..Default::default()
        };
        {
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("images")
                .unwrap()
                .insert("abc123", encode(&image))
                .unwrap();
            db.flush().unwrap();
        }
        // sled's flusher thread may hold the file lock a moment after the handle is gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let db = loop {
            match Db::open(dir.path()) {
                Err(Error::FailedPrecondition(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(db.image("default", "abc123").unwrap().unwrap().fingerprint, "abc123");
        assert_eq!(db.images().unwrap().len(), 1);
    }

    #[test]
    fn second_open_of_one_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _db = Db::open(dir.path()).unwrap();
        let err = Db::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("another syscd"), "{err}");
    }
}
