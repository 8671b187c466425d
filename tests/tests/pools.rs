//! Storage pools beyond the default: a btrfs loop-file pool, a btrfs pool on an existing
//! btrfs mount, a dir pool; images per pool; what is refused.

use serde_json::Value;
use sysc_tests::{Daemon, is_mounted};

fn pools(d: &Daemon) -> Vec<Value> {
    let text = d.ok(&["storage", "list", "--format", "json"]);
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn parent_uuid(path: &std::path::Path) -> String {
    let out = std::process::Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Parent UUID:").map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

#[test]
fn a_loop_file_btrfs_pool_holds_its_own_images_and_containers() {
    let d = Daemon::start();
    d.ok(&["storage", "create", "fast", "btrfs", "size=300MiB"]);
    let mount = d.root.join("storage-pools/fast");
    assert!(is_mounted(&mount.display().to_string()), "the pool is mounted");
    let loop_file = d.root.join("disks/fast.img");
    assert_eq!(std::fs::metadata(&loop_file).unwrap().len(), 300 << 20);

    d.ok(&["launch", "busybox", "b1", "--storage", "fast"]);
    assert_eq!(d.container("b1")["pool"], "fast");
    // The image was built (or copied) into this pool, and the container is a snapshot of it.
    let images = d.ok(&["image", "list", "--format", "json"]);
    let images: Value = serde_json::from_str(&images).unwrap();
    assert!(
        images.as_array().unwrap().iter().any(|i| i["pool"] == "fast"),
        "{images}"
    );
    let parent = parent_uuid(&mount.join("containers/b1"));
    assert!(
        !parent.is_empty() && parent != "-",
        "b1 is a snapshot of its image: {parent:?}"
    );
    // A second container on the default pool copies the image across instead of
    // running the template again.
    let created = d.sysc(&["create", "busybox", "b2"]);
    assert!(created.success(), "{}", created.stderr);
    let said = format!("{}{}", created.stdout, created.stderr);
    assert!(said.contains("copying image"), "{said}");

    let listed = pools(&d);
    let fast = listed.iter().find(|p| p["name"] == "fast").unwrap();
    assert_eq!(fast["driver"], "btrfs");
    assert_eq!(fast["used_by"], serde_json::json!(["b1"]));
    assert!(fast["total_bytes"].as_u64().unwrap() > 200 << 20);
    assert!(listed.iter().any(|p| p["name"] == "default" && p["default"] == true));
    let info = d.ok(&["storage", "info", "fast"]);
    assert!(info.contains("fast.img"), "{info}");

    let err = d.fails(&["storage", "delete", "fast"]);
    assert!(err.contains("used by containers b1"), "{err}");
    d.ok(&["delete", "--force", "b1"]);
    d.ok(&["storage", "delete", "fast"]);
    assert!(!is_mounted(&mount.display().to_string()));
    assert!(!loop_file.exists());
    assert!(!mount.exists());
    // The pool's cached image went with it; the default pool's stays.
    let images = d.ok(&["image", "list", "--format", "json"]);
    assert!(!images.contains("\"fast\""), "{images}");
    d.ok(&["delete", "b2"]);
}

#[test]
fn a_btrfs_pool_on_an_existing_btrfs_mount_and_bad_requests() {
    // Declared before the daemon so it is unmounted after the daemon is gone.
    let btrfs = sysc_tests::LoopBtrfs::mount(160);
    let d = Daemon::start();
    let source = btrfs.path();
    let spec = format!("source={}", source.display());
    d.ok(&["storage", "create", "onbtrfs", "btrfs", &spec]);
    d.ok(&["create", "busybox", "c1", "-s", "onbtrfs"]);
    assert!(source.join("containers/c1/rootfs/bin/busybox").exists());
    d.ok(&["snapshot", "create", "c1", "s0"]);
    assert!(source.join("snapshots/c1/s0/rootfs/bin/busybox").exists());

    let not_btrfs = tempfile::tempdir_in("/tmp").unwrap();
    let bad_source = format!("source={}", not_btrfs.path().display());
    // Sources that would share files with another pool or with the daemon's own state.
    let source_of = |path: &std::path::Path| format!("source={}", path.display());
    let same = source_of(&source);
    let inside = source.join("containers/c1/rootfs");
    let inside = source_of(&inside);
    let default_pool = source_of(&d.pool_dir());
    let below_root = d.root.join("spare");
    std::fs::create_dir(&below_root).unwrap();
    let below_root = source_of(&below_root);
    let full = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::write(full.path().join("keep"), "x").unwrap();
    let full = source_of(full.path());
    for (args, wanted) in [
        (vec!["storage", "create", "onbtrfs", "dir"], "already exists"),
        (vec!["storage", "create", "tiny", "btrfs", "size=1MiB"], "minimum"),
        (vec!["storage", "create", "odd", "btrfs", "size=lots"], "not a size"),
        (
            vec!["storage", "create", "odd", "dir", "colour=blue"],
            "unknown storage pool option colour",
        ),
        (
            vec!["storage", "create", "odd", "btrfs", &bad_source],
            "not on a btrfs filesystem",
        ),
        (
            vec!["storage", "create", "odd", "dir", "source=relative/path"],
            "not an absolute path",
        ),
        (
            vec!["storage", "create", "odd", "dir", &same],
            "overlaps storage pool onbtrfs",
        ),
        (
            vec!["storage", "create", "odd", "btrfs", &same],
            "overlaps storage pool onbtrfs",
        ),
        (
            vec!["storage", "create", "odd", "dir", &inside],
            "overlaps storage pool onbtrfs",
        ),
        (
            vec!["storage", "create", "odd", "dir", &default_pool],
            "overlaps syscd's root",
        ),
        (
            vec!["storage", "create", "odd", "dir", &below_root],
            "overlaps syscd's root",
        ),
        (vec!["storage", "create", "odd", "dir", &full], "is not empty"),
        (vec!["storage", "create", "odd", "dir", "size=1GiB"], "size"),
        (
            vec!["storage", "create", "Bad_Name", "dir"],
            "invalid storage pool name",
        ),
        (vec!["storage", "delete", "default"], "cannot be deleted"),
        (vec!["storage", "delete", "nothing"], "storage pool nothing not found"),
        (
            vec!["create", "busybox", "c2", "-s", "nothing"],
            "storage pool nothing not found",
        ),
    ] {
        let err = d.fails(&args);
        assert!(err.contains(wanted), "{args:?}: {err}");
    }
    let names: Vec<_> = pools(&d)
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["default", "onbtrfs"], "refused requests made nothing");
    assert!(!d.root.join("disks/tiny.img").exists());
    assert!(d.list().iter().all(|c| c["name"] != "c2"));

    d.ok(&["delete", "c1"]);
    d.ok(&["storage", "delete", "onbtrfs"]);
    assert!(source.exists(), "a source directory stays");
    assert!(!source.join("containers").exists());
    // Emptied again, it can hold a pool again.
    d.ok(&["storage", "create", "again", "btrfs", &spec]);
    d.ok(&["storage", "delete", "again"]);
}

/// A daemon with a 24 MiB dir pool `tiny` on a tmpfs of its own, which is unmounted after
/// the daemon is gone (bindings drop last first).
fn tiny_pool() -> (sysc_tests::Tmpfs, Daemon) {
    let small = sysc_tests::Tmpfs::mount("24m");
    let d = Daemon::start();
    let source = format!("source={}", small.path().display());
    d.ok(&["storage", "create", "tiny", "dir", &source]);
    (small, d)
}

#[test]
fn a_container_that_fills_its_pool_stays_supervised() {
    let (_small, d) = tiny_pool();
    d.ok(&["launch", "busybox", "c1", "--storage", "tiny"]);
    let pid = d.container("c1")["pid"].clone();
    // The guest fills its disk, then prints to its console: the console log and the
    // monitor's own log, both on that pool, can no longer be written.
    d.ok(&[
        "exec",
        "c1",
        "--",
        "sh",
        "-c",
        "dd if=/dev/zero of=/root/fill bs=64k 2>/dev/null; echo after the disk filled > /dev/console; sleep 0.5",
    ]);
    assert_eq!(d.state("c1"), "RUNNING");
    assert_eq!(d.container("c1")["pid"], pid);
    // The monitor still answers: exec and a clean stop go through it.
    d.ok(&["exec", "c1", "--", "rm", "/root/fill"]);
    d.ok(&["stop", "c1"]);
    assert_eq!(d.state("c1"), "STOPPED");
    d.ok(&["delete", "c1"]);
    d.ok(&["storage", "delete", "tiny"]);
}

#[test]
fn a_rename_on_a_full_pool_fails_whole() {
    let (small, d) = tiny_pool();
    d.ok(&["create", "busybox", "c1", "--storage", "tiny"]);
    let filler = small.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 1 << 16];
    while std::io::Write::write_all(&mut file, &block).is_ok() {}
    drop(file);

    let err = d.fails(&["rename", "c1", "c2"]);
    assert!(err.to_lowercase().contains("no space left on device"), "{err}");
    let names: Vec<Value> = d.list().iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, ["c1"]);
    assert_eq!(d.state("c1"), "STOPPED");
    let rootfs = small.join("containers/c1/rootfs");
    assert_eq!(std::fs::read_to_string(rootfs.join("etc/hostname")).unwrap(), "c1\n");

    // With room again the same rename goes through, and the container starts under it.
    std::fs::remove_file(&filler).unwrap();
    d.ok(&["rename", "c1", "c2"]);
    d.ok(&["start", "c2"]);
    assert_eq!(d.ok(&["exec", "c2", "--", "cat", "/etc/hostname"]), "c2\n");
    d.ok(&["delete", "--force", "c2"]);
    d.ok(&["storage", "delete", "tiny"]);
}
