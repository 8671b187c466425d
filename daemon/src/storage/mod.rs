//! Storage pools behind one driver interface: `dir` (plain directories, copies that
//! reflink where the filesystem can, several files at once) and `btrfs` (subvolumes: instant clones). A pool
//! holds two kinds of volumes: images (a template's output) and containers (a clone of
//! an image). A volume holds `rootfs/` plus metadata files.

mod btrfs;
mod btrfs_ioctl;
mod command;
mod dir;
mod pool;
mod pools;

use std::path::{Path, PathBuf};

pub use btrfs::Btrfs;
pub use dir::Dir;
pub use pool::{DEFAULT_POOL, DriverChoice, is_mount_point};
pub use pools::Pools;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("storage: {command} failed: {output}")]
    Command { command: String, output: String },
    #[error("storage: {0}")]
    Copy(#[from] crate::archive::ArchiveError),
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub(crate) fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StorageError {
    let what = what.to_string();
    move |source| StorageError::Io { what, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    Image,
    Container,
    /// Named "container/snapshot"; read-only where the driver can make it so.
    Snapshot,
}

impl VolumeKind {
    fn dir(self) -> &'static str {
        match self {
            VolumeKind::Image => "images",
            VolumeKind::Container => "containers",
            VolumeKind::Snapshot => "snapshots",
        }
    }
}

/// The volume name of a container's snapshot.
pub fn snapshot_volume(container: &str, snapshot: &str) -> String {
    format!("{container}/{snapshot}")
}

/// Space on the filesystem that holds a pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Space {
    pub total: u64,
    pub used: u64,
    pub free: u64,
}

/// Names of volumes being built; never valid image fingerprints or container names.
pub const TEMPORARY_PREFIX: &str = ".tmp-";

pub trait Driver: Send + Sync {
    /// "dir" or "btrfs".
    fn name(&self) -> &'static str;
    /// Where the pool's volumes live.
    fn root(&self) -> &Path;
    /// A description of what backs the pool, for `sysc info --host` style output.
    fn source(&self) -> String;

    /// An empty volume for a template (or an import) to fill.
    fn create_empty(&self, kind: VolumeKind, name: &str) -> Result<PathBuf>;
    /// A new volume that starts as a copy of another volume of this pool: a snapshot of
    /// the subvolume on btrfs (instant, whatever the size), a reflink copy on dir.
    /// Snapshot volumes are made read-only where the driver can. Either the whole
    /// volume appears under its name, or nothing does.
    fn clone_volume(&self, from: (VolumeKind, &str), to: (VolumeKind, &str)) -> Result<PathBuf>;
    fn delete(&self, kind: VolumeKind, name: &str) -> Result<()>;
    /// Makes a filled volume read-only where the driver can (btrfs snapshots).
    fn seal(&self, _kind: VolumeKind, _name: &str) -> Result<()> {
        Ok(())
    }
    /// Bytes only this volume holds, where the driver can tell shared from exclusive
    /// data (btrfs); else its whole size.
    fn exclusive_size(&self, kind: VolumeKind, name: &str) -> u64 {
        self.size(kind, name)
    }

    fn path(&self, kind: VolumeKind, name: &str) -> PathBuf {
        self.root().join(kind.dir()).join(name)
    }

    /// A new volume holding a copy of a directory tree from anywhere (another pool):
    /// filled under a temporary name, renamed when complete.
    fn copy_in(&self, source: &Path, kind: VolumeKind, name: &str) -> Result<PathBuf> {
        let tmp = temporary_name(name);
        let tmp_path = self.path(kind, &tmp);
        ensure_parent(&tmp_path)?;
        self.delete(kind, &tmp)?;
        self.create_empty(kind, &tmp)?;
        let copied = crate::archive::copy_tree(source, &tmp_path)
            .map_err(StorageError::from)
            .and_then(|()| self.rename(kind, &tmp, name));
        if let Err(e) = copied {
            let _ = self.delete(kind, &tmp);
            return Err(e);
        }
        Ok(self.path(kind, name))
    }

    /// Swaps two volumes of a kind in one atomic step (renameat2 RENAME_EXCHANGE), so a
    /// crash leaves either the old or the new one in place, never neither.
    fn exchange(&self, kind: VolumeKind, a: &str, b: &str) -> Result<()> {
        let (a, b) = (self.path(kind, a), self.path(kind, b));
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &a,
            nix::fcntl::AT_FDCWD,
            &b,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        )
        .map_err(|e| StorageError::Io {
            what: format!("exchange {} and {}", a.display(), b.display()),
            source: e.into(),
        })
    }

    /// Size, use and free space of the filesystem holding the pool.
    fn space(&self) -> Space {
        match nix::sys::statvfs::statvfs(self.root()) {
            Ok(st) => {
                let block = st.fragment_size();
                let total = st.blocks() * block;
                let free = st.blocks_available() * block;
                Space {
                    total,
                    used: total.saturating_sub(st.blocks_free() * block),
                    free,
                }
            }
            Err(_) => Space::default(),
        }
    }

    fn exists(&self, kind: VolumeKind, name: &str) -> bool {
        self.path(kind, name).is_dir()
    }

    fn rename(&self, kind: VolumeKind, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.path(kind, from), self.path(kind, to));
        ensure_parent(&b)?;
        std::fs::rename(&a, &b).map_err(io(format!("rename {} to {}", a.display(), b.display())))
    }

    /// Names of the volumes of a kind, temporary ones included; for snapshots,
    /// "container/snapshot".
    fn list(&self, kind: VolumeKind) -> Result<Vec<String>> {
        let dir = self.root().join(kind.dir());
        let names = subdirectories(&dir)?;
        if kind != VolumeKind::Snapshot {
            return Ok(names);
        }
        let mut snapshots = Vec::new();
        for container in names {
            snapshots.extend(self.snapshots_of(&container)?);
        }
        Ok(snapshots)
    }

    /// The snapshot volumes of one container ("container/snapshot"), temporary ones
    /// included.
    fn snapshots_of(&self, container: &str) -> Result<Vec<String>> {
        let dir = self.path(VolumeKind::Snapshot, container);
        Ok(subdirectories(&dir)?
            .into_iter()
            .map(|snapshot| snapshot_volume(container, &snapshot))
            .collect())
    }

    /// Moves every snapshot volume of a container to another container name.
    fn rename_snapshots(&self, from: &str, to: &str) -> Result<()> {
        let (a, b) = (
            self.path(VolumeKind::Snapshot, from),
            self.path(VolumeKind::Snapshot, to),
        );
        if !a.exists() || b.exists() {
            return Ok(());
        }
        std::fs::rename(&a, &b).map_err(io(format!("rename {} to {}", a.display(), b.display())))
    }

    /// Removes a container's (empty) snapshot directory.
    fn remove_snapshot_dir(&self, container: &str) -> Result<()> {
        let dir = self.path(VolumeKind::Snapshot, container);
        match std::fs::remove_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(format!("remove {}", dir.display()))(e)),
            _ => Ok(()),
        }
    }

    /// Bytes used by a volume (shared extents counted in full).
    fn size(&self, kind: VolumeKind, name: &str) -> u64 {
        command::disk_usage(&self.path(kind, name))
    }
}

/// Creates the pool's volume directories, root only: root filesystems are stored
/// unshifted (idmapped at mount time), so their files are owned by the host's root,
/// and a host user who could reach a setuid binary in one would run it as root.
fn create_layout(root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for kind in [VolumeKind::Image, VolumeKind::Container, VolumeKind::Snapshot] {
        let dir = root.join(kind.dir());
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(format!("chmod {}", dir.display())))?;
    }
    Ok(())
}

pub fn volume_rootfs(volume: &Path) -> PathBuf {
    volume.join("rootfs")
}

/// A temporary name beside `name`; for a snapshot volume ("container/snapshot") the
/// snapshot part gets the prefix, so the volume stays in its container's directory.
pub fn temporary_name(name: &str) -> String {
    match name.rsplit_once('/') {
        Some((dir, last)) => format!("{dir}/{TEMPORARY_PREFIX}{last}"),
        None => format!("{TEMPORARY_PREFIX}{name}"),
    }
}

pub fn is_temporary(name: &str) -> bool {
    name.rsplit('/').next().unwrap_or(name).starts_with(TEMPORARY_PREFIX)
}

pub type SharedDriver = std::sync::Arc<dyn Driver>;

pub fn pool_dir(root: &Path, pool: &str) -> PathBuf {
    root.join("storage-pools").join(pool)
}

/// A snapshot volume's parent (snapshots/<container>) appears on first use.
fn ensure_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.exists() => {
            std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))
        }
        _ => Ok(()),
    }
}

fn subdirectories(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("list {}", dir.display()))(e)),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect())
}
