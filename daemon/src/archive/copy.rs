//! A tree copied with everything `cp -a` keeps (owners, modes, times, extended attributes,
//! hard links, devices, holes), its regular files by several threads at once.
//!
//! A dir pool's snapshot is this copy taken while the container is frozen, so the copy's
//! speed is how long the container stands still. The kernel moves the bytes (a reflink
//! where the file system shares extents, else copy_file_range), and one thread alone
//! leaves the other cores idle. The walk makes directories, symlinks and special files in
//! order; the workers then copy regular files, each opened with openat2 below the two
//! roots without following any symlink; hard links and the directories' own metadata
//! (times last, as making entries changes them) come after.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, copy_file_range, openat2, readlinkat};
use nix::sys::stat::{
    FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::sys::uio::{pread, pwrite};
use nix::unistd::{Gid, Uid, Whence, fchown, fchownat, ftruncate, linkat, lseek, symlinkat};

use super::error::{ArchiveError, io_failed};
use super::extract::split_last;
use super::walk::{Node, host_path, walk};
use super::{BUF_SIZE, xattr};

nix::ioctl_write_int!(ficlone, 0x94, 9);

/// Copies everything under `source` into `dest`, an empty directory, which also takes
/// `source`'s own owner, mode, attributes and times. On an error, what was copied so far
/// stays for the caller to remove.
pub fn copy_tree(source: &Path, dest: &Path) -> Result<(), ArchiveError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let open_root = |path: &Path| nix::fcntl::open(path, flags, Mode::empty()).map_err(io_failed("open", path));
    let roots = Roots {
        source: open_root(source)?,
        dest: open_root(dest)?,
        source_path: source,
        dest_path: dest,
    };
    let mut plan = Plan::default();
    walk(source, &mut |node| plan.add(&roots, node))?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    copy_files(&roots, &mut plan.files, workers)?;
    for (first, rel) in &plan.links {
        let (from_dir, from_name) = roots.dest_parent(first)?;
        let (to_dir, to_name) = roots.dest_parent(rel)?;
        linkat(
            &from_dir,
            from_name.as_c_str(),
            &to_dir,
            to_name.as_c_str(),
            AtFlags::empty(),
        )
        .map_err(io_failed("link", &host_path(dest, rel)))?;
    }
    // Children before their parents: a directory's times are final only once nothing
    // more is made inside it.
    for dir in plan.dirs.iter().rev() {
        roots.finish_dir(dir)?;
    }
    Ok(())
}

struct Roots<'a> {
    source: OwnedFd,
    dest: OwnedFd,
    source_path: &'a Path,
    dest_path: &'a Path,
}

/// What the walk leaves for later.
#[derive(Default)]
struct Plan {
    files: Vec<Entry>,
    /// (the copy of the inode's first path, a further path of it)
    links: Vec<(Vec<u8>, Vec<u8>)>,
    dirs: Vec<DirEntry>,
    /// The first path of each inode with more than one link.
    first_paths: HashMap<(u64, u64), Vec<u8>>,
    /// The destination directories from the root down to the one the walk is in.
    open: Vec<(Vec<u8>, OwnedFd)>,
}

struct Entry {
    rel: Vec<u8>,
    stat: FileStat,
}

struct DirEntry {
    entry: Entry,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Plan {
    fn add(&mut self, roots: &Roots<'_>, node: &Node<'_>) -> Result<(), ArchiveError> {
        let source = || host_path(roots.source_path, node.rel);
        let here = host_path(roots.dest_path, node.rel);
        let entry = Entry {
            rel: node.rel.to_vec(),
            stat: *node.stat,
        };
        let source_xattrs =
            || xattr::list(&xattr::at(node.dir, node.name)).map_err(io_failed("list the attributes of", &source()));
        if node.rel.is_empty() {
            let xattrs = source_xattrs()?;
            self.dirs.push(DirEntry { entry, xattrs });
            return Ok(());
        }
        let (parent_rel, _) = split_last(node.rel);
        while self.open.last().is_some_and(|(rel, _)| rel != parent_rel) {
            self.open.pop();
        }
        let parent = self.open.last().map_or(roots.dest.as_fd(), |(_, fd)| fd.as_fd());
        let name = node.name;
        let stat = node.stat;
        match stat.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                mkdirat(parent, name, Mode::from_bits_truncate(0o700)).map_err(io_failed("create", &here))?;
                let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let fd = nix::fcntl::openat(parent, name, flags, Mode::empty()).map_err(io_failed("open", &here))?;
                let xattrs = source_xattrs()?;
                self.dirs.push(DirEntry { entry, xattrs });
                self.open.push((node.rel.to_vec(), fd));
            }
            libc::S_IFREG => {
                if stat.st_nlink > 1 {
                    let inode = (stat.st_dev, stat.st_ino);
                    if let Some(first) = self.first_paths.get(&inode) {
                        self.links.push((first.clone(), entry.rel));
                        return Ok(());
                    }
                    self.first_paths.insert(inode, entry.rel.clone());
                }
                self.files.push(entry);
            }
            kind => {
                if kind == libc::S_IFLNK {
                    let target = readlinkat(node.dir, name).map_err(io_failed("read the link", &source()))?;
                    symlinkat(target.as_os_str(), parent, name).map_err(io_failed("create", &here))?;
                } else {
                    let kind = SFlag::from_bits_truncate(kind);
                    mknodat(parent, name, kind, Mode::from_bits_truncate(0o600), stat.st_rdev)
                        .map_err(io_failed("create", &here))?;
                }
                let no_follow = AtFlags::AT_SYMLINK_NOFOLLOW;
                fchownat(parent, name, Some(uid(stat)), Some(gid(stat)), no_follow)
                    .map_err(io_failed("set the owner of", &here))?;
                if kind != libc::S_IFLNK {
                    // Made here a moment ago, by us: following it cannot lead elsewhere.
                    fchmodat(parent, name, mode(stat), FchmodatFlags::FollowSymlink)
                        .map_err(io_failed("set the mode of", &here))?;
                }
                let path = xattr::at(parent, name);
                for (attr, value) in source_xattrs()? {
                    set_xattr(|| xattr::set_path(&path, &attr, &value), &here)?;
                }
                let (atime, mtime) = times(stat);
                utimensat(parent, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(io_failed("set the times of", &here))?;
            }
        }
        Ok(())
    }
}

impl Roots<'_> {
    /// `rel` below a root, never through a symlink, not even one made meanwhile.
    fn open(&self, root: BorrowedFd<'_>, rel: &[u8], flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        let path = if rel.is_empty() { b"." } else { rel };
        openat2(root, OsStr::from_bytes(path), how)
    }

    /// The directory that holds `rel` in the destination, and its name there.
    fn dest_parent(&self, rel: &[u8]) -> Result<(OwnedFd, CString), ArchiveError> {
        let (parent, name) = split_last(rel);
        let here = host_path(self.dest_path, rel);
        let dir = self
            .open(
                self.dest.as_fd(),
                parent,
                OFlag::O_PATH | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(io_failed("open the directory of", &here))?;
        let name = CString::new(name).map_err(|_| io_failed("link", &here)(Errno::EINVAL))?;
        Ok((dir, name))
    }

    fn copy_file(&self, file: &Entry, reflinks: &AtomicBool) -> Result<(), ArchiveError> {
        let (source_path, here) = (
            host_path(self.source_path, &file.rel),
            host_path(self.dest_path, &file.rel),
        );
        let source = self
            .open(self.source.as_fd(), &file.rel, OFlag::O_RDONLY, Mode::empty())
            .map_err(io_failed("open", &source_path))?;
        let create = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL;
        let copy = self
            .open(self.dest.as_fd(), &file.rel, create, Mode::from_bits_truncate(0o600))
            .map_err(io_failed("create", &here))?;
        copy_content(&source, &copy, &file.stat, reflinks).map_err(io_failed("copy", &source_path))?;
        let xattrs = xattr::list_fd(source.as_fd()).map_err(io_failed("list the attributes of", &source_path))?;
        take_metadata(copy.as_fd(), &file.stat, &xattrs, &here)?;
        // Some file systems report a failed write only here.
        nix::unistd::close(copy).map_err(io_failed("write", &here))
    }

    fn finish_dir(&self, dir: &DirEntry) -> Result<(), ArchiveError> {
        let Entry { rel, stat } = &dir.entry;
        let here = host_path(self.dest_path, rel);
        let fd = self
            .open(
                self.dest.as_fd(),
                rel,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                Mode::empty(),
            )
            .map_err(io_failed("open", &here))?;
        take_metadata(fd.as_fd(), stat, &dir.xattrs, &here)
    }
}

/// The regular files, largest first so that no big one is left for last, by `workers`
/// threads; the first error stops them all.
fn copy_files(roots: &Roots<'_>, files: &mut [Entry], workers: usize) -> Result<(), ArchiveError> {
    files.sort_by_key(|file| Reverse(file.stat.st_size));
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let reflinks = AtomicBool::new(true);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let Some(file) = files.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    if let Err(e) = roots.copy_file(file, &reflinks) {
                        stop.store(true, Ordering::Relaxed);
                        failed.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(e);
                    }
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The bytes of `source` into the empty `copy`: shared extents where the file system
/// can (`reflinks` turns false after the first refusal), else the data segments one by
/// one, leaving the holes as holes.
fn copy_content(source: &OwnedFd, copy: &OwnedFd, stat: &FileStat, reflinks: &AtomicBool) -> nix::Result<()> {
    let (size, blocks) = (stat.st_size, stat.st_blocks);
    if size == 0 {
        return Ok(());
    }
    if reflinks.load(Ordering::Relaxed) {
        // SAFETY: FICLONE takes the source descriptor as its argument; both are open.
        match unsafe { ficlone(copy.as_raw_fd(), source.as_raw_fd() as libc::c_ulong) } {
            Ok(_) => return Ok(()),
            Err(Errno::EOPNOTSUPP | Errno::EXDEV | Errno::EINVAL | Errno::ENOTTY) => {
                reflinks.store(false, Ordering::Relaxed)
            }
            Err(e) => return Err(e),
        }
    }
    if blocks * 512 >= size {
        // Not sparse: no holes to look for.
        return copy_range(source, copy, 0, size);
    }
    let mut offset = 0;
    while offset < size {
        let start = match lseek(source, offset, Whence::SeekData) {
            Ok(start) => start,
            Err(Errno::ENXIO) => break,   // only a hole is left
            Err(Errno::EINVAL) => offset, // no SEEK_DATA here: all of it is data
            Err(e) => return Err(e),
        };
        let end = match lseek(source, start, Whence::SeekHole) {
            Ok(end) => end.min(size),
            Err(Errno::EINVAL) => size,
            Err(e) => return Err(e),
        };
        copy_range(source, copy, start, end)?;
        offset = end;
    }
    if offset < size {
        // A hole at the end: only the size says it is there.
        ftruncate(copy, size)?;
    }
    Ok(())
}

fn copy_range(source: &OwnedFd, copy: &OwnedFd, mut from: i64, end: i64) -> nix::Result<()> {
    let mut to = from;
    while from < end {
        let len = usize::try_from(end - from).unwrap_or(usize::MAX);
        match copy_file_range(source, Some(&mut from), copy, Some(&mut to), len) {
            Ok(0) => return Ok(()), // the source shrank
            Ok(_) | Err(Errno::EINTR) => {}
            // Not between these two file systems: through a buffer.
            Err(Errno::EXDEV | Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS) => {
                return copy_by_reads(source, copy, from, end);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_by_reads(source: &OwnedFd, copy: &OwnedFd, mut from: i64, end: i64) -> nix::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    while from < end {
        let want = buf.len().min(usize::try_from(end - from).unwrap_or(usize::MAX));
        let n = match pread(source, &mut buf[..want], from) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        let mut written = 0;
        while written < n {
            match pwrite(copy, &buf[written..n], from + written as i64) {
                Ok(w) => written += w,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        from += n as i64;
    }
    Ok(())
}

/// The original's owner, mode, extended attributes and times onto the copy open at `fd`.
/// Owner before mode (a chown clears setuid), extended attributes after both (a chown or
/// a write clears security.capability), times last.
fn take_metadata(
    fd: BorrowedFd<'_>,
    stat: &FileStat,
    xattrs: &[(Vec<u8>, Vec<u8>)],
    here: &Path,
) -> Result<(), ArchiveError> {
    fchown(fd, Some(uid(stat)), Some(gid(stat))).map_err(io_failed("set the owner of", here))?;
    fchmod(fd, mode(stat)).map_err(io_failed("set the mode of", here))?;
    for (attr, value) in xattrs {
        set_xattr(|| xattr::set_fd(fd, attr, value), here)?;
    }
    let (atime, mtime) = times(stat);
    futimens(fd, &atime, &mtime).map_err(io_failed("set the times of", here))
}

/// An attribute the destination cannot hold at all is left behind, as `cp -a` does.
fn set_xattr(set: impl FnOnce() -> std::io::Result<()>, here: &Path) -> Result<(), ArchiveError> {
    match set() {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            tracing::debug!(path = %here.display(), "extended attribute not supported, left out of the copy");
            Ok(())
        }
        other => other.map_err(io_failed("set an extended attribute of", here)),
    }
}

fn uid(stat: &FileStat) -> Uid {
    Uid::from_raw(stat.st_uid)
}

fn gid(stat: &FileStat) -> Gid {
    Gid::from_raw(stat.st_gid)
}

fn mode(stat: &FileStat) -> Mode {
    Mode::from_bits_truncate(stat.st_mode & 0o7777)
}

fn times(stat: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(stat.st_atime, stat.st_atime_nsec),
        TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec),
    )
}
