//! One entry's metadata, as the writer puts it in a header and the reader finds it there,
//! and the digest of all of it that the end marker records.

use sha2::{Digest, Sha256};
use tar::EntryType;

/// The name of the last entry. Reserved: no tree or file may be archived under it.
pub(super) const END_MARKER: &[u8] = b".sysc-end";

const FORMAT: &str = "sysc-archive 1";

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

/// Count and digest of the entries before the end marker; the writer records them in the
/// marker and the reader compares.
#[derive(Default)]
pub(super) struct Manifest {
    hasher: Sha256,
    entries: u64,
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

    pub(super) fn end_marker(&self) -> Vec<u8> {
        let digest = hex::encode(self.hasher.clone().finalize());
        format!("{FORMAT}\nentries {}\nsha256 {digest}\n", self.entries).into_bytes()
    }

    /// Compares an end marker read from an archive with the entries read before it.
    pub(super) fn check(&self, marker: &[u8]) -> Result<(), String> {
        let expected = self.end_marker();
        if marker == expected {
            return Ok(());
        }
        let text = String::from_utf8_lossy(marker);
        let mut lines = text.lines();
        if lines.next() != Some(FORMAT) {
            return Err("unknown format in the end marker".into());
        }
        let counted = lines.next().and_then(|l| l.strip_prefix("entries ")).unwrap_or("?");
        if counted != self.entries.to_string() {
            return Err(format!(
                "the end marker counts {counted} entries, {} were read",
                self.entries
            ));
        }
        Err("the entries do not match the digest in the end marker".into())
    }
}
