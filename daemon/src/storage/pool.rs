//! The default storage pool: made on the daemon's first start (btrfs on a loop file
//! when mkfs.btrfs is available, else a directory), remembered in the database, and
//! mounted again on later starts.

use std::path::Path;

use std::sync::Arc;

use super::command::{is_available, run};
use super::{Btrfs, Dir, SharedDriver, io, pool_dir};
use crate::db::{Db, PoolRecord};
use crate::error::Result;

pub const DEFAULT_POOL: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverChoice {
    /// btrfs on a loop file when mkfs.btrfs is installed, dir otherwise
    Auto,
    Btrfs,
    Dir,
}

/// Opens (creating on first use) the default pool. The second value says what was
/// made, for the daemon's log, when the pool is new. Every step is idempotent and the
/// record is written last, so a daemon killed halfway through finishes the job on its
/// next start instead of formatting the pool again.
pub(super) fn open_default(
    root: &Path,
    db: &Db,
    choice: DriverChoice,
    size_bytes: u64,
) -> Result<(SharedDriver, Option<String>)> {
    if let Some(record) = db.pool(DEFAULT_POOL)? {
        return Ok((open(root, &record)?, None));
    }
    let dir = pool_dir(root, DEFAULT_POOL);
    let loop_file = root.join("disks").join(format!("{DEFAULT_POOL}.img"));
    let want_btrfs = loop_file.exists()
        || match choice {
            DriverChoice::Btrfs => true,
            DriverChoice::Dir => false,
            DriverChoice::Auto => is_available("mkfs.btrfs") && is_available("btrfs"),
        };
    let record = if want_btrfs {
        if !loop_file.exists() {
            make_loop_btrfs(&loop_file, size_bytes)?;
        }
        PoolRecord {
            name: DEFAULT_POOL.into(),
            driver: "btrfs".into(),
            loop_file: Some(loop_file),
            size_bytes: Some(size_bytes),
            source: None,
        }
    } else {
        PoolRecord {
            name: DEFAULT_POOL.into(),
            driver: "dir".into(),
            loop_file: None,
            size_bytes: None,
            source: None,
        }
    };
    let driver = open(root, &record)?;
    db.put_pool(&record)?;
    db.flush_blocking()?;
    let note = match &record.loop_file {
        Some(file) => format!(
            "created storage pool {DEFAULT_POOL}: btrfs on loop file {} ({} GiB, sparse)",
            file.display(),
            size_bytes >> 30
        ),
        None => format!("created storage pool {DEFAULT_POOL}: dir at {}", dir.display()),
    };
    Ok((driver, Some(note)))
}

/// Opens a pool from its record, mounting its loop file if that is not mounted yet.
pub(super) fn open(root: &Path, record: &PoolRecord) -> Result<SharedDriver> {
    let dir = pool_root(root, record);
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    Ok(match record.driver.as_str() {
        "btrfs" => {
            let source = match &record.loop_file {
                Some(file) => {
                    if !is_mount_point(&dir) {
                        run(
                            "mount",
                            &["-o".as_ref(), "loop".as_ref(), file.as_os_str(), dir.as_os_str()],
                        )?;
                    }
                    format!("loop file {}", file.display())
                }
                None => dir.display().to_string(),
            };
            Arc::new(Btrfs::open(&dir, source)?)
        }
        _ => Arc::new(Dir::open(&dir)?),
    })
}

/// Where a pool's volumes live: the user's `source` directory, or under the root dir.
pub(super) fn pool_root(root: &Path, record: &PoolRecord) -> std::path::PathBuf {
    record.source.clone().unwrap_or_else(|| pool_dir(root, &record.name))
}

/// A sparse file formatted as btrfs, made under a temporary name so that a file with
/// the final name is always a complete filesystem.
pub(super) fn make_loop_btrfs(file: &Path, size_bytes: u64) -> Result<()> {
    let parent = file.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    let tmp = file.with_extension("img.tmp");
    let made = std::fs::File::create(&tmp)
        .and_then(|f| f.set_len(size_bytes))
        .map_err(io(format!("create {}", tmp.display())))
        .and_then(|_| run("mkfs.btrfs", &["-q".as_ref(), tmp.as_os_str()]).map(drop))
        .and_then(|_| std::fs::rename(&tmp, file).map_err(io(format!("rename {}", tmp.display()))));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

/// Whether `dir` is where something is mounted in our mount namespace.
pub fn is_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else { return false };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|target| Path::new(&unescape(target)) == dir)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
