//! Tests that need root: they make devices, give files away, set trusted.* and
//! security.* attributes and mount a tmpfs.

mod copy;
mod refusals;
mod roundtrip;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::{ArchiveError, Compression, Reader, Writer, copy_tree, tree_size, xattr};

/// Deterministic bytes that zstd cannot shrink much.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

fn join(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    xattr::set_path(&cpath(path), name.as_bytes(), value).unwrap();
}

fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let mtime = TimeSpec::new(secs, nanos);
    utimensat(
        AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

/// What a file is, as far as an archive should keep it.
#[derive(Debug, PartialEq, Eq)]
struct Snap {
    file_type: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    /// Regular files: size and SHA-256.
    content: Option<(u64, Vec<u8>)>,
    link: Option<Vec<u8>>,
    rdev: u64,
    /// Not for directories, whose link count depends on the file system.
    nlink: u64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Everything under `root` (itself too, as ""), by path; sockets are left out.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Snap> {
    fn visit(root: &Path, rel: Vec<u8>, out: &mut BTreeMap<Vec<u8>, Snap>) {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            join(root, &rel)
        };
        let md = fs::symlink_metadata(&path).unwrap();
        let file_type = md.mode() & libc::S_IFMT;
        if file_type == libc::S_IFSOCK {
            return;
        }
        let snap = Snap {
            file_type,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: (md.mtime(), md.mtime_nsec()),
            content: md
                .is_file()
                .then(|| (md.size(), Sha256::digest(fs::read(&path).unwrap()).to_vec())),
            link: md
                .is_symlink()
                .then(|| fs::read_link(&path).unwrap().into_os_string().into_vec()),
            rdev: md.rdev(),
            nlink: if md.is_dir() { 0 } else { md.nlink() },
            xattrs: xattr::list(&cpath(&path)).unwrap(),
        };
        out.insert(rel.clone(), snap);
        if md.is_dir() {
            for entry in fs::read_dir(&path).unwrap() {
                let mut child = rel.clone();
                if !child.is_empty() {
                    child.push(b'/');
                }
                child.extend_from_slice(entry.unwrap().file_name().as_bytes());
                visit(root, child, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, Vec::new(), &mut out);
    out
}

/// Writes an archive of `trees` (prefix, directory) after a backup.yaml.
fn export(compression: Compression, trees: &[(&str, &Path)]) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new(), compression).unwrap();
    writer.add_bytes("backup.yaml", b"name: test\n").unwrap();
    for (prefix, dir) in trees {
        writer.add_tree(prefix, dir, &mut |_| {}).unwrap();
    }
    writer.finish().unwrap()
}

/// Reads backup.yaml, then extracts "rootfs" into `dst`/rootfs.
fn import(bytes: &[u8], dst: &Path) -> Result<(), ArchiveError> {
    let mut reader = Reader::new(bytes)?;
    assert_eq!(reader.read_first("backup.yaml", 1 << 20)?, b"name: test\n");
    reader.extract(&[("rootfs".to_string(), dst.join("rootfs"))], &mut |_| {})
}

/// Builds archives by hand with tar-rs, for what `Writer` would never write.
struct Raw(tar::Builder<Vec<u8>>);

impl Raw {
    /// An archive that starts like a good one: backup.yaml, then the rootfs directory.
    fn new() -> Raw {
        let mut raw = Raw(tar::Builder::new(Vec::new()));
        raw.file(b"backup.yaml", b"name: test\n");
        raw.entry(EntryType::Directory, b"rootfs", b"", b"");
        raw
    }

    fn file(&mut self, path: &[u8], content: &[u8]) -> &mut Raw {
        self.entry(EntryType::Regular, path, b"", content)
    }

    fn pax(&mut self, data: &[u8]) -> &mut Raw {
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::XHeader);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    /// Any entry; `path` and `link` go in the header as they are (at most 100 bytes).
    fn entry(&mut self, kind: EntryType, path: &[u8], link: &[u8], content: &[u8]) -> &mut Raw {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
        header.set_size(content.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.as_old_mut().name[..path.len()].copy_from_slice(path);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_cksum();
        self.0.append(&header, content).unwrap();
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.finish().unwrap();
        self.0.get_ref().clone()
    }
}

#[test]
fn writer_and_reader_can_move_to_a_blocking_thread() {
    fn send<T: Send>() {}
    send::<Writer<Vec<u8>>>();
    send::<Reader<std::io::Cursor<Vec<u8>>>>();
}
