//! Directories below the extraction's destination, reached one component at a time.
//!
//! Each step is an openat of one name with O_NOFOLLOW from the fd of the step before, so a
//! symlink anywhere on the way (from the archive itself or planted by someone else meanwhile)
//! fails the step instead of leading out of the destination. The fds of the last path stay
//! open, because archives list the entries of one directory together.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};

use crate::error::{TreeError, show};
use crate::names::join;

pub(crate) struct Dest<'d> {
    root: BorrowedFd<'d>,
    /// The archive's top name, to show paths as the archive has them.
    top: Vec<u8>,
    open: Vec<(Vec<u8>, OwnedFd)>,
}

impl<'d> Dest<'d> {
    pub(crate) fn new(root: BorrowedFd<'d>) -> Self {
        Dest {
            root,
            top: Vec::new(),
            open: Vec::new(),
        }
    }

    pub(crate) fn set_top(&mut self, top: &[u8]) {
        self.top = top.to_vec();
    }

    /// `top/a/b` for the components `a`, `b`.
    pub(crate) fn path<P: AsRef<[u8]>>(&self, parts: &[P]) -> Vec<u8> {
        parts
            .iter()
            .fold(self.top.clone(), |path, part| join(&path, part.as_ref()))
    }

    /// A readable fd of the destination itself: the caller's fd may be O_PATH, on which
    /// fchown and fchmod fail.
    pub(crate) fn open_root(&self) -> Result<OwnedFd, TreeError> {
        openat(
            self.root,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| TreeError::sys("open", &self.top, e))
    }

    /// The directory `dirs` below the destination, for the archive entry `entry` (for messages).
    pub(crate) fn dir<P: AsRef<[u8]>>(&mut self, dirs: &[P], entry: &[u8]) -> Result<BorrowedFd<'_>, TreeError> {
        let same = self
            .open
            .iter()
            .zip(dirs)
            .take_while(|((open, _), want)| open.as_slice() == want.as_ref())
            .count();
        self.open.truncate(same);
        for depth in same..dirs.len() {
            let name = dirs[depth].as_ref();
            let parent = self.open.last().map_or(self.root, |(_, fd)| fd.as_fd());
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            match openat(parent, name, flags, Mode::empty()) {
                Ok(fd) => self.open.push((name.to_vec(), fd)),
                Err(Errno::ENOENT) => {
                    let dir = self.path(&dirs[..=depth]);
                    let reason = format!("comes before its directory {}", show(&dir));
                    return Err(TreeError::entry(entry, reason));
                }
                Err(Errno::ELOOP | Errno::ENOTDIR) => {
                    let symlink = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits())
                        .unwrap_or(true);
                    return Err(if symlink {
                        TreeError::unsafe_path(entry)
                    } else {
                        TreeError::entry(&self.path(&dirs[..=depth]), "exists and is not a directory")
                    });
                }
                Err(e) => return Err(TreeError::sys("open", &self.path(&dirs[..=depth]), e)),
            }
        }
        Ok(self.open.last().map_or(self.root, |(_, fd)| fd.as_fd()))
    }
}
