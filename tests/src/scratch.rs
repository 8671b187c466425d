//! Small filesystems a test mounts for itself (to fill them up), unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// A tmpfs of `size` ("40m") at a new directory under /tmp.
    pub fn mount(size: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sysc-tmpfs")
            .tempdir_in("/tmp")
            .unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs at {}", dir.path().display());
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Names in the top directory.
    pub fn entries(&self) -> Vec<String> {
        std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// A btrfs of its own, on a sparse loop file, mounted under a new directory in /tmp: a
/// btrfs that is not the daemon's.
pub struct LoopBtrfs {
    dir: tempfile::TempDir,
}

impl LoopBtrfs {
    pub fn mount(size_mib: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("sysc-btrfs")
            .tempdir_in("/tmp")
            .unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image).unwrap().set_len(size_mib << 20).unwrap();
        let made = Command::new("mkfs.btrfs").arg("-q").arg(&image).status().unwrap();
        assert!(made.success(), "mkfs.btrfs {}", image.display());
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        // A loop device set up by mount goes away with the unmount (autoclear).
        let mounted = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mnt)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount {}", image.display());
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        let mnt = self.path();
        let unmounted = Command::new("umount").arg(&mnt).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&mnt).status();
        }
    }
}
