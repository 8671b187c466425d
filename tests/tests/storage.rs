//! The default storage pool: btrfs on a loop file (containers are snapshots of their
//! image) or plain directories (containers are copies).

use sysc_tests::{Daemon, DaemonOptions, in_container};

fn btrfs_subvolume_id(path: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Parent UUID:").map(|v| v.trim().to_string()))
}

#[test]
fn btrfs_pool_makes_containers_as_snapshots_of_their_image() {
    let d = Daemon::start();
    assert!(
        d.log().contains("created storage pool default: btrfs on loop file"),
        "{}",
        d.log()
    );
    d.ok(&["create", "busybox", "b1"]);
    let parent = btrfs_subvolume_id(&d.pool_dir().join("containers/b1")).expect("b1 is a subvolume");
    assert_ne!(parent, "-", "b1 is a snapshot (it has a parent subvolume)");
    d.ok(&["delete", "b1"]);
    assert!(!d.pool_dir().join("containers/b1").exists());
}

#[test]
fn dir_pool_copies_and_containers_do_not_share_files() {
    let d = Daemon::start_with(DaemonOptions {
        storage: "dir",
        ..Default::default()
    });
    assert!(d.log().contains("created storage pool default: dir at"), "{}", d.log());
    d.ok(&["launch", "busybox", "a"]);
    d.ok(&["launch", "busybox", "b"]);
    in_container(d.init_pid("a"), "echo only-in-a > /root/mark");
    let (_, b) = in_container(d.init_pid("b"), "cat /root/mark 2>&1");
    assert!(b.contains("No such file"), "{b}");
    // Written by root inside an unprivileged container: root-owned on disk, because
    // the rootfs is idmapped rather than chowned.
    let mark = d.pool_dir().join("containers/a/rootfs/root/mark");
    let meta = std::fs::metadata(&mark).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
    d.ok(&["delete", "--force", "a", "b"]);
}
