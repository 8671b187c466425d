//! Trees to archive, and what a user would compare after extracting them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::Path;

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use sysc_filetree::{ExtractOptions, Summary, TreeError, WriteOptions, extract, write_tree};
use tar::{EntryType, Header};

pub fn open_dir(path: &Path) -> OwnedFd {
    fs::File::open(path).expect("open directory").into()
}

/// Sets the mtime of `path` itself (a symlink is not followed).
pub fn set_mtime(path: &Path, secs: i64) {
    utimensat(
        AT_FDCWD,
        path,
        &TimeSpec::new(secs, 0),
        &TimeSpec::new(secs, 0),
        UtimensatFlags::NoFollowSymlink,
    )
    .expect("utimensat");
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

pub const BIG: usize = 5_000_000;
pub const LONG_NAME: usize = 200;

/// The round-trip tree: see the names for what each entry is there to exercise.
pub fn build_tree(top: &Path) {
    fs::create_dir(top).unwrap();
    let write = |name: &str, content: &[u8], mode: u32| {
        let path = top.join(name);
        fs::write(&path, content).unwrap();
        set_mode(&path, mode);
    };
    fs::create_dir_all(top.join("nested/deeper/deepest")).unwrap();
    fs::create_dir(top.join("empty")).unwrap();
    write("plain", b"hello\n", 0o644);
    write("script", b"#!/bin/sh\necho hi\n", 0o755);
    write("setuid", b"suid", 0o4755);
    write("secret", b"private", 0o600);
    write("zero", b"", 0o644);
    write("with space", b"spaces", 0o644);
    write("ünïcødé ☃", b"unicode", 0o644);
    write("new\nline", b"newline", 0o644);
    write(&"n".repeat(LONG_NAME), b"long name", 0o644);
    write("nested/deeper/deepest/leaf", b"leaf", 0o640);
    let big: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    write("nested/big", &big, 0o644);
    fs::create_dir(top.join("sticky")).unwrap();
    set_mode(&top.join("sticky"), 0o1777);
    // A name that is not UTF-8 at all.
    let raw = std::ffi::OsStr::from_bytes(b"bad-\xff\xfe-utf8");
    fs::write(top.join(raw), b"bytes").unwrap();
    symlink("plain", top.join("link-to-file")).unwrap();
    symlink("does/not/exist", top.join("dangling")).unwrap();
    symlink("/etc/passwd", top.join("absolute")).unwrap();
    let target = format!("{}/{}", "t".repeat(100), "u".repeat(49));
    assert_eq!(target.len(), 150);
    symlink(&target, top.join("long-target")).unwrap();
    symlink("../plain", top.join("nested/up")).unwrap();

    lchown(top.join("plain"), Some(1000), Some(1001)).unwrap();
    lchown(top.join("nested"), Some(1000), Some(1001)).unwrap();
    // Owned by someone else and setuid: the mode must be set after the owner, which clears it.
    lchown(top.join("setuid"), Some(1000), Some(1001)).unwrap();
    set_mode(&top.join("setuid"), 0o4755);
    lchown(top.join("link-to-file"), Some(1000), Some(1001)).unwrap();
    lchown(top.join("nested/deeper/deepest/leaf"), Some(2000), Some(2001)).unwrap();

    // Distinct mtimes, deepest first so setting a child does not move its parent's.
    let mut paths = Vec::new();
    collect(top, &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in paths.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + i as i64 * 1000);
    }
    set_mtime(top, 1_400_000_000);
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            collect(&path, out);
        }
        out.push(path);
    }
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub enum Content {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    Other,
}

#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Node {
    pub content: Content,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

/// Every entry under `root` (itself as ""), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut map = BTreeMap::new();
    walk(root, b"", &mut map);
    map
}

fn walk(path: &Path, rel: &[u8], map: &mut BTreeMap<Vec<u8>, Node>) {
    let meta = fs::symlink_metadata(path).unwrap();
    let kind = meta.file_type();
    let content = if kind.is_dir() {
        Content::Dir
    } else if kind.is_file() {
        Content::File(fs::read(path).unwrap())
    } else if kind.is_symlink() {
        Content::Link(fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec())
    } else {
        Content::Other
    };
    let mode = if kind.is_symlink() { 0 } else { meta.mode() & 0o7777 };
    map.insert(
        rel.to_vec(),
        Node {
            content,
            mode,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
        },
    );
    if kind.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            let entry = entry.unwrap();
            let mut child = rel.to_vec();
            if !child.is_empty() {
                child.push(b'/');
            }
            child.extend_from_slice(entry.file_name().as_bytes());
            walk(&entry.path(), &child, map);
        }
    }
}

/// Panics with the first difference, which is more readable than two huge maps.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let want = snapshot(expected);
    let got = snapshot(actual);
    for (path, node) in &want {
        let shown = String::from_utf8_lossy(path);
        let other = got.get(path).unwrap_or_else(|| panic!("{shown:?} is missing"));
        assert_eq!(node, other, "{shown:?} differs");
    }
    for path in got.keys() {
        assert!(want.contains_key(path), "{:?} is extra", String::from_utf8_lossy(path));
    }
}

pub fn archive(dir: &Path, top: &str, options: &WriteOptions) -> (Vec<u8>, Summary) {
    let fd = open_dir(dir);
    write_tree(
        std::os::fd::AsFd::as_fd(&fd),
        std::ffi::OsStr::new(top),
        Vec::new(),
        options,
        &mut |_| {},
    )
    .expect("write_tree")
}

pub fn unpack(dest: &Path, data: &[u8], owners: bool) -> Result<Summary, TreeError> {
    let fd = open_dir(dest);
    extract(
        std::os::fd::AsFd::as_fd(&fd),
        data,
        &ExtractOptions { owners, set_id: true },
        &mut |_| {},
    )
}

/// Temporary names left in `dir` or below.
pub fn leftovers(dir: &Path) -> Vec<Vec<u8>> {
    snapshot(dir)
        .into_keys()
        .filter(|p| {
            let name = p.rsplit(|&b| b == b'/').next().unwrap_or(p);
            name.starts_with(b".sysc-tmp-")
        })
        .collect()
}

/// An archive made by hand, to say things write_tree never would.
#[derive(Default)]
pub struct RawTar(pub Vec<u8>);

impl RawTar {
    pub fn dir(&mut self, path: &[u8]) -> &mut Self {
        self.entry(path, EntryType::Directory, 0o755, b"", None)
    }

    pub fn file(&mut self, path: &[u8], data: &[u8]) -> &mut Self {
        self.entry(path, EntryType::Regular, 0o644, data, None)
    }

    pub fn symlink(&mut self, path: &[u8], target: &[u8]) -> &mut Self {
        self.entry(path, EntryType::Symlink, 0o777, b"", Some(target))
    }

    /// Name and target go into the header byte for byte: tar::Header::set_path would refuse `..`.
    pub fn entry(&mut self, path: &[u8], kind: EntryType, mode: u32, data: &[u8], link: Option<&[u8]>) -> &mut Self {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..path.len()].copy_from_slice(path);
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        self.0.extend_from_slice(header.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0, pad));
        self
    }

    pub fn end(&mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        std::mem::take(&mut self.0)
    }
}
