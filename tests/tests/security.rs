//! The security keys on real containers: what a user would check after setting them.
//! The escape attempts a container's root might make are in escape.rs.

use sysc_tests::{Daemon, DaemonOptions};

/// The CapBnd mask of /proc/self/status of a command run in the container.
fn bounding_set(d: &Daemon, name: &str, uid: &str) -> u64 {
    let status = d.ok(&["exec", name, "--user", uid, "--", "cat", "/proc/self/status"]);
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .expect("CapBnd in /proc/self/status");
    u64::from_str_radix(hex.trim(), 16).unwrap()
}

const SYS_MODULE: u64 = 1 << 16;
const SYS_RAWIO: u64 = 1 << 17;
const SYS_TIME: u64 = 1 << 25;
const MAC_OVERRIDE: u64 = 1 << 32;
const MAC_ADMIN: u64 = 1 << 33;
const NET_RAW: u64 = 1 << 13;
const CHOWN: u64 = 1;

#[test]
fn capabilities_drop_and_keep_reach_the_init_and_every_exec() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    let always = SYS_MODULE | SYS_RAWIO | SYS_TIME | MAC_OVERRIDE | MAC_ADMIN;
    for uid in ["0", "1000"] {
        let caps = bounding_set(&d, "c", uid);
        assert_eq!(caps & always, 0, "uid {uid}: the default five are dropped: {caps:x}");
        assert_ne!(caps & NET_RAW, 0, "uid {uid}: net_raw is kept by default: {caps:x}");
    }

    d.ok(&["config", "set", "c", "security.capabilities.drop=CAP_NET_RAW"]);
    d.ok(&["restart", "c"]);
    let init = std::fs::read_to_string(format!("/proc/{}/status", d.init_pid("c"))).unwrap();
    assert!(init.contains("Seccomp:\t2"), "the init runs under the filter: {init}");
    for uid in ["0", "1000"] {
        assert_eq!(bounding_set(&d, "c", uid) & NET_RAW, 0, "uid {uid}: net_raw dropped");
    }
    let ping = d.sysc(&["exec", "c", "--", "ping", "-c", "1", "-W", "1", "127.0.0.1"]);
    assert!(!ping.success(), "a raw socket needs net_raw: {ping:?}");

    d.ok(&["config", "unset", "c", "security.capabilities.drop"]);
    d.ok(&["config", "set", "c", "security.capabilities.keep=chown, setuid, setgid"]);
    d.ok(&["restart", "c"]);
    let caps = bounding_set(&d, "c", "0");
    assert_eq!(caps & CHOWN, CHOWN);
    assert_eq!(caps & !(CHOWN | 1 << 6 | 1 << 7), 0, "only the kept three: {caps:x}");

    let err = d.fails(&["config", "set", "c", "security.capabilities.drop=net_raw"]);
    assert!(err.contains("cannot both be set"), "{err}");
    let err = d.fails(&["config", "set", "c", "security.capabilities.keep=sys_module"]);
    assert!(err.contains("sys_module is always dropped"), "{err}");
    let err = d.fails(&["config", "set", "c", "security.capabilities.drop=net_rw"]);
    assert!(err.contains("\"net_rw\" is not a capability"), "{err}");
    assert_eq!(
        d.container("c")["config"]["security.capabilities.keep"],
        "chown, setuid, setgid",
        "a refused change leaves the config as it was"
    );
}

#[test]
fn syscalls_deny_and_allow_adjust_the_default_list() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "u", "-c", "security.syscalls.deny=chroot"]);
    let out = d.sysc(&["exec", "u", "--", "chroot", "/", "true"]);
    assert!(
        !out.success() && out.stderr.contains("Operation not permitted"),
        "{out:?}"
    );

    // A privileged root may swapoff as far as the kernel goes: only the filter says no,
    // and with swapoff allowed the kernel answers for the missing file instead.
    d.ok(&["launch", "busybox", "p", "-c", "security.privileged=true"]);
    let out = d.sysc(&["exec", "p", "--", "swapoff", "/no-such-swap"]);
    assert!(out.stderr.contains("Operation not permitted"), "{out:?}");
    d.ok(&["config", "set", "p", "security.syscalls.allow=swapoff"]);
    d.ok(&["restart", "p"]);
    let out = d.sysc(&["exec", "p", "--", "swapoff", "/no-such-swap"]);
    assert!(out.stderr.contains("No such file or directory"), "{out:?}");

    let err = d.fails(&["config", "set", "u", "security.syscalls.deny=chroot, nosuchcall"]);
    assert!(err.contains("\"nosuchcall\" is not a system call"), "{err}");
}

#[test]
fn nesting_allows_user_namespaces_and_fresh_proc_and_sysfs_mounts() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    let out = d.sysc(&["exec", "c", "--", "unshare", "-U", "true"]);
    assert!(
        !out.success() && out.stderr.contains("Operation not permitted"),
        "{out:?}"
    );
    assert!(!d.sysc(&["exec", "c", "--", "test", "-e", "/dev/.sysc/proc"]).success());

    d.ok(&["config", "set", "c", "security.nesting=true"]);
    d.ok(&["restart", "c"]);
    let nested = "mkdir -p /mnt && unshare -Urpfmn --mount-proc sh -c \
                  'mount -t sysfs sysfs /mnt && ls /mnt/class/net && echo pid $$'";
    let out = d.ok(&["exec", "c", "--", "sh", "-c", nested]);
    assert!(
        out.contains("lo") && out.contains("pid 1"),
        "a nested container's view: {out}"
    );
}

#[test]
fn a_privileged_container_on_cgroup_v2_opens_only_the_standard_devices() {
    let d = Daemon::start_with(DaemonOptions {
        cgroup_driver: "v2",
        ..Default::default()
    });
    d.ok(&["launch", "busybox", "p", "-c", "security.privileged=true"]);
    let script = "mknod /tmp/loop0 b 7 0 && mknod /tmp/mem c 1 1 && echo made; \
                  head -c 1 /tmp/loop0; head -c 1 /tmp/mem; echo x > /dev/null && echo null-ok";
    let out = d.sysc(&["exec", "p", "--", "sh", "-c", script]);
    assert!(out.stdout.contains("made") && out.stdout.contains("null-ok"), "{out:?}");
    assert_eq!(
        out.stderr.matches("Operation not permitted").count(),
        2,
        "the loop device and /dev/mem stay shut: {out:?}"
    );
}
