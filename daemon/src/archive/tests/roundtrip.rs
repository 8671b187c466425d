use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, lchown, symlink};
use std::os::unix::net::UnixListener;
use std::path::Path;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use nix::unistd::mkfifo;

use super::*;

/// A bit of everything a root file system has.
pub(super) fn build_tree(root: &Path) {
    let path = |rel: &str| root.join(rel);
    let chmod = |rel: &str, mode: u32| fs::set_permissions(path(rel), fs::Permissions::from_mode(mode)).unwrap();
    fs::create_dir(root).unwrap();
    for dir in ["d700", "tmp", "a/b/c", "sgid"] {
        fs::create_dir_all(path(dir)).unwrap();
    }
    chmod("d700", 0o700);
    chmod("tmp", 0o1777);
    chmod("sgid", 0o2775);
    fs::write(path("d700/inner"), "inner\n").unwrap();
    fs::write(path("a/b/c/deep.txt"), "deep\n").unwrap();
    fs::write(path("su"), "#!/bin/sh\n").unwrap();
    chmod("su", 0o4755);
    fs::write(path("zero-mode"), "").unwrap();
    chmod("zero-mode", 0);
    for (name, id) in [("u1000", 1000), ("u100000", 100_000), ("u4000000", 4_000_000)] {
        fs::write(path(name), name).unwrap();
        chown(path(name), Some(id), Some(id)).unwrap();
    }
    chown(path("sgid"), Some(100_000), Some(100_000)).unwrap();

    symlink("/etc/passwd", path("abs")).unwrap();
    symlink("nowhere/at/all", path("dangling")).unwrap();
    symlink("./x//y/", path("odd-target")).unwrap();
    symlink("t/".repeat(75), path("long-target")).unwrap();
    lchown(path("dangling"), Some(1000), Some(1001)).unwrap();

    // Links are archived after their first path in walk order: "a/h2" for h1, "h3" for h4.
    fs::write(path("h1"), "hard\n").unwrap();
    fs::hard_link(path("h1"), path("a/h2")).unwrap();
    chown(path("h1"), Some(1000), Some(1000)).unwrap();
    fs::write(path("h3"), "hard too\n").unwrap();
    fs::hard_link(path("h3"), path("h4")).unwrap();

    mkfifo(&path("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    mknod(
        &path("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .unwrap();
    mknod(
        &path("loop0"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        makedev(7, 0),
    )
    .unwrap();
    chmod("null", 0o666);
    chmod("fifo", 0o640);
    chmod("loop0", 0o660);
    UnixListener::bind(path("sock")).unwrap();

    // Debian's ping: file capabilities (v2, cap_net_raw and more). Bytes 0x0a and 0x00 in
    // the values would break a newline-split PAX parser.
    fs::write(path("ping"), "ping").unwrap();
    chmod("ping", 0o755);
    let mut caps = 0x0200_0001u32.to_le_bytes().to_vec();
    caps.extend_from_slice(&0x0000_200au32.to_le_bytes());
    caps.extend_from_slice(&[0; 12]);
    set_xattr(&path("ping"), "security.capability", &caps);
    set_xattr(&path("ping"), "user.test", b"x\ny\0z");
    set_xattr(&path("ping"), "user.a=b%c", b"odd name");
    set_xattr(&path("a"), "user.dir", b"on a directory");
    set_xattr(&path("abs"), "trusted.on-symlink", b"s");

    fs::write(path("big"), noise(5 << 20, 1)).unwrap();
    fs::write(path("empty"), "").unwrap();
    for name in [
        "with space",
        "ünïcödé",
        "new\nline",
        "back\\slash",
        &"N".repeat(200),
        &"E".repeat(93),
    ] {
        fs::write(path(name), name).unwrap();
    }
    fs::write(root.join(OsStr::from_bytes(b"bad\xff\xfe")), "not utf-8").unwrap();
    let long_dir = path(&"L".repeat(80));
    fs::create_dir(&long_dir).unwrap();
    fs::write(long_dir.join("M".repeat(80)), "long path").unwrap();

    chmod(".", 0o750);
    chown(root, Some(1000), Some(1000)).unwrap();
    // Last, as writing inside a directory changes its mtime.
    let snap = snapshot(root);
    for (i, rel) in snap.keys().rev().enumerate() {
        set_mtime(&join(root, rel), 1_600_000_000 + i as i64, 123_456_789);
    }
}

fn round_trip(compression: Compression) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    build_tree(&src);
    let before = snapshot(&src);
    let total = tree_size(&src);
    assert!(total > 5 << 20);

    let mut writer = Writer::new(Vec::new(), compression).unwrap();
    writer.add_bytes("backup.yaml", b"name: test\n").unwrap();
    let mut reports = Vec::new();
    writer.add_tree("rootfs", &src, &mut |n| reports.push(n)).unwrap();
    assert_eq!(reports.last(), Some(&total));
    assert!(reports.len() > 1, "reports every few MiB: {reports:?}");
    writer
        .add_tree("snapshots/snap0/rootfs", &src, &mut |n| reports.push(n))
        .unwrap();
    assert_eq!(reports.last(), Some(&(2 * total)));
    let bytes = writer.finish().unwrap();
    assert_eq!(
        bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        compression == Compression::Zstd
    );

    let dst = work.path().join("dst");
    let mut reader = Reader::new(&bytes[..]).unwrap();
    assert_eq!(reader.read_first("backup.yaml", 100).unwrap(), b"name: test\n");
    let targets = [
        ("rootfs".to_string(), dst.join("rootfs")),
        ("snapshots/snap0/rootfs".to_string(), dst.join("snap0")),
    ];
    let mut extracted = Vec::new();
    reader.extract(&targets, &mut |n| extracted.push(n)).unwrap();
    assert_eq!(extracted.last(), Some(&(2 * total)));

    let mut expected = before;
    expected.remove(&b"sock"[..]);
    for dir in ["rootfs", "snap0"] {
        let after = snapshot(&dst.join(dir));
        for (path, snap) in &expected {
            assert_eq!(after.get(path), Some(snap), "{dir}/{}", String::from_utf8_lossy(path));
        }
        assert_eq!(after.len(), expected.len());
        let ino = |rel: &str| fs::metadata(dst.join(dir).join(rel)).unwrap().ino();
        assert_eq!(ino("h1"), ino("a/h2"));
        assert_eq!(ino("h3"), ino("h4"));
    }
}

#[test]
fn round_trip_plain() {
    round_trip(Compression::None);
}

#[test]
fn round_trip_zstd() {
    round_trip(Compression::Zstd);
}

#[test]
fn an_archive_is_plain_tar_with_pax_records() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), "hello").unwrap();
    set_xattr(&src.join("f"), "user.k", b"v");
    set_mtime(&src.join("f"), 1, 5);
    set_mtime(&src, 1, 5);
    let bytes = export(Compression::None, &[("rootfs", &src)]);
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut seen = Vec::new();
    let mut marker = String::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path_bytes().into_owned();
        let keys: Vec<String> = match entry.pax_extensions().unwrap() {
            Some(records) => records.map(|r| r.unwrap().key().unwrap().to_string()).collect(),
            None => Vec::new(),
        };
        if path == b".sysc-end" {
            entry.read_to_string(&mut marker).unwrap();
        }
        seen.push((String::from_utf8(path).unwrap(), keys));
    }
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let expected = [
        ("backup.yaml".to_string(), Vec::new()),
        ("rootfs".to_string(), strings(&["mtime"])),
        ("rootfs/f".to_string(), strings(&["mtime", "SCHILY.xattr.user.k"])),
        (".sysc-end".to_string(), Vec::new()),
    ];
    assert_eq!(seen, expected);
    let lines: Vec<&str> = marker.lines().collect();
    assert_eq!(lines[..2], ["sysc-archive 2", "entries 3"]);
    assert!(lines[2].starts_with("sha256 ") && lines[2].len() == 7 + 64, "{marker}");
    let content = hex::encode(Sha256::digest(b"name: test\nhello"));
    assert_eq!(lines[3..], [format!("content-sha256 {content}")]);
}

#[test]
fn tree_size_counts_hard_links_once_and_skips_symlinks() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    fs::write(root.join("a"), [0; 1000]).unwrap();
    fs::hard_link(root.join("a"), root.join("b")).unwrap();
    symlink("a", root.join("c")).unwrap();
    fs::create_dir(root.join("d")).unwrap();
    fs::write(root.join("d/e"), [0; 24]).unwrap();
    assert_eq!(tree_size(root), 1024);
    assert_eq!(tree_size(&root.join("missing")), 0);
}
