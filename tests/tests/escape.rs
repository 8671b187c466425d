//! Escape attempts, made as root inside real containers, unprivileged (the default) and
//! privileged: each must fail, and where something on the host could change, the host
//! must be as it was. The attempts are made by sysc-probe (tests/probe/), a static
//! program pushed into busybox containers, which makes one system call, read or write
//! and prints what the kernel answered: `ok RET` or `errno N`.
//!
//! Privileged containers are not root-safe (see the README's Security section): their
//! attempts here are the ones sysc still means to stop in them, with the seccomp filter,
//! the masks and the devices cgroup.
//!
//! The system call numbers are x86_64's.
#![cfg(target_arch = "x86_64")]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sysc_tests::{Daemon, Output};

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const EROFS: i32 = 30;
const MIB: u64 = 1 << 20;

const PROBE: &str = env!("SYSC_PROBE");

/// What sysc-probe printed.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Ok(i64),
    Errno(i32),
}

impl Answer {
    fn parse(text: &str) -> Self {
        let text = text.trim();
        if text == "ok" {
            return Answer::Ok(0);
        }
        if let Some(ret) = text.strip_prefix("ok ") {
            return Answer::Ok(ret.parse().unwrap_or_else(|_| panic!("probe said {text:?}")));
        }
        if let Some(errno) = text.strip_prefix("errno ") {
            return Answer::Errno(errno.parse().unwrap_or_else(|_| panic!("probe said {text:?}")));
        }
        panic!("probe said {text:?}")
    }

    fn errno(&self) -> Option<i32> {
        match self {
            Answer::Errno(n) => Some(*n),
            Answer::Ok(_) => None,
        }
    }
}

/// Launches a busybox container with the probe at /usr/bin/sysc-probe.
fn launch(d: &Daemon, name: &str, config: &[&str]) {
    let mut args = vec!["launch", "busybox", name];
    for item in config {
        args.extend(["-c", item]);
    }
    d.ok(&args);
    d.ok(&[
        "file",
        "push",
        PROBE,
        &format!("{name}/usr/bin/sysc-probe"),
        "--mode",
        "0755",
    ]);
}

/// A daemon with an unprivileged container u1 and a privileged one p1.
fn u1_and_p1() -> Daemon {
    let d = Daemon::start();
    launch(&d, "u1", &[]);
    launch(&d, "p1", &["security.privileged=true"]);
    d
}

const BOTH: [&str; 2] = ["u1", "p1"];

/// Runs `sysc-probe ARGS...` as root in the container.
fn probe(d: &Daemon, name: &str, args: &[&str]) -> Answer {
    let mut command = vec!["exec", name, "--", "sysc-probe"];
    command.extend(args);
    let answer = Answer::parse(&d.ok(&command));
    eprintln!("{name}: sysc-probe {} -> {answer:?}", args.join(" "));
    answer
}

/// Runs a shell script as root in the container, whatever its exit status.
fn sh(d: &Daemon, name: &str, script: &str) -> Output {
    let out = d.sysc(&["exec", name, "--", "sh", "-c", script]);
    eprintln!(
        "{name}: sh -c {script:?} -> {}: {:?} {:?}",
        out.code,
        out.stdout.trim(),
        out.stderr.trim()
    );
    out
}

/// Asserts the attempt failed with one of `errnos`.
#[track_caller]
fn refused(answer: Answer, errnos: &[i32], what: &str) {
    assert!(
        answer.errno().is_some_and(|e| errnos.contains(&e)),
        "{what}: expected errno {errnos:?}, got {answer:?}"
    );
}

/// A host file an attempt aims at: its content before, compared after, and put back
/// when the test ends if an attempt got through, so a failing test leaves the host as
/// it found it.
struct HostFile {
    path: PathBuf,
    before: Option<Vec<u8>>,
}

impl HostFile {
    fn watch(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_path_buf();
        let before = std::fs::read(&path).ok();
        Self { path, before }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.before.as_deref().unwrap_or_default())
            .trim()
            .to_string()
    }

    #[track_caller]
    fn assert_unchanged(&self, after: &str) {
        let now = std::fs::read(&self.path).ok();
        assert!(
            now == self.before,
            "host {} changed after {after}: {:?} -> {:?}",
            self.path.display(),
            self.before.as_deref().map(String::from_utf8_lossy),
            now.as_deref().map(String::from_utf8_lossy)
        );
    }
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if let Some(before) = &self.before
            && std::fs::read(&self.path).ok().as_ref() != Some(before)
        {
            let _ = std::fs::write(&self.path, before);
        }
    }
}

/// A writable host sysfs file whose change nobody would notice, for the writes into /sys.
fn host_sysfs_target() -> &'static str {
    [
        "/sys/kernel/mm/ksm/pages_to_scan",
        "/sys/kernel/rcu_expedited",
        "/sys/kernel/profiling",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("no writable sysfs file to aim at on this host")
}

/// A value for `file` other than the one it has.
fn other_value(file: &HostFile, a: &'static str, b: &'static str) -> &'static str {
    if file.text() == a { b } else { a }
}

#[test]
fn modules_kexec_and_file_handles_are_refused() {
    let d = u1_and_p1();
    let modules = HostFile::watch("/proc/modules");
    let kexec_loaded = HostFile::watch("/sys/kernel/kexec_loaded");
    if let Some(text) = kexec_loaded.before.as_deref() {
        assert_eq!(
            String::from_utf8_lossy(text).trim(),
            "0",
            "a kexec image is loaded before the test"
        );
    }
    for c in BOTH {
        // The probe works, in both ABIs: the refusals below are the kernel's answers.
        assert_eq!(probe(&d, c, &["sys", "102"]), Answer::Ok(0), "{c}: getuid");
        assert_eq!(probe(&d, c, &["sys32", "199"]), Answer::Ok(0), "{c}: i386 getuid32");

        refused(
            probe(&d, c, &["sys", "313", "-1", "str:", "0"]),
            &[EPERM],
            &format!("{c}: finit_module"),
        );
        refused(
            probe(&d, c, &["sys", "175", "0", "0", "str:"]),
            &[EPERM],
            &format!("{c}: init_module"),
        );
        refused(
            probe(&d, c, &["sys", "176", "str:loop", "0"]),
            &[EPERM],
            &format!("{c}: delete_module"),
        );
        modules.assert_unchanged(&format!("{c}: module calls"));

        refused(
            probe(&d, c, &["sys", "246", "0", "0", "0", "0x00ff0000"]),
            &[EPERM],
            &format!("{c}: kexec_load"),
        );
        refused(
            probe(&d, c, &["sys", "320", "-1", "-1", "0", "0", "0"]),
            &[EPERM],
            &format!("{c}: kexec_file_load"),
        );
        refused(
            probe(&d, c, &["sys32", "283", "0", "0", "0", "0x00ff0000"]),
            &[EPERM],
            &format!("{c}: i386 kexec_load"),
        );
        kexec_loaded.assert_unchanged(&format!("{c}: kexec calls"));

        refused(
            probe(&d, c, &["sys", "304", "-100", "0", "0"]),
            &[EPERM],
            &format!("{c}: open_by_handle_at"),
        );
    }
}

#[test]
fn proc_sys_is_read_only_but_the_containers_own_network() {
    let d = u1_and_p1();
    let panic = HostFile::watch("/proc/sys/kernel/panic");
    let hostname = HostFile::watch("/proc/sys/kernel/hostname");
    let ip_forward = HostFile::watch("/proc/sys/net/ipv4/ip_forward");
    let sysrq = HostFile::watch("/proc/sysrq-trigger");
    let forward = other_value(&ip_forward, "0", "1");
    for c in BOTH {
        // 'h' only prints help, should the write get through on a host with sysrq.
        let answer = probe(&d, c, &["write", "/proc/sysrq-trigger", "h"]);
        if sysrq.before.is_none() {
            eprintln!("{c}: the host has no /proc/sysrq-trigger; the container neither: {answer:?}");
        }
        assert!(
            answer.errno().is_some(),
            "{c}: write to /proc/sysrq-trigger: {answer:?}"
        );

        refused(
            probe(&d, c, &["write", "/proc/sys/kernel/panic", "17"]),
            &[EACCES, EROFS],
            &format!("{c}: write /proc/sys/kernel/panic"),
        );
        panic.assert_unchanged(&format!("{c}: write /proc/sys/kernel/panic"));

        // The hostname is the container's own (UTS namespace): only a read-only
        // /proc/sys stops the write.
        refused(
            probe(&d, c, &["write", "/proc/sys/kernel/hostname", "sysc-escaped"]),
            &[EACCES, EROFS],
            &format!("{c}: write /proc/sys/kernel/hostname"),
        );
        assert_eq!(d.ok(&["exec", c, "--", "hostname"]).trim(), c);
        hostname.assert_unchanged(&format!("{c}: write /proc/sys/kernel/hostname"));

        // /proc/sys/net is the container's own network namespace, and writable.
        assert_eq!(
            probe(&d, c, &["write", "/proc/sys/net/ipv4/ip_forward", forward]),
            Answer::Ok(0),
            "{c}: write to its own /proc/sys/net"
        );
        assert_eq!(
            d.ok(&["exec", c, "--", "cat", "/proc/sys/net/ipv4/ip_forward"]).trim(),
            forward
        );
        ip_forward.assert_unchanged(&format!("{c}: write its own ip_forward"));
    }
}

/// The only entries of a container's /dev: no disk, no memory, no host device.
const DEV_ENTRIES: [&str; 16] = [
    "console",
    "fd",
    "full",
    "mqueue",
    "null",
    "ptmx",
    "pts",
    "random",
    "shm",
    "stderr",
    "stdin",
    "stdout",
    "tty",
    "urandom",
    "zero",
    ".sysc-boot-id",
];

#[test]
fn mounts_and_device_nodes_do_not_reach_the_host() {
    let d = u1_and_p1();
    let panic = HostFile::watch("/proc/sys/kernel/panic");
    let target = host_sysfs_target();
    let sysfs = HostFile::watch(target);
    let value = other_value(&sysfs, "4242", "4243");
    let inside = |mount: &str| format!("/tmp/m{}", target.strip_prefix(mount).unwrap());

    // A fresh proc instance: the kernel may allow it (the container owns its PID
    // namespace), but what it shows of the host is still the host's to change.
    let proc = sh(&d, "u1", "mkdir -p /tmp/m && mount -t proc proc /tmp/m && echo mounted");
    if proc.stdout.contains("mounted") {
        refused(
            probe(&d, "u1", &["write", "/tmp/m/sys/kernel/panic", "17"]),
            &[EACCES, EROFS],
            "u1: write panic through a fresh proc",
        );
        refused(
            probe(&d, "u1", &["read", "/tmp/m/kmsg"]),
            &[EACCES, EPERM],
            "u1: read kmsg through a fresh proc",
        );
        sh(&d, "u1", "umount /tmp/m");
    }
    panic.assert_unchanged("u1: a fresh proc mount");

    let sys = sh(
        &d,
        "u1",
        "mkdir -p /tmp/m && mount -t sysfs sysfs /tmp/m && echo mounted",
    );
    if sys.stdout.contains("mounted") {
        refused(
            probe(&d, "u1", &["write", &inside("/sys"), value]),
            &[EACCES, EROFS],
            "u1: write through a fresh sysfs",
        );
        sh(&d, "u1", "umount /tmp/m");
    }
    sysfs.assert_unchanged("u1: a fresh sysfs mount");

    sh(&d, "u1", "mount -o remount,rw /sys");
    refused(
        probe(&d, "u1", &["write", target, value]),
        &[EACCES, EROFS],
        "u1: write into /sys after remount,rw",
    );
    sysfs.assert_unchanged("u1: remount,rw /sys and write");

    // No host block device to mount: none in /dev, and none can be made.
    for c in BOTH {
        let listing = d.ok(&["exec", c, "--", "ls", "-A", "/dev"]);
        let extra: Vec<&str> = listing
            .split_whitespace()
            .filter(|e| !DEV_ENTRIES.contains(e))
            .collect();
        assert!(extra.is_empty(), "{c}: unexpected entries in /dev: {extra:?}");
    }
    // mknod(path, S_IFBLK|0600, 7:0) and (S_IFCHR|0600, 1:1).
    refused(
        probe(&d, "u1", &["sys", "133", "str:/tmp/loop0", "0x6180", "0x700"]),
        &[EPERM],
        "u1: mknod b 7 0",
    );
    refused(
        probe(&d, "u1", &["sys", "133", "str:/tmp/mem", "0x2180", "0x101"]),
        &[EPERM],
        "u1: mknod c 1 1",
    );

    // Privileged: the node may be made, but the devices cgroup refuses to open it.
    for (node, mode, dev) in [("/tmp/loop0", "0x6180", "0x700"), ("/tmp/mem", "0x2180", "0x101")] {
        let made = probe(&d, "p1", &["sys", "133", &format!("str:{node}"), mode, dev]);
        assert!(
            made == Answer::Ok(0) || made.errno() == Some(EPERM),
            "p1: mknod {node}: {made:?}"
        );
        if made == Answer::Ok(0) {
            refused(probe(&d, "p1", &["read", node]), &[EPERM], &format!("p1: read {node}"));
            let dd = sh(&d, "p1", &format!("dd if={node} of=/dev/null bs=4096 count=1"));
            assert!(
                !dd.success() && dd.stderr.contains("Operation not permitted"),
                "p1: dd from {node}: {dd:?}"
            );
            sh(&d, "p1", &format!("rm {node}"));
        }
    }
}

#[test]
fn a_container_cannot_raise_its_own_cgroup_limits() {
    let d = Daemon::start();
    launch(&d, "u1", &["limits.memory=128MiB", "limits.processes=100"]);
    let memory = (128 * MIB).to_string();
    let host_limits = |after: &str| {
        assert_eq!(
            d.cgroup_value("memory", "u1", "memory.limit_in_bytes"),
            memory,
            "{after}"
        );
        assert_eq!(d.cgroup_value("pids", "u1", "pids.max"), "100", "{after}");
    };
    host_limits("launch");

    // The container's cgroup2 view (its cgroup namespace) has no limit files to write.
    refused(
        probe(&d, "u1", &["write", "/sys/fs/cgroup/memory.max", "max"]),
        &[ENOENT, EACCES, EROFS],
        "u1: write /sys/fs/cgroup/memory.max",
    );
    refused(
        probe(&d, "u1", &["write", "/sys/fs/cgroup/pids.max", "max"]),
        &[ENOENT, EACCES, EROFS],
        "u1: write /sys/fs/cgroup/pids.max",
    );
    host_limits("writes to /sys/fs/cgroup");

    // Mounting a v1 hierarchy: the kernel allows it in the container's own cgroup
    // namespace, rooted at the container's cgroup, whose files stay the host's.
    for (controller, file, value) in [
        ("memory", "memory.limit_in_bytes", "999999999999"),
        ("memory", "memory.memsw.limit_in_bytes", "999999999999"),
        ("pids", "pids.max", "max"),
    ] {
        let mount = sh(
            &d,
            "u1",
            &format!("mkdir -p /tmp/m && mount -t cgroup -o {controller} none /tmp/m && echo mounted"),
        );
        if !mount.stdout.contains("mounted") {
            continue;
        }
        if controller == "memory" && file == "memory.limit_in_bytes" {
            let seen = d.ok(&["exec", "u1", "--", "cat", "/tmp/m/memory.limit_in_bytes"]);
            assert_eq!(seen.trim(), memory, "the mount's root is the container's own cgroup");
        }
        let path = format!("/tmp/m/{file}");
        if d.sysc(&["exec", "u1", "--", "test", "-e", &path]).success() {
            refused(
                probe(&d, "u1", &["write", &path, value]),
                &[EACCES, EROFS, EPERM],
                &format!("u1: write {file} through a v1 mount"),
            );
        }
        sh(&d, "u1", "umount /tmp/m");
    }
    host_limits("v1 cgroup mounts and writes");
}

#[test]
fn host_files_and_processes_are_out_of_sight() {
    let d = u1_and_p1();
    let mut random = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .unwrap();
    let secret: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let marker = tempfile::Builder::new()
        .prefix("escape-marker")
        .tempfile_in("/tmp")
        .unwrap();
    std::fs::write(marker.path(), &secret).unwrap();
    let name = marker.path().file_name().unwrap().to_string_lossy().into_owned();
    let daemon = d.pid();
    for c in BOTH {
        let out = sh(
            &d,
            c,
            &format!(
                "for p in /proc/[0-9]* /proc/self; do cat $p/root/tmp/{name} 2>/dev/null; done; \
                 ls -d /proc/*/root/tmp/{name} 2>/dev/null; echo done"
            ),
        );
        assert!(out.stdout.ends_with("done\n"), "{c}: {out:?}");
        assert!(
            !out.stdout.contains(&secret) && !out.stdout.contains(&name),
            "{c}: the host's /tmp/{name} was reached: {out:?}"
        );
        // Only the container's own processes: the daemon's PID, if it exists there, is
        // some other process, and no host program is seen.
        let out = sh(
            &d,
            c,
            &format!(
                "cat /proc/{daemon}/cmdline 2>/dev/null; echo; \
                 for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done"
            ),
        );
        for host_program in ["syscd", "sysc-monitor", "process_api", "cargo"] {
            assert!(
                !out.stdout.contains(host_program),
                "{c}: sees host process {host_program}: {out:?}"
            );
        }
    }
    assert_eq!(std::fs::read_to_string(marker.path()).unwrap(), secret);
}

/// The probe where a process in another user namespace can run it.
fn shared_probe() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("escape-probe").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(PROBE, dir.path().join("sysc-probe")).unwrap();
    dir
}

#[test]
fn a_container_cannot_reach_another() {
    let d = Daemon::start();
    launch(&d, "u1", &[]);
    launch(&d, "u2", &[]);
    let (u1, u2) = (d.init_pid("u1"), d.init_pid("u2"));
    let (c1, c2) = (d.container("u1"), d.container("u2"));
    let range = |c: &serde_json::Value| {
        let base = c["idmap_base"].as_u64().unwrap();
        base..base + c["idmap_size"].as_u64().unwrap()
    };
    let (r1, r2) = (range(&c1), range(&c2));
    assert!(!r1.is_empty() && !r2.is_empty(), "{r1:?} {r2:?}");
    assert!(
        r1.end <= r2.start || r2.end <= r1.start,
        "id ranges overlap: {r1:?} {r2:?}"
    );
    assert!(!r1.contains(&0) && !r2.contains(&0));

    // From inside u1, u2's init is not there to find.
    let out = sh(
        &d,
        "u1",
        &format!("ls -d /proc/{u2} 2>/dev/null; for p in /proc/[0-9]*; do cat $p/root/etc/hostname 2>/dev/null; done"),
    );
    assert!(
        !out.stdout.lines().any(|l| l == "u2"),
        "u1 sees u2's processes: {out:?}"
    );

    // Colluding roots that leaked u2's host PID and root path to u1: the probe on the
    // host, as root of u1's user namespace only.
    let dir = shared_probe();
    let probe = dir.path().join("sysc-probe");
    let as_u1 = |args: &[&str]| {
        let out = Command::new("nsenter")
            .args(["--user", "--target", &u1.to_string()])
            .arg(&probe)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        let answer = Answer::parse(&String::from_utf8_lossy(&out.stdout));
        eprintln!(
            "host, in u1's user namespace: sysc-probe {} -> {answer:?}",
            args.join(" ")
        );
        answer
    };
    let (u1s, u2s) = (u1.to_string(), u2.to_string());
    // Controls: it is root there, and can signal its own init.
    assert_eq!(as_u1(&["sys", "102"]), Answer::Ok(0), "getuid in u1's user namespace");
    assert_eq!(as_u1(&["sys", "62", &u1s, "0"]), Answer::Ok(0), "kill(u1's init, 0)");
    refused(as_u1(&["sys", "62", &u2s, "0"]), &[EPERM], "kill(u2's init, 0)");
    refused(
        as_u1(&["sys", "101", "16", &u2s, "0", "0"]),
        &[EPERM],
        "PTRACE_ATTACH u2's init",
    );
    refused(
        as_u1(&["read", &format!("/proc/{u2}/root/etc/hostname")]),
        &[EACCES],
        "read u2's /proc/PID/root",
    );
    let rootfs = c2["paths"]["rootfs"].as_str().unwrap();
    assert!(Path::new(rootfs).join("etc/hostname").is_file(), "{rootfs}");
    refused(
        as_u1(&["read", &format!("{rootfs}/etc/hostname")]),
        &[EACCES],
        "read u2's root filesystem on the host",
    );
    assert_eq!(d.state("u2"), "RUNNING");
    assert_eq!(d.init_pid("u2"), u2);
}

fn run_free(path: &str) -> u64 {
    let stat = nix::sys::statvfs::statvfs(path).unwrap();
    stat.blocks_available() as u64 * stat.fragment_size() as u64
}

#[test]
fn filling_run_does_not_fill_the_hosts() {
    let d = Daemon::start();
    launch(&d, "u1", &[]);
    let host_dev = std::fs::metadata("/run").unwrap().dev();
    let dev = d.ok(&["exec", "u1", "--", "stat", "-c", "%d", "/run"]);
    assert_ne!(
        dev.trim(),
        host_dev.to_string(),
        "the container's /run is the host's filesystem"
    );
    let before = run_free("/run");
    let dd = sh(
        &d,
        "u1",
        "dd if=/dev/zero of=/run/fill bs=1M count=64 && stat -c %s /run/fill",
    );
    assert!(dd.success(), "{dd:?}");
    assert_eq!(dd.stdout.trim(), (64 * MIB).to_string());
    let after = run_free("/run");
    assert!(
        before.abs_diff(after) < 16 * MIB,
        "the host's /run went from {before} to {after} bytes free"
    );
    d.ok(&["exec", "u1", "--", "rm", "/run/fill"]);
}

/// Bits of CapBnd no container may hold: sys_module, sys_rawio, sys_time,
/// mac_override, mac_admin.
const NEVER: [u32; 5] = [16, 17, 25, 32, 33];

fn check_status(c: &str, who: &str, status: &str) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{c}: no {name} in {who}'s status"))
            .trim()
            .to_string()
    };
    assert_eq!(field("Seccomp"), "2", "{c}: {who} runs under a seccomp filter");
    let bounding = u64::from_str_radix(&field("CapBnd"), 16).unwrap();
    for bit in NEVER {
        assert_eq!(
            bounding & (1 << bit),
            0,
            "{c}: {who}'s CapBnd {bounding:x} holds capability {bit}"
        );
    }
}

#[test]
fn masks_read_only_sys_seccomp_and_capabilities_hold() {
    let d = u1_and_p1();
    let target = host_sysfs_target();
    let sysfs = HostFile::watch(target);
    let value = other_value(&sysfs, "4242", "4243");
    for c in BOTH {
        for file in ["/proc/kcore", "/proc/kmsg", "/proc/timer_list"] {
            let answer = probe(&d, c, &["read", file]);
            assert!(
                answer == Answer::Ok(0) || answer.errno().is_some(),
                "{c}: {file} gave {answer:?}"
            );
        }
        let firmware = d.sysc(&["exec", c, "--", "ls", "-A", "/sys/firmware"]);
        assert!(
            firmware.stdout.trim().is_empty(),
            "{c}: /sys/firmware shows {:?}",
            firmware.stdout
        );
        refused(
            probe(&d, c, &["write", target, value]),
            &[EROFS, EACCES],
            &format!("{c}: write {target}"),
        );
        sysfs.assert_unchanged(&format!("{c}: write {target}"));
        check_status(c, "the init", &d.ok(&["exec", c, "--", "cat", "/proc/1/status"]));
        check_status(
            c,
            "an exec'd command",
            &d.ok(&["exec", c, "--", "cat", "/proc/self/status"]),
        );
    }
    // The masks are the container's own mounts, which its root may take off: behind the
    // kmsg mask, the kernel still refuses the unprivileged one (a host root's 0400 file,
    // and the syslog check).
    sh(&d, "u1", "umount /proc/kmsg");
    refused(
        probe(&d, "u1", &["read", "/proc/kmsg"]),
        &[EACCES, EPERM],
        "u1: read /proc/kmsg unmasked",
    );
}

#[test]
fn descriptors_of_the_daemon_and_helpers_stay_outside() {
    // A directory the shell that started syscd left open (as `syscd 7</` would).
    let leaked = std::fs::File::open("/").unwrap();
    nix::fcntl::fcntl(&leaked, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())).unwrap();
    let d = Daemon::start();
    drop(leaked);
    d.ok(&["launch", "busybox", "c1"]);
    // Nothing but stdio in the init, nor in an exec'd command (whose helper holds its
    // control socket to syscd as fd 3).
    // `; true` keeps sh from handing its process over to ls, whose own directory handle
    // would then be listed.
    let fds = |pid: &str| d.ok(&["exec", "c1", "--", "sh", "-c", &format!("ls /proc/{pid}/fd; true")]);
    assert_eq!(fds("1"), "0\n1\n2\n");
    assert_eq!(fds("$$"), "0\n1\n2\n");
    let forged = d.sysc(&["exec", "c1", "--", "sh", "-c", "echo 'exit code 42' >&3; exit 7"]);
    assert_eq!(forged.code, 7, "{}", forged.stderr);
}
