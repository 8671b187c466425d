//! Extracting a tar stream into a directory fd, merging like `tar x` into what is there.
//!
//! The archive may come from a hostile container. Every entry's path is checked before anything
//! is touched, parents are reached through `Dest` (never through a symlink), and files and
//! symlinks appear only by an atomic rename of a finished temporary, so a reader never sees half
//! a file and an existing symlink is replaced, not followed.

use std::cmp::Reverse;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags, fchmod, fstatat, futimens, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, symlinkat, unlinkat};
use tar::{Archive, Entry, EntryType, Header};

use crate::dest::Dest;
use crate::error::{TreeError, show};
use crate::input::{Watch, Watched};
use crate::names::{components, temp_name};
use crate::progress::Progress;
use crate::tarout::BUFFER;
use crate::{ExtractOptions, Summary};

/// Reads a tar stream made by [`write_tree`](crate::write_tree) (or GNU tar: `tar -C parent -c top`)
/// and extracts it INTO `dest` (a directory fd; O_PATH is fine): the first path component of every
/// entry is stripped, so the archive's top directory *is* `dest`, whose mode, owner (with
/// `options.owners`) and mtime are set from the top entry. The top directory entry must come
/// first and every entry must share its first component.
///
/// Merges like `cp -r` or `tar x` into an existing directory: existing directories are kept (and
/// get the archive's mode, owner and mtime), files and symlinks replace whatever non-directory has
/// their name, atomically (written under a temporary `.sysc-tmp-<16 hex>` name and renamed into
/// place). A directory where a file or symlink comes, or a non-directory where a directory comes,
/// is an error that replaces nothing. Hard links, devices, FIFOs and sparse files are refused.
/// Directories are created mode 0700 and get their own mode and mtime at the end, deepest first,
/// so their contents can be written whatever their mode is and their mtime stays as archived.
///
/// Every entry path is checked before anything is touched: only normal components (no absolute
/// path, no `..`, no NUL), and parents are opened one component at a time without following
/// symlinks, so neither a symlink from the archive nor one planted concurrently leads outside
/// `dest`: such an entry fails with [`TreeError::Unsafe`]. Reading stops at the end-of-archive
/// marker; a stream that ends before it is [`TreeError::Truncated`].
///
/// `progress` gets the cumulative bytes of file content now and then, and once at the end.
pub fn extract<R: Read>(
    dest: BorrowedFd<'_>,
    input: R,
    options: &ExtractOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, TreeError> {
    let (input, watch) = Watched::new(input);
    let mut archive = Archive::new(input);
    let mut run = Extraction {
        dest: Dest::new(dest),
        options,
        top: None,
        pending: Vec::new(),
        summary: Summary::default(),
        progress: Progress::new(progress),
        buf: vec![0; BUFFER],
    };
    let result = run.entries(&mut archive, &watch);
    // Even after a failure: what was extracted should not stay mode 0700.
    let finished = run.finish_directories();
    result?;
    finished?;
    run.progress.finish();
    Ok(run.summary)
}

struct Extraction<'a, 'd> {
    dest: Dest<'d>,
    options: &'a ExtractOptions,
    top: Option<Vec<u8>>,
    /// Directories whose mode and mtime are set at the end: below-top components, path, metadata.
    pending: Vec<(Vec<Vec<u8>>, Vec<u8>, Meta)>,
    summary: Summary,
    progress: Progress<'a>,
    buf: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
}

impl Meta {
    fn new(header: &Header, path: &[u8]) -> Result<Self, TreeError> {
        let bad = |field: &str| TreeError::Corrupt(format!("entry {} has a bad {field}", show(path)));
        let id = |value: std::io::Result<u64>, field: &str| {
            value.ok().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad(field))
        };
        Ok(Meta {
            mode: header.mode().map_err(|_| bad("mode"))? & 0o7777,
            uid: id(header.uid(), "uid")?,
            gid: id(header.gid(), "gid")?,
            mtime: header
                .mtime()
                .map_err(|_| bad("mtime"))
                .map(|t| i64::try_from(t).unwrap_or(i64::MAX))?,
        })
    }

    fn mtime(&self) -> TimeSpec {
        TimeSpec::new(self.mtime as libc::time_t, 0)
    }

    fn owner(&self) -> (Option<Uid>, Option<Gid>) {
        (Some(Uid::from_raw(self.uid)), Some(Gid::from_raw(self.gid)))
    }
}

impl<'d> Extraction<'_, 'd> {
    fn entries<R: Read>(&mut self, archive: &mut Archive<R>, watch: &Watch) -> Result<(), TreeError> {
        for entry in archive.entries().map_err(|e| watch.blame(e))? {
            let mut entry = entry.map_err(|e| watch.blame(e))?;
            self.entry(&mut entry, watch)?;
        }
        if watch.at_eof() {
            // Without its end-of-archive marker, a stream cut between two entries looks complete.
            return Err(watch.truncated());
        }
        if self.top.is_none() {
            return Err(TreeError::Corrupt("the archive has no entries".into()));
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut Entry<'_, R>, watch: &Watch) -> Result<(), TreeError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let parts = components(&raw)?;
        let path = parts.join(&b'/');
        let (first, rest) = parts.split_first().ok_or_else(|| TreeError::unsafe_path(&raw))?;
        let is_dir = kind.is_dir() || (kind == EntryType::Regular && raw.ends_with(b"/"));
        match &self.top {
            None if is_dir && rest.is_empty() => {
                self.dest.set_top(first);
                self.top = Some(first.to_vec());
            }
            None => {
                return Err(TreeError::Corrupt(format!(
                    "the first entry, {}, is not the top directory",
                    show(&raw)
                )));
            }
            Some(top) if top.as_slice() != *first => return Err(TreeError::unsafe_path(&raw)),
            Some(_) => {}
        }
        if rest.is_empty() && !is_dir {
            return Err(TreeError::Corrupt(format!(
                "entry {} stands for the top directory but is not one",
                show(&raw)
            )));
        }
        let mut meta = Meta::new(entry.header(), &path)?;
        if !self.options.set_id {
            meta.mode &= !0o6000;
        }
        if is_dir {
            self.directory(rest, &path, meta)
        } else if matches!(kind, EntryType::Regular | EntryType::Continuous) {
            self.file(rest, &path, meta, entry, watch)
        } else if kind == EntryType::Symlink {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            self.symlink(rest, &path, meta, &target)
        } else {
            Err(TreeError::entry(
                &path,
                format!("has an unsupported entry type: {}", type_name(kind)),
            ))
        }
    }

    fn directory(&mut self, rest: &[&[u8]], path: &[u8], meta: Meta) -> Result<(), TreeError> {
        if let Some((name, dirs)) = rest.split_last() {
            let parent = self.dest.dir(dirs, path)?;
            match mkdirat(parent, *name, Mode::S_IRWXU) {
                Ok(()) => {}
                Err(Errno::EEXIST) => {
                    let stat = fstatat(parent, *name, AtFlags::AT_SYMLINK_NOFOLLOW)
                        .map_err(|e| TreeError::sys("stat", path, e))?;
                    if !is(&stat, SFlag::S_IFDIR) {
                        return Err(TreeError::entry(path, "exists and is not a directory"));
                    }
                }
                Err(e) => return Err(TreeError::sys("create directory", path, e)),
            }
            let fd = self.dest.dir(rest, path)?;
            if self.options.owners {
                let (uid, gid) = meta.owner();
                fchown(fd, uid, gid).map_err(|e| TreeError::sys("change owner of", path, e))?;
            }
        } else if self.options.owners {
            let fd = self.dest.open_root()?;
            let (uid, gid) = meta.owner();
            fchown(&fd, uid, gid).map_err(|e| TreeError::sys("change owner of", path, e))?;
        }
        let parts = rest.iter().map(|part| part.to_vec()).collect();
        self.pending.push((parts, path.to_vec(), meta));
        self.summary.dirs += 1;
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        rest: &[&[u8]],
        path: &[u8],
        meta: Meta,
        entry: &mut Entry<'_, R>,
        watch: &Watch,
    ) -> Result<(), TreeError> {
        let size = entry.size();
        let (name, dirs) = rest.split_last().ok_or_else(|| TreeError::unsafe_path(path))?;
        let parent = self.dest.dir(dirs, path)?;
        refuse_directory(parent, name, path)?;
        let (temp, mut file) = Temp::file(parent, path)?;
        let mut left = size;
        while left > 0 {
            let want = self.buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = entry.read(&mut self.buf[..want]).map_err(|e| watch.blame(e))?;
            if n == 0 {
                return Err(TreeError::Truncated(format!(
                    "{} ends after {} of its {size} bytes",
                    show(path),
                    size - left
                )));
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| TreeError::io("write", path, e))?;
            left -= n as u64;
            self.progress.add(n as u64);
        }
        if self.options.owners {
            let (uid, gid) = meta.owner();
            fchown(&file, uid, gid).map_err(|e| TreeError::sys("change owner of", path, e))?;
        }
        // After fchown, which clears setuid and setgid.
        fchmod(&file, Mode::from_bits_truncate(meta.mode)).map_err(|e| TreeError::sys("change mode of", path, e))?;
        futimens(&file, &TimeSpec::UTIME_OMIT, &meta.mtime()).map_err(|e| TreeError::sys("set times of", path, e))?;
        temp.rename_to(name, path)?;
        self.summary.files += 1;
        self.summary.bytes += size;
        Ok(())
    }

    fn symlink(&mut self, rest: &[&[u8]], path: &[u8], meta: Meta, target: &[u8]) -> Result<(), TreeError> {
        if target.is_empty() || target.contains(&0) {
            return Err(TreeError::Corrupt(format!(
                "symlink {} has no valid target",
                show(path)
            )));
        }
        let (name, dirs) = rest.split_last().ok_or_else(|| TreeError::unsafe_path(path))?;
        let parent = self.dest.dir(dirs, path)?;
        refuse_directory(parent, name, path)?;
        let temp = Temp::symlink(parent, target, path)?;
        if self.options.owners {
            let (uid, gid) = meta.owner();
            fchownat(parent, temp.name.as_str(), uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| TreeError::sys("change owner of", path, e))?;
        }
        utimensat(
            parent,
            temp.name.as_str(),
            &TimeSpec::UTIME_OMIT,
            &meta.mtime(),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| TreeError::sys("set times of", path, e))?;
        temp.rename_to(name, path)?;
        self.summary.symlinks += 1;
        Ok(())
    }

    /// Sets the deferred mode and mtime of every directory, deepest first, so setting one does
    /// not disturb another's mtime or lock us out of its children.
    fn finish_directories(&mut self) -> Result<(), TreeError> {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_by_key(|(parts, _, _)| Reverse(parts.len()));
        let mut first_error = None;
        for (parts, path, meta) in &pending {
            let result = self.set_directory(parts, path, meta);
            if let (Err(e), None) = (result, &first_error) {
                first_error = Some(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn set_directory(&mut self, parts: &[Vec<u8>], path: &[u8], meta: &Meta) -> Result<(), TreeError> {
        let root;
        let fd = if parts.is_empty() {
            root = self.dest.open_root()?;
            root.as_fd()
        } else {
            self.dest.dir(parts, path)?
        };
        fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| TreeError::sys("change mode of", path, e))?;
        futimens(fd, &TimeSpec::UTIME_OMIT, &meta.mtime()).map_err(|e| TreeError::sys("set times of", path, e))
    }
}

/// A directory at the name a file or symlink should take is not ours to replace.
fn refuse_directory(parent: BorrowedFd<'_>, name: &[u8], path: &[u8]) -> Result<(), TreeError> {
    match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if is(&stat, SFlag::S_IFDIR) => Err(TreeError::entry(path, "is a directory")),
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(TreeError::sys("stat", path, e)),
    }
}

fn is(stat: &FileStat, kind: SFlag) -> bool {
    stat.st_mode & SFlag::S_IFMT.bits() == kind.bits()
}

/// A file or symlink under a temporary name next to its final one, removed again unless it
/// was renamed into place.
struct Temp<'p> {
    parent: BorrowedFd<'p>,
    name: String,
    placed: bool,
}

/// Collisions with names already there are retried with fresh random names this often.
const ATTEMPTS: usize = 16;

impl<'p> Temp<'p> {
    fn file(parent: BorrowedFd<'p>, path: &[u8]) -> Result<(Self, File), TreeError> {
        // O_EXCL: a name planted in advance (say a symlink) is never opened, only reported taken.
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let (temp, fd) = Self::create(parent, path, |name| {
            openat(parent, name, flags, Mode::S_IRUSR | Mode::S_IWUSR)
        })?;
        Ok((temp, File::from(fd)))
    }

    fn symlink(parent: BorrowedFd<'p>, target: &[u8], path: &[u8]) -> Result<Self, TreeError> {
        Self::create(parent, path, |name| symlinkat(target, parent, name)).map(|(temp, ())| temp)
    }

    fn create<T>(
        parent: BorrowedFd<'p>,
        path: &[u8],
        make: impl Fn(&str) -> nix::Result<T>,
    ) -> Result<(Self, T), TreeError> {
        let mut attempts = 0;
        loop {
            let name = temp_name();
            match make(&name) {
                Ok(made) => {
                    let temp = Temp {
                        parent,
                        name,
                        placed: false,
                    };
                    return Ok((temp, made));
                }
                Err(Errno::EEXIST) if attempts < ATTEMPTS => attempts += 1,
                Err(e) => return Err(TreeError::sys("create", path, e)),
            }
        }
    }

    fn rename_to(mut self, name: &[u8], path: &[u8]) -> Result<(), TreeError> {
        match renameat(self.parent, self.name.as_str(), self.parent, name) {
            Ok(()) => {
                self.placed = true;
                Ok(())
            }
            // A directory appeared there since we looked.
            Err(Errno::EISDIR) => Err(TreeError::entry(path, "is a directory")),
            Err(e) => Err(TreeError::sys("rename into place", path, e)),
        }
    }
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.placed {
            // Best effort: the error that got us here is the one worth reporting.
            let _ = unlinkat(self.parent, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

fn type_name(kind: EntryType) -> String {
    match kind {
        EntryType::Link => "hard link".into(),
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "fifo".into(),
        EntryType::GNUSparse => "sparse file".into(),
        other => format!("{:?}", other.as_byte() as char),
    }
}
