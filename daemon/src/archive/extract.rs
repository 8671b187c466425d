//! Entries made on disk with *at() system calls, relative to directories opened one
//! component at a time with O_NOFOLLOW from the destination: no path in the archive, and no
//! symlink that an earlier entry made, can lead anything outside a destination.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat,
    utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, fchownat, linkat, symlinkat};

use super::error::{ArchiveError, io_failed, show};
use super::input::Probe;
use super::meta::{Kind, Manifest, Meta, components};
use super::reader::Member;
use super::walk::{host_path, is_dir};
use super::{BUF_SIZE, Counter, xattr};

pub(super) struct Extractor {
    tree: Tree,
    files: Files,
}

/// The destinations, and the directories open in them.
struct Tree {
    targets: Vec<Target>,
    /// The directories from `open_target`'s root down to the last parent resolved: entries
    /// come directory by directory, so the next one is most likely in the same place.
    open: Vec<(Vec<u8>, OwnedFd)>,
    open_target: usize,
}

struct Target {
    /// Normalized archive prefix.
    prefix: Vec<u8>,
    dest: PathBuf,
    /// Opened (and created) when the first entry for it comes.
    root: Option<OwnedFd>,
}

struct Files {
    /// Directories to give their metadata once everything inside them is written.
    dirs: Vec<DirFix>,
    buf: Vec<u8>,
    counter: Counter,
}

struct DirFix {
    target: usize,
    /// Path below the destination, empty for the destination itself.
    rel: Vec<u8>,
    mode: Mode,
    uid: Uid,
    gid: Gid,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Where an entry goes: its parent directory, its name there, and (for messages) the path
/// that is on this host and the one in the archive.
struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a CStr,
    host: &'a Path,
    path: &'a [u8],
}

impl Extractor {
    pub(super) fn new(targets: &[(String, PathBuf)]) -> Result<Self, ArchiveError> {
        let mut list = Vec::with_capacity(targets.len());
        for (prefix, dest) in targets {
            let parts = components(prefix.as_bytes()).filter(|parts| !parts.is_empty());
            let parts = parts.ok_or_else(|| ArchiveError::Unsafe {
                path: show(prefix.as_bytes()),
            })?;
            list.push(Target {
                prefix: parts.join(&b'/'),
                dest: dest.clone(),
                root: None,
            });
        }
        Ok(Extractor {
            tree: Tree {
                targets: list,
                open: Vec::new(),
                open_target: 0,
            },
            files: Files {
                dirs: Vec::new(),
                buf: vec![0; BUF_SIZE],
                counter: Counter::default(),
            },
        })
    }

    /// `manifest` is given the content of regular files.
    pub(super) fn add<R: Read>(
        &mut self,
        member: &mut Member<'_, R>,
        manifest: &mut Manifest,
        probe: &Probe,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let path = member.meta.path.clone();
        let (target, rel) = self
            .tree
            .route(&path)
            .ok_or_else(|| ArchiveError::entry(&path, "is outside every destination"))?;
        let host = host_path(&self.tree.targets[target].dest, rel);
        let (parent, name) = split_last(rel);
        if rel.is_empty() {
            if member.meta.kind != Kind::Dir {
                return Err(ArchiveError::entry(
                    &path,
                    "is not a directory but stands for a destination",
                ));
            }
            // Creates the destination.
            self.tree.parent(target, b"", &path)?;
            self.files.dirs.push(DirFix::new(target, Vec::new(), member)?);
            return Ok(());
        }
        let name = CString::new(name).map_err(|_| ArchiveError::entry(&path, "has a NUL byte in its name"))?;
        let source = match member.meta.kind {
            Kind::HardLink => Some(self.tree.link_source(target, &member.meta)?),
            _ => None,
        };
        let at = At {
            dir: self.tree.parent(target, parent, &path)?,
            name: &name,
            host: &host,
            path: &path,
        };
        match (member.meta.kind, source) {
            (Kind::File, _) => self.files.file(&at, member, manifest, probe, progress),
            (Kind::Dir, _) => {
                make_dir(&at)?;
                self.files.dirs.push(DirFix::new(target, rel.to_vec(), member)?);
                Ok(())
            }
            (Kind::Symlink, _) => symlink(&at, member),
            (Kind::HardLink, Some((dir, name))) => {
                linkat(&dir, name.as_c_str(), at.dir, at.name, AtFlags::empty()).map_err(|e| at.create_error(e))
            }
            (Kind::HardLink, None) => Err(ArchiveError::entry(&path, "is a link without a target")),
            (Kind::Char | Kind::Block | Kind::Fifo, _) => special(&at, member),
        }
    }

    /// Gives directories their metadata, now that nothing more is written inside them,
    /// innermost first.
    pub(super) fn finish(mut self, progress: &mut dyn FnMut(u64)) -> Result<(), ArchiveError> {
        for fix in self.files.dirs.iter().rev() {
            let host = host_path(&self.tree.targets[fix.target].dest, &fix.rel);
            let (parent, name) = split_last(&fix.rel);
            let name = CString::new(if name.is_empty() { b"." } else { name })
                .map_err(|_| ArchiveError::entry(&fix.rel, "has a NUL byte in its name"))?;
            let parent = self.tree.parent(fix.target, parent, &fix.rel)?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let dir = openat(parent, name.as_c_str(), flags, Mode::empty()).map_err(io_failed("open", &host))?;
            fchown(&dir, Some(fix.uid), Some(fix.gid)).map_err(io_failed("set the owner of", &host))?;
            fchmod(&dir, fix.mode).map_err(io_failed("set the mode of", &host))?;
            for (name, value) in &fix.xattrs {
                xattr::set_fd(dir.as_fd(), name, value).map_err(xattr_error(name, &host))?;
            }
            futimens(&dir, &TimeSpec::UTIME_OMIT, &fix.mtime).map_err(io_failed("set the times of", &host))?;
        }
        self.files.counter.report(progress);
        Ok(())
    }
}

impl Tree {
    /// The target whose prefix is the longest whole-component prefix of `path`, and the
    /// rest of the path below it (empty for the prefix itself).
    fn route<'p>(&self, path: &'p [u8]) -> Option<(usize, &'p [u8])> {
        let mut best: Option<(usize, &[u8])> = None;
        for (i, target) in self.targets.iter().enumerate() {
            let Some(rest) = path.strip_prefix(&target.prefix[..]) else {
                continue;
            };
            let rest = match rest {
                [] => rest,
                [b'/', tail @ ..] => tail,
                _ => continue,
            };
            if best.is_none_or(|(_, r)| rest.len() < r.len()) {
                best = Some((i, rest));
            }
        }
        best
    }

    /// The directory `rel` (a path below the destination, empty for the destination
    /// itself), opened one component at a time without following symlinks.
    fn parent(&mut self, target: usize, rel: &[u8], path: &[u8]) -> Result<BorrowedFd<'_>, ArchiveError> {
        if self.open_target != target {
            self.open.clear();
            self.open_target = target;
        }
        let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
        let same = self
            .open
            .iter()
            .zip(&parts)
            .take_while(|((open, _), part)| open == *part)
            .count();
        self.open.truncate(same);
        let Target { dest, root, .. } = &mut self.targets[target];
        let root = open_root(root, dest)?;
        for part in &parts[same..] {
            let from = self.open.last().map_or(root, |(_, fd)| fd.as_fd());
            let dir = descend(from, part, path, dest)?;
            self.open.push((part.to_vec(), dir));
        }
        Ok(self.open.last().map_or(root, |(_, fd)| fd.as_fd()))
    }

    /// The parent directory and name of what a hard link entry links to, which must be an
    /// earlier entry of the same destination and not a directory.
    fn link_source(&mut self, target: usize, meta: &Meta) -> Result<(OwnedFd, CString), ArchiveError> {
        let outside = || {
            ArchiveError::entry(
                &meta.path,
                format!("links outside its destination ({})", show(&meta.link)),
            )
        };
        let link = components(&meta.link).ok_or_else(outside)?.join(&b'/');
        let (found, rel) = self
            .route(&link)
            .filter(|(found, _)| *found == target)
            .ok_or_else(outside)?;
        let (parent, name) = split_last(rel);
        let missing = || {
            ArchiveError::entry(
                &meta.path,
                format!("links to {}, not an earlier file", show(&meta.link)),
            )
        };
        let name = CString::new(name).map_err(|_| missing())?;
        if rel.is_empty() {
            return Err(missing());
        }
        // Not through `open`: that is kept for the entry's own parent.
        let Target { dest, root, .. } = &mut self.targets[found];
        let mut dir = open_root(root, dest)?
            .try_clone_to_owned()
            .map_err(io_failed("open", dest))?;
        for part in parent.split(|&b| b == b'/').filter(|p| !p.is_empty()) {
            dir = descend(dir.as_fd(), part, &meta.path, dest)?;
        }
        match fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if !is_dir(&stat) => Ok((dir, name)),
            Ok(_) | Err(Errno::ENOENT) => Err(missing()),
            Err(e) => Err(io_failed("stat", &host_path(dest, rel))(e)),
        }
    }
}

/// (parent, last component) of a path; ("", "") for the empty path.
pub(super) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => (&path[..slash], &path[slash + 1..]),
        None => (&path[..0], path),
    }
}

/// A destination, created if missing (its entry sets its metadata later), and opened.
fn open_root<'a>(root: &'a mut Option<OwnedFd>, dest: &Path) -> Result<BorrowedFd<'a>, ArchiveError> {
    let fd: &OwnedFd = match root {
        Some(fd) => fd,
        empty => {
            fs::create_dir_all(dest).map_err(io_failed("create", dest))?;
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            empty.insert(open(dest, flags, Mode::empty()).map_err(io_failed("open", dest))?)
        }
    };
    Ok(fd.as_fd())
}

/// Opens the directory `name` in `dir`, refusing a symlink.
fn descend(dir: BorrowedFd<'_>, name: &[u8], path: &[u8], dest: &Path) -> Result<OwnedFd, ArchiveError> {
    let name = CString::new(name).map_err(|_| ArchiveError::entry(path, "has a NUL byte in its name"))?;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name.as_c_str(), flags, Mode::empty()).map_err(|e| match e {
        Errno::ENOENT => ArchiveError::entry(path, "is in a directory that no earlier entry made"),
        Errno::ENOTDIR | Errno::ELOOP => ArchiveError::entry(path, "is below something that is not a directory"),
        e => io_failed("open a directory in", dest)(e),
    })
}

impl Files {
    fn file<R: Read>(
        &mut self,
        at: &At<'_>,
        member: &mut Member<'_, R>,
        manifest: &mut Manifest,
        probe: &Probe,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let (uid, gid) = owner(&member.meta)?;
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(at.dir, at.name, flags, Mode::from_bits_truncate(0o600)).map_err(|e| at.create_error(e))?;
        let mut file = File::from(fd);
        let counter = &mut self.counter;
        member.copy_content(&mut self.buf, probe, &mut |chunk| {
            manifest.add_content(chunk);
            file.write_all(chunk).map_err(io_failed("write", at.host))?;
            counter.add(chunk.len(), progress);
            Ok(())
        })?;
        // Owner before mode (a chown clears setuid), extended attributes after both (a
        // chown or a write clears security.capability).
        fchown(&file, Some(uid), Some(gid)).map_err(io_failed("set the owner of", at.host))?;
        fchmod(&file, mode(&member.meta)).map_err(io_failed("set the mode of", at.host))?;
        for (name, value) in &member.ext.xattrs {
            xattr::set_fd(file.as_fd(), name, value).map_err(xattr_error(name, at.host))?;
        }
        futimens(&file, &TimeSpec::UTIME_OMIT, &mtime(member)).map_err(io_failed("set the times of", at.host))?;
        // Some file systems report a failed write only here.
        nix::unistd::close(OwnedFd::from(file)).map_err(io_failed("write", at.host))
    }
}

impl DirFix {
    fn new<R: Read>(target: usize, rel: Vec<u8>, member: &mut Member<'_, R>) -> Result<Self, ArchiveError> {
        let (uid, gid) = owner(&member.meta)?;
        Ok(DirFix {
            target,
            rel,
            mode: mode(&member.meta),
            uid,
            gid,
            mtime: mtime(member),
            xattrs: std::mem::take(&mut member.ext.xattrs),
        })
    }
}

impl At<'_> {
    fn create_error(&self, e: Errno) -> ArchiveError {
        match e {
            Errno::EEXIST => ArchiveError::entry(self.path, "already exists"),
            e => io_failed("create", self.host)(e),
        }
    }

    /// Owner, extended attributes and times of what is at `self`, which is not followed.
    fn set_metadata<R: Read>(&self, member: &Member<'_, R>) -> Result<(), ArchiveError> {
        let (uid, gid) = owner(&member.meta)?;
        let no_follow = AtFlags::AT_SYMLINK_NOFOLLOW;
        fchownat(self.dir, self.name, Some(uid), Some(gid), no_follow)
            .map_err(io_failed("set the owner of", self.host))?;
        if member.meta.kind != Kind::Symlink {
            // The node was just made here, by us: following it cannot lead elsewhere.
            fchmodat(self.dir, self.name, mode(&member.meta), FchmodatFlags::FollowSymlink)
                .map_err(io_failed("set the mode of", self.host))?;
        }
        let path = xattr::at(self.dir, self.name);
        for (name, value) in &member.ext.xattrs {
            xattr::set_path(&path, name, value).map_err(xattr_error(name, self.host))?;
        }
        utimensat(
            self.dir,
            self.name,
            &TimeSpec::UTIME_OMIT,
            &mtime(member),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io_failed("set the times of", self.host))
    }
}

fn make_dir(at: &At<'_>) -> Result<(), ArchiveError> {
    match mkdirat(at.dir, at.name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) if fstatat(at.dir, at.name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| is_dir(&st)) => {
            Ok(())
        }
        Err(e) => Err(at.create_error(e)),
    }
}

fn symlink<R: Read>(at: &At<'_>, member: &Member<'_, R>) -> Result<(), ArchiveError> {
    let target = CString::new(member.meta.link.clone())
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ArchiveError::entry(at.path, "has an empty or malformed link target"))?;
    symlinkat(target.as_c_str(), at.dir, at.name).map_err(|e| at.create_error(e))?;
    at.set_metadata(member)
}

fn special<R: Read>(at: &At<'_>, member: &Member<'_, R>) -> Result<(), ArchiveError> {
    let kind = match member.meta.kind {
        Kind::Char => SFlag::S_IFCHR,
        Kind::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let (major, minor) = member.meta.dev;
    let dev = makedev(major.into(), minor.into());
    mknodat(at.dir, at.name, kind, Mode::from_bits_truncate(0o600), dev).map_err(|e| at.create_error(e))?;
    at.set_metadata(member)
}

fn owner(meta: &Meta) -> Result<(Uid, Gid), ArchiveError> {
    // u32::MAX would mean "leave as it is" to chown.
    let id = |id: u64| u32::try_from(id).ok().filter(|&id| id != u32::MAX);
    match (id(meta.uid), id(meta.gid)) {
        (Some(uid), Some(gid)) => Ok((Uid::from_raw(uid), Gid::from_raw(gid))),
        _ => Err(ArchiveError::entry(&meta.path, "has an owner out of range")),
    }
}

fn mode(meta: &Meta) -> Mode {
    Mode::from_bits_truncate(meta.mode & 0o7777)
}

fn mtime<R: Read>(member: &Member<'_, R>) -> TimeSpec {
    let (secs, nanos) = member.ext.mtime.unwrap_or((member.meta.mtime, 0));
    TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), nanos.into())
}

fn xattr_error<'a>(name: &'a [u8], path: &'a Path) -> impl FnOnce(std::io::Error) -> ArchiveError + 'a {
    move |error| ArchiveError::Io {
        what: format!("set extended attribute {} of {}", show(name), path.display()),
        error,
    }
}
