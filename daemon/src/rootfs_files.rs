//! Reading and writing files inside a container's root filesystem from the host,
//! with every path resolved as if the rootfs were `/` (openat2 RESOLVE_IN_ROOT): a
//! symlink or `..` planted in the container can never lead the daemon to a host file.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, renameat};
use nix::sys::stat::Mode;

fn resolve() -> ResolveFlag {
    ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS
}

fn open_root(rootfs: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

fn split(path: &str) -> io::Result<(&str, &str)> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name.is_empty() || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {path}"),
        ));
    }
    Ok((if dir.is_empty() { "/" } else { dir }, name))
}

/// Replaces (atomically) or creates the file at `path` inside `rootfs`.
pub fn write(rootfs: &Path, path: &str, contents: &[u8], mode: u32) -> io::Result<()> {
    let root = open_root(rootfs)?;
    let (dir, name) = split(path)?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(resolve());
    let parent = openat2(root.as_fd(), dir, how)?;
    let tmp = format!(".{name}.sysc-tmp");
    let _ = nix::unistd::unlinkat(parent.as_fd(), tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    let fd = openat(
        parent.as_fd(),
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )?;
    let mut file = std::fs::File::from(fd);
    let written = file
        .write_all(contents)
        .and_then(|_| nix::sys::stat::fchmod(file.as_fd(), Mode::from_bits_truncate(mode)).map_err(io::Error::from))
        .and_then(|_| file.sync_all())
        .and_then(|_| Ok(renameat(parent.as_fd(), tmp.as_str(), parent.as_fd(), name)?));
    if written.is_err() {
        let _ = nix::unistd::unlinkat(parent.as_fd(), tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// The first `limit` bytes of the regular file at `path` inside `rootfs`.
pub fn read(rootfs: &Path, path: &str, limit: u64) -> io::Result<Vec<u8>> {
    let root = open_root(rootfs)?;
    // O_PATH first: opening a device node a privileged container planted (a watchdog,
    // a tape) has effects of its own, so only a regular file is opened for reading.
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(resolve());
    let found = std::fs::File::from(openat2(root.as_fd(), path, how)?);
    if !found.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path} is not a regular file"),
        ));
    }
    let file = std::fs::File::open(format!("/proc/self/fd/{}", found.as_raw_fd()))?;
    let mut data = Vec::new();
    file.take(limit).read_to_end(&mut data)?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_fifo_or_device_is_never_opened_for_reading() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        nix::unistd::mkfifo(&root.path().join("etc/passwd"), Mode::from_bits_truncate(0o644)).unwrap();
        let err = read(root.path(), "/etc/passwd", 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        symlink("/dev/zero", root.path().join("etc/group")).unwrap();
        assert!(
            read(root.path(), "/etc/group", 100).is_err(),
            "resolved inside: no /dev/zero there"
        );
    }

    #[test]
    fn writes_and_reads_inside() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        write(root.path(), "/etc/hostname", b"web1\n", 0o644).unwrap();
        assert_eq!(read(root.path(), "/etc/hostname", 100).unwrap(), b"web1\n");
        assert_eq!(std::fs::read(root.path().join("etc/hostname")).unwrap(), b"web1\n");
    }

    #[test]
    fn symlinks_and_dotdot_stay_inside() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"host data").unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        // An absolute symlink and a directory symlink that point at the host file's dir.
        symlink(&victim, root.path().join("etc/hostname")).unwrap();
        symlink(outside.path(), root.path().join("escape")).unwrap();

        write(root.path(), "/etc/hostname", b"web1\n", 0o644).unwrap();
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            b"host data",
            "the host file must be untouched"
        );
        assert!(write(root.path(), "/escape/victim", b"x", 0o644).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"host data");
        let dotdot = format!("/../../../../..{}", victim.display());
        assert!(read(root.path(), &dotdot, 100).is_err());
    }
}
