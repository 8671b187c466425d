//! Privileged containers (security.privileged=true) are flagged wherever a user looks:
//! a warning when one is made, `list` and `info`.

use sysc_tests::Daemon;

const WARNING: &str = "root inside it is root on the host; use it only for trusted workloads";

#[test]
fn privileged_containers_are_warned_about_and_flagged() {
    let d = Daemon::start();
    let privileged = d.sysc(&["launch", "busybox", "p1", "-c", "security.privileged=true"]);
    assert!(privileged.success(), "{}\n{}", privileged.stderr, d.log());
    assert!(
        privileged
            .stderr
            .contains(&format!("warning: container p1 is privileged: {WARNING}")),
        "{}",
        privileged.stderr
    );
    let plain = d.sysc(&["create", "busybox", "u1"]);
    assert!(plain.success(), "{}\n{}", plain.stderr, d.log());
    assert!(!plain.stderr.contains("warning"), "{}", plain.stderr);

    assert_eq!(d.container("p1")["privileged"], true);
    assert_eq!(d.container("u1")["privileged"], false);

    let table = d.ok(&["list"]);
    let row = |name: &str| {
        table
            .lines()
            .find(|line| line.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} missing from\n{table}"))
            .to_string()
    };
    assert!(row("p1").contains("RUNNING (PRIVILEGED)"), "{table}");
    assert!(
        row("u1").contains("STOPPED") && !row("u1").contains("PRIVILEGED"),
        "{table}"
    );
    // CSV keeps the bare state for scripts; the TYPE column (as in Incus) carries the mark.
    let csv = d.ok(&["list", "--format", "csv", "--columns", "nst"]);
    assert!(csv.contains("p1,RUNNING,CONTAINER (PRIVILEGED)\n"), "{csv}");
    assert!(csv.contains("u1,STOPPED,CONTAINER\n"), "{csv}");

    let info = d.ok(&["info", "p1"]);
    assert!(
        info.contains("Privileged:  yes (root in the container is root on the host)"),
        "{info}"
    );
    let info = d.ok(&["info", "u1"]);
    assert!(info.contains("Privileged:  no\n"), "{info}");
}

/// HOST-NOTES, pitfalls: a privileged container's `umount -a -r` once remounted the
/// host's /dev/pts read-only through a bind-mounted host pty. Its mounts must all be
/// its own: the root filesystem, and fresh kernel filesystems.
#[test]
fn a_privileged_container_has_no_bind_mount_of_a_host_filesystem() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "p", "-c", "security.privileged=true"]);
    let mountinfo = d.ok(&["exec", "p", "--", "cat", "/proc/self/mountinfo"]);
    let own = ["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup2"];
    let mut root_device = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (device, mount_point) = (fields[2], fields[4]);
        let fstype = fields[fields.iter().position(|f| *f == "-").unwrap() + 1];
        if mount_point == "/" {
            root_device = Some(device);
            continue;
        }
        assert!(own.contains(&fstype), "a mount from the host: {line}\n{mountinfo}");
    }
    let root_device = root_device.expect("a root mount");
    let binds = mountinfo
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(root_device))
        .count();
    assert_eq!(binds, 1, "only / comes from the pool's filesystem:\n{mountinfo}");
    let devpts: Vec<&str> = mountinfo
        .lines()
        .filter(|l| l.contains(" - devpts "))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert!(
        devpts.windows(2).all(|w| w[0] == w[1]),
        "one devpts instance, the container's own: {mountinfo}"
    );
    let host_devpts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let host_devpts: Vec<&str> = host_devpts
        .lines()
        .filter(|l| l.contains(" - devpts "))
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert!(
        devpts.iter().all(|d| !host_devpts.contains(d)),
        "not the host's devpts: {mountinfo}"
    );
}
