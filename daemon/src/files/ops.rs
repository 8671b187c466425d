//! The requests that move no file content: list, mkdir, delete.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, readlinkat};
use nix::sys::stat::{FileStat, Mode, fstatat, mkdirat};
use nix::unistd::UnlinkatFlags;

use super::protocol::{Fault, Info, Kind};
use super::resolve::{self, Failure, NewDirs};

/// What `stat` says about a file, as the container sees it.
pub fn info(name: &[u8], stat: &FileStat, link_target: Vec<u8>) -> Info {
    Info {
        name: name.to_vec(),
        kind: Kind::from_mode(stat.st_mode),
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
        gid: stat.st_gid,
        size: stat.st_size as u64,
        mtime: stat.st_mtime,
        link_target,
    }
}

/// The entries of a directory in name order, or a lone file (not following a final
/// symlink, like `ls -l`).
pub fn list(root: BorrowedFd<'_>, path: &[u8], mut batch: impl FnMut(Vec<Info>)) -> Result<(), Failure> {
    // "/", "/a/.." and the like are directories; anything else may be a lone file.
    if let Ok((parent, name)) = resolve::split(path) {
        let parent_dir = resolve::open(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        let own = fstatat(&parent_dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Failure::errno(path, e))?;
        if Kind::from_mode(own.st_mode) != Kind::Directory && (path.last() != Some(&b'/')) {
            let target = link_target(parent_dir.as_fd(), &name, &own);
            batch(vec![info(&name, &own, target)]);
            return Ok(());
        }
    }
    let dir = resolve::open(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
    let mut names = names_in(&dir, path)?;
    names.sort();
    let mut pending = Vec::new();
    let mut pending_bytes = 0;
    for name in names {
        let stat = match fstatat(&dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::ENOENT) => continue, // gone since the directory was read
            Err(e) => return Err(Failure::errno(&resolve::join(path, &name), e)),
        };
        let target = link_target(dir.as_fd(), &name, &stat);
        // JSON spells each byte as up to four characters.
        pending_bytes += 160 + 4 * (name.len() + target.len());
        pending.push(info(&name, &stat, target));
        if pending_bytes >= super::protocol::LIST_BATCH_BYTES {
            batch(std::mem::take(&mut pending));
            pending_bytes = 0;
        }
    }
    if !pending.is_empty() {
        batch(pending);
    }
    Ok(())
}

fn link_target(dir: BorrowedFd<'_>, name: &[u8], stat: &FileStat) -> Vec<u8> {
    if Kind::from_mode(stat.st_mode) != Kind::Symlink {
        return Vec::new();
    }
    readlinkat(dir, OsStr::from_bytes(name))
        .map(|t| t.as_bytes().to_vec())
        .unwrap_or_default()
}

pub struct MkdirRequest<'a> {
    pub path: &'a [u8],
    pub parents: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

pub fn mkdir(root: BorrowedFd<'_>, request: &MkdirRequest<'_>) -> Result<Info, Failure> {
    let (parent, name) = resolve::split(request.path)?;
    let new = NewDirs {
        uid: request.uid.unwrap_or(0),
        gid: request.gid.unwrap_or(0),
        mode: request.mode.unwrap_or(0o755),
    };
    let parent_dir = resolve::open_dir(root, &parent, request.parents.then_some(new))?;
    match mkdirat(&parent_dir, OsStr::from_bytes(&name), Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) if request.parents => {
            let existing = fstatat(&parent_dir, OsStr::from_bytes(&name), AtFlags::empty())
                .map_err(|e| Failure::errno(request.path, e))?;
            if Kind::from_mode(existing.st_mode) != Kind::Directory {
                return Err(Failure::new(
                    Fault::Exists,
                    format!("{} exists and is not a directory", resolve::show(request.path)),
                ));
            }
            return Ok(info(&name, &existing, Vec::new()));
        }
        Err(Errno::EEXIST) => {
            return Err(Failure::new(
                Fault::Exists,
                format!("{} already exists", resolve::show(request.path)),
            ));
        }
        Err(e) => return Err(Failure::errno(request.path, e)),
    }
    let made = open_below(&parent_dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, request.path)?;
    if let Err(failure) = resolve::apply_owner_mode(&made, request.path, new.uid, new.gid, new.mode) {
        let _ = nix::unistd::unlinkat(&parent_dir, OsStr::from_bytes(&name), UnlinkatFlags::RemoveDir);
        return Err(failure);
    }
    let stat = resolve::stat(&made, request.path)?;
    Ok(info(&name, &stat, Vec::new()))
}

/// Opens `name` in `dir` without following a symlink there.
pub fn open_below(dir: &OwnedFd, name: &[u8], flags: OFlag, path: &[u8]) -> Result<OwnedFd, Failure> {
    nix::fcntl::openat(
        dir,
        OsStr::from_bytes(name),
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Failure::errno(path, e))
}

/// Deletes a file, symlink (not its target) or directory. The root can't be deleted.
pub fn delete(root: BorrowedFd<'_>, path: &[u8], recursive: bool) -> Result<(), Failure> {
    let (parent, name) = resolve::split(path)?;
    let parent_dir = match resolve::open(root, &parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()) {
        Ok(dir) => dir,
        Err(failure) if recursive && failure.fault == Fault::NotFound => return Ok(()),
        Err(failure) => return Err(failure),
    };
    let stat = match fstatat(&parent_dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) if recursive => return Ok(()),
        Err(e) => return Err(Failure::errno(path, e)),
    };
    if Kind::from_mode(stat.st_mode) != Kind::Directory {
        return nix::unistd::unlinkat(&parent_dir, OsStr::from_bytes(&name), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| Failure::errno(path, e));
    }
    if recursive {
        let dir = open_below(&parent_dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, path)?;
        empty_dir(dir, path)?;
    }
    match nix::unistd::unlinkat(&parent_dir, OsStr::from_bytes(&name), UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(()),
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => Err(Failure::new(
            Fault::Invalid,
            format!(
                "{} is a directory that is not empty (use -f to delete it with its contents)",
                resolve::show(path)
            ),
        )),
        Err(e) => Err(Failure::errno(path, e)),
    }
}

/// The names in a directory, but `.` and `..`.
fn names_in(dir: &OwnedFd, path: &[u8]) -> Result<Vec<Vec<u8>>, Failure> {
    let copy = dir.try_clone().map_err(|e| Failure::new(Fault::Host, e.to_string()))?;
    let mut entries = Dir::from_fd(copy).map_err(|e| Failure::errno(path, e))?;
    let mut names = Vec::new();
    for entry in entries.iter() {
        let entry = entry.map_err(|e| Failure::errno(path, e))?;
        let bytes = entry.file_name().to_bytes();
        if bytes != b"." && bytes != b".." {
            names.push(bytes.to_vec());
        }
    }
    Ok(names)
}

/// Removes everything in a directory, descending through descriptors opened with
/// O_NOFOLLOW, so a symlink swapped in meanwhile is removed rather than followed.
fn empty_dir(dir: OwnedFd, path: &[u8]) -> Result<(), Failure> {
    for name in names_in(&dir, path)? {
        let child = resolve::join(path, &name);
        match nix::unistd::unlinkat(&dir, OsStr::from_bytes(&name), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => continue,
            Err(Errno::EISDIR) => {}
            Err(e) => return Err(Failure::errno(&child, e)),
        }
        let sub = open_below(&dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &child)?;
        empty_dir(sub, &child)?;
        nix::unistd::unlinkat(&dir, OsStr::from_bytes(&name), UnlinkatFlags::RemoveDir)
            .map_err(|e| Failure::errno(&child, e))?;
    }
    Ok(())
}
