//! A crash at any point leaves sled and disk consistent. Each test stops the daemon
//! where a crash would have left it: the database says a change was under way (that is
//! exactly what a crash between two steps leaves, since every step is flushed before
//! the next), then starts it again and checks the change was finished or undone.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sysc_tests::{Daemon, DaemonOptions, wait_until};
use syscd::db::{Db, RecordStatus};

/// Rewrites record statuses as a crash would have left them. One open for all of them:
/// sled releases its file lock a moment after a handle is dropped.
fn set_status(d: &Daemon, changes: &[(&str, RecordStatus)]) {
    let db = Db::open(&d.root.join("db")).unwrap();
    for (name, status) in changes {
        let mut record = db.container(name).unwrap().unwrap();
        record.status = status.clone();
        db.put_container(&record).unwrap();
    }
    flush(&db);
}

fn flush(db: &Db) {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(db.flush())
        .unwrap();
}

#[test]
fn an_interrupted_create_is_undone() {
    let mut d = Daemon::start();
    d.ok(&["create", "busybox", "half"]);
    d.kill9();
    set_status(&d, &[("half", RecordStatus::Creating)]);
    d.start_again();
    assert!(d.list().is_empty(), "a half-created container must not appear");
    assert!(!d.pool_dir().join("containers/half").exists(), "its volume is removed");
    assert!(!d.root.join("containers/half").exists(), "its link is removed");
    d.ok(&["create", "busybox", "half"]);
}

#[test]
fn an_interrupted_delete_is_finished_while_the_api_is_served() {
    // A dir pool, where removing a volume takes time in proportion to its files (a btrfs
    // subvolume goes at once, the kernel cleans up after).
    let mut d = Daemon::start_with(DaemonOptions {
        storage: "dir",
        ..Default::default()
    });
    d.ok(&["create", "busybox", "doomed"]);
    let volume = d.pool_dir().join("containers/doomed");
    let many = volume.join("rootfs/many");
    std::fs::create_dir(&many).unwrap();
    for i in 0..150_000 {
        std::fs::File::create(many.join(i.to_string())).unwrap();
    }
    d.kill9();
    set_status(&d, &[("doomed", RecordStatus::Deleting)]);
    d.start_again();
    // Served, and the container no longer listed, while its files are still going.
    assert!(d.list().is_empty());
    assert!(volume.exists(), "syscd served only once the delete was finished");
    let gone = wait_until(Duration::from_secs(120), || (!volume.exists()).then_some(()));
    assert!(gone.is_some(), "the interrupted delete was not finished");
    let created = wait_until(Duration::from_secs(10), || {
        d.sysc(&["create", "busybox", "doomed"]).success().then_some(())
    });
    assert!(created.is_some(), "the name stayed taken: {}", d.log());
}

#[test]
fn an_interrupted_rename_is_finished_before_or_after_the_volume_moved() {
    let mut d = Daemon::start();
    d.ok(&["create", "busybox", "a1"]);
    d.ok(&["create", "busybox", "b1"]);
    d.kill9();
    // a1: crashed before its volume moved; b1: after.
    set_status(
        &d,
        &[
            ("a1", RecordStatus::Renaming { to: "a2".into() }),
            ("b1", RecordStatus::Renaming { to: "b2".into() }),
        ],
    );
    let pool = d.pool_dir().join("containers");
    std::fs::rename(pool.join("b1"), pool.join("b2")).unwrap();
    d.start_again();
    let names: Vec<String> = d
        .list()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a2", "b2"]);
    for name in ["a2", "b2"] {
        assert!(
            pool.join(name).join("rootfs/bin/busybox").exists(),
            "{name}'s rootfs moved with it"
        );
        d.ok(&["start", name]);
    }
}

#[test]
fn a_daemon_killed_during_an_image_build_leaves_no_image_behind() {
    let templates = tempfile::tempdir().unwrap();
    let slow = templates.path().join("slow");
    std::fs::write(
        &slow,
        "#!/bin/sh\nwhile [ $# -gt 0 ]; do [ \"$1\" = --rootfs ] && R=$2; shift; done\nmkdir -p \"$R/etc\"; echo building; sleep 30; echo done\n",
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut d = Daemon::start_with(DaemonOptions {
        templates: Some(templates.path().to_path_buf()),
        ..Default::default()
    });
    let sysc = sysc_tests::binary("sysc");
    let mut client = std::process::Command::new(sysc)
        .args(["launch", "slow", "s1"])
        .env("SYSC_SOCKET", &d.socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let images = d.pool_dir().join("images");
    let building = wait_until(Duration::from_secs(10), || {
        std::fs::read_dir(&images).ok()?.flatten().next().map(|_| ())
    });
    assert!(building.is_some(), "the build did not start");
    d.kill9();
    let _ = client.wait();
    d.start_again();
    assert!(d.list().is_empty());
    let images_json = d.ok(&["image", "list", "--format", "json"]);
    assert_eq!(images_json.trim(), "[]");
    assert_eq!(
        std::fs::read_dir(&images).unwrap().count(),
        0,
        "no temporary image volume left"
    );
    // The template died with the daemon rather than writing on.
    let template_alive = std::process::Command::new("pgrep")
        .args(["-f", &slow.display().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(!template_alive, "the template outlived the daemon");
}
