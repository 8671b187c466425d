//! Extracting into a directory that already has things in it merges like `tar x`.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use sysc_filetree::TreeError;

fn incoming() -> Vec<u8> {
    RawTar::default()
        .dir(b"top/")
        .file(b"top/replaced", b"new content")
        .file(b"top/was-link", b"a file now")
        .symlink(b"top/link-over-file", b"replaced")
        .dir(b"top/sub/")
        .file(b"top/sub/new", b"new")
        .end()
}

#[test]
fn merges_into_existing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(dest.join("sub")).unwrap();
    fs::write(&outside, b"must stay").unwrap();
    fs::write(dest.join("unrelated"), b"kept").unwrap();
    fs::write(dest.join("sub/old"), b"kept too").unwrap();
    fs::write(dest.join("replaced"), b"old content").unwrap();
    fs::write(dest.join("link-over-file"), b"old").unwrap();
    symlink(&outside, dest.join("was-link")).unwrap();

    let summary = unpack(&dest, &incoming(), true).unwrap();
    assert_eq!((summary.files, summary.dirs, summary.symlinks), (3, 2, 1));

    assert_eq!(fs::read(dest.join("unrelated")).unwrap(), b"kept");
    assert_eq!(fs::read(dest.join("sub/old")).unwrap(), b"kept too");
    assert_eq!(fs::read(dest.join("sub/new")).unwrap(), b"new");
    assert_eq!(fs::read(dest.join("replaced")).unwrap(), b"new content");
    // The symlink itself was replaced; what it pointed to is untouched.
    assert!(fs::symlink_metadata(dest.join("was-link")).unwrap().is_file());
    assert_eq!(fs::read(dest.join("was-link")).unwrap(), b"a file now");
    assert_eq!(fs::read(&outside).unwrap(), b"must stay");
    assert_eq!(
        fs::read_link(dest.join("link-over-file")).unwrap(),
        Path::new("replaced")
    );
    assert!(leftovers(&dest).is_empty());

    // Again: everything is there already, and that is fine.
    unpack(&dest, &incoming(), true).unwrap();
    assert_eq!(fs::read(dest.join("replaced")).unwrap(), b"new content");
}

#[test]
fn directory_where_a_file_comes_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir_all(dest.join("replaced/inner")).unwrap();
    let before = snapshot(&dest);

    let error = unpack(&dest, &incoming(), true).unwrap_err();
    match &error {
        TreeError::Entry { path, reason } => {
            assert_eq!(path, "top/replaced");
            assert_eq!(reason, "is a directory");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.is_bad_input());
    assert_eq!(error.to_string(), "top/replaced is a directory");
    // Nothing replaced, and no temporary left.
    let after = snapshot(&dest);
    assert_eq!(before[&b"replaced"[..]], after[&b"replaced"[..]]);
    assert!(dest.join("replaced/inner").is_dir());
    assert!(leftovers(&dest).is_empty());
}

#[test]
fn directory_where_a_symlink_comes_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir_all(dest.join("link-over-file")).unwrap();
    let data = RawTar::default()
        .dir(b"top/")
        .symlink(b"top/link-over-file", b"x")
        .end();
    let error = unpack(&dest, &data, true).unwrap_err();
    assert!(
        matches!(&error, TreeError::Entry { reason, .. } if reason == "is a directory"),
        "{error:?}"
    );
    assert!(dest.join("link-over-file").is_dir());
    assert!(leftovers(&dest).is_empty());
}

#[test]
fn file_where_a_directory_comes_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("sub"), b"a file").unwrap();

    let error = unpack(&dest, &incoming(), true).unwrap_err();
    assert_eq!(error.to_string(), "top/sub exists and is not a directory");
    assert_eq!(fs::read(dest.join("sub")).unwrap(), b"a file");
}

#[test]
fn symlink_where_a_directory_comes_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&dest).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    symlink(&elsewhere, dest.join("sub")).unwrap();

    let error = unpack(&dest, &incoming(), true).unwrap_err();
    assert_eq!(error.to_string(), "top/sub exists and is not a directory");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn top_entry_sets_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let data = RawTar::default()
        .entry(b"top/", tar::EntryType::Directory, 0o751, b"", None)
        .dir(b"top/sub/")
        .file(b"top/sub/f", b"f")
        .end();
    unpack(&dest, &data, true).unwrap();
    let tree = snapshot(&dest);
    assert_eq!(tree[&b""[..]].mode, 0o751);
    assert_eq!(tree[&b""[..]].mtime, 1_600_000_000);
    // Set after its contents were written.
    assert_eq!(tree[&b"sub"[..]].mtime, 1_600_000_000);
    assert_eq!(tree[&b"sub"[..]].mode, 0o755);
}

#[test]
fn read_only_directories_still_get_their_contents() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let data = RawTar::default()
        .dir(b"top/")
        .entry(b"top/ro/", tar::EntryType::Directory, 0o555, b"", None)
        .entry(b"top/ro/locked/", tar::EntryType::Directory, 0o000, b"", None)
        .file(b"top/ro/locked/f", b"inside")
        .end();
    unpack(&dest, &data, false).unwrap();
    let tree = snapshot(&dest);
    assert_eq!(tree[&b"ro"[..]].mode, 0o555);
    assert_eq!(tree[&b"ro/locked"[..]].mode, 0o000);
    assert_eq!(tree[&b"ro/locked/f"[..]].content, Content::File(b"inside".to_vec()));
}

#[test]
fn destination_may_be_an_o_path_fd() {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    use std::os::fd::AsFd;

    let tmp = tempfile::tempdir().unwrap();
    let fd = open(
        tmp.path(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let options = sysc_filetree::ExtractOptions {
        owners: true,
        set_id: true,
    };
    sysc_filetree::extract(fd.as_fd(), &incoming()[..], &options, &mut |_| {}).unwrap();
    assert_eq!(fs::read(tmp.path().join("sub/new")).unwrap(), b"new");
    assert_eq!(snapshot(tmp.path())[&b""[..]].mode, 0o755);
}
