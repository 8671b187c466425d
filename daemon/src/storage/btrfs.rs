//! The `btrfs` driver: every volume is a subvolume; a container is a snapshot of its
//! image's subvolume, so creating one takes milliseconds whatever the image's size.

use std::path::{Path, PathBuf};

use super::command::run;
use super::{Driver, Result, VolumeKind, create_layout, ensure_parent, io};

pub struct Btrfs {
    root: PathBuf,
    source: String,
}

impl Btrfs {
    pub fn open(root: &Path, source: String) -> Result<Self> {
        create_layout(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            source,
        })
    }
}

impl Driver for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn source(&self) -> String {
        self.source.clone()
    }

    fn create_empty(&self, kind: VolumeKind, name: &str) -> Result<PathBuf> {
        let path = self.path(kind, name);
        ensure_parent(&path)?;
        run(
            "btrfs",
            &["-q".as_ref(), "subvolume".as_ref(), "create".as_ref(), path.as_os_str()],
        )?;
        Ok(path)
    }

    fn clone_volume(&self, from: (VolumeKind, &str), to: (VolumeKind, &str)) -> Result<PathBuf> {
        let source = self.path(from.0, from.1);
        let path = self.path(to.0, to.1);
        ensure_parent(&path)?;
        super::btrfs_ioctl::snapshot(&source, &path, to.0 == VolumeKind::Snapshot)?;
        Ok(path)
    }

    fn seal(&self, kind: VolumeKind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        run(
            "btrfs",
            &[
                "property".as_ref(),
                "set".as_ref(),
                "-ts".as_ref(),
                path.as_os_str(),
                "ro".as_ref(),
                "true".as_ref(),
            ],
        )
        .map(drop)
    }

    fn exclusive_size(&self, kind: VolumeKind, name: &str) -> u64 {
        // `filesystem du` tells exclusive from shared extents without quotas enabled.
        let path = self.path(kind, name);
        run(
            "btrfs",
            &[
                "filesystem".as_ref(),
                "du".as_ref(),
                "-s".as_ref(),
                "--raw".as_ref(),
                path.as_os_str(),
            ],
        )
        .ok()
        .and_then(|out| out.lines().nth(1)?.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| self.size(kind, name))
    }

    fn delete(&self, kind: VolumeKind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        if !path.exists() {
            return Ok(());
        }
        let deleted = run(
            "btrfs",
            &["-q".as_ref(), "subvolume".as_ref(), "delete".as_ref(), path.as_os_str()],
        );
        if deleted.is_ok() {
            return Ok(());
        }
        // Subvolumes made inside the container (or a plain directory left by a crash)
        // refuse `subvolume delete`; removing the tree file by file works for both,
        // since an emptied subvolume can be rmdir'ed.
        std::fs::remove_dir_all(&path).map_err(io(format!("delete {}", path.display())))
    }
}
