use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, fstat, major, minor};
use tar::{EntryType, Header};

use super::error::{ArchiveError, io_failed, show};
use super::meta::{END_MARKER, Kind, Manifest, Meta, components};
use super::pax::Extensions;
use super::walk::{Node, host_path, walk};
use super::xattr;
use super::{BUF_SIZE, Compression, Counter};

/// Room for a name or a link name in a tar header; longer ones go in a GNU long-name or
/// long-link record.
const NAME_FIELD: usize = 100;

/// The tar block: headers take one, content is padded to whole ones.
const BLOCK: u64 = 512;

/// zstd's own default level.
const ZSTD_LEVEL: i32 = 3;

/// The most zstd worker threads: this thread, reading and hashing the files, keeps about
/// that many level-3 workers busy, and each worker holds several MiB of buffers.
const MAX_ZSTD_WORKERS: usize = 4;

/// Writes an archive to `out` (which is a channel writer to a gRPC stream in production).
/// After an error, what was written is not a valid archive: drop the writer.
pub struct Writer<W: Write> {
    // Buffered: headers are 512-byte writes and most files are small, and both zstd and
    // the stream do better with fewer, larger writes.
    out: BufWriter<Output<W>>,
    manifest: Manifest,
    counter: Counter,
    buf: Vec<u8>,
}

enum Output<W: Write> {
    Plain(W),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Plain(w) => w.write(buf),
            Output::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Plain(w) => w.flush(),
            Output::Zstd(w) => w.flush(),
        }
    }
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, compression: Compression) -> Result<Self, ArchiveError> {
        let out = match compression {
            Compression::None => Output::Plain(out),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL).map_err(ArchiveError::Output)?;
                encoder.include_checksum(true).map_err(ArchiveError::Output)?;
                // Compressing in worker threads leaves this one to read and hash.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_ZSTD_WORKERS));
                encoder.multithread(workers as u32).map_err(ArchiveError::Output)?;
                Output::Zstd(encoder)
            }
        };
        Ok(Writer {
            out: BufWriter::with_capacity(BUF_SIZE, out),
            manifest: Manifest::default(),
            counter: Counter::default(),
            buf: vec![0; BUF_SIZE],
        })
    }

    /// A small regular file (backup.yaml), mode 0600, owner 0:0.
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let meta = Meta {
            kind: Kind::File,
            path: archive_path(path)?,
            link: Vec::new(),
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime: now(),
            size: bytes.len() as u64,
            dev: (0, 0),
            pax: Vec::new(),
        };
        self.manifest.add_content(bytes);
        self.append(&meta, bytes)
    }

    /// The tree under `dir` (dir itself becomes entry `prefix/`), e.g. prefix "rootfs" or
    /// "snapshots/snap0/rootfs". `progress` is called with the number of file bytes
    /// archived so far (cumulative over this Writer's life) every few MiB and at the end.
    ///
    /// Sockets are skipped. A regular file whose size changes while it is archived is an
    /// error, so a running container's tree may not be archivable.
    pub fn add_tree(&mut self, prefix: &str, dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<(), ArchiveError> {
        let prefix = archive_path(prefix)?;
        let mut links = HashMap::new();
        walk(dir, &mut |node| self.add_node(&prefix, dir, node, &mut links, progress))?;
        self.counter.report(progress);
        Ok(())
    }

    /// Writes the end marker, the tar end and the compression trailer; returns the inner
    /// writer.
    pub fn finish(mut self) -> Result<W, ArchiveError> {
        let marker = self.manifest.end_marker();
        let meta = Meta {
            kind: Kind::File,
            path: END_MARKER.to_vec(),
            link: Vec::new(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: now(),
            size: marker.len() as u64,
            dev: (0, 0),
            pax: Vec::new(),
        };
        write_headers(&mut self.out, &meta)
            .and_then(|()| write_padded(&mut self.out, &marker))
            .and_then(|()| self.out.write_all(&[0; 2 * BLOCK as usize]))
            .map_err(ArchiveError::Output)?;
        match self
            .out
            .into_inner()
            .map_err(|e| ArchiveError::Output(e.into_error()))?
        {
            Output::Plain(mut w) => w.flush().map(|()| w).map_err(ArchiveError::Output),
            Output::Zstd(w) => w.finish().map_err(ArchiveError::Output),
        }
    }

    /// `links` maps (device, inode) of files with several links to their first path.
    fn add_node(
        &mut self,
        prefix: &[u8],
        root: &Path,
        node: &Node<'_>,
        links: &mut HashMap<(u64, u64), Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let st = node.stat;
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR => Kind::Char,
            libc::S_IFBLK => Kind::Block,
            libc::S_IFIFO => Kind::Fifo,
            // Sockets: nothing to restore, their server makes them anew.
            _ => return Ok(()),
        };
        let mut path = Vec::with_capacity(prefix.len() + 1 + node.rel.len());
        path.extend_from_slice(prefix);
        if !node.rel.is_empty() {
            path.push(b'/');
            path.extend_from_slice(node.rel);
        }
        let inode = (st.st_dev, st.st_ino);
        let mut meta = Meta {
            kind,
            path,
            link: Vec::new(),
            mode: st.st_mode & 0o7777,
            uid: st.st_uid.into(),
            gid: st.st_gid.into(),
            mtime: st.st_mtime.max(0) as u64,
            size: 0,
            dev: (0, 0),
            pax: Vec::new(),
        };
        let linked = kind != Kind::Dir && st.st_nlink > 1;
        if let Some(first) = links.get(&inode).filter(|_| linked) {
            meta.kind = Kind::HardLink;
            meta.link = first.clone();
            return self.append(&meta, &[]);
        }
        let first_path = linked.then(|| meta.path.clone());
        let file = match kind {
            Kind::File => match open_file(node).map_err(failed("open", root, node.rel))? {
                Some(file) => Some(file),
                None => return Ok(()),
            },
            _ => None,
        };
        let xattrs = match &file {
            Some(file) => xattr::list_fd(file.as_fd()),
            None => xattr::list(&xattr::at(node.dir, node.name)),
        };
        let ext = Extensions {
            mtime: (st.st_mtime >= 0 && st.st_mtime_nsec > 0).then_some((meta.mtime, st.st_mtime_nsec as u32)),
            xattrs: xattrs.map_err(failed("read extended attributes of", root, node.rel))?,
        };
        meta.pax = ext.encode();
        match kind {
            Kind::Symlink => {
                meta.link = readlinkat(node.dir, node.name)
                    .map_err(failed("read link", root, node.rel))?
                    .into_vec();
            }
            Kind::Char | Kind::Block => meta.dev = (major(st.st_rdev) as u32, minor(st.st_rdev) as u32),
            _ => {}
        }
        match file {
            Some(file) => self.add_file(meta, file, root, node.rel, progress)?,
            None => self.append(&meta, &[])?,
        }
        if let Some(path) = first_path {
            links.insert(inode, path);
        }
        Ok(())
    }

    /// Copies the file into the archive, reading it once: its size goes in the header
    /// first, so a file whose size changes while it is read cannot be archived.
    fn add_file(
        &mut self,
        mut meta: Meta,
        mut file: File,
        root: &Path,
        rel: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let changed = || failed("archive", root, rel)(io::Error::other("file changed while being read"));
        let st = fstat(&file).map_err(failed("stat", root, rel))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(changed());
        }
        meta.size = st.st_size.max(0) as u64;
        write_headers(&mut self.out, &meta).map_err(ArchiveError::Output)?;
        let mut left = meta.size;
        loop {
            // A byte more than is left, to see a file that grew.
            let want = usize::try_from(left.saturating_add(1)).map_or(self.buf.len(), |n| n.min(self.buf.len()));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(failed("read", root, rel)(e)),
            };
            if n as u64 > left || (n == 0 && left > 0) {
                return Err(changed());
            }
            if n == 0 {
                break;
            }
            let chunk = &self.buf[..n];
            self.manifest.add_content(chunk);
            self.out.write_all(chunk).map_err(ArchiveError::Output)?;
            self.counter.add(n, progress);
            left -= n as u64;
            // A short read of a regular file is its end: no further read to see it did
            // not grow.
            if left == 0 && n < want {
                break;
            }
        }
        pad(&mut self.out, meta.size).map_err(ArchiveError::Output)?;
        self.manifest.add(&meta);
        Ok(())
    }

    /// Writes an entry whose content is at hand (none but for `add_bytes`), and records it.
    fn append(&mut self, meta: &Meta, content: &[u8]) -> Result<(), ArchiveError> {
        write_headers(&mut self.out, meta)
            .and_then(|()| write_padded(&mut self.out, content))
            .map_err(ArchiveError::Output)?;
        self.manifest.add(meta);
        Ok(())
    }
}

/// Bytes of regular-file content under dir (no symlink following), for a progress total.
/// Each inode counts once, as the archive holds it once.
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut seen = HashSet::new();
    // A tree that cannot be read to the end still gets a total: it only sizes a progress bar.
    let _ = walk(dir, &mut |node| {
        let st = node.stat;
        if st.st_mode & libc::S_IFMT == libc::S_IFREG && (st.st_nlink <= 1 || seen.insert((st.st_dev, st.st_ino))) {
            total += st.st_size.max(0) as u64;
        }
        Ok(())
    });
    total
}

/// Opens a regular file of the tree for reading; None if it is gone.
fn open_file(node: &Node<'_>) -> nix::Result<Option<File>> {
    // O_NONBLOCK: if the file was replaced by a FIFO since the walk saw it, the open must
    // not wait for a writer (fstat then tells it is no longer a regular file).
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    // O_NOATIME: reading a whole tree should not also write an access time into each of
    // its inodes. Only the file's owner or CAP_FOWNER may; others get EPERM.
    let opened = match openat(node.dir, node.name, flags | OFlag::O_NOATIME, Mode::empty()) {
        Err(Errno::EPERM) => openat(node.dir, node.name, flags, Mode::empty()),
        opened => opened,
    };
    match opened {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes an entry's headers: its PAX header if it has one, GNU long-link and long-name
/// records if its link or path do not fit in the header, and its header. Its content,
/// padded, is to follow.
fn write_headers(out: &mut dyn Write, meta: &Meta) -> io::Result<()> {
    if !meta.pax.is_empty() {
        let mut header = Header::new_ustar();
        set_name(&mut header, b"././@PaxHeader");
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_mtime(meta.mtime);
        header.set_size(meta.pax.len() as u64);
        header.set_cksum();
        out.write_all(header.as_bytes())?;
        write_padded(out, &meta.pax)?;
    }
    let mut header = Header::new_gnu();
    header.set_entry_type(meta.kind.entry_type());
    header.set_mode(meta.mode);
    header.set_uid(meta.uid);
    header.set_gid(meta.gid);
    header.set_mtime(meta.mtime);
    header.set_size(meta.size);
    if meta.kind.is_device() {
        header.set_device_major(meta.dev.0)?;
        header.set_device_minor(meta.dev.1)?;
    }
    // Names copied as they are: tar-rs's setters would normalize a symlink's target
    // ("a//b/" to "a/b"), which must stay verbatim; paths are normalized already.
    if meta.kind.is_link() {
        let n = meta.link.len().min(NAME_FIELD);
        header.as_old_mut().linkname[..n].copy_from_slice(&meta.link[..n]);
        if meta.link.len() > NAME_FIELD {
            write_long(out, EntryType::GNULongLink, &meta.link)?;
        }
    }
    let n = meta.path.len().min(NAME_FIELD);
    header.as_old_mut().name[..n].copy_from_slice(&meta.path[..n]);
    if meta.path.len() > NAME_FIELD {
        write_long(out, EntryType::GNULongName, &meta.path)?;
    }
    header.set_cksum();
    out.write_all(header.as_bytes())
}

/// A GNU long-name or long-link record: the name and a NUL.
fn write_long(out: &mut dyn Write, kind: EntryType, name: &[u8]) -> io::Result<()> {
    let mut header = Header::new_gnu();
    set_name(&mut header, b"././@LongLink");
    header.set_entry_type(kind);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(name.len() as u64 + 1);
    header.set_cksum();
    out.write_all(header.as_bytes())?;
    out.write_all(name)?;
    out.write_all(&[0])?;
    pad(out, name.len() as u64 + 1)
}

fn write_padded(out: &mut dyn Write, content: &[u8]) -> io::Result<()> {
    out.write_all(content)?;
    pad(out, content.len() as u64)
}

/// Zeros up to the end of the block, after `size` bytes of content.
fn pad(out: &mut dyn Write, size: u64) -> io::Result<()> {
    let padding = (BLOCK - size % BLOCK) % BLOCK;
    out.write_all(&[0; BLOCK as usize][..padding as usize])
}

fn set_name(header: &mut Header, name: &[u8]) {
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
}

/// A path given by the caller, normalized; the end marker's name is reserved.
fn archive_path(path: &str) -> Result<Vec<u8>, ArchiveError> {
    let parts = components(path.as_bytes()).ok_or_else(|| ArchiveError::Unsafe {
        path: show(path.as_bytes()),
    })?;
    if parts.first().is_none_or(|first| *first == END_MARKER) {
        return Err(ArchiveError::entry(path.as_bytes(), "is reserved or empty"));
    }
    if path.contains('\0') {
        return Err(ArchiveError::entry(path.as_bytes(), "has a NUL byte"));
    }
    Ok(parts.join(&b'/'))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// For `map_err`: a failed `op` on the file at `rel` below `root`, whose host path is only
/// made for the message.
fn failed<'a, E: Into<io::Error>>(op: &'a str, root: &'a Path, rel: &'a [u8]) -> impl FnOnce(E) -> ArchiveError + 'a {
    move |error| io_failed(op, &host_path(root, rel))(error)
}
