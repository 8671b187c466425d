//! A directory tree walked through descriptors, one component at a time with O_NOFOLLOW,
//! so that a tree changing under the walk (a running container) cannot lead it outside.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, fstat, fstatat};

use super::error::{ArchiveError, io_failed};

/// One file of the tree, met before (for a directory) what is inside it.
pub(super) struct Node<'a> {
    /// The directory that holds it (for the root: the root itself).
    pub dir: BorrowedFd<'a>,
    /// Its name in `dir` ("." for the root).
    pub name: &'a CStr,
    /// Its path below the root, empty for the root.
    pub rel: &'a [u8],
    /// Its own status, not a symlink target's.
    pub stat: &'a FileStat,
}

pub(super) fn is_dir(stat: &FileStat) -> bool {
    stat.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Where `rel` is on this host, for messages.
pub(super) fn host_path(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// Calls `visit` for `root` and everything under it, in name order, directories first.
/// Files that disappear during the walk are skipped.
pub(super) fn walk(
    root: &Path,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = Dir::open(root, flags, Mode::empty()).map_err(io_failed("open", root))?;
    let stat = fstat(&dir).map_err(io_failed("stat", root))?;
    visit(&Node {
        dir: dir.as_fd(),
        name: c".",
        rel: b"",
        stat: &stat,
    })?;
    walk_dir(root, dir, &mut Vec::new(), visit)
}

fn walk_dir(
    root: &Path,
    mut dir: Dir,
    rel: &mut Vec<u8>,
    visit: &mut dyn FnMut(&Node<'_>) -> Result<(), ArchiveError>,
) -> Result<(), ArchiveError> {
    let mut names: Vec<CString> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| io_failed("read directory", &host_path(root, rel))(e))?;
        let name = entry.file_name();
        if name != c"." && name != c".." {
            names.push(name.to_owned());
        }
    }
    names.sort();
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for name in &names {
        let len = rel.len();
        if len > 0 {
            rel.push(b'/');
        }
        rel.extend_from_slice(name.to_bytes());
        let stat = match fstatat(&dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => Some(stat),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(io_failed("stat", &host_path(root, rel))(e)),
        };
        if let Some(stat) = stat {
            visit(&Node {
                dir: dir.as_fd(),
                name,
                rel,
                stat: &stat,
            })?;
            if is_dir(&stat) {
                match Dir::openat(&dir, name.as_c_str(), flags, Mode::empty()) {
                    Ok(child) => walk_dir(root, child, rel, visit)?,
                    Err(Errno::ENOENT) => {}
                    Err(e) => return Err(io_failed("open", &host_path(root, rel))(e)),
                }
            }
        }
        rel.truncate(len);
    }
    Ok(())
}
