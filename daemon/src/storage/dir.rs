//! The `dir` driver: volumes are plain directories; a clone is a copy with all metadata
//! (archive::copy_tree, what `cp -a --reflink=auto` keeps, several files at once), which
//! shares extents on filesystems that can (btrfs, xfs) and copies elsewhere.

use std::path::{Path, PathBuf};

use super::{Driver, Result, VolumeKind, create_layout, ensure_parent, io, temporary_name};

pub struct Dir {
    root: PathBuf,
}

impl Dir {
    pub fn open(root: &Path) -> Result<Self> {
        create_layout(root)?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }
}

impl Driver for Dir {
    fn name(&self) -> &'static str {
        "dir"
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn source(&self) -> String {
        self.root.display().to_string()
    }

    fn create_empty(&self, kind: VolumeKind, name: &str) -> Result<PathBuf> {
        let path = self.path(kind, name);
        ensure_parent(&path)?;
        std::fs::create_dir(&path).map_err(io(format!("create {}", path.display())))?;
        Ok(path)
    }

    fn clone_volume(&self, from: (VolumeKind, &str), to: (VolumeKind, &str)) -> Result<PathBuf> {
        // Copy under a temporary name so a crash mid-copy never leaves a volume that
        // looks complete.
        let tmp = self.path(to.0, &temporary_name(to.1));
        ensure_parent(&tmp)?;
        let source = self.path(from.0, from.1);
        // A crash mid-copy may have left one behind.
        self.delete(to.0, &temporary_name(to.1))?;
        std::fs::create_dir(&tmp).map_err(io(format!("create {}", tmp.display())))?;
        if let Err(e) = crate::archive::copy_tree(&source, &tmp) {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e.into());
        }
        let path = self.path(to.0, to.1);
        std::fs::rename(&tmp, &path).map_err(io(format!("rename {} to {}", tmp.display(), path.display())))?;
        Ok(path)
    }

    fn delete(&self, kind: VolumeKind, name: &str) -> Result<()> {
        let path = self.path(kind, name);
        match std::fs::remove_dir_all(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("delete {}", path.display()))(e)),
        }
    }
}
