//! Snapshots on both drivers: restore brings the old files back, names and expiry,
//! consistency while running, and what goes with the container.

use serde_json::Value;
use sysc_tests::{Daemon, DaemonOptions, in_container};

fn daemon(storage: &'static str) -> Daemon {
    Daemon::start_with(DaemonOptions {
        storage,
        ..Default::default()
    })
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect()
}

fn restore_brings_back_the_snapshot(storage: &'static str) {
    let d = daemon(storage);
    d.ok(&["launch", "busybox", "c1"]);
    let pid = d.init_pid("c1");
    let (ok, out) = in_container(
        pid,
        "echo v1 > /root/changed && echo here > /root/deleted && mkdir -p /srv/tree && echo deep > /srv/tree/f",
    );
    assert!(ok, "{out}");
    d.ok(&["snapshot", "create", "c1", "before"]);
    assert_eq!(d.state("c1"), "RUNNING", "the snapshot thawed the container");
    let (ok, out) = in_container(
        pid,
        "echo v2 > /root/changed && rm /root/deleted && rm -r /srv/tree && echo new > /root/created",
    );
    assert!(ok, "{out}");

    d.ok(&["snapshot", "restore", "c1", "before"]);
    assert_eq!(d.state("c1"), "RUNNING", "a running container is started again");
    let pid = d.init_pid("c1");
    let (_, out) = in_container(
        pid,
        "cat /root/changed /root/deleted /srv/tree/f; ls /root/created 2>&1",
    );
    assert_eq!(
        out, "v1\nhere\ndeep\nls: /root/created: No such file or directory\n",
        "after restore"
    );
    // The snapshot is still there after restoring it, unchanged.
    assert_eq!(names(&d.snapshots("c1")), ["before"]);
    // A paused container is not restarted running behind the user's back.
    d.ok(&["pause", "c1"]);
    let err = d.fails(&["snapshot", "restore", "c1", "before"]);
    assert!(err.contains("container c1 is paused; resume it"), "{err}");
    assert_eq!(d.state("c1"), "PAUSED");
    assert_eq!(d.init_pid("c1"), pid, "left as it was");
    d.ok(&["resume", "c1"]);
    d.ok(&["delete", "--force", "c1"]);
}

#[test]
fn restore_brings_back_changed_and_deleted_files_btrfs() {
    restore_brings_back_the_snapshot("btrfs");
}

#[test]
fn restore_brings_back_changed_and_deleted_files_dir() {
    restore_brings_back_the_snapshot("dir");
}

#[test]
fn names_expiry_rename_delete_and_bad_input() {
    let d = daemon("btrfs");
    d.ok(&["create", "busybox", "c1"]);
    d.ok(&["snapshot", "create", "c1"]);
    d.ok(&["snapshot", "create", "c1", "--expiry", "2d"]);
    d.ok(&["snapshot", "create", "c1", "keep", "--no-expiry"]);
    let list = d.snapshots("c1");
    assert_eq!(names(&list), ["snap0", "snap1", "keep"]);
    assert!(list[0]["expires_at"].is_null(), "{list:?}");
    assert!(list[2]["expires_at"].is_null(), "{list:?}");
    let taken = chrono::DateTime::parse_from_rfc3339(list[1]["taken_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(list[1]["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!((expires - taken).num_hours(), 48, "{list:?}");

    // snapshots.expiry.manual applies to manual snapshots taken without --expiry.
    d.ok(&["config", "set", "c1", "snapshots.expiry.manual=3H"]);
    d.ok(&["snapshot", "create", "c1", "timed"]);
    let timed = d.snapshots("c1").into_iter().find(|s| s["name"] == "timed").unwrap();
    assert!(timed["expires_at"].is_string(), "{timed:?}");

    d.ok(&["snapshot", "rename", "c1", "keep", "kept"]);
    d.ok(&["snapshot", "delete", "c1/snap0"]);
    assert_eq!(names(&d.snapshots("c1")), ["snap1", "kept", "timed"]);
    // The pattern does not reuse numbers: snap0 is gone, the next is snap2.
    d.ok(&["snapshot", "create", "c1"]);
    assert!(names(&d.snapshots("c1")).contains(&"snap2".to_string()));

    let err = d.fails(&["snapshot", "restore", "c1", "nothing"]);
    assert!(err.contains("snapshot c1/nothing not found"), "{err}");
    let err = d.fails(&["snapshot", "create", "c1", "a/b"]);
    assert!(err.contains("invalid snapshot name"), "{err}");
    let err = d.fails(&["snapshot", "create", "c1", ""]);
    assert!(err.contains("invalid snapshot name") || err.contains("empty"), "{err}");
    let err = d.fails(&["snapshot", "create", "c1", "kept"]);
    assert!(err.contains("already exists"), "{err}");
    let err = d.fails(&["snapshot", "create", "c1", "x", "--expiry", "3 days"]);
    assert!(err.contains("expiry"), "{err}");
    let err = d.fails(&["snapshot", "create", "nope"]);
    assert!(err.contains("container nope not found"), "{err}");
    let err = d.fails(&["snapshot", "rename", "c1", "kept", "snap1"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(d.snapshots("c1").len(), 4, "refused requests changed nothing");
    d.ok(&["delete", "c1"]);
}

#[test]
fn a_deleted_container_takes_its_snapshots_along() {
    let d = daemon("btrfs");
    d.ok(&["launch", "busybox", "c1"]);
    d.ok(&["snapshot", "create", "c1", "s0"]);
    d.ok(&["snapshot", "create", "c1", "s1"]);
    let volumes = d.pool_dir().join("snapshots/c1");
    assert!(volumes.join("s0/rootfs/bin/busybox").exists());
    let write = std::fs::write(volumes.join("s0/rootfs/root/late"), "x");
    assert!(write.is_err(), "a btrfs snapshot is read-only");
    let err = d.fails(&["delete", "c1"]);
    assert!(err.contains("running"), "{err}");
    assert!(volumes.join("s1").exists());
    d.ok(&["delete", "--force", "c1"]);
    assert!(!volumes.exists(), "snapshot volumes left behind");
    // A new container of the same name starts with none.
    d.ok(&["create", "busybox", "c1"]);
    assert!(d.snapshots("c1").is_empty());
    d.ok(&["delete", "c1"]);
}

#[test]
fn a_renamed_container_keeps_its_snapshots() {
    let d = daemon("btrfs");
    d.ok(&["create", "busybox", "c1"]);
    std::fs::write(d.pool_dir().join("containers/c1/rootfs/root/mark"), "one").unwrap();
    d.ok(&["snapshot", "create", "c1", "s0"]);
    d.ok(&["rename", "c1", "c2"]);
    assert_eq!(names(&d.snapshots("c2")), ["s0"]);
    std::fs::write(d.pool_dir().join("containers/c2/rootfs/root/mark"), "two").unwrap();
    d.ok(&["snapshot", "restore", "c2", "s0"]);
    let rootfs = d.pool_dir().join("containers/c2/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("root/mark")).unwrap(), "one");
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(), "c2\n");
    d.ok(&["delete", "c2"]);
}

#[test]
fn a_daemon_killed_mid_snapshot_leaves_the_container_thawed_and_no_partial_snapshot() {
    let mut d = daemon("dir");
    d.ok(&["launch", "busybox", "c1"]);
    let rootfs = d.pool_dir().join("containers/c1/rootfs");
    for n in 0..8 {
        std::fs::write(rootfs.join(format!("root/blob{n}")), vec![n as u8; 64 << 20]).unwrap();
    }
    let mut snapshot = d.command(&["snapshot", "create", "c1", "s0"]).spawn().unwrap();
    // Killed while cp copies half a gigabyte with c1 frozen.
    let frozen = sysc_tests::wait_until(std::time::Duration::from_secs(10), || {
        d.list()
            .iter()
            .any(|c| c["name"] == "c1" && c["state"] == "PAUSED")
            .then_some(())
    });
    d.kill9();
    let _ = snapshot.wait();
    assert!(frozen.is_some(), "the snapshot never froze c1");
    d.start_again();
    assert_eq!(d.state("c1"), "RUNNING", "the restarted daemon thaws what it froze");
    let listed = d.snapshots("c1");
    assert!(
        listed.is_empty() || names(&listed) == ["s0"],
        "a snapshot is complete or absent: {listed:?}"
    );
    let left: Vec<_> = std::fs::read_dir(d.pool_dir().join("snapshots/c1"))
        .map(|e| e.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(left.len(), listed.len(), "volumes left: {left:?}");
    d.ok(&["snapshot", "create", "c1", "s1"]);
    d.ok(&["delete", "--force", "c1"]);
}
