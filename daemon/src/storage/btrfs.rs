//! The `btrfs` driver: every volume is a subvolume; a container is a snapshot of its
//! image's subvolume, so creating one takes milliseconds whatever the image's size.

use std::path::{Path, PathBuf};

use super::command::run;
use super::{Driver, Result, VolumeKind, create_layout, io};

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
        run(
            "btrfs",
            &["-q".as_ref(), "subvolume".as_ref(), "create".as_ref(), path.as_os_str()],
        )?;
        Ok(path)
    }

    fn clone_image(&self, image: &str, container: &str) -> Result<PathBuf> {
        let source = self.path(VolumeKind::Image, image);
        let path = self.path(VolumeKind::Container, container);
        run(
            "btrfs",
            &[
                "-q".as_ref(),
                "subvolume".as_ref(),
                "snapshot".as_ref(),
                source.as_os_str(),
                path.as_os_str(),
            ],
        )?;
        Ok(path)
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
