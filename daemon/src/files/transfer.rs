//! Pull and push: the helper resolves and opens, the daemon moves the bytes.

use std::ffi::OsStr;
use std::io::{BufReader, BufWriter};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, readlinkat, renameat};
use nix::sys::stat::{Mode, fstatat};
use nix::unistd::UnlinkatFlags;

use super::ops::{info, open_below};
use super::protocol::{Fault, Kind, PushFile, PushTree, Reply, TreeSummary};
use super::resolve::{self, Failure, NewDirs};

/// Buffer between the tar stream and the helper's stdin or stdout.
const PIPE_BUFFER: usize = 1 << 20;

/// How the helper talks to the daemon during a transfer.
pub trait Control {
    fn send(&self, reply: &Reply, fd: Option<BorrowedFd<'_>>) -> Result<(), Failure>;
    /// True when the daemon committed, false when it closed the socket instead.
    fn wait_commit(&self) -> bool;
}

pub fn pull(
    root: BorrowedFd<'_>,
    path: &[u8],
    recursive: bool,
    top: &[u8],
    control: &dyn Control,
) -> Result<(), Failure> {
    let probe = resolve::open(root, path, OFlag::O_PATH, Mode::empty())?;
    let before = resolve::stat(&probe, path)?;
    match Kind::from_mode(before.st_mode) {
        Kind::File => {
            // O_NONBLOCK: should a FIFO be swapped in after the check, opening it must
            // not wait for a writer; the second check then refuses it.
            let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
            let file = resolve::open(root, path, flags, Mode::empty())?;
            let after = resolve::stat(&file, path)?;
            if Kind::from_mode(after.st_mode) != Kind::File
                || (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino)
            {
                return Err(Failure::new(
                    Fault::Invalid,
                    format!("{} changed while it was opened", resolve::show(path)),
                ));
            }
            control.send(&Reply::Opened(info(top, &after, Vec::new())), Some(file.as_fd()))
        }
        Kind::Directory if recursive => {
            let dir = resolve::open(root, path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
            let stat = resolve::stat(&dir, path)?;
            control.send(&Reply::Tree(info(top, &stat, Vec::new())), None)?;
            // SAFETY: fd 1 is the pipe to the daemon; nothing else in the helper uses it.
            let stdout = unsafe { std::fs::File::from_raw_fd(1) };
            let out = BufWriter::with_capacity(PIPE_BUFFER, stdout);
            let options = sysc_filetree::WriteOptions::default();
            let (out, summary) =
                sysc_filetree::write_tree(dir.as_fd(), OsStr::from_bytes(top), out, &options, &mut |_| {}).map_err(
                    |e| {
                        Failure::new(
                            if e.is_bad_input() { Fault::Invalid } else { Fault::Host },
                            e.to_string(),
                        )
                    },
                )?;
            let stdout = out
                .into_inner()
                .map_err(|e| Failure::new(Fault::Host, format!("write the tar stream: {}", e.error())))?;
            drop(stdout); // the daemon's read ends here
            control.send(
                &Reply::Done {
                    info: None,
                    summary: Some(tree_summary(summary)),
                },
                None,
            )
        }
        Kind::Directory => Err(Failure::new(
            Fault::Invalid,
            format!(
                "{} is a directory (use -r to pull it with its contents)",
                resolve::show(path)
            ),
        )),
        other => Err(Failure::new(
            Fault::Invalid,
            format!(
                "{} is {}; only regular files and directories can be pulled",
                resolve::show(path),
                other.describe()
            ),
        )),
    }
}

fn tree_summary(summary: sysc_filetree::Summary) -> TreeSummary {
    TreeSummary {
        files: summary.files,
        dirs: summary.dirs,
        symlinks: summary.symlinks,
        bytes: summary.bytes,
        skipped: summary.skipped.into_iter().map(String::into_bytes).collect(),
    }
}

/// Whether `path` names an existing directory (following symlinks below the root).
fn is_directory(root: BorrowedFd<'_>, path: &[u8]) -> Result<bool, Failure> {
    match resolve::open(root, path, OFlag::O_PATH, Mode::empty()) {
        Ok(fd) => Ok(Kind::from_mode(resolve::stat(&fd, path)?.st_mode) == Kind::Directory),
        Err(failure) if failure.fault == Fault::NotFound => Ok(false),
        Err(failure) => Err(failure),
    }
}

pub fn push(root: BorrowedFd<'_>, request: &PushFile, control: &dyn Control) -> Result<(), Failure> {
    if !request.name.is_empty() {
        resolve::check_name(&request.name)?;
    }
    let into_dir = request.path.last() == Some(&b'/') || is_directory(root, &request.path)?;
    let (dir_path, name) = if into_dir {
        if request.name.is_empty() {
            return Err(Failure::new(
                Fault::Invalid,
                format!(
                    "{} is a directory; give the path of the file to write",
                    resolve::show(&request.path)
                ),
            ));
        }
        (request.path.clone(), request.name.clone())
    } else {
        resolve::split(&request.path)?
    };
    let (dir_path, name) = follow_symlinks(root, dir_path, name)?;
    let target = resolve::join(&dir_path, &name);
    let new_dirs = NewDirs {
        uid: request.uid.unwrap_or(0),
        gid: request.gid.unwrap_or(0),
        mode: 0o755,
    };
    let dir = resolve::open_dir(root, &dir_path, request.create_dirs.then_some(new_dirs))?;
    let (mut uid, mut gid, mut mode) = (0, 0, 0o644);
    match fstatat(&dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(existing) if Kind::from_mode(existing.st_mode) == Kind::Directory => {
            return Err(Failure::new(
                Fault::Invalid,
                format!("{} is a directory", resolve::show(&target)),
            ));
        }
        Ok(existing) if Kind::from_mode(existing.st_mode) == Kind::File => {
            (uid, gid, mode) = (existing.st_uid, existing.st_gid, existing.st_mode & 0o7777);
        }
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(Failure::errno(&target, e)),
    }
    let (uid, gid, mode) = (
        request.uid.unwrap_or(uid),
        request.gid.unwrap_or(gid),
        request.mode.unwrap_or(mode),
    );

    let temp = TempFile::create(&dir, &target)?;
    control.send(&Reply::Ready, Some(temp.file.as_fd()))?;
    if !control.wait_commit() {
        return Ok(()); // the push was abandoned; TempFile's drop removes the data
    }
    resolve::apply_owner_mode(&temp.file, &target, uid, gid, mode)?;
    let stat = resolve::stat(&temp.file, &target)?;
    temp.rename_to(&name, &target)?;
    control.send(
        &Reply::Done {
            info: Some(info(&name, &stat, Vec::new())),
            summary: None,
        },
        None,
    )
}

/// Like cp, a push writes through a symlink at the destination: to where it points,
/// itself resolved below the root. Returns the directory and name to write.
fn follow_symlinks(
    root: BorrowedFd<'_>,
    mut dir_path: Vec<u8>,
    mut name: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    for _ in 0..MAX_SYMLINKS {
        // A missing directory is reported by the caller, which may also make it.
        let Ok(dir) = resolve::open(root, &dir_path, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty()) else {
            return Ok((dir_path, name));
        };
        match fstatat(&dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if Kind::from_mode(stat.st_mode) == Kind::Symlink => {
                let link = readlinkat(&dir, OsStr::from_bytes(&name))
                    .map_err(|e| Failure::errno(&resolve::join(&dir_path, &name), e))?;
                let link = link.as_bytes();
                let next = if link.first() == Some(&b'/') {
                    link.to_vec()
                } else {
                    resolve::join(&dir_path, link)
                };
                (dir_path, name) = resolve::split(&next)
                    .map_err(|_| Failure::new(Fault::Invalid, format!("{} is a directory", resolve::show(&next))))?;
            }
            _ => return Ok((dir_path, name)),
        }
    }
    Err(Failure::errno(&resolve::join(&dir_path, &name), Errno::ELOOP))
}

/// As many as the kernel follows in one lookup.
const MAX_SYMLINKS: usize = 40;

/// A file being written under a temporary name beside its destination; removed unless
/// renamed into place.
struct TempFile<'a> {
    dir: &'a OwnedFd,
    name: Vec<u8>,
    file: OwnedFd,
    kept: bool,
}

impl<'a> TempFile<'a> {
    fn create(dir: &'a OwnedFd, target: &[u8]) -> Result<Self, Failure> {
        loop {
            let name = format!(".sysc-push-{:016x}", rand::random::<u64>()).into_bytes();
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            match nix::fcntl::openat(dir, OsStr::from_bytes(&name), flags, Mode::from_bits_truncate(0o600)) {
                Ok(file) => {
                    return Ok(Self {
                        dir,
                        name,
                        file,
                        kept: false,
                    });
                }
                Err(Errno::EEXIST) => continue,
                Err(e) => return Err(Failure::errno(target, e)),
            }
        }
    }

    fn rename_to(mut self, name: &[u8], target: &[u8]) -> Result<(), Failure> {
        renameat(
            self.dir,
            OsStr::from_bytes(&self.name),
            self.dir,
            OsStr::from_bytes(name),
        )
        .map_err(|e| Failure::errno(target, e))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = nix::unistd::unlinkat(self.dir, OsStr::from_bytes(&self.name), UnlinkatFlags::NoRemoveDir);
        }
    }
}

pub fn push_tree(root: BorrowedFd<'_>, request: &PushTree, control: &dyn Control) -> Result<(), Failure> {
    resolve::check_name(&request.name)?;
    // Like push of a file: into a directory that exists or that the path ends in '/' for.
    let into_dir = request.path.last() == Some(&b'/') || is_directory(root, &request.path)?;
    let dest_path = if into_dir {
        resolve::join(&request.path, &request.name)
    } else {
        request.path.clone()
    };
    let (parent, name) = resolve::split(&dest_path)?;
    let new_dirs = NewDirs {
        uid: 0,
        gid: 0,
        mode: 0o755,
    };
    let parent_dir = resolve::open_dir(root, &parent, request.create_dirs.then_some(new_dirs))?;
    match nix::sys::stat::mkdirat(&parent_dir, OsStr::from_bytes(&name), Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let existing = fstatat(&parent_dir, OsStr::from_bytes(&name), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| Failure::errno(&dest_path, e))?;
            if Kind::from_mode(existing.st_mode) != Kind::Directory {
                return Err(Failure::new(
                    Fault::Exists,
                    format!("{} exists and is not a directory", resolve::show(&dest_path)),
                ));
            }
        }
        Err(e) => return Err(Failure::errno(&dest_path, e)),
    }
    let dest = open_below(&parent_dir, &name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, &dest_path)?;
    control.send(&Reply::Ready, None)?;
    // SAFETY: fd 0 is the pipe from the daemon; nothing else in the helper uses it.
    let stdin = unsafe { std::fs::File::from_raw_fd(0) };
    let input = BufReader::with_capacity(PIPE_BUFFER, stdin);
    let options = sysc_filetree::ExtractOptions {
        owners: true,
        set_id: true,
    };
    let summary = sysc_filetree::extract(dest.as_fd(), input, &options, &mut |_| {}).map_err(|e| {
        let fault = if e.is_bad_input() { Fault::Invalid } else { Fault::State };
        Failure::new(fault, format!("{}: {e}", resolve::show(&dest_path)))
    })?;
    if !control.wait_commit() {
        return Ok(());
    }
    control.send(
        &Reply::Done {
            info: None,
            summary: Some(tree_summary(summary)),
        },
        None,
    )
}
