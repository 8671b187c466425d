use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::*;

/// A small tree with a file spanning several blocks and a long name.
fn small_tree(root: &Path) {
    fs::create_dir(root).unwrap();
    fs::write(root.join("file"), b"UNIQUE-CONTENT-0123456789".repeat(100)).unwrap();
    fs::write(root.join("n".repeat(150)), "long").unwrap();
    set_xattr(&root.join("file"), "user.k", b"XATTR-VALUE");
}

fn refused(bytes: &[u8]) -> ArchiveError {
    let dst = tempfile::tempdir().unwrap();
    let error = import(bytes, dst.path()).expect_err("the archive should be refused");
    assert!(error.is_bad_input(), "{error}");
    error
}

fn exported(compression: Compression) -> Vec<u8> {
    let work = tempfile::tempdir().unwrap();
    small_tree(&work.path().join("src"));
    let bytes = export(compression, &[("rootfs", &work.path().join("src"))]);
    let dst = tempfile::tempdir().unwrap();
    import(&bytes, dst.path()).unwrap();
    bytes
}

#[test]
fn truncated_archives_are_refused() {
    for compression in [Compression::None, Compression::Zstd] {
        let bytes = exported(compression);
        let len = bytes.len();
        let mut cuts = vec![0, 1, 3, 4, 100, 512, 1000, len / 3, len / 2, len - 1];
        if compression == Compression::None {
            // Inside the end marker, its padding, and the two zero blocks after it.
            cuts.extend([
                len - 1600,
                len - 1536,
                len - 1100,
                len - 1024,
                len - 600,
                len - 512,
                len - 100,
            ]);
        }
        for cut in cuts.into_iter().filter(|&cut| cut < len) {
            let error = refused(&bytes[..cut]);
            assert!(
                matches!(error, ArchiveError::Truncated(_)),
                "cut at {cut}/{len} ({compression:?}): {error}"
            );
        }
    }
}

/// The offset of `needle` in `bytes`.
fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn a_changed_file_content_is_refused() {
    let mut bytes = exported(Compression::None);
    let at = find(&bytes, b"UNIQUE-CONTENT") + 700;
    bytes[at] ^= 1;
    let error = refused(&bytes);
    assert_eq!(
        error.to_string(),
        "archive is corrupt: file contents do not match their checksum"
    );
}

#[test]
fn a_changed_header_is_refused() {
    let mut bytes = exported(Compression::None);
    // The name field of the header after backup.yaml's (header, content).
    bytes[2 * 512 + 2] ^= 1;
    let error = refused(&bytes);
    assert!(error.to_string().contains("checksum mismatch"), "{error}");
}

#[test]
fn a_changed_extended_attribute_is_refused() {
    let mut bytes = exported(Compression::None);
    let at = find(&bytes, b"XATTR-VALUE");
    bytes[at] ^= 1;
    let error = refused(&bytes);
    assert!(error.to_string().contains("digest"), "{error}");
}

#[test]
fn a_changed_zstd_stream_is_refused() {
    let bytes = exported(Compression::Zstd);
    for at in [10, bytes.len() / 2, bytes.len() - 2] {
        let mut changed = bytes.clone();
        changed[at] ^= 0x10;
        refused(&changed);
    }
}

#[test]
fn data_after_the_end_is_refused() {
    let mut bytes = exported(Compression::None);
    bytes.extend_from_slice(b"more");
    assert_eq!(
        refused(&bytes).to_string(),
        "archive is corrupt: data follows the end marker"
    );
}

#[test]
fn an_archive_without_end_marker_is_refused() {
    let bytes = Raw::new().file(b"rootfs/f", b"content").finish();
    assert_eq!(refused(&bytes).to_string(), "archive is truncated: no end marker");
}

#[test]
fn a_wrong_first_entry_is_refused() {
    let mut raw = Raw(tar::Builder::new(Vec::new()));
    let bytes = raw.entry(EntryType::Directory, b"rootfs", b"", b"").finish();
    let mut reader = Reader::new(&bytes[..]).unwrap();
    let error = reader.read_first("backup.yaml", 100).unwrap_err();
    assert_eq!(
        error.to_string(),
        "archive entry rootfs: is where backup.yaml should be"
    );

    let bytes = Raw::new().finish();
    let mut reader = Reader::new(&bytes[..]).unwrap();
    let error = reader.read_first("backup.yaml", 4).unwrap_err();
    assert_eq!(error.to_string(), "archive entry backup.yaml: is larger than 4 bytes");
    assert!(error.is_bad_input());

    let mut reader = Reader::new(&b""[..]).unwrap();
    assert!(reader.read_first("backup.yaml", 4).unwrap_err().is_bad_input());
}

#[test]
fn paths_out_of_the_destination_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let absolute = work.path().join("absolute");
    let cases: [(&[u8], &str); 4] = [
        (
            b"rootfs/../escaped",
            "archive entry rootfs/../escaped escapes its directory",
        ),
        (
            b"rootfs/a/../../escaped",
            "archive entry rootfs/a/../../escaped escapes its directory",
        ),
        (absolute.as_os_str().as_bytes(), ""),
        (
            b"elsewhere/file",
            "archive entry elsewhere/file: is outside every destination",
        ),
    ];
    for (path, message) in cases {
        let dst = work.path().join("dst");
        let bytes = Raw::new().file(path, b"x").finish();
        let error = import(&bytes, &dst).unwrap_err();
        assert!(error.is_bad_input());
        if message.is_empty() {
            assert!(matches!(error, ArchiveError::Unsafe { .. }), "{error}");
        } else {
            assert_eq!(error.to_string(), message);
        }
        assert!(!work.path().join("escaped").exists());
        assert!(!absolute.exists());
        fs::remove_dir_all(&dst).unwrap();
    }
}

#[test]
fn symlinks_from_the_archive_are_never_followed() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("host-etc");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("passwd"), "root:x:0:0").unwrap();
    let outside_bytes = outside.as_os_str().as_bytes();
    let link_to_file = outside.join("passwd");

    let attacks: [(Raw, &str); 4] = [
        // A directory symlink, then a file through it.
        (
            {
                let mut raw = Raw::new();
                raw.entry(EntryType::Symlink, b"rootfs/etc", outside_bytes, b"");
                raw.file(b"rootfs/etc/shadow", b"owned");
                raw
            },
            "archive entry rootfs/etc/shadow: is below something that is not a directory",
        ),
        // A file symlink, then a file at the same path.
        (
            {
                let mut raw = Raw::new();
                raw.entry(
                    EntryType::Symlink,
                    b"rootfs/passwd",
                    link_to_file.as_os_str().as_bytes(),
                    b"",
                );
                raw.file(b"rootfs/passwd", b"owned");
                raw
            },
            "archive entry rootfs/passwd: already exists",
        ),
        // A hard link to a host file, directly or through a symlink.
        (
            {
                let mut raw = Raw::new();
                raw.entry(
                    EntryType::Link,
                    b"rootfs/passwd",
                    link_to_file.as_os_str().as_bytes(),
                    b"",
                );
                raw
            },
            "",
        ),
        (
            {
                let mut raw = Raw::new();
                raw.entry(EntryType::Symlink, b"rootfs/etc", outside_bytes, b"");
                raw.entry(EntryType::Link, b"rootfs/passwd", b"rootfs/etc/passwd", b"");
                raw
            },
            "archive entry rootfs/passwd: is below something that is not a directory",
        ),
    ];
    for (mut raw, message) in attacks {
        let dst = work.path().join("dst");
        let error = import(&raw.finish(), &dst).unwrap_err();
        assert!(error.is_bad_input(), "{error}");
        if message.is_empty() {
            assert!(error.to_string().contains("links outside its destination"), "{error}");
        } else {
            assert_eq!(error.to_string(), message);
        }
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert_eq!(fs::read_to_string(outside.join("passwd")).unwrap(), "root:x:0:0");
        assert_eq!(fs::metadata(outside.join("passwd")).unwrap().nlink(), 1);
        fs::remove_dir_all(&dst).unwrap();
    }
}

#[test]
fn oversized_extension_headers_are_refused() {
    let mut raw = Raw::new();
    raw.pax(&vec![b'x'; 2 << 20]);
    raw.file(b"rootfs/f", b"x");
    let error = refused(&raw.finish());
    assert_eq!(
        error.to_string(),
        "archive is corrupt: an extension header of 2097152 bytes"
    );
}

#[test]
fn unsupported_entry_types_are_refused() {
    let bytes = Raw::new()
        .entry(EntryType::GNUSparse, b"rootfs/sparse", b"", b"")
        .finish();
    let error = refused(&bytes);
    assert!(
        error
            .to_string()
            .starts_with("archive entry rootfs/sparse: has an unsupported type"),
        "{error}"
    );
}

/// A tmpfs of 1 MiB, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn new() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        umount2(self.0.path(), MntFlags::MNT_DETACH).unwrap();
    }
}

#[test]
fn a_full_disk_is_a_host_error() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("big"), noise(4 << 20, 2)).unwrap();
    let bytes = export(Compression::Zstd, &[("rootfs", &src)]);
    let disk = SmallDisk::new();
    let error = import(&bytes, disk.0.path()).unwrap_err();
    assert!(!error.is_bad_input());
    let expected = format!(
        "write {}/rootfs/big: No space left on device (os error 28)",
        disk.0.path().display()
    );
    assert_eq!(error.to_string(), expected);
}

/// A file of `source` bind-mounted at `target`, unmounted when dropped.
struct Bind(PathBuf);

impl Bind {
    fn new(source: &Path, target: &Path) -> Bind {
        fs::write(target, "").unwrap();
        mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        Bind(target.to_path_buf())
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        umount2(&self.0, MntFlags::MNT_DETACH).unwrap();
    }
}

#[test]
fn a_file_whose_size_changes_while_read_is_a_host_error() {
    // Files with more (procfs) or less (sysfs) content than their size says, as a file
    // that grows or shrinks between its stat and its last read.
    for source in ["/proc/version", "/sys/kernel/uevent_seqnum"] {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fs::create_dir(&src).unwrap();
        let _bind = Bind::new(Path::new(source), &src.join("f"));
        let mut writer = Writer::new(Vec::new(), Compression::None).unwrap();
        let error = writer.add_tree("rootfs", &src, &mut |_| {}).unwrap_err();
        assert!(!error.is_bad_input());
        let expected = format!("archive {}/f: file changed while being read", src.display());
        assert_eq!(error.to_string(), expected, "{source}");
    }
}

/// Gives `left` bytes of `data`, then fails as a broken connection would.
struct Broken<'a> {
    data: &'a [u8],
    left: usize,
}

impl std::io::Read for Broken<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_broken_input_stream_is_an_input_error() {
    for compression in [Compression::None, Compression::Zstd] {
        let bytes = exported(compression);
        for left in [2, bytes.len() / 2] {
            let dst = tempfile::tempdir().unwrap();
            let input = Broken { data: &bytes, left };
            let result = Reader::new(input).and_then(|mut reader| {
                reader.read_first("backup.yaml", 100)?;
                reader.extract(&[("rootfs".to_string(), dst.path().join("rootfs"))], &mut |_| {})
            });
            let error = result.unwrap_err();
            assert!(
                matches!(error, ArchiveError::Input(_)),
                "{compression:?} {left}: {error}"
            );
            assert_eq!(error.to_string(), "read archive: connection reset");
            assert!(error.is_bad_input());
        }
    }
}
