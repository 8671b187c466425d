//! Walking a tree from a directory fd into a tar stream.
//!
//! The tree may belong to a container whose processes rename, replace and add files while we
//! walk. Every step therefore goes from the parent's fd to one name with O_NOFOLLOW, the
//! metadata in a header comes from the fd that was actually opened, and whatever vanished or
//! changed type between listing and opening is left out instead of failing the walk.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use tar::{EntryType, Header};

use crate::error::TreeError;
use crate::names::{check_top, join};
use crate::progress::Progress;
use crate::tarout::TarOut;
use crate::{Summary, WriteOptions};

/// Writes the tree under `dir` (an fd opened O_DIRECTORY) as a tar stream whose entries are `top/`,
/// `top/a`, `top/a/b`, ...: each directory before its contents, children in byte order of their
/// names. `top` must be a single normal path component (e.g. the source's basename).
///
/// Regular files, directories and symlinks (target verbatim) go in with numeric uid/gid only,
/// permission bits including setuid/setgid/sticky, and mtime in seconds; GNU long-name records
/// carry names and targets over 100 bytes. FIFOs, sockets and devices are never opened: they are
/// left out and listed in [`Summary::skipped`]. A file that vanishes during the walk is left out;
/// one that grows or shrinks while read gets exactly the size in its header (zeros if it shrank).
/// Hard links come out as separate files.
///
/// `progress` gets the cumulative bytes of file content now and then, and once at the end.
/// Returns the writer, after the end-of-archive marker and a flush, and what went in.
pub fn write_tree<W: Write>(
    dir: BorrowedFd<'_>,
    top: &OsStr,
    out: W,
    options: &WriteOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, Summary), TreeError> {
    let top = check_top(top)?;
    let mut walk = Walk {
        tar: TarOut::new(out),
        options,
        summary: Summary::default(),
        progress: Progress::new(progress),
    };
    let stat = fstat(dir).map_err(|e| TreeError::sys("stat", top, e))?;
    if kind(&stat) != SFlag::S_IFDIR {
        return Err(TreeError::sys("read directory", top, Errno::ENOTDIR));
    }
    let fd = dir.try_clone_to_owned().map_err(|e| TreeError::io("open", top, e))?;
    walk.directory(top, &stat)?;
    let mut stack = vec![Level::new(fd, top.to_vec())?];
    while let Some(level) = stack.last_mut() {
        let Some(name) = level.names.next() else {
            stack.pop();
            continue;
        };
        let path = join(&level.path, &name);
        if let Some(child) = walk.child(&level.fd, &name, path)? {
            stack.push(child);
        }
    }
    walk.progress.finish();
    let out = walk.tar.finish()?;
    Ok((out, walk.summary))
}

/// A mount of the kernel's own interfaces inside a running container (/proc, /sys,
/// cgroups, /dev/pts): what is in it is no file to copy, and some of it cannot be read to
/// an end. Such a directory is kept, empty, like the mount point it is.
fn is_kernel_interface(dir: &OwnedFd) -> bool {
    use nix::sys::statfs::{
        BPF_FS_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, DEBUGFS_MAGIC, DEVPTS_SUPER_MAGIC, PROC_SUPER_MAGIC,
        SECURITYFS_MAGIC, SYSFS_MAGIC, TRACEFS_MAGIC, fstatfs,
    };
    let interfaces = [
        PROC_SUPER_MAGIC,
        SYSFS_MAGIC,
        CGROUP_SUPER_MAGIC,
        CGROUP2_SUPER_MAGIC,
        DEVPTS_SUPER_MAGIC,
        DEBUGFS_MAGIC,
        TRACEFS_MAGIC,
        SECURITYFS_MAGIC,
        BPF_FS_MAGIC,
    ];
    fstatfs(dir).is_ok_and(|fs| interfaces.contains(&fs.filesystem_type()))
}

/// A directory being walked: its fd, its archive path and the names still to visit, in byte order.
struct Level {
    fd: OwnedFd,
    path: Vec<u8>,
    names: std::vec::IntoIter<Vec<u8>>,
}

impl Level {
    fn new(fd: OwnedFd, path: Vec<u8>) -> Result<Self, TreeError> {
        let fail = |e| TreeError::sys("read directory", &path, e);
        // A fresh open of "." has its own read position, so the caller's fd is never moved.
        let mut dir = Dir::openat(
            &fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(fail)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let name = entry.map_err(fail)?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        names.sort_unstable();
        Ok(Level {
            fd,
            path,
            names: names.into_iter(),
        })
    }
}

struct Walk<'a, W: Write> {
    tar: TarOut<W>,
    options: &'a WriteOptions,
    summary: Summary,
    progress: Progress<'a>,
}

impl<W: Write> Walk<'_, W> {
    /// Writes the entry `name` of `parent`; returns the directory to descend into, if it is one.
    fn child(&mut self, parent: &OwnedFd, name: &[u8], path: Vec<u8>) -> Result<Option<Level>, TreeError> {
        let stat = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(TreeError::sys("stat", &path, e)),
        };
        match kind(&stat) {
            SFlag::S_IFDIR => {
                let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = match openat(parent, name, flags, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(None),
                    Err(e) => return Err(TreeError::sys("open", &path, e)),
                };
                let stat = fstat(&fd).map_err(|e| TreeError::sys("stat", &path, e))?;
                self.directory(&path, &stat)?;
                if is_kernel_interface(&fd) {
                    return Ok(None);
                }
                Ok(Some(Level::new(fd, path)?))
            }
            SFlag::S_IFREG => {
                self.file(parent, name, &path)?;
                Ok(None)
            }
            SFlag::S_IFLNK => {
                self.symlink(parent, name, &path, &stat)?;
                Ok(None)
            }
            _ => {
                // Opening a FIFO would block and a device could act on the open: never touch them.
                self.summary.skipped.push(String::from_utf8_lossy(&path).into_owned());
                Ok(None)
            }
        }
    }

    fn directory(&mut self, path: &[u8], stat: &FileStat) -> Result<(), TreeError> {
        let mut name = path.to_vec();
        name.push(b'/');
        let header = self.header(EntryType::Directory, stat, stat.st_mode & 0o7777, 0);
        self.tar.header(header, &name, None)?;
        self.summary.dirs += 1;
        Ok(())
    }

    fn file(&mut self, parent: &OwnedFd, name: &[u8], path: &[u8]) -> Result<(), TreeError> {
        // O_NONBLOCK: should a FIFO be swapped in after the stat, the open must not hang.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
        let fd = match openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENXIO) => return Ok(()),
            Err(e) => return Err(TreeError::sys("open", path, e)),
        };
        let stat = fstat(&fd).map_err(|e| TreeError::sys("stat", path, e))?;
        if kind(&stat) != SFlag::S_IFREG {
            return Ok(());
        }
        let size = u64::try_from(stat.st_size).unwrap_or(0);
        let mode = self.options.file_mode.unwrap_or(stat.st_mode) & 0o7777;
        let header = self.header(EntryType::Regular, &stat, mode, size);
        self.tar.header(header, path, None)?;
        let progress = &mut self.progress;
        self.tar
            .file_data(&mut File::from(fd), size, path, &mut |n| progress.add(n))?;
        self.summary.files += 1;
        self.summary.bytes += size;
        Ok(())
    }

    fn symlink(&mut self, parent: &OwnedFd, name: &[u8], path: &[u8], stat: &FileStat) -> Result<(), TreeError> {
        let target = match readlinkat(parent, name) {
            Ok(target) => target,
            // Gone, or no longer a symlink, since the stat.
            Err(Errno::ENOENT | Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(TreeError::sys("read link", path, e)),
        };
        let header = self.header(EntryType::Symlink, stat, stat.st_mode & 0o7777, 0);
        self.tar.header(header, path, Some(target.as_bytes()))?;
        self.summary.symlinks += 1;
        Ok(())
    }

    /// A header with everything but the names; numeric owner only, so no user database is read.
    fn header(&self, kind: EntryType, stat: &FileStat, mode: u32, size: u64) -> Header {
        let (uid, gid) = self.options.owner.unwrap_or((stat.st_uid, stat.st_gid));
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
        header.set_size(size);
        header
    }
}

fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}
