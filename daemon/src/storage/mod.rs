//! Storage pools behind one driver interface: `dir` (plain directories, copies that
//! reflink where the filesystem can) and `btrfs` (subvolumes: instant clones). A pool
//! holds two kinds of volumes: images (a template's output) and containers (a clone of
//! an image). A volume holds `rootfs/` plus metadata files.

mod btrfs;
mod command;
mod dir;
mod pool;

use std::path::{Path, PathBuf};

pub use btrfs::Btrfs;
pub use dir::Dir;
pub use pool::{DEFAULT_POOL, DriverChoice, is_mount_point, open_default};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage: {what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("storage: {command} failed: {output}")]
    Command { command: String, output: String },
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
}

impl VolumeKind {
    fn dir(self) -> &'static str {
        match self {
            VolumeKind::Image => "images",
            VolumeKind::Container => "containers",
        }
    }
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

    /// An empty volume for a template to fill.
    fn create_empty(&self, kind: VolumeKind, name: &str) -> Result<PathBuf>;
    /// A container volume that starts as a copy of an image volume.
    fn clone_image(&self, image: &str, container: &str) -> Result<PathBuf>;
    fn delete(&self, kind: VolumeKind, name: &str) -> Result<()>;

    fn path(&self, kind: VolumeKind, name: &str) -> PathBuf {
        self.root().join(kind.dir()).join(name)
    }

    fn exists(&self, kind: VolumeKind, name: &str) -> bool {
        self.path(kind, name).is_dir()
    }

    fn rename(&self, kind: VolumeKind, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.path(kind, from), self.path(kind, to));
        std::fs::rename(&a, &b).map_err(io(format!("rename {} to {}", a.display(), b.display())))
    }

    /// Names of the volumes of a kind, temporary ones included.
    fn list(&self, kind: VolumeKind) -> Result<Vec<String>> {
        let dir = self.root().join(kind.dir());
        let entries = std::fs::read_dir(&dir).map_err(io(format!("list {}", dir.display())))?;
        Ok(entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect())
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
    for kind in [VolumeKind::Image, VolumeKind::Container] {
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

pub(crate) fn temporary_name(name: &str) -> String {
    format!("{TEMPORARY_PREFIX}{name}")
}

pub fn is_temporary(name: &str) -> bool {
    name.starts_with(TEMPORARY_PREFIX)
}

pub type SharedDriver = std::sync::Arc<dyn Driver>;

pub fn pool_dir(root: &Path, pool: &str) -> PathBuf {
    root.join("storage-pools").join(pool)
}
