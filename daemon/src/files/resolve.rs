//! Paths as the container sees them, resolved below its root with openat2: `..` stops
//! at the root and absolute symlinks start from it, so nothing leads outside.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, Mode, fstat, mkdirat};
use nix::unistd::{Gid, Uid, fchown};

use super::protocol::Fault;

/// A failed request, as the helper reports it.
#[derive(Debug)]
pub struct Failure {
    pub fault: Fault,
    pub message: String,
}

impl Failure {
    pub fn new(fault: Fault, message: impl Into<String>) -> Self {
        Self {
            fault,
            message: message.into(),
        }
    }

    /// A system call's error on `path`, e.g. "/etc/x: no such file or directory".
    pub fn errno(path: &[u8], errno: Errno) -> Self {
        let fault = match errno {
            Errno::ENOENT => Fault::NotFound,
            Errno::EEXIST => Fault::Exists,
            Errno::ENOSPC | Errno::EDQUOT => Fault::State,
            Errno::EIO | Errno::ENOMEM | Errno::EBADF => Fault::Host,
            _ => Fault::Invalid,
        };
        Self::new(fault, format!("{}: {}", show(path), describe(errno)))
    }
}

/// An errno's text, lower case like every other message of ours.
pub fn describe(errno: Errno) -> String {
    let text = match errno {
        Errno::ELOOP => "too many levels of symbolic links",
        Errno::EXDEV => "leads outside the container's root",
        other => other.desc(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A path for messages.
pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

/// Absolute, without NUL bytes.
pub fn check(path: &[u8]) -> Result<(), Failure> {
    if path.first() != Some(&b'/') {
        return Err(Failure::new(
            Fault::Invalid,
            format!("{} is not an absolute path", show(path)),
        ));
    }
    if path.contains(&0) {
        return Err(Failure::new(Fault::Invalid, "path contains a NUL byte"));
    }
    Ok(())
}

/// Opens `path` below `root`, following symlinks but never out of it.
pub fn open(root: BorrowedFd<'_>, path: &[u8], flags: OFlag, mode: Mode) -> Result<OwnedFd, Failure> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .mode(mode)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let relative = relative(path);
    let mut tries = 0;
    loop {
        // EAGAIN: a rename somewhere in the container raced the lookup; the kernel asks
        // us to retry rather than risk a wrong answer.
        match openat2(root, OsStr::from_bytes(relative), how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            Err(errno) => return Err(Failure::errno(path, errno)),
            Ok(fd) => return Ok(fd),
        }
    }
}

/// openat2 resolves "" as an error, not the root.
fn relative(path: &[u8]) -> &[u8] {
    let trimmed = trim_leading(path);
    if trimmed.is_empty() { b"." } else { trimmed }
}

/// Without trailing slashes, except for the root itself.
fn trim_trailing(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(1.min(path.len()), |i| i + 1);
    &path[..end]
}

fn trim_leading(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    &path[start..]
}

/// Splits a path into its directory and its last component, which must be a name
/// (not empty, `.` or `..`): the root and `a/..` name no file one could create or delete.
pub fn split(path: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Failure> {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &path[..end];
    let cut = trimmed.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let name = &trimmed[cut..];
    if name.is_empty() || name == b"." || name == b".." {
        return Err(Failure::new(
            Fault::Invalid,
            format!("{} does not name a file", show(path)),
        ));
    }
    // Without its trailing '/', so that errors name the directory as a user would.
    let parent = match trimmed[..cut].iter().rposition(|&b| b != b'/') {
        Some(last) => trimmed[..=last].to_vec(),
        None => b"/".to_vec(),
    };
    Ok((parent, name.to_vec()))
}

/// A single path component one may create: no '/', not `.` or `..`, not empty.
pub fn check_name(name: &[u8]) -> Result<(), Failure> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return Err(Failure::new(
            Fault::Invalid,
            format!("{:?} is not a file name", show(name)),
        ));
    }
    Ok(())
}

/// Joins a directory path and a name.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if path.last() != Some(&b'/') {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Owner and mode of directories made on the way (push -p, mkdir -p).
#[derive(Debug, Clone, Copy)]
pub struct NewDirs {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Opens directory `path`; with `create`, makes what is missing of it first.
pub fn open_dir(root: BorrowedFd<'_>, path: &[u8], create: Option<NewDirs>) -> Result<OwnedFd, Failure> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    match (open(root, path, flags, Mode::empty()), create) {
        (Ok(dir), _) => Ok(dir),
        (Err(failure), Some(new)) if failure.fault == Fault::NotFound => make_dirs(root, path, new),
        (Err(failure), None) if failure.fault == Fault::NotFound => Err(Failure::new(
            Fault::NotFound,
            format!(
                "directory {} does not exist (use -p to create it)",
                show(trim_trailing(path))
            ),
        )),
        (Err(failure), _) => Err(failure),
    }
}

/// mkdir -p below the root: each missing component is made in its parent, which was
/// itself resolved below the root.
fn make_dirs(root: BorrowedFd<'_>, path: &[u8], new: NewDirs) -> Result<OwnedFd, Failure> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    let mut dir = open(root, b"/", flags, Mode::empty())?;
    let mut prefix = Vec::new();
    for component in trim_leading(path).split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        prefix.push(b'/');
        prefix.extend_from_slice(component);
        if component != b"." && component != b".." {
            match mkdirat(
                dir.as_fd(),
                OsStr::from_bytes(component),
                Mode::from_bits_truncate(0o700),
            ) {
                Ok(()) => {
                    let made = open(root, &prefix, flags | OFlag::O_NOFOLLOW, Mode::empty())?;
                    apply_owner_mode(&made, &prefix, new.uid, new.gid, new.mode)?;
                    dir = made;
                    continue;
                }
                Err(Errno::EEXIST) => {}
                Err(errno) => return Err(Failure::errno(&prefix, errno)),
            }
        }
        dir = open(root, &prefix, flags, Mode::empty())?;
    }
    Ok(dir)
}

/// Owner first: chown clears the set-id bits that the mode may set.
pub fn apply_owner_mode(fd: &OwnedFd, path: &[u8], uid: u32, gid: u32, mode: u32) -> Result<(), Failure> {
    fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).map_err(|errno| match errno {
        Errno::EINVAL => Failure::new(
            Fault::Invalid,
            format!("{}: uid {uid} or gid {gid} is not valid in the container", show(path)),
        ),
        other => Failure::errno(path, other),
    })?;
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode & 0o7777)).map_err(|e| Failure::errno(path, e))
}

pub fn stat(fd: &OwnedFd, path: &[u8]) -> Result<FileStat, Failure> {
    fstat(fd).map_err(|e| Failure::errno(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_directory_and_name() {
        assert_eq!(split(b"/etc/hosts").unwrap(), (b"/etc".to_vec(), b"hosts".to_vec()));
        assert_eq!(split(b"/etc/ssh/").unwrap(), (b"/etc".to_vec(), b"ssh".to_vec()));
        assert_eq!(split(b"/a//b").unwrap(), (b"/a".to_vec(), b"b".to_vec()));
        assert_eq!(split(b"//x").unwrap(), (b"/".to_vec(), b"x".to_vec()));
        assert_eq!(split(b"/x").unwrap(), (b"/".to_vec(), b"x".to_vec()));
        for bad in [&b"/"[..], b"//", b"/etc/..", b"/etc/.", b""] {
            assert!(split(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_absolute_paths_are_accepted() {
        assert!(check(b"/etc").is_ok());
        assert!(check(b"etc").is_err());
        assert!(check(b"").is_err());
        assert!(check(b"/a\0b").is_err());
    }

    #[test]
    fn names_are_single_components() {
        assert!(check_name(b"a b\n\xc3\xa9").is_ok());
        for bad in [&b""[..], b".", b"..", b"a/b"] {
            assert!(check_name(bad).is_err());
        }
    }

    #[test]
    fn relative_paths_for_openat2() {
        assert_eq!(relative(b"/"), b".");
        assert_eq!(trim_trailing(b"/srv/no/"), b"/srv/no");
        assert_eq!(trim_trailing(b"/"), b"/");
        assert_eq!(relative(b"//etc/x"), b"etc/x");
        assert_eq!(join(b"/etc", b"x"), b"/etc/x");
        assert_eq!(join(b"/", b"x"), b"/x");
    }
}
