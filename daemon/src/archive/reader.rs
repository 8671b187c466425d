use std::io::{self, Read};
use std::path::PathBuf;

use tar::{Archive, Entries, EntryType};

use super::error::{ArchiveError, show};
use super::extract::Extractor;
use super::input::{Probe, Stream};
use super::meta::{END_MARKER, Kind, Manifest, Meta, components};
use super::pax::Extensions;

/// The largest PAX header or GNU long name or link accepted: each is held in memory.
const MAX_EXTENSION: u64 = 1 << 20;

/// The largest end marker accepted.
const MAX_MARKER: u64 = 4096;

/// Reads an archive: `read_first` for its first entry, then `extract` for the rest.
pub struct Reader<R: Read> {
    stream: Stream<R>,
    probe: Probe,
    manifest: Manifest,
}

impl<R: Read> Reader<R> {
    /// Detects zstd by its magic bytes (28 b5 2f fd), else plain tar.
    pub fn new(input: R) -> Result<Self, ArchiveError> {
        let probe = Probe::default();
        Ok(Reader {
            stream: Stream::new(input, probe.clone())?,
            probe,
            manifest: Manifest::default(),
        })
    }

    /// Reads the first entry, which must be a regular file at `path` of at most `limit`
    /// bytes; returns its content. Anything else is a bad archive.
    pub fn read_first(&mut self, path: &str, limit: usize) -> Result<Vec<u8>, ArchiveError> {
        let wanted = components(path.as_bytes()).map(|parts| parts.join(&b'/'));
        let mut archive = Archive::new(&mut self.stream);
        let mut entries = archive.entries().map_err(|e| self.probe.error(e))?.raw(true);
        let Some(mut member) = next_member(&mut entries, &self.probe)? else {
            return Err(ArchiveError::Truncated(format!("no {path} entry")));
        };
        if member.meta.kind != Kind::File || wanted.as_ref() != Some(&member.meta.path) {
            return Err(ArchiveError::entry(
                &member.meta.path,
                format!("is where {path} should be"),
            ));
        }
        let size = member.meta.size;
        if size > limit as u64 {
            return Err(ArchiveError::entry(
                path.as_bytes(),
                format!("is larger than {limit} bytes"),
            ));
        }
        let mut content = Vec::with_capacity(size as usize);
        let mut buf = vec![0; 64 * 1024];
        let manifest = &mut self.manifest;
        member.copy_content(&mut buf, &self.probe, &mut |chunk| {
            manifest.add_content(chunk);
            content.extend_from_slice(chunk);
            Ok(())
        })?;
        manifest.add(&member.meta);
        // tar-rs skips an entry's padding when it reads the next header, but the next
        // header is read by a new `Archive`, which starts where this one stopped.
        self.stream.skip_padding(size)?;
        Ok(content)
    }

    /// Extracts every remaining entry. `targets` maps archive prefixes to destination
    /// directories, e.g. [("rootfs", "/pool/containers/.tmp-x/rootfs"),
    /// ("snapshots/snap0/rootfs", "/pool/snapshots/x/.tmp-snap0/rootfs")]; an entry goes to
    /// the longest prefix that is a whole-component prefix of its path; an entry matching
    /// none is a bad archive. Destination directories are created if missing (and get the
    /// mode, owner and times of their archive entry).
    ///
    /// Nothing is written outside the destinations: paths with `..` or a leading `/` are
    /// refused, and no symlink is followed, not even one that an earlier entry created.
    /// An entry whose path already exists is refused (except a directory over a
    /// directory, which takes the entry's metadata): the destinations are meant to be new.
    /// On any error the destinations are left as they are, for the caller to delete.
    ///
    /// At the end, verifies the end marker is present (missing = truncated), that it
    /// matches the entries read and their content, and that nothing follows it. Content
    /// is only known good then: an error leaves what was extracted for the caller to
    /// delete anyway.
    /// `progress`: cumulative file bytes extracted.
    pub fn extract(mut self, targets: &[(String, PathBuf)], progress: &mut dyn FnMut(u64)) -> Result<(), ArchiveError> {
        let mut extractor = Extractor::new(targets)?;
        let mut archive = Archive::new(&mut self.stream);
        let mut entries = archive.entries().map_err(|e| self.probe.error(e))?.raw(true);
        let marker_size = loop {
            let Some(mut member) = next_member(&mut entries, &self.probe)? else {
                return Err(ArchiveError::Truncated("no end marker".into()));
            };
            if member.meta.path == END_MARKER {
                if member.meta.kind != Kind::File || member.meta.size > MAX_MARKER {
                    return Err(ArchiveError::Corrupt("malformed end marker".into()));
                }
                let mut marker = Vec::new();
                member.copy_content(&mut [0; MAX_MARKER as usize], &self.probe, &mut |chunk| {
                    marker.extend_from_slice(chunk);
                    Ok(())
                })?;
                self.manifest.check(&marker).map_err(ArchiveError::Corrupt)?;
                break member.meta.size;
            }
            self.manifest.add(&member.meta);
            extractor.add(&mut member, &mut self.manifest, &self.probe, progress)?;
        };
        self.stream.check_end(marker_size)?;
        extractor.finish(progress)
    }
}

/// One entry, with what its extension headers said.
pub(super) struct Member<'a, R: Read> {
    pub meta: Meta,
    pub ext: Extensions,
    data: tar::Entry<'a, R>,
}

impl<R: Read> Member<'_, R> {
    /// Streams the content to `sink` in chunks of at most `buf`'s size.
    pub(super) fn copy_content(
        &mut self,
        buf: &mut [u8],
        probe: &Probe,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ArchiveError>,
    ) -> Result<(), ArchiveError> {
        let mut left = self.meta.size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match self.data.read(&mut buf[..want]) {
                Ok(0) => {
                    let path = show(&self.meta.path);
                    return Err(ArchiveError::Truncated(format!("it ends inside {path}")));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(probe.error(e)),
            };
            sink(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// The next entry with the GNU long-name, long-link and PAX headers before it, which
/// tar-rs (in raw mode) hands over as entries of their own. Raw mode because tar-rs's own
/// handling holds them in memory whatever their size and mangles binary PAX values.
fn next_member<'a, R: Read>(
    entries: &mut Entries<'a, R>,
    probe: &Probe,
) -> Result<Option<Member<'a, R>>, ArchiveError> {
    let mut long_name = None;
    let mut long_link = None;
    let mut pax = None;
    loop {
        let Some(raw) = entries.next() else {
            if long_name.is_some() || long_link.is_some() || pax.is_some() {
                return Err(probe.error(io::Error::other("an extension header has no entry after it")));
            }
            return Ok(None);
        };
        let mut raw = raw.map_err(|e| probe.error(e))?;
        let slot = match raw.header().entry_type() {
            EntryType::GNULongName => &mut long_name,
            EntryType::GNULongLink => &mut long_link,
            EntryType::XHeader => &mut pax,
            _ => return member(raw, long_name, long_link, pax).map(Some),
        };
        if slot.is_some() {
            return Err(ArchiveError::Corrupt(
                "two extension headers of one kind for one entry".into(),
            ));
        }
        let size = raw.size();
        if size > MAX_EXTENSION {
            return Err(ArchiveError::Corrupt(format!("an extension header of {size} bytes")));
        }
        let mut data = Vec::with_capacity(size as usize);
        raw.read_to_end(&mut data).map_err(|e| probe.error(e))?;
        if (data.len() as u64) < size {
            return Err(ArchiveError::Truncated("it ends inside an extension header".into()));
        }
        *slot = Some(data);
    }
}

fn member<'a, R: Read>(
    raw: tar::Entry<'a, R>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
) -> Result<Member<'a, R>, ArchiveError> {
    let header = raw.header();
    let raw_path = match long_name {
        Some(name) => without_nul(name),
        None => header.path_bytes().into_owned(),
    };
    let malformed = |what: &str| ArchiveError::entry(&raw_path, format!("has a malformed {what}"));
    let entry_type = header.entry_type();
    let kind = Kind::from_entry_type(entry_type)
        .ok_or_else(|| ArchiveError::entry(&raw_path, format!("has an unsupported type ({entry_type:?})")))?;
    let parts = components(&raw_path).ok_or_else(|| ArchiveError::Unsafe { path: show(&raw_path) })?;
    let link = match (kind.is_link(), long_link) {
        (false, _) => Vec::new(),
        (true, Some(link)) => without_nul(link),
        (true, None) => header.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default(),
    };
    let dev = if kind.is_device() {
        let major = header.device_major().map_err(|_| malformed("device number"))?;
        let minor = header.device_minor().map_err(|_| malformed("device number"))?;
        (major.unwrap_or(0), minor.unwrap_or(0))
    } else {
        (0, 0)
    };
    let pax = pax.unwrap_or_default();
    let ext = Extensions::decode(&pax).map_err(|reason| ArchiveError::entry(&raw_path, reason))?;
    let meta = Meta {
        kind,
        path: parts.join(&b'/'),
        link,
        mode: header.mode().map_err(|_| malformed("mode"))? & 0o7777,
        uid: header.uid().map_err(|_| malformed("owner"))?,
        gid: header.gid().map_err(|_| malformed("group"))?,
        mtime: header.mtime().map_err(|_| malformed("mtime"))?,
        size: raw.size(),
        dev,
        pax,
    };
    Ok(Member { meta, ext, data: raw })
}

/// GNU long names and links end with a NUL, which is not part of the name.
fn without_nul(mut name: Vec<u8>) -> Vec<u8> {
    if name.last() == Some(&0) {
        name.pop();
    }
    name
}
