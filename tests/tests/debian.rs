//! Debian with systemd: the full-distribution case. The first launch builds the image
//! with the template (debootstrap; its download is cached per test run), the second
//! clones it.

use std::time::Duration;

use sysc_tests::{Daemon, DaemonOptions, in_container, proc_status_field, wait_until};

/// Waits for `systemctl is-system-running` to settle; its last answer.
fn system_state(pid: i64) -> String {
    let mut last = String::new();
    let settled = wait_until(Duration::from_secs(60), || {
        let (_, out) = in_container(pid, "systemctl is-system-running 2>/dev/null");
        last = out.trim().to_string();
        matches!(last.as_str(), "running" | "degraded" | "maintenance" | "stopping").then_some(())
    });
    assert!(settled.is_some(), "systemd did not settle: {last}");
    last
}

fn assert_boots_systemd(d: &Daemon, name: &str) -> i64 {
    let pid = d.init_pid(name);
    let nspid = proc_status_field(pid, "NSpid").unwrap();
    assert!(nspid.ends_with(" 1"), "NSpid {nspid}");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.to_string_lossy().contains("systemd"), "PID 1 is {exe:?}");
    let state = system_state(pid);
    let (_, failed) = in_container(pid, "systemctl --failed --no-legend --plain");
    assert_eq!(state, "running", "failed units: {failed}");
    let (_, hostname) = in_container(pid, "hostname");
    assert_eq!(hostname.trim(), name);
    pid
}

#[test]
fn debian_boots_systemd_to_running_unprivileged_and_privileged_and_stops_cleanly() {
    let d = Daemon::start();
    let first = d.sysc(&["launch", "debian", "web1"]);
    assert!(first.success(), "{}\n{}", first.stderr, d.log());
    assert!(
        first.stderr.contains("building image debian/bookworm"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("debian template done"),
        "template output shown: {}",
        first.stderr
    );

    let pid = assert_boots_systemd(&d, "web1");
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        uid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", &d.idmap_base.to_string(), "65536"]
    );
    // Files are owned by root inside (idmapped mount), not nobody.
    let (_, owner) = in_container(pid, "stat -c %U:%G /etc/passwd /usr/bin/ls");
    assert_eq!(owner.lines().collect::<Vec<_>>(), ["root:root", "root:root"]);
    // systemd built its own cgroup tree inside the container's delegated cgroup.
    let unified = d.cgroup_dirs("web1").pop().unwrap();
    assert!(
        unified.join("init.scope").is_dir(),
        "no init.scope under {}",
        unified.display()
    );
    assert!(unified.join("system.slice").is_dir());

    // The second launch reuses the cached image: no template run.
    let second = d.sysc(&["launch", "debian", "web2", "-c", "security.privileged=true"]);
    assert!(second.success(), "{}", second.stderr);
    assert!(second.stderr.contains("using cached image"), "{}", second.stderr);
    assert!(
        !second.stderr.contains("debian template done"),
        "template ran again: {}",
        second.stderr
    );
    let images: serde_json::Value = serde_json::from_str(&d.ok(&["image", "list", "--format", "json"])).unwrap();
    assert_eq!(images.as_array().unwrap().len(), 1);
    let privileged = assert_boots_systemd(&d, "web2");
    assert_eq!(proc_status_field(privileged, "Uid").unwrap(), "0 0 0 0");

    // Clean stop: SIGRTMIN+3 makes systemd halt; the kernel ends it with SIGINT.
    let started = std::time::Instant::now();
    d.ok(&["stop", "web1"]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "clean stop took {:?}",
        started.elapsed()
    );
    let c = d.container("web1");
    assert_eq!(c["state"], "STOPPED");
    assert_eq!(
        c["last_exit"]["signal"],
        libc::SIGINT,
        "halted cleanly, not killed: {c}"
    );
    let console = std::fs::read_to_string(c["paths"]["console_log"].as_str().unwrap()).unwrap();
    assert!(
        console.contains("System Halt") || console.contains("Reached target"),
        "console log kept: {console}"
    );

    d.ok(&["start", "web1"]);
    assert_boots_systemd(&d, "web1");
}

#[test]
fn debian_gets_an_address_finds_containers_by_name_and_reaches_the_mirror_through_nat() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "peer"]);
    d.ok(&["launch", "debian", "net1"]);
    let pid = assert_boots_systemd(&d, "net1");
    let interface = wait_until(Duration::from_secs(20), || {
        let c = d.container("net1");
        c["ipv4_addresses"].as_array()?.first()?["interface"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(interface.as_deref(), Some("eth0"), "no DHCP address:\n{}", d.log());
    let peer = wait_until(Duration::from_secs(20), || {
        let c = d.container("peer");
        c["ipv4"].as_array()?.first()?.as_str().map(str::to_string)
    })
    .expect("the busybox peer has an address");
    for name in ["peer.sysc", "peer"] {
        let (ok, out) = in_container(pid, &format!("getent hosts {name}"));
        assert!(ok && out.contains(&peer), "{name} from debian: {out}");
    }
    let (ok, out) = in_container(pid, "ping -c 1 -W 3 peer");
    assert!(ok, "ping peer: {out}");
    let update = d.sysc(&["exec", "net1", "--", "apt-get", "update"]);
    assert!(
        update.success(),
        "apt-get update through the NAT:\n{}{}",
        update.stdout,
        update.stderr
    );
    assert!(update.stdout.contains("deb.debian.org"), "{}", update.stdout);
}

#[test]
fn systemd_boots_with_the_cgroup_v2_driver() {
    // On this hybrid host the v2 driver runs on the controller-less cgroup2: the code
    // path of a pure v2 host (delegation, process tracking, kill) without limits.
    let d = Daemon::start_with(DaemonOptions {
        cgroup_driver: "v2",
        ..Default::default()
    });
    d.ok(&["launch", "debian", "v2c"]);
    let pid = assert_boots_systemd(&d, "v2c");
    let dirs = d.cgroup_dirs("v2c");
    assert_eq!(dirs.len(), 1, "the v2 driver uses one hierarchy: {dirs:?}");
    assert!(dirs[0].join("init.scope").is_dir());
    let procs = std::fs::read_to_string(dirs[0].join("init.scope/cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|p| p == pid.to_string()),
        "systemd moved itself into init.scope"
    );
    d.ok(&["stop", "v2c"]);
    assert!(!dirs[0].exists());
}

#[test]
fn a_debian_copy_and_an_export_imported_elsewhere_boot_systemd() {
    let a = Daemon::start();
    let b = Daemon::start_with(DaemonOptions {
        storage: "dir",
        ..Default::default()
    });
    a.ok(&["launch", "debian", "web1"]);
    let pid = assert_boots_systemd(&a, "web1");
    in_container(pid, "echo kept > /root/mark");
    set_xattr(
        &a.pool_dir().join("containers/web1/rootfs/root/mark"),
        "user.sysc-test",
        b"kept",
    );
    a.ok(&["snapshot", "create", "web1", "s0"]);
    assert_eq!(a.state("web1"), "RUNNING");

    // A copy of the running container is another machine.
    a.ok(&["copy", "web1", "web2"]);
    a.ok(&["start", "web2"]);
    let copy = assert_boots_systemd(&a, "web2");
    let (_, ids) = in_container(copy, "cat /etc/machine-id /root/mark");
    let (_, original) = in_container(pid, "cat /etc/machine-id");
    assert!(ids.ends_with("kept\n"), "{ids}");
    assert_ne!(ids.lines().next(), original.lines().next(), "same machine-id");

    let files = tempfile::tempdir().unwrap();
    let archive = files.path().join("web1.tar.zst");
    a.ok(&["export", "web1", archive.to_str().unwrap()]);
    b.ok(&["import", archive.to_str().unwrap()]);
    b.ok(&["start", "web1"]);
    let imported = assert_boots_systemd(&b, "web1");
    assert_eq!(in_container(imported, "cat /root/mark").1, "kept\n");
    assert_eq!(b.snapshots("web1").len(), 1);
    // Extended attributes (file capabilities live in one) survive the archive.
    let imported_mark = b.pool_dir().join("containers/web1/rootfs/root/mark");
    assert_eq!(
        get_xattr(&imported_mark, "user.sysc-test").as_deref(),
        Some(&b"kept"[..])
    );
    b.ok(&["delete", "--force", "web1"]);
    a.ok(&["delete", "--force", "web1", "web2"]);
}

fn set_xattr(path: &std::path::Path, name: &str, value: &[u8]) {
    let (path, name) = (c_string(path.as_os_str().as_encoded_bytes()), c_string(name.as_bytes()));
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn get_xattr(path: &std::path::Path, name: &str) -> Option<Vec<u8>> {
    let (path, name) = (c_string(path.as_os_str().as_encoded_bytes()), c_string(name.as_bytes()));
    let mut buffer = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) };
    (n >= 0).then(|| buffer[..n as usize].to_vec())
}

fn c_string(bytes: &[u8]) -> std::ffi::CString {
    std::ffi::CString::new(bytes).unwrap()
}
