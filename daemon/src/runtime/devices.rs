//! The container's /dev: a tmpfs with the standard nodes, devpts, shm and mqueue.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::error::{Context, Result};

/// (name, major, minor): the nodes every container gets, no more.
pub const NODES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Mounts and fills `root`/dev. In a user namespace mknod is refused, so the nodes are
/// bind mounts of the host's (harmless: they are the same character devices, and the
/// devices cgroup lets the container open no others).
pub fn populate(root: &Path, userns: bool) -> Result<()> {
    let dev = root.join("dev");
    fs::create_dir_all(&dev).ctx("create /dev")?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=65536k"),
    )
    .ctx("mount tmpfs on /dev")?;

    for (name, major, minor) in NODES {
        let path = dev.join(name);
        if userns {
            fs::write(&path, b"").ctx(format!("create /dev/{name}"))?;
            let host = Path::new("/dev").join(name);
            mount(Some(&host), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx(format!("bind /dev/{name}"))?;
        } else {
            mknod(
                &path,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )
            .ctx(format!("mknod /dev/{name}"))?;
            // mknod honours the umask; the nodes must be usable by everyone.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &path,
                Mode::from_bits_truncate(0o666),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .ctx(format!("chmod /dev/{name}"))?;
        }
    }
    for (name, target) in LINKS {
        symlink(target, dev.join(name)).ctx(format!("link /dev/{name}"))?;
    }

    let mut dirs = fs::DirBuilder::new();
    dirs.mode(0o755);
    for dir in ["pts", "shm", "mqueue"] {
        dirs.create(dev.join(dir)).ctx(format!("create /dev/{dir}"))?;
    }
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .ctx("mount devpts on /dev/pts")?;
    mount(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=65536k"),
    )
    .ctx("mount tmpfs on /dev/shm")?;
    mount(
        Some("mqueue"),
        &dev.join("mqueue"),
        Some("mqueue"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .ctx("mount mqueue on /dev/mqueue")?;
    Ok(())
}
