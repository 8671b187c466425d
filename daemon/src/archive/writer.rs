use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{Mode, fstat, major, minor};
use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header};

use super::error::{ArchiveError, io_failed, show};
use super::meta::{END_MARKER, Kind, Manifest, Meta, components};
use super::pax::Extensions;
use super::walk::{Node, host_path, walk};
use super::xattr;
use super::{BUF_SIZE, Compression, Counter};

/// Room for a link name in a tar header; longer ones go in a GNU long-link record.
const LINK_FIELD: usize = 100;

/// zstd's own default level.
const ZSTD_LEVEL: i32 = 3;

/// Writes an archive to `out` (which is a channel writer to a gRPC stream in production).
/// After an error, what was written is not a valid archive: drop the writer.
pub struct Writer<W: Write> {
    // Buffered: tar-rs writes 512-byte headers and 8 KiB chunks, and both zstd and the
    // stream do better with fewer, larger writes.
    tar: Builder<BufWriter<Output<W>>>,
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
                Output::Zstd(encoder)
            }
        };
        Ok(Writer {
            tar: Builder::new(BufWriter::with_capacity(BUF_SIZE, out)),
            manifest: Manifest::default(),
            counter: Counter::default(),
            buf: vec![0; BUF_SIZE],
        })
    }

    /// A small regular file (backup.yaml), mode 0600, owner 0:0.
    pub fn add_bytes(&mut self, path: &str, bytes: &[u8]) -> Result<(), ArchiveError> {
        let ext = Extensions {
            sha256: Some(Sha256::digest(bytes).into()),
            ..Extensions::default()
        };
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
            pax: ext.encode(),
        };
        append(&mut self.tar, &meta, &mut &bytes[..]).map_err(ArchiveError::Output)?;
        self.manifest.add(&meta);
        Ok(())
    }

    /// The tree under `dir` (dir itself becomes entry `prefix/`), e.g. prefix "rootfs" or
    /// "snapshots/snap0/rootfs". `progress` is called with the number of file bytes
    /// archived so far (cumulative over this Writer's life) every few MiB and at the end.
    ///
    /// Sockets are skipped. A regular file that changes while it is archived is an error,
    /// so a running container's tree may not be archivable.
    pub fn add_tree(&mut self, prefix: &str, dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<(), ArchiveError> {
        let prefix = archive_path(prefix)?;
        let mut links = HashMap::new();
        walk(dir, &mut |node| self.add_node(&prefix, dir, node, &mut links, progress))?;
        self.counter.report(progress);
        Ok(())
    }

    /// Writes the end marker and the compression trailer; returns the inner writer.
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
        append(&mut self.tar, &meta, &mut &marker[..]).map_err(ArchiveError::Output)?;
        let out = self.tar.into_inner().map_err(ArchiveError::Output)?;
        match out.into_inner().map_err(|e| ArchiveError::Output(e.into_error()))? {
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
        let mut path = prefix.to_vec();
        if !node.rel.is_empty() {
            path.push(b'/');
            path.extend_from_slice(node.rel);
        }
        let host_file = host_path(root, node.rel);
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
            append(&mut self.tar, &meta, &mut io::empty()).map_err(ArchiveError::Output)?;
            self.manifest.add(&meta);
            return Ok(());
        }
        let first_path = linked.then(|| meta.path.clone());
        let ext = Extensions {
            sha256: None,
            mtime: (st.st_mtime >= 0 && st.st_mtime_nsec > 0).then_some((meta.mtime, st.st_mtime_nsec as u32)),
            xattrs: xattr::list(&xattr::at(node.dir, node.name))
                .map_err(io_failed("read extended attributes of", &host_file))?,
        };
        match kind {
            Kind::File => {
                let flags =
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
                let file = match openat(node.dir, node.name, flags, Mode::empty()) {
                    Ok(fd) => File::from(fd),
                    Err(Errno::ENOENT) => return Ok(()),
                    Err(e) => return Err(io_failed("open", &host_file)(e)),
                };
                self.add_file(meta, ext, file, &host_file, progress)?;
            }
            Kind::Symlink => {
                meta.link = readlinkat(node.dir, node.name)
                    .map_err(io_failed("read link", &host_file))?
                    .into_vec();
                self.add_other(meta, ext)?;
            }
            Kind::Char | Kind::Block => {
                meta.dev = (major(st.st_rdev) as u32, minor(st.st_rdev) as u32);
                self.add_other(meta, ext)?;
            }
            Kind::Dir | Kind::Fifo | Kind::HardLink => self.add_other(meta, ext)?,
        }
        if let Some(path) = first_path {
            links.insert(inode, path);
        }
        Ok(())
    }

    fn add_file(
        &mut self,
        mut meta: Meta,
        mut ext: Extensions,
        mut file: File,
        host_path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ArchiveError> {
        let st = fstat(&file).map_err(io_failed("stat", host_path))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(changed(host_path));
        }
        let first = read_full(&mut file, &mut self.buf).map_err(io_failed("read", host_path))?;
        if first < self.buf.len() {
            // All of it is in the buffer: read once, it cannot change between hash and copy.
            ext.sha256 = Some(Sha256::digest(&self.buf[..first]).into());
            meta.size = first as u64;
            meta.pax = ext.encode();
            append(&mut self.tar, &meta, &mut &self.buf[..first]).map_err(ArchiveError::Output)?;
            self.counter.add(first, progress);
        } else {
            // The checksum goes in the header, before the content: one pass to hash, one
            // to copy, which hashes again to notice a change in between.
            let mut hasher = Sha256::new();
            let mut size = 0;
            let mut n = first;
            while n > 0 {
                hasher.update(&self.buf[..n]);
                size += n as u64;
                n = read_full(&mut file, &mut self.buf).map_err(io_failed("read", host_path))?;
            }
            let sha: [u8; 32] = hasher.finalize().into();
            ext.sha256 = Some(sha);
            meta.size = size;
            meta.pax = ext.encode();
            file.rewind().map_err(io_failed("read", host_path))?;
            let mut content = Content {
                file: &mut file,
                left: size,
                hasher: Sha256::new(),
                failed: None,
                counter: &mut self.counter,
                progress,
            };
            let written = append(&mut self.tar, &meta, &mut content);
            if let Some(e) = content.failed.take() {
                return Err(io_failed("read", host_path)(e));
            }
            written.map_err(ArchiveError::Output)?;
            if content.hasher.finalize()[..] != sha {
                return Err(changed(host_path));
            }
        }
        self.manifest.add(&meta);
        Ok(())
    }

    fn add_other(&mut self, mut meta: Meta, ext: Extensions) -> Result<(), ArchiveError> {
        meta.pax = ext.encode();
        append(&mut self.tar, &meta, &mut io::empty()).map_err(ArchiveError::Output)?;
        self.manifest.add(&meta);
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

/// Writes one entry: its PAX header if it has one, a GNU long-link record if its link
/// name is long (tar-rs writes the long-name record itself), its header, its content.
fn append<W: Write>(tar: &mut Builder<W>, meta: &Meta, data: &mut dyn Read) -> io::Result<()> {
    if !meta.pax.is_empty() {
        let mut header = Header::new_ustar();
        set_name(&mut header, b"././@PaxHeader");
        header.set_entry_type(EntryType::XHeader);
        header.set_mode(0o644);
        header.set_mtime(meta.mtime);
        header.set_size(meta.pax.len() as u64);
        header.set_cksum();
        tar.append(&header, &meta.pax[..])?;
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
    if meta.kind.is_link() {
        // Set by hand: tar-rs's set_link_name would normalize a symlink's target ("a//b/"
        // to "a/b"), and it must stay verbatim.
        let n = meta.link.len().min(LINK_FIELD);
        header.as_old_mut().linkname[..n].copy_from_slice(&meta.link[..n]);
        if meta.link.len() > LINK_FIELD {
            let mut long = Header::new_gnu();
            set_name(&mut long, b"././@LongLink");
            long.set_entry_type(EntryType::GNULongLink);
            long.set_mode(0o644);
            long.set_size(meta.link.len() as u64 + 1);
            long.set_cksum();
            tar.append(&long, (&meta.link[..]).chain(&[0u8][..]))?;
        }
    }
    tar.append_data(&mut header, Path::new(OsStr::from_bytes(&meta.path)), data)
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
    Ok(parts.join(&b'/'))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn changed(path: &Path) -> ArchiveError {
    io_failed("archive", path)(io::Error::other("file changed while being read"))
}

/// Fills `buf` as far as the file goes; returns how much it filled.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A file's content for tar-rs to copy: exactly `left` more bytes, hashed and counted. A
/// read failure is kept so that it can be told from a failure to write the archive.
struct Content<'a> {
    file: &'a mut File,
    left: u64,
    hasher: Sha256,
    failed: Option<io::Error>,
    counter: &'a mut Counter,
    progress: &'a mut dyn FnMut(u64),
}

impl Read for Content<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        match self.file.read(&mut buf[..want]) {
            Ok(0) => {
                self.failed = Some(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being read",
                ));
                Err(io::Error::other("file read failed"))
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.left -= n as u64;
                self.counter.add(n, self.progress);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.failed = Some(e);
                Err(io::Error::other("file read failed"))
            }
        }
    }
}
