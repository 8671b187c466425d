//! write_tree → extract gives back the same tree: types, modes, owners, mtimes, content.

mod common;

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use common::*;
use sysc_filetree::{ExtractOptions, Summary, WriteOptions, extract, write_tree};

fn expected_summary() -> Summary {
    let bytes = [6, 18, 4, 7, 0, 6, 7, 7, 9, 4, BIG, 5].iter().sum::<usize>() as u64;
    Summary {
        files: 12,
        dirs: 6,
        symlinks: 5,
        bytes,
        skipped: Vec::new(),
    }
}

#[test]
fn round_trip_keeps_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    build_tree(&src);
    // The fixture is what this test means to carry over.
    let fixture = snapshot(&src);
    let setuid = &fixture[&b"setuid"[..]];
    assert_eq!((setuid.mode, setuid.uid, setuid.gid), (0o4755, 1000, 1001));
    assert_eq!(fixture[&b"sticky"[..]].mode, 0o1777);
    assert_eq!(fixture[&b""[..]].mtime, 1_400_000_000);

    let mut reports = Vec::new();
    let fd = open_dir(&src);
    let (data, written) = write_tree(
        fd.as_fd(),
        "top".as_ref(),
        Vec::new(),
        &WriteOptions::default(),
        &mut |n| reports.push(n),
    )
    .unwrap();
    assert_eq!(written, expected_summary());
    assert_eq!(reports.last(), Some(&written.bytes));
    assert!(
        reports.len() >= 2,
        "a 5 MB file reports progress on the way: {reports:?}"
    );
    assert!(reports.windows(2).all(|w| w[0] <= w[1]));

    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let mut reports = Vec::new();
    let fd = open_dir(&dest);
    let read = extract(
        fd.as_fd(),
        &data[..],
        &ExtractOptions {
            owners: true,
            set_id: true,
        },
        &mut |n| reports.push(n),
    )
    .unwrap();
    assert_eq!(read, expected_summary());
    assert_eq!(reports.last(), Some(&read.bytes));
    assert_same_tree(&src, &dest);
}

#[test]
fn entries_come_in_walk_order() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    build_tree(&src);
    let (data, _) = archive(&src, "top", &WriteOptions::default());
    let mut archive = tar::Archive::new(&data[..]);
    let paths: Vec<Vec<u8>> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path_bytes().into_owned())
        .collect();
    assert_eq!(paths[0], b"top/");
    let position = |p: &[u8]| paths.iter().position(|q| q == p).unwrap();
    assert!(position(b"top/nested/") < position(b"top/nested/big"));
    assert!(position(b"top/nested/big") < position(b"top/nested/deeper/"));
    assert!(position(b"top/absolute") < position(b"top/bad-\xff\xfe-utf8"));
    assert!(paths.contains(&format!("top/{}", "n".repeat(LONG_NAME)).into_bytes()));
}

#[test]
fn overrides_replace_owner_and_file_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    build_tree(&src);
    let options = WriteOptions {
        owner: Some((123, 456)),
        file_mode: Some(0o640),
    };
    let (data, _) = archive(&src, "top", &options);

    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    unpack(&dest, &data, true).unwrap();
    let want = snapshot(&src);
    for (path, node) in snapshot(&dest) {
        let shown = String::from_utf8_lossy(&path);
        assert_eq!((node.uid, node.gid), (123, 456), "{shown:?}");
        let original = &want[&path];
        match node.content {
            Content::File(_) => assert_eq!(node.mode, 0o640, "{shown:?}"),
            _ => assert_eq!(node.mode, original.mode, "{shown:?}"),
        }
        assert_eq!(node.content, original.content, "{shown:?}");
    }

    // Without owners, whoever extracts owns everything.
    let dest = tmp.path().join("mine");
    fs::create_dir(&dest).unwrap();
    unpack(&dest, &data, false).unwrap();
    let me = nix::unistd::geteuid().as_raw();
    for (path, node) in snapshot(&dest) {
        assert_eq!(node.uid, me, "{:?}", String::from_utf8_lossy(&path));
    }
    assert_eq!(fs::metadata(dest.join("setuid")).unwrap().mode() & 0o7777, 0o640);
}

#[test]
fn top_must_be_one_name() {
    let tmp = tempfile::tempdir().unwrap();
    let fd = open_dir(tmp.path());
    for top in ["", ".", "..", "a/b"] {
        let result = write_tree(
            fd.as_fd(),
            top.as_ref(),
            Vec::new(),
            &WriteOptions::default(),
            &mut |_| {},
        );
        assert!(result.is_err(), "{top:?}");
    }
}
