use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::roundtrip::build_tree;
use super::*;

#[test]
fn a_copy_keeps_everything_cp_a_keeps() {
    let work = tempfile::tempdir().unwrap();
    let (src, dst) = (work.path().join("src"), work.path().join("dst"));
    build_tree(&src);
    // 8 MiB of hole, then a few bytes: the copy must not fill the hole in.
    let mut sparse = fs::File::create(src.join("sparse")).unwrap();
    sparse.seek(SeekFrom::Start(8 << 20)).unwrap();
    sparse.write_all(b"after the hole").unwrap();
    drop(sparse);
    set_mtime(&src.join("sparse"), 1_500_000_000, 5);
    set_mtime(&src, 1_600_000_000, 1);
    let before = snapshot(&src);
    fs::create_dir(&dst).unwrap();

    copy_tree(&src, &dst).unwrap();

    assert_eq!(
        snapshot(&dst),
        before,
        "every path with its type, owner, mode, times, content, attributes"
    );
    assert_eq!(snapshot(&src), before, "the source is left as it was");
    let inode = |rel: &str| fs::symlink_metadata(dst.join(rel)).unwrap().ino();
    assert_eq!(inode("h1"), inode("a/h2"), "hard links stay one inode");
    assert_eq!(inode("h3"), inode("h4"));
    assert_ne!(inode("h1"), inode("h3"));
    assert!(fs::symlink_metadata(dst.join("sock")).unwrap().file_type().is_socket());
    let sparse = fs::metadata(dst.join("sparse")).unwrap();
    assert_eq!(sparse.len(), (8 << 20) + 14);
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "the hole stays a hole: {} blocks",
        sparse.blocks()
    );
}

#[test]
fn symlinks_in_the_source_are_copied_not_followed() {
    let work = tempfile::tempdir().unwrap();
    let (src, dst, outside) = (
        work.path().join("src"),
        work.path().join("dst"),
        work.path().join("outside"),
    );
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), "host file").unwrap();
    fs::create_dir(&src).unwrap();
    std::os::unix::fs::symlink(&outside, src.join("escape")).unwrap();
    std::os::unix::fs::symlink("../../outside/secret", src.join("relative")).unwrap();
    fs::create_dir(&dst).unwrap();

    copy_tree(&src, &dst).unwrap();

    assert_eq!(fs::read_link(dst.join("escape")).unwrap(), outside);
    assert!(fs::symlink_metadata(dst.join("escape")).unwrap().is_symlink());
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing was written outside"
    );
}

#[test]
fn a_name_taken_in_the_destination_is_an_error_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let (src, dst) = (work.path().join("src"), work.path().join("dst"));
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("d/f"), "new").unwrap();
    fs::create_dir_all(dst.join("d")).unwrap();

    let err = copy_tree(&src, &dst).unwrap_err().to_string();

    assert!(err.starts_with(&format!("create {}", dst.join("d").display())), "{err}");
}
