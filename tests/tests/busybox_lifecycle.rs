//! The everyday verbs on busybox containers: launch, list, info, stop, start,
//! restart, rename, delete, start/stop --all. Each check is what a user would look at.

use std::time::Duration;

use sysc_tests::{Daemon, in_container, proc_status_field, wait_until};

#[test]
fn launch_runs_busybox_init_as_pid_1_in_its_own_namespaces() {
    let d = Daemon::start();
    let out = d.sysc(&["launch", "busybox", "b1"]);
    assert!(out.success(), "{}\n{}", out.stderr, d.log());
    assert!(
        out.stderr.contains("building image busybox"),
        "progress is shown: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("busybox template done"),
        "the template's output is shown: {}",
        out.stderr
    );

    let c = d.container("b1");
    assert_eq!(c["state"], "RUNNING");
    let pid = c["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // From the host: the init is PID 1 of its own PID namespace, and it is busybox.
    let nspid = proc_status_field(pid, "NSpid").unwrap();
    assert!(nspid.ends_with(" 1"), "NSpid {nspid}");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "{exe:?}");
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup", "user"] {
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let inside = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(host, inside, "{ns} namespace must be the container's own");
    }
    // Unprivileged: container root is the container's own host range.
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields, ["0", &d.idmap_base.to_string(), "65536"], "uid_map {uid_map}");
    assert_eq!(c["config"]["volatile.idmap.base"], d.idmap_base.to_string());
    // The user namespace belongs to the container's own base uid, so per-user kernel
    // limits are charged to the container's range, not to root.
    assert_eq!(user_namespace_owner(pid), d.idmap_base);
    // Its cgroup2 directory is delegated to its root.
    let unified = d.cgroup_dirs("b1").pop().unwrap();
    for file in ["", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"] {
        let meta = std::fs::metadata(unified.join(file)).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), d.idmap_base, "{file}");
    }
    // Root filesystems are stored unshifted (root-owned on disk): only root may reach them.
    for dir in ["containers", "images"] {
        let meta = std::fs::metadata(d.pool_dir().join(dir)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o700,
            "{dir}"
        );
    }

    let (_, hostname) = in_container(pid, "hostname");
    assert_eq!(hostname.trim(), "b1");
    let (_, mounts) = in_container(pid, "cat /proc/mounts");
    assert!(mounts.contains("sysfs /sys sysfs ro"), "{mounts}");
    assert!(mounts.contains("tmpfs /dev tmpfs"), "{mounts}");
    assert!(mounts.contains("devpts /dev/pts devpts"), "{mounts}");
    assert!(mounts.contains("tmpfs /run tmpfs"), "{mounts}");
    assert!(mounts.contains(" /proc/sys proc ro"), "{mounts}");
    let (_, devices) = in_container(pid, "ls /dev");
    for node in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "console", "pts",
    ] {
        assert!(
            devices.split_whitespace().any(|d| d == node),
            "/dev/{node} missing: {devices}"
        );
    }
    // /dev/console is a pty of the container's own devpts, its master held by the
    // monitor, which keeps what the console shows (busybox's getty prompt) in the log.
    let (_, console) = in_container(pid, "stat -c '%t %F' /dev/console");
    assert_eq!(
        console.trim(),
        "88 character special file",
        "pty major 136 (0x88): {console}"
    );
    let log = std::path::PathBuf::from(c["paths"]["console_log"].as_str().unwrap());
    let prompt = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).ok().filter(|t| t.contains("b1 login:"))
    });
    assert!(prompt.is_some(), "no login prompt in {}", log.display());
    let (_, lo) = in_container(pid, "cat /sys/class/net/lo/operstate; ls /sys/class/net");
    assert!(lo.contains("unknown") || lo.contains("up"), "lo is up: {lo}");
    // The container's own cgroup, in every hierarchy, with the init in it.
    for dir in d.cgroup_dirs("b1") {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p == pid.to_string()),
            "{} lacks the init",
            dir.display()
        );
    }
}

#[test]
fn list_formats_and_info() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    d.ok(&["create", "busybox", "b2"]);

    let list = d.list();
    assert_eq!(list.len(), 2);
    let b1 = &list[0];
    assert_eq!(b1["name"], "b1");
    assert_eq!(b1["state"], "RUNNING");
    assert!(b1["pid"].as_i64().unwrap() > 0);
    assert!(b1["ipv4"].is_array());
    assert!(b1["image"].as_str().unwrap().starts_with("busybox"), "{b1}");
    assert!(b1["created_at"].as_str().unwrap().contains('T'), "{b1}");
    assert_eq!(list[1]["state"], "STOPPED");
    assert_eq!(list[1]["pid"], 0);

    let table = d.ok(&["list"]);
    for word in [
        "NAME", "STATE", "IPV4", "PID", "IMAGE", "CREATED", "b1", "RUNNING", "b2", "STOPPED",
    ] {
        assert!(table.contains(word), "{word} missing from\n{table}");
    }
    let csv = d.ok(&["list", "--format", "csv"]);
    assert!(csv.lines().any(|l| l.starts_with("b2,STOPPED,")), "{csv}");
    let yaml = d.ok(&["list", "--format", "yaml"]);
    assert!(yaml.contains("name: b1"), "{yaml}");

    // Filters, as in `incus list`: a name prefix, fields and config keys, all must hold.
    d.ok(&["config", "set", "b2", "boot.autostart", "true"]);
    d.ok(&["create", "busybox", "other"]);
    let names = |filters: &[&str]| {
        let args = [&["list", "--format", "csv", "--columns", "n"][..], filters].concat();
        d.ok(&args).lines().skip(1).map(String::from).collect::<Vec<_>>()
    };
    assert_eq!(names(&["b"]), ["b1", "b2"]);
    assert_eq!(names(&["state=stopped"]), ["b2", "other"]);
    assert_eq!(names(&["b", "status=STOPPED"]), ["b2"]);
    assert_eq!(names(&["boot.autostart=true"]), ["b2"]);
    assert_eq!(names(&["boot.autostart="]), ["b1", "other"]);
    assert_eq!(names(&["image=busybox", "name=other"]), ["other"]);
    assert!(names(&["nomatch"]).is_empty());
    assert!(d.fails(&["list", "state=asleep"]).contains("no such state"));
    assert!(
        d.fails(&["list", "boot.autostrt=true"])
            .contains("unknown list filter key boot.autostrt")
    );
    d.ok(&["delete", "other"]);

    let info = d.ok(&["info", "b1"]);
    let pid = d.init_pid("b1").to_string();
    for expected in ["b1", "RUNNING", &pid, "busybox", "rootfs", "console.log", "backup.yaml"] {
        assert!(info.contains(expected), "{expected} missing from\n{info}");
    }
    let templates = d.ok(&["template", "list"]);
    assert!(
        templates.contains("busybox") && templates.contains("debian"),
        "{templates}"
    );
    let images = d.ok(&["image", "list", "--format", "json"]);
    let images: serde_json::Value = serde_json::from_str(&images).unwrap();
    assert_eq!(
        images.as_array().unwrap().len(),
        1,
        "one cached image for two containers"
    );
    assert_eq!(images[0]["used_by"], serde_json::json!(["b1", "b2"]));

    // Deleting the image leaves the containers (they have their own copy); the next
    // create builds it again.
    let fingerprint = images[0]["fingerprint"].as_str().unwrap();
    d.ok(&["image", "delete", &fingerprint[..12]]);
    assert_eq!(d.ok(&["image", "list", "--format", "json"]).trim(), "[]");
    assert!(!d.pool_dir().join("images").join(fingerprint).exists());
    d.ok(&["restart", "b1", "--force"]);
    let out = d.sysc(&["init", "busybox", "b3"]);
    assert!(
        out.success() && out.stderr.contains("building image busybox"),
        "{out:?}"
    );
}

/// The uid that owns a process's user namespace (ioctl NS_GET_OWNER_UID).
fn user_namespace_owner(pid: i64) -> u32 {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/user")).unwrap();
    let mut uid: libc::uid_t = 0;
    const NS_GET_OWNER_UID: libc::c_ulong = 0xb704;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&ns), NS_GET_OWNER_UID, &mut uid) };
    assert_eq!(rc, 0, "NS_GET_OWNER_UID: {}", std::io::Error::last_os_error());
    uid
}

#[test]
fn stop_is_clean_start_again_restart() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let first = d.init_pid("b1");

    // busybox halts on SIGUSR1 (the template declares it); the kernel then ends the
    // namespace's init with SIGINT.
    d.ok(&["stop", "b1"]);
    let c = d.container("b1");
    assert_eq!(c["state"], "STOPPED");
    assert_eq!(c["pid"], 0);
    assert_eq!(c["last_exit"]["signal"], libc::SIGINT, "{c}");
    assert!(std::fs::metadata(format!("/proc/{first}")).is_err(), "the init is gone");
    for dir in d.cgroup_dirs("b1") {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    let info = d.ok(&["info", "b1"]);
    assert!(info.contains("halted or powered off"), "{info}");

    d.ok(&["start", "b1"]);
    let second = d.init_pid("b1");
    assert_ne!(first, second);
    d.ok(&["restart", "b1", "--force"]);
    let third = d.init_pid("b1");
    assert_ne!(second, third);
    assert_eq!(d.state("b1"), "RUNNING");

    // --force kills at once; --timeout bounds the clean part.
    d.ok(&["stop", "b1", "--force"]);
    assert_eq!(d.container("b1")["last_exit"]["signal"], libc::SIGKILL);
}

#[test]
fn stop_kills_after_the_timeout_when_the_init_ignores_its_halt_signal() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let pid = d.init_pid("b1");
    // A busybox init stuck in its sysinit ignores SIGUSR1? Simpler: stop the init.
    // SIGSTOP from the host freezes PID 1, so only the SIGKILL after the timeout ends it.
    // SAFETY: kill(2) of the container's init by the PID the daemon reported.
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    let started = std::time::Instant::now();
    d.ok(&["stop", "b1", "--timeout", "1"]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "waited for the timeout: {took:?}");
    assert_eq!(d.container("b1")["last_exit"]["signal"], libc::SIGKILL);
}

/// Waits for a background `sysc` with a deadline far below the clean stop's timeout.
fn finishes_soon(mut child: std::process::Child, what: &str) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} still waits");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn force_cuts_short_a_clean_stop_that_waits() {
    let d = Daemon::start();
    for verb in ["stop", "delete"] {
        d.ok(&["launch", "busybox", "b1"]);
        // A stopped init never acts on its halt signal: the clean stop waits 1000 s.
        // SAFETY: kill(2) of the container's init by the PID the daemon reported.
        unsafe { libc::kill(d.init_pid("b1") as i32, libc::SIGSTOP) };
        let clean = d.command(&["stop", "b1", "--timeout", "1000"]).spawn().unwrap();
        std::thread::sleep(Duration::from_secs(1));
        let forced = d.command(&[verb, "b1", "--force"]).spawn().unwrap();
        assert!(finishes_soon(forced, verb).success(), "{verb} --force failed");
        finishes_soon(clean, "the clean stop");
        if verb == "stop" {
            assert_eq!(d.state("b1"), "STOPPED");
            assert_eq!(d.container("b1")["last_exit"]["signal"], libc::SIGKILL);
            d.ok(&["delete", "b1"]);
        }
        assert!(d.list().is_empty());
    }
}

#[test]
fn delete_refuses_a_running_container_unless_forced() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let err = d.fails(&["delete", "b1"]);
    assert!(err.contains("b1 is running"), "{err}");
    assert_eq!(d.state("b1"), "RUNNING");

    let pid = d.init_pid("b1");
    let rootfs = d.root.join("containers/b1");
    assert!(rootfs.exists());
    d.ok(&["delete", "b1", "--force"]);
    assert!(d.list().is_empty());
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_err(), "the init is gone");
    assert!(!rootfs.exists(), "the container's directory is gone");
    assert!(!d.pool_dir().join("containers/b1").exists(), "the volume is gone");
    for dir in d.cgroup_dirs("b1") {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn rename_only_when_stopped_and_the_hostname_follows() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "old"]);
    let err = d.fails(&["rename", "old", "new"]);
    assert!(err.contains("running"), "{err}");
    d.ok(&["stop", "old", "--force"]);
    d.ok(&["create", "busybox", "taken"]);
    let err = d.fails(&["rename", "old", "taken"]);
    assert!(err.contains("already exists"), "{err}");

    d.ok(&["rename", "old", "new"]);
    let names: Vec<String> = d
        .list()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["new", "taken"]);
    assert!(!d.root.join("containers/old").exists());
    d.ok(&["start", "new"]);
    let (_, hostname) = in_container(d.init_pid("new"), "hostname; cat /etc/hostname; grep new /etc/hosts");
    assert_eq!(hostname.lines().collect::<Vec<_>>(), ["new", "new", "127.0.1.1\tnew"]);
}

#[test]
fn start_all_and_stop_all() {
    let d = Daemon::start();
    for name in ["a1", "a2", "a3"] {
        d.ok(&["create", "busybox", name]);
    }
    d.ok(&["start", "--all"]);
    assert!(d.list().iter().all(|c| c["state"] == "RUNNING"));
    d.ok(&["stop", "--all", "--force"]);
    assert!(d.list().iter().all(|c| c["state"] == "STOPPED"));
}

#[test]
fn poweroff_inside_shows_stopped_with_its_exit_status_and_cleans_up() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let pid = d.init_pid("b1");
    in_container(pid, "poweroff");
    let stopped = wait_until(Duration::from_secs(15), || (d.state("b1") == "STOPPED").then_some(()));
    assert!(stopped.is_some(), "container did not stop after poweroff");
    let c = d.container("b1");
    assert_eq!(c["last_exit"]["signal"], libc::SIGINT, "{c}");
    for dir in d.cgroup_dirs("b1") {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

#[test]
fn privileged_container_runs_without_a_user_namespace() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "p1", "-c", "security.privileged=true"]);
    let pid = d.init_pid("p1");
    let host = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/ns/user")).unwrap(), host);
    assert_eq!(proc_status_field(pid, "Uid").unwrap(), "0 0 0 0");
    let c = d.container("p1");
    assert_eq!(c["privileged"], true);
    assert!(c["config"].get("volatile.idmap.base").is_none(), "{c}");
    let (_, devices) = in_container(pid, "ls -l /dev/null");
    assert!(devices.starts_with("crw-rw-rw-"), "{devices}");
}
