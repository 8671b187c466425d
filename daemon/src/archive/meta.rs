//! One entry's metadata, as the writer puts it in a header and the reader finds it there,
//! and the digest of all of it that the end marker records.

use sha2::{Digest, Sha256};
use tar::EntryType;

/// The name of the last entry. Reserved: no tree or file may be archived under it.
pub(super) const END_MARKER: &[u8] = b".sysc-end";

const FORMAT: &str = "sysc-archive 2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    HardLink,
    Char,
    Block,
    Fifo,
}

impl Kind {
    pub(super) fn entry_type(self) -> EntryType {
        match self {
            Kind::File => EntryType::Regular,
            Kind::Dir => EntryType::Directory,
            Kind::Symlink => EntryType::Symlink,
            Kind::HardLink => EntryType::Link,
            Kind::Char => EntryType::Char,
            Kind::Block => EntryType::Block,
            Kind::Fifo => EntryType::Fifo,
        }
    }

    pub(super) fn from_entry_type(t: EntryType) -> Option<Kind> {
        Some(match t {
            EntryType::Regular => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::HardLink,
            EntryType::Char => Kind::Char,
            EntryType::Block => Kind::Block,
            EntryType::Fifo => Kind::Fifo,
            _ => return None,
        })
    }

    pub(super) fn is_link(self) -> bool {
        matches!(self, Kind::Symlink | Kind::HardLink)
    }

    pub(super) fn is_device(self) -> bool {
        matches!(self, Kind::Char | Kind::Block)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Meta {
    pub kind: Kind,
    /// Normalized (see `components`), without a trailing slash, also for directories.
    pub path: Vec<u8>,
    /// A symlink's target, verbatim; a hard link's first path; empty otherwise.
    pub link: Vec<u8>,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds; the nanoseconds are in the PAX header.
    pub mtime: u64,
    /// Content bytes, for regular files.
    pub size: u64,
    /// Major and minor, for devices.
    pub dev: (u32, u32),
    /// The raw PAX header (see `pax::Extensions`), empty when there is none.
    pub pax: Vec<u8>,
}

/// The components of an archive path, or None when it is absolute or has a `..`.
/// Empty and `.` components are dropped, so "rootfs/./etc//" and "rootfs/etc" are one path.
pub(super) fn components(path: &[u8]) -> Option<Vec<&[u8]>> {
    if path.first() == Some(&b'/') {
        return None;
    }
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if parts.contains(&&b".."[..]) {
        return None;
    }
    Some(parts)
}

/// Count and digests of the entries before the end marker; the writer records them in the
/// marker and the reader compares.
#[derive(Default)]
pub(super) struct Manifest {
    hasher: Sha256,
    entries: u64,
    /// All regular-file content in archive order. One digest for the whole archive rather
    /// than one per file lets the writer read each file once, hashing as it copies: a
    /// per-file checksum would have to be in the header, before the content.
    content: Sha256,
}

impl Manifest {
    pub(super) fn add(&mut self, meta: &Meta) {
        self.entries += 1;
        let h = &mut self.hasher;
        h.update([meta.kind as u8]);
        for field in [&meta.path, &meta.link, &meta.pax] {
            h.update((field.len() as u64).to_le_bytes());
            h.update(field);
        }
        let dev = (u64::from(meta.dev.0), u64::from(meta.dev.1));
        for n in [
            u64::from(meta.mode),
            meta.uid,
            meta.gid,
            meta.mtime,
            meta.size,
            dev.0,
            dev.1,
        ] {
            h.update(n.to_le_bytes());
        }
    }

    /// Some of a regular file's content. No boundaries between files are needed: each
    /// file's size is in the metadata digest.
    pub(super) fn add_content(&mut self, bytes: &[u8]) {
        self.content.update(bytes);
    }

    pub(super) fn end_marker(&self) -> Vec<u8> {
        let (entries, metadata, content) = self.lines();
        format!("{FORMAT}\n{entries}\n{metadata}\n{content}\n").into_bytes()
    }

    fn lines(&self) -> (String, String, String) {
        (
            format!("entries {}", self.entries),
            format!("sha256 {}", hex::encode(self.hasher.clone().finalize())),
            format!("content-sha256 {}", hex::encode(self.content.clone().finalize())),
        )
    }

    /// Compares an end marker read from an archive with the entries read before it.
    pub(super) fn check(&self, marker: &[u8]) -> Result<(), String> {
        if marker == self.end_marker() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(marker);
        let mut lines = text.lines();
        if lines.next() != Some(FORMAT) {
            return Err("unknown format in the end marker".into());
        }
        let (entries, metadata, content) = self.lines();
        let line = lines.next().unwrap_or_default();
        if line != entries {
            let counted = line.strip_prefix("entries ").unwrap_or("?");
            return Err(format!(
                "the end marker counts {counted} entries, {} were read",
                self.entries
            ));
        }
        if lines.next() != Some(metadata.as_str()) {
            return Err("the entries do not match the digest in the end marker".into());
        }
        if lines.next() != Some(content.as_str()) {
            return Err("file contents do not match their checksum".into());
        }
        Err("malformed end marker".into())
    }
}
