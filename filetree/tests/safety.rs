//! Archives that try to write outside the destination, and archives that are broken.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use common::*;
use sysc_filetree::{ExtractOptions, TreeError, WriteOptions, extract};

/// tmp/outside/ holds a file; the destination is tmp/a/b/dest, so `../..` from it is tmp/a.
struct Setup {
    tmp: tempfile::TempDir,
    dest: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("a/b/dest");
        fs::create_dir_all(&dest).unwrap();
        fs::create_dir(tmp.path().join("outside")).unwrap();
        fs::write(tmp.path().join("outside/file"), b"outside").unwrap();
        Setup { tmp, dest }
    }

    /// Everything but the destination's own contents.
    fn around(&self) -> BTreeMap<Vec<u8>, Node> {
        let mut tree = snapshot(self.tmp.path());
        tree.retain(|path, _| !path.starts_with(b"a/b/dest/"));
        tree.remove(&b"a/b/dest"[..]);
        tree
    }

    /// Extracts `data`, which must fail without touching anything outside the destination.
    fn refuse(&self, data: &[u8]) -> TreeError {
        let before = self.around();
        let error = unpack(&self.dest, data, true).unwrap_err();
        assert_eq!(before, self.around(), "something outside changed ({error})");
        assert!(leftovers(&self.dest).is_empty());
        error
    }
}

fn assert_unsafe(error: &TreeError, want: &str) {
    match error {
        TreeError::Unsafe { path } => assert_eq!(path, want),
        other => panic!("expected Unsafe for {want}, got {other:?}"),
    }
    assert!(error.is_bad_input());
}

#[test]
fn dot_dot_is_refused() {
    let setup = Setup::new();
    let data = RawTar::default().dir(b"top/").file(b"top/../../x", b"escaped").end();
    let error = setup.refuse(&data);
    assert_unsafe(&error, "top/../../x");
    assert_eq!(error.to_string(), "archive entry top/../../x escapes its directory");
    assert!(!setup.tmp.path().join("a/x").exists());
}

#[test]
fn absolute_paths_are_refused() {
    let setup = Setup::new();
    let data = RawTar::default().dir(b"/abs/").end();
    assert_unsafe(&setup.refuse(&data), "/abs/");
    let data = RawTar::default().dir(b"top/").file(b"/top/x", b"x").end();
    assert_unsafe(&setup.refuse(&data), "/top/x");
}

#[test]
fn another_top_is_refused() {
    let setup = Setup::new();
    let data = RawTar::default()
        .dir(b"top/")
        .dir(b"other/")
        .file(b"other/x", b"x")
        .end();
    assert_unsafe(&setup.refuse(&data), "other/");
}

#[test]
fn symlink_to_root_is_not_followed() {
    let setup = Setup::new();
    let name = format!("sysc-filetree-escape-{}", std::process::id());
    let data = RawTar::default()
        .dir(b"top/")
        .symlink(b"top/link", b"/")
        .file(format!("top/link/{name}").as_bytes(), b"escaped")
        .end();
    assert_unsafe(&setup.refuse(&data), &format!("top/link/{name}"));
    assert!(!Path::new("/").join(&name).exists());
    // The symlink itself was extracted: it is harmless where it is.
    assert!(fs::symlink_metadata(setup.dest.join("link")).unwrap().is_symlink());
}

#[test]
fn symlink_upwards_is_not_followed() {
    let setup = Setup::new();
    for entry in [&b"top/up/x"[..], b"top/up/outside/file", b"top/up/new/"] {
        let mut tar = RawTar::default();
        tar.dir(b"top/").symlink(b"top/up", b"../..");
        if entry.ends_with(b"/") {
            tar.dir(entry);
        } else {
            tar.file(entry, b"escaped");
        }
        let data = tar.end();
        let shown = String::from_utf8_lossy(entry);
        assert_unsafe(&setup.refuse(&data), shown.trim_end_matches('/'));
    }
    assert_eq!(fs::read(setup.tmp.path().join("outside/file")).unwrap(), b"outside");
}

#[test]
fn symlink_already_in_destination_is_not_followed() {
    let setup = Setup::new();
    std::os::unix::fs::symlink(setup.tmp.path().join("outside"), setup.dest.join("sub")).unwrap();
    let data = RawTar::default().dir(b"top/").file(b"top/sub/file", b"replaced?").end();
    assert_unsafe(&setup.refuse(&data), "top/sub/file");
}

#[test]
fn entry_before_its_directory_is_an_error() {
    let setup = Setup::new();
    let data = RawTar::default().dir(b"top/").file(b"top/missing/x", b"x").end();
    let error = setup.refuse(&data);
    assert_eq!(
        error.to_string(),
        "top/missing/x comes before its directory top/missing"
    );
}

#[test]
fn top_directory_must_come_first() {
    let setup = Setup::new();
    let data = RawTar::default().file(b"top/x", b"x").end();
    assert!(matches!(setup.refuse(&data), TreeError::Corrupt(_)));
    let data = RawTar::default().file(b"top", b"x").end();
    assert!(matches!(setup.refuse(&data), TreeError::Corrupt(_)));
    let data = RawTar::default().end();
    assert!(matches!(setup.refuse(&data), TreeError::Corrupt(_)));
}

#[test]
fn other_entry_types_are_refused() {
    let setup = Setup::new();
    for (kind, name) in [
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Char, "character device"),
        (tar::EntryType::Block, "block device"),
        (tar::EntryType::Fifo, "fifo"),
    ] {
        let data = RawTar::default()
            .dir(b"top/")
            .entry(b"top/odd", kind, 0o644, b"", Some(b"top/other"))
            .end();
        let error = setup.refuse(&data);
        assert_eq!(
            error.to_string(),
            format!("top/odd has an unsupported entry type: {name}")
        );
        assert!(!setup.dest.join("odd").exists());
    }
}

/// The archive of the round-trip tree and where the 5 MB file's data starts in it.
fn big_archive() -> (tempfile::TempDir, Vec<u8>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    build_tree(&src);
    let (data, _) = archive(&src, "top", &WriteOptions::default());
    let mut reader = tar::Archive::new(&data[..]);
    let offset = reader
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path_bytes().as_ref() == b"top/nested/big")
        .unwrap()
        .raw_file_position();
    (tmp, data, offset as usize)
}

#[test]
fn stream_cut_in_file_data_leaves_no_partial_file() {
    let (_src, data, offset) = big_archive();
    let setup = Setup::new();
    let error = setup.refuse(&data[..offset + BIG / 2]);
    assert!(matches!(error, TreeError::Truncated(_)), "{error:?}");
    assert!(error.is_bad_input());
    assert!(!setup.dest.join("nested/big").exists());
    assert!(setup.dest.join("nested").is_dir());
}

#[test]
fn stream_cut_anywhere_is_truncated() {
    let (_src, data, offset) = big_archive();
    // In a header, in padding, between entries (no end-of-archive marker), nothing at all.
    let padding = offset + BIG + 10;
    for cut in [offset - 300, padding, data.len() - 1024, 0, 100] {
        let setup = Setup::new();
        let error = setup.refuse(&data[..cut]);
        assert!(matches!(error, TreeError::Truncated(_)), "cut at {cut}: {error:?}");
    }
}

#[test]
fn corrupt_header_is_corrupt() {
    let setup = Setup::new();
    let mut data = RawTar::default().dir(b"top/").file(b"top/f", b"f").end();
    data[512 + 10] ^= 0x55;
    let error = setup.refuse(&data);
    assert!(matches!(error, TreeError::Corrupt(_)), "{error:?}");
    let error = setup.refuse(&[b'x'; 4096]);
    assert!(matches!(error, TreeError::Corrupt(_)), "{error:?}");
}

/// Hands out `good` bytes, then fails like a broken connection.
struct Broken<'a> {
    data: &'a [u8],
}

impl Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_empty() {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset"));
        }
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn broken_stream_is_an_input_error() {
    let (_src, data, offset) = big_archive();
    let setup = Setup::new();
    let fd = open_dir(&setup.dest);
    let input = Broken {
        data: &data[..offset + 12345],
    };
    let error = extract(
        std::os::fd::AsFd::as_fd(&fd),
        input,
        &ExtractOptions {
            owners: true,
            set_id: true,
        },
        &mut |_| {},
    )
    .unwrap_err();
    match &error {
        TreeError::Input(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
        other => panic!("expected Input, got {other:?}"),
    }
    assert!(error.is_bad_input());
    assert!(!setup.dest.join("nested/big").exists());
    assert!(leftovers(&setup.dest).is_empty());
}
