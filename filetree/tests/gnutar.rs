//! Archives from and for GNU tar: the real /usr/bin/tar on both sides.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use sysc_filetree::WriteOptions;

const TAR: &str = "/usr/bin/tar";

/// Runs tar with `input` on stdin; returns stdout. A failing tar fails the test with its stderr.
fn tar(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(TAR)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tar");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // From another thread, so a tar that writes much before reading it all cannot deadlock us.
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[test]
fn extracts_what_gnu_tar_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("parent");
    fs::create_dir(&parent).unwrap();
    build_tree(&parent.join("top"));
    let data = tar(
        &["-C", parent.to_str().unwrap(), "--numeric-owner", "-cf", "-", "top"],
        b"",
    );

    let dest = tmp.path().join("dest");
    fs::create_dir(&dest).unwrap();
    let summary = unpack(&dest, &data, true).unwrap();
    assert_eq!((summary.files, summary.dirs, summary.symlinks), (12, 6, 5));
    assert_same_tree(&parent.join("top"), &dest);
}

#[test]
fn gnu_tar_lists_and_extracts_what_write_tree_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    build_tree(&src);
    let (data, summary) = archive(&src, "top", &WriteOptions::default());

    let listing = String::from_utf8(tar(&["-tvf", "-"], &data)).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    let entries = summary.files + summary.dirs + summary.symlinks;
    assert_eq!(lines.len() as u64, entries, "{listing}");
    let line = |suffix: &str| {
        *lines
            .iter()
            .find(|l| l.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {suffix:?} in\n{listing}"))
    };
    assert!(line(" top/setuid").starts_with("-rwsr-xr-x 1000/1001 "));
    assert!(line(" top/").starts_with("drwxr-xr-x 0/0 "));
    assert!(line(" top/sticky/").starts_with("drwxrwxrwt "));
    assert!(line(&format!("top/long-target -> {}/{}", "t".repeat(100), "u".repeat(49))).starts_with("lrwxrwxrwx"));
    line(&format!(" top/{}", "n".repeat(LONG_NAME)));
    line(" top/new\\nline");

    let out = tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    tar(&["-C", out.to_str().unwrap(), "--numeric-owner", "-xpf", "-"], &data);
    assert_same_tree(&src, &out.join("top"));
}

#[test]
fn symlinks_to_directories_are_not_walked() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("top");
    fs::create_dir(&src).unwrap();
    std::os::unix::fs::symlink("/", src.join("root")).unwrap();
    std::os::unix::fs::symlink("..", src.join("up")).unwrap();
    let (data, summary) = archive(&src, "top", &WriteOptions::default());
    assert_eq!((summary.files, summary.dirs, summary.symlinks), (0, 1, 2));
    let listing = String::from_utf8(tar(&["-tf", "-"], &data)).unwrap();
    assert_eq!(listing, "top/\ntop/root\ntop/up\n");
}
