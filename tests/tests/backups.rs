//! Copy, export and import: an export from one daemon imports into another and boots
//! with the same files; corrupt, truncated and disk-full cases leave nothing behind.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use sysc_tests::{Daemon, DaemonOptions, Tmpfs, in_container};

fn snapshots(d: &Daemon, name: &str) -> Vec<String> {
    d.snapshots(name)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Files a user would check after a round trip: bytes, owner, mode, symlink.
fn plant(rootfs: &Path) {
    std::fs::create_dir_all(rootfs.join("srv/data")).unwrap();
    std::fs::write(rootfs.join("srv/data/file with space"), "payload\n").unwrap();
    let owned = rootfs.join("srv/data/owned");
    std::fs::write(&owned, "by 1000").unwrap();
    std::os::unix::fs::chown(&owned, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&owned, std::fs::Permissions::from_mode(0o4750)).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", rootfs.join("srv/data/link")).unwrap();
}

fn check(rootfs: &Path) {
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/data/file with space")).unwrap(),
        "payload\n"
    );
    let owned = std::fs::symlink_metadata(rootfs.join("srv/data/owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid(), owned.mode() & 0o7777), (1000, 1000, 0o4750));
    assert_eq!(
        std::fs::read_link(rootfs.join("srv/data/link")).unwrap(),
        Path::new("/etc/hostname")
    );
}

#[test]
fn export_imports_into_another_daemon_and_boots_with_the_same_files() {
    let a = Daemon::start();
    let b = Daemon::start_with(DaemonOptions {
        storage: "dir",
        ..Default::default()
    });
    let files = tempfile::tempdir().unwrap();
    a.ok(&["launch", "busybox", "web1"]);
    let rootfs = a.pool_dir().join("containers/web1/rootfs");
    plant(&rootfs);
    std::fs::write(rootfs.join("root/version"), "old").unwrap();
    a.ok(&["snapshot", "create", "web1", "s0"]);
    std::fs::write(rootfs.join("root/version"), "new").unwrap();
    a.ok(&["config", "set", "web1", "limits.processes=200"]);

    let zst = files.path().join("web1.tar.zst");
    a.ok(&["export", "web1", zst.to_str().unwrap()]);
    assert_eq!(a.state("web1"), "RUNNING", "export leaves a running container running");
    let plain = files.path().join("web1.tar");
    a.ok(&[
        "export",
        "web1",
        plain.to_str().unwrap(),
        "--compression",
        "none",
        "--instance-only",
    ]);
    assert!(std::fs::metadata(&plain).unwrap().len() > std::fs::metadata(&zst).unwrap().len());

    b.ok(&["import", zst.to_str().unwrap()]);
    b.ok(&["start", "web1"]);
    let imported = b.pool_dir().join("containers/web1/rootfs");
    check(&imported);
    assert_eq!(std::fs::read_to_string(imported.join("root/version")).unwrap(), "new");
    let (_, hostname) = in_container(b.init_pid("web1"), "hostname");
    assert_eq!(hostname.trim(), "web1");
    assert_eq!(snapshots(&b, "web1"), ["s0"]);
    let config = b.container("web1");
    assert_eq!(config["state"], "RUNNING");
    let info = b.ok(&["config", "get", "web1", "limits.processes"]);
    assert_eq!(info.trim(), "200");
    b.ok(&["snapshot", "restore", "web1", "s0"]);
    assert_eq!(std::fs::read_to_string(imported.join("root/version")).unwrap(), "old");

    // Under another name, from the uncompressed archive without snapshots.
    b.ok(&["import", plain.to_str().unwrap(), "web2"]);
    check(&b.pool_dir().join("containers/web2/rootfs"));
    assert!(snapshots(&b, "web2").is_empty());
    assert_eq!(
        std::fs::read_to_string(b.pool_dir().join("containers/web2/rootfs/etc/hostname")).unwrap(),
        "web2\n"
    );
    let err = b.fails(&["import", plain.to_str().unwrap(), "web2"]);
    assert!(err.contains("already exists"), "{err}");
    b.ok(&["delete", "--force", "web1", "web2"]);
    a.ok(&["delete", "--force", "web1"]);
}

#[test]
fn corrupt_or_truncated_archives_are_refused_and_nothing_is_created() {
    let d = Daemon::start();
    let files = tempfile::tempdir().unwrap();
    d.ok(&["create", "busybox", "c1"]);
    let rootfs = d.pool_dir().join("containers/c1/rootfs");
    std::fs::write(rootfs.join("root/big"), vec![7u8; 3 << 20]).unwrap();
    let good = files.path().join("c1.tar");
    d.ok(&["export", "c1", good.to_str().unwrap(), "--compression", "none"]);
    let bytes = std::fs::read(&good).unwrap();
    let zst = files.path().join("c1.tar.zst");
    d.ok(&["export", "c1", zst.to_str().unwrap()]);
    let zbytes = std::fs::read(&zst).unwrap();

    let truncated = files.path().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let ztruncated = files.path().join("truncated.tar.zst");
    std::fs::write(&ztruncated, &zbytes[..zbytes.len() * 2 / 3]).unwrap();
    let corrupt = files.path().join("corrupt.tar");
    let mut flipped = bytes.clone();
    // Inside root/big's content: the middle of the archive is file data.
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::write(&corrupt, &flipped).unwrap();
    let garbage = files.path().join("garbage");
    std::fs::write(&garbage, b"this is not an archive at all").unwrap();

    for (file, name) in [
        (&truncated, "t1"),
        (&ztruncated, "t2"),
        (&corrupt, "t3"),
        (&garbage, "t4"),
    ] {
        let err = d.fails(&["import", file.to_str().unwrap(), name]);
        assert!(err.contains("import"), "{}: {err}", file.display());
        assert!(d.list().iter().all(|c| c["name"] != name), "{name} was created");
        assert!(!d.pool_dir().join("containers").join(name).exists());
        assert!(!d.pool_dir().join("snapshots").join(name).exists());
    }
    // The good one still imports.
    d.ok(&["import", good.to_str().unwrap(), "c2"]);
    assert_eq!(
        std::fs::read(d.pool_dir().join("containers/c2/rootfs/root/big"))
            .unwrap()
            .len(),
        3 << 20
    );
    d.ok(&["delete", "c1", "c2"]);
}

#[test]
fn exports_write_into_a_fifo_and_through_a_symlink_like_cp() {
    let d = Daemon::start();
    let files = tempfile::tempdir().unwrap();
    d.ok(&["create", "busybox", "c1"]);
    plant(&d.pool_dir().join("containers/c1/rootfs"));

    // A FIFO stays a FIFO: what its reader gets is the archive (as `/dev/stdout` on a pipe).
    let fifo = files.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    d.ok(&["export", "c1", fifo.to_str().unwrap()]);
    // Checked before joining: a reader whose FIFO was replaced would wait forever.
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let streamed = reader.join().unwrap();
    let from_fifo = files.path().join("from-fifo.tar.zst");
    std::fs::write(&from_fifo, streamed).unwrap();
    d.ok(&["import", from_fifo.to_str().unwrap(), "c2"]);
    check(&d.pool_dir().join("containers/c2/rootfs"));

    // A symlink to a file stays; the file it names becomes the archive.
    let real = files.path().join("real.tar.zst");
    std::fs::write(&real, "an older backup").unwrap();
    let link = files.path().join("latest.tar.zst");
    std::os::unix::fs::symlink("real.tar.zst", &link).unwrap();
    d.ok(&["export", "c1", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    d.ok(&["import", real.to_str().unwrap(), "c3"]);
    check(&d.pool_dir().join("containers/c3/rootfs"));
    d.ok(&["delete", "c1", "c2", "c3"]);
}

#[test]
fn a_full_disk_leaves_nothing_half_made() {
    // Declared before the daemon so it is unmounted after the daemon is gone.
    let small = Tmpfs::mount("40m");
    let out = Tmpfs::mount("1m");
    let d = Daemon::start();
    d.ok(&[
        "storage",
        "create",
        "tiny",
        "dir",
        &format!("source={}", small.path().display()),
    ]);
    d.ok(&["launch", "busybox", "c1", "--storage", "tiny"]);
    let rootfs = small.join("containers/c1/rootfs");
    std::fs::write(rootfs.join("root/fill"), vec![1u8; 25 << 20]).unwrap();

    // Snapshot: the copy does not fit.
    let err = d.fails(&["snapshot", "create", "c1", "s0"]);
    assert!(
        err.contains("no space left on device") && !err.contains("os error"),
        "{err}"
    );
    assert!(snapshots(&d, "c1").is_empty());
    let left: Vec<_> = std::fs::read_dir(small.join("snapshots"))
        .map(|e| e.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.iter().all(|p| std::fs::read_dir(p).unwrap().next().is_none()),
        "{left:?}"
    );
    assert_eq!(d.state("c1"), "RUNNING", "the source runs on, thawed");
    assert_eq!(std::fs::metadata(rootfs.join("root/fill")).unwrap().len(), 25 << 20);

    // Export to a full disk: an error naming the file, and no file. (A stopped container
    // on a dir pool is exported in place; a running one needs room for a copy.)
    d.ok(&["stop", "c1"]);
    let target = out.join("c1.tar.zst");
    let output = d.sysc(&["export", "c1", target.to_str().unwrap(), "--compression", "none"]);
    assert!(!output.success());
    assert!(output.stderr.contains("No space left"), "{}", output.stderr);
    assert!(
        output.stderr.contains(&out.path().display().to_string()),
        "{}",
        output.stderr
    );
    assert!(out.entries().is_empty(), "export left {:?}", out.entries());

    // Import into a pool too small for it: refused, nothing created there.
    let files = tempfile::tempdir().unwrap();
    let archive = files.path().join("c1.tar");

    d.ok(&["export", "c1", archive.to_str().unwrap(), "--compression", "none"]);
    d.ok(&["delete", "--force", "c1"]);
    std::fs::write(small.join("ballast"), vec![0u8; 20 << 20]).unwrap();
    let err = d.fails(&["import", archive.to_str().unwrap(), "c2", "--storage", "tiny"]);
    assert!(
        err.contains("no space left on device") && !err.contains("os error"),
        "{err}"
    );
    assert!(d.list().is_empty());
    assert!(!small.join("containers/c2").exists());
    std::fs::remove_file(small.join("ballast")).unwrap();
    d.ok(&["storage", "delete", "tiny"]);
}

#[test]
fn copy_is_a_new_machine_with_the_same_files() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c1"]);
    let rootfs = d.pool_dir().join("containers/c1/rootfs");
    plant(&rootfs);
    d.ok(&["snapshot", "create", "c1", "s0"]);
    std::fs::write(rootfs.join("root/after"), "later").unwrap();

    d.ok(&["copy", "c1", "c2"]);
    let copy = d.pool_dir().join("containers/c2/rootfs");
    check(&copy);
    assert_eq!(std::fs::read_to_string(copy.join("etc/hostname")).unwrap(), "c2\n");
    assert_ne!(
        std::fs::read_to_string(copy.join("etc/machine-id")).unwrap(),
        std::fs::read_to_string(rootfs.join("etc/machine-id")).unwrap()
    );
    assert_eq!(snapshots(&d, "c2"), ["s0"]);
    assert_eq!(d.state("c2"), "STOPPED");
    let (c1, c2) = (d.container("c1"), d.container("c2"));
    assert_ne!(c1["config"]["volatile.idmap.base"], c2["config"]["volatile.idmap.base"]);
    d.ok(&["start", "c2"]);
    assert_eq!(in_container(d.init_pid("c2"), "hostname").1.trim(), "c2");

    // From a snapshot, and without snapshots.
    d.ok(&["copy", "c1/s0", "c3"]);
    assert!(!d.pool_dir().join("containers/c3/rootfs/root/after").exists());
    assert!(snapshots(&d, "c3").is_empty());
    d.ok(&["copy", "c1", "c4", "--instance-only"]);
    assert!(snapshots(&d, "c4").is_empty());
    assert!(d.pool_dir().join("containers/c4/rootfs/root/after").exists());

    // To another pool: a dir pool next to the btrfs default.
    d.ok(&["storage", "create", "second", "dir"]);
    d.ok(&["copy", "c1", "c5", "--storage", "second"]);
    check(&d.root.join("storage-pools/second/containers/c5/rootfs"));
    assert_eq!(d.container("c5")["pool"], "second");
    let err = d.fails(&["storage", "delete", "second"]);
    assert!(err.contains("used by"), "{err}");

    let err = d.fails(&["copy", "c1", "c2"]);
    assert!(err.contains("already exists"), "{err}");
    let err = d.fails(&["copy", "c1/nothing", "c9"]);
    assert!(err.contains("not found"), "{err}");
    let err = d.fails(&["copy", "nothing", "c9"]);
    assert!(err.contains("not found"), "{err}");
    assert!(d.list().iter().all(|c| c["name"] != "c9"));
    d.ok(&["delete", "--force", "c1", "c2", "c3", "c4", "c5"]);
    d.ok(&["storage", "delete", "second"]);
}

#[test]
fn concurrent_snapshots_and_exports_from_cron_all_succeed() {
    let d = Daemon::start();
    let files = tempfile::tempdir().unwrap();
    d.ok(&["launch", "busybox", "c1"]);
    let mut children: Vec<_> = (0..4)
        .map(|_| {
            d.command(&["snapshot", "create", "c1", "--expiry", "2d"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for n in 0..2 {
        let file = files.path().join(format!("e{n}.tar.zst"));
        children.push(d.command(&["export", "c1", file.to_str().unwrap()]).spawn().unwrap());
    }
    children.push(d.command(&["restart", "c1"]).spawn().unwrap());
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut names = snapshots(&d, "c1");
    names.sort();
    assert_eq!(names, ["snap0", "snap1", "snap2", "snap3"]);
    for n in 0..2 {
        d.ok(&[
            "import",
            files.path().join(format!("e{n}.tar.zst")).to_str().unwrap(),
            &format!("i{n}"),
        ]);
    }
    d.ok(&["delete", "--force", "c1", "i0", "i1"]);
}

#[test]
fn export_shows_progress_on_a_terminal_and_nothing_under_cron() {
    let d = Daemon::start();
    let files = tempfile::tempdir().unwrap();
    d.ok(&["create", "busybox", "c1"]);
    let rootfs = d.pool_dir().join("containers/c1/rootfs");
    for n in 0..6 {
        std::fs::write(rootfs.join(format!("root/blob{n}")), vec![n as u8; 64 << 20]).unwrap();
    }
    // As cron runs it: no terminal, so nothing on stdout or stderr when all is well.
    let quiet = files.path().join("quiet.tar");
    let cron = d.sysc(&["export", "c1", quiet.to_str().unwrap(), "--compression", "none"]);
    assert!(cron.success(), "{}", cron.stderr);
    assert_eq!((cron.stdout.as_str(), cron.stderr.as_str()), ("", ""));

    let shown = files.path().join("shown.tar");
    let mut term = sysc_tests::Terminal::spawn(
        d.command(&["export", "c1", shown.to_str().unwrap(), "--compression", "none"]),
        24,
        120,
    );
    term.expect("Exporting c1", std::time::Duration::from_secs(30));
    term.expect("MiB/", std::time::Duration::from_secs(30));
    assert_eq!(term.wait(std::time::Duration::from_secs(60)), 0);
    assert_eq!(
        std::fs::metadata(&shown).unwrap().len(),
        std::fs::metadata(&quiet).unwrap().len()
    );
    d.ok(&["delete", "c1"]);
}
