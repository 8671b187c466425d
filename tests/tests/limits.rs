//! Resource limits on real containers, on this hybrid host: set at create or live, and
//! what a user would check they do.

use std::time::{Duration, Instant};

use sysc_tests::{Daemon, wait_until};

const MIB: u64 = 1 << 20;

#[test]
fn a_memory_hog_is_oom_killed_at_the_limit_and_the_init_survives() {
    let d = Daemon::start();
    d.ok(&[
        "launch",
        "busybox",
        "c",
        "-c",
        "limits.memory=64MiB",
        "-c",
        "limits.memory.swap=false",
    ]);
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.memsw.limit_in_bytes"),
        (64 * MIB).to_string()
    );
    let init = d.init_pid("c");
    // tail keeps all of a newline-free input: it grows until the kernel steps in.
    let out = d.sysc(&["exec", "c", "--", "sh", "-c", "head -c 1000000000 /dev/zero | tail"]);
    assert_eq!(out.code, 128 + libc::SIGKILL, "the hog was OOM-killed: {out:?}");
    assert_eq!(d.state("c"), "RUNNING");
    assert_eq!(d.init_pid("c"), init, "the container's init survived");
    let oom = d.cgroup_value("memory", "c", "memory.oom_control");
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        kills > 0,
        "the kernel's OOM killer acted in the container's cgroup: {oom}"
    );
    let peak: u64 = d
        .cgroup_value("memory", "c", "memory.max_usage_in_bytes")
        .parse()
        .unwrap();
    assert!(peak <= 64 * MIB, "peak {peak} above the limit");
    d.ok(&["exec", "c", "--", "true"]);
}

#[test]
fn a_fork_bomb_is_capped_and_the_container_stays_usable() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c", "-c", "limits.processes=32"]);
    assert_eq!(d.cgroup_value("pids", "c", "pids.max"), "32");
    // A hundred 8-second sleeps (long enough to outlast the checks below on a loaded
    // host): the fork past the cap fails (and busybox's shell gives up with status 2).
    let out = d.sysc(&["exec", "c", "--", "sh", "-c", "for i in $(seq 100); do sleep 8 & done"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("can't fork"), "{out:?}");
    let current: u64 = d.cgroup_value("pids", "c", "pids.current").parse().unwrap();
    assert!((30..=32).contains(&current), "{current} processes under a cap of 32");
    let events = d.cgroup_value("pids", "c", "pids.events");
    assert!(!events.ends_with(" 0"), "forks were refused: {events}");
    // While it is full, exec says why it can't run anything.
    let err = d.fails(&["exec", "c", "--", "true"]);
    assert!(err.contains("is at its process limit"), "{err}");
    let usable = wait_until(Duration::from_secs(30), || {
        d.sysc(&["exec", "c", "--", "echo", "ok"]).success().then_some(())
    });
    assert!(usable.is_some(), "the container stayed unusable after the sleeps ended");
}

/// CPU time the container used over `window`, as a fraction of one CPU.
fn cpu_share(d: &Daemon, window: Duration) -> f64 {
    let used = || d.cgroup_value("cpuacct", "c", "cpuacct.usage").parse::<u64>().unwrap();
    let (before, start) = (used(), Instant::now());
    std::thread::sleep(window);
    (used() - before) as f64 / start.elapsed().as_nanos() as f64
}

#[test]
fn a_cpu_quota_holds_a_burner_to_its_share() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c", "-c", "limits.cpu.allowance=25ms/100ms"]);
    assert_eq!(d.cgroup_value("cpu", "c", "cpu.cfs_quota_us"), "25000");
    std::thread::scope(|s| {
        s.spawn(|| d.sysc(&["exec", "c", "--", "timeout", "6", "sh", "-c", "while :; do :; done"]));
        std::thread::sleep(Duration::from_millis(800));
        let share = cpu_share(&d, Duration::from_secs(3));
        assert!(
            (0.18..=0.32).contains(&share),
            "a 25% quota gave {:.0}% of a CPU",
            share * 100.0
        );
        // Live: the quota goes, the burner gets a whole CPU.
        d.ok(&["config", "unset", "c", "limits.cpu.allowance"]);
        assert_eq!(d.cgroup_value("cpu", "c", "cpu.cfs_quota_us"), "-1");
        let share = cpu_share(&d, Duration::from_secs(1));
        assert!(share > 0.6, "without a quota the burner got only {:.0}%", share * 100.0);
    });
}

#[test]
fn limits_change_live_and_apply_at_start() {
    let d = Daemon::start();
    d.ok(&[
        "create",
        "busybox",
        "c",
        "-c",
        "limits.memory=128MiB",
        "-c",
        "limits.cpu=1-1",
    ]);
    d.ok(&["start", "c"]);
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.limit_in_bytes"),
        (128 * MIB).to_string()
    );
    assert_eq!(d.cgroup_value("cpuset", "c", "cpuset.cpus"), "1");
    let init = d.init_pid("c");

    d.ok(&["config", "set", "c", "limits.memory", "96MiB"]);
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.limit_in_bytes"),
        (96 * MIB).to_string()
    );
    d.ok(&[
        "config",
        "set",
        "c",
        "limits.cpu=2",
        "limits.cpu.priority=5",
        "limits.processes=100",
    ]);
    assert_eq!(d.cgroup_value("pids", "c", "pids.max"), "100");
    assert_eq!(d.cgroup_value("cpuset", "c", "cpuset.cpus"), "0-1");
    // Priority 5 scales the weight 100 by 6/11: 55, which is 563 in v1 shares.
    assert_eq!(d.cgroup_value("cpu", "c", "cpu.shares"), (55 * 1024 / 100).to_string());
    // Unset goes back to unlimited.
    d.ok(&["config", "unset", "c", "limits.memory", "limits.processes"]);
    assert_eq!(d.cgroup_value("pids", "c", "pids.max"), "max");
    let unlimited: u64 = d.cgroup_value("memory", "c", "memory.limit_in_bytes").parse().unwrap();
    assert!(unlimited > 1 << 50, "{unlimited}");
    assert_eq!(d.init_pid("c"), init, "no restart");
    assert_eq!(d.ok(&["config", "get", "c", "limits.cpu"]).trim(), "2");
    assert_eq!(d.ok(&["config", "get", "c", "limits.memory"]).trim(), "");
    // Unset keys of every shape print an empty line; a name that is no key is an error.
    for unset in ["environment.NOPE", "snapshots.nightly.schedule", "volatile.nothing"] {
        assert_eq!(d.ok(&["config", "get", "c", unset]), "\n", "{unset}");
    }
    let typo = d.sysc(&["config", "get", "c", "limits.memroy"]);
    assert!(!typo.success());
    assert_eq!(typo.stdout, "");
    assert!(
        typo.stderr.contains("unknown config key limits.memroy"),
        "{}",
        typo.stderr
    );
}

#[test]
fn pause_freezes_every_process_and_resume_thaws_them() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    // A counter that ticks every 50 ms.
    run_in_background(
        &d,
        "c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done",
    );
    std::thread::sleep(Duration::from_millis(300));
    let count = || {
        d.ok(&["exec", "c", "--", "cat", "/tmp/count"])
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let rootfs_count = || {
        let path = d.pool_dir().join("containers/c/rootfs/tmp/count");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .parse::<u64>()
            .unwrap_or(0)
    };
    assert!(count() > 0);

    d.ok(&["pause", "c"]);
    assert_eq!(d.state("c"), "PAUSED");
    assert_eq!(d.cgroup_value("freezer", "c", "freezer.state"), "FROZEN");
    let frozen_at = rootfs_count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(rootfs_count(), frozen_at, "the counter moved while paused");
    for pid in std::fs::read_to_string(d.v1_cgroup("freezer", "c").join("cgroup.procs"))
        .unwrap()
        .lines()
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status
            .lines()
            .find(|l| l.starts_with("State:"))
            .unwrap_or_default()
            .to_string();
        assert!(
            state.contains("D") || state.contains("frozen"),
            "process {pid} not frozen: {state}"
        );
    }
    let err = d.fails(&["exec", "c", "--", "true"]);
    assert!(err.contains("paused"), "{err}");
    let err = d.fails(&["pause", "c"]);
    assert!(err.contains("already paused"), "{err}");

    d.ok(&["resume", "c"]);
    assert_eq!(d.state("c"), "RUNNING");
    let resumed = wait_until(Duration::from_secs(5), || (count() > frozen_at).then_some(()));
    assert!(resumed.is_some(), "the counter did not move after resume");
    let err = d.fails(&["resume", "c"]);
    assert!(err.contains("not paused"), "{err}");

    // A paused container still stops cleanly (its init is thawed for its halt signal).
    d.ok(&["pause", "c"]);
    d.ok(&["stop", "c"]);
    let c = d.container("c");
    assert_eq!(c["state"], "STOPPED");
    assert_eq!(c["last_exit"]["signal"], libc::SIGINT, "halted, not killed: {c}");
    d.ok(&["start", "c"]);
    d.ok(&["pause", "c"]);
    d.ok(&["delete", "--force", "c"]);
}

#[test]
fn pause_catches_a_process_in_the_middle_of_vfork() {
    pause_many_times_while_vforking("auto");
}

#[test]
fn pause_on_the_v2_driver_catches_a_process_in_the_middle_of_vfork() {
    pause_many_times_while_vforking("v2");
}

/// busybox xargs starts each command with vfork(): pauses land between a vfork and its
/// exec, where the v1 freezer used to freeze the child and never the parent.
fn pause_many_times_while_vforking(cgroup_driver: &'static str) {
    let d = Daemon::start_with(sysc_tests::DaemonOptions {
        cgroup_driver,
        ..Default::default()
    });
    d.ok(&["launch", "busybox", "c"]);
    run_in_background(&d, "c", "yes | xargs -n1 /bin/true");
    d.ok(&["exec", "c", "--", "pidof", "xargs"]);
    for _ in 0..30 {
        d.ok(&["pause", "c"]);
        assert_eq!(d.state("c"), "PAUSED");
        d.ok(&["resume", "c"]);
    }
    d.ok(&["delete", "--force", "c"]);
}

/// Starts `script` in the container, detached from the exec that starts it.
fn run_in_background(d: &Daemon, container: &str, script: &str) {
    let detached = format!("({script}) >/dev/null 2>&1 </dev/null &");
    d.ok(&["exec", container, "--", "sh", "-c", &detached]);
}

#[test]
fn usage_shows_in_info_and_list_columns() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c"]);
    d.ok(&["create", "busybox", "off"]);
    let c = d.container("c");
    assert!(c["usage"]["memory_bytes"].as_u64().unwrap() > 0, "{c}");
    assert!(c["usage"]["processes"].as_u64().unwrap() >= 2, "{c}");
    assert!(d.container("off")["usage"].is_null());
    let info = d.ok(&["info", "c"]);
    for expected in ["Memory", "CPU", "Processes"] {
        assert!(info.contains(expected), "{expected} missing:\n{info}");
    }
    let table = d.ok(&["list", "--columns", "nsmuN", "--format", "csv"]);
    let header = table.lines().next().unwrap();
    assert_eq!(header.split(',').count(), 5, "{table}");
    assert!(d.fails(&["list", "--columns", "nZ"]).contains('Z'));
    // As in Incus, `info` without a container shows the host too.
    for host in [d.ok(&["info", "--host"]), d.ok(&["info"])] {
        assert!(host.contains("hybrid") && host.contains(&d.cgroup_parent), "{host}");
    }
}

#[test]
fn bad_limits_are_refused_and_change_nothing() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c", "-c", "limits.memory=128MiB"]);
    let before = d.ok(&["config", "show", "c"]);
    for (key, value, expected) in [
        ("limits.memory", "lots", "is not a size"),
        ("limits.memory", "-1GB", "limits.memory"),
        ("limits.memory", "0", "limits.memory"),
        ("limits.processes", "0", "from 1 to"),
        ("limits.processes", "-5", "from 1 to"),
        ("limits.cpu", "0-63", "names CPUs this host lacks"),
        ("limits.cpu", "64", "more CPUs than the host has"),
        ("limits.cpu.allowance", "fast", "is not an allowance"),
        ("limits.cpu.priority", "11", "from 0 to 10"),
        ("limits.memroy", "1GB", "did you mean limits.memory?"),
        (
            "security.privileged",
            "true",
            "only be set when the container is created",
        ),
        ("volatile.idmap.base", "5", "set by the daemon"),
    ] {
        let err = d.fails(&["config", "set", "c", &format!("{key}={value}")]);
        assert!(err.contains(expected), "{key}={value}: {err}");
    }
    // Below what the container uses now: refused, the old limit stays.
    d.ok(&[
        "exec",
        "c",
        "--",
        "sh",
        "-c",
        "head -c 20000000 /dev/urandom > /dev/shm/fill",
    ]);
    let err = d.fails(&["config", "set", "c", "limits.memory", "8MiB"]);
    assert!(err.contains("is below what c uses now"), "{err}");
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.limit_in_bytes"),
        (128 * MIB).to_string()
    );
    assert_eq!(d.ok(&["config", "show", "c"]), before, "config unchanged");
    // Several at once are all or nothing.
    let err = d.fails(&["config", "set", "c", "limits.processes=50", "limits.memory=lots"]);
    assert!(err.contains("lots"), "{err}");
    assert_eq!(d.cgroup_value("pids", "c", "pids.max"), "max");
    assert_eq!(d.ok(&["config", "show", "c"]), before);

    let err = d.fails(&["config", "set", "ghost", "limits.memory", "1GB"]);
    assert!(err.contains("container ghost not found"), "{err}");
    let err = d.fails(&["launch", "busybox", "x", "-c", "limits.cpu=0-63"]);
    assert!(err.contains("names CPUs this host lacks"), "{err}");
    assert!(d.list().iter().all(|c| c["name"] != "x"), "nothing was created");
}

#[test]
fn a_lower_memory_limit_does_not_count_page_cache() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c", "-c", "limits.memory=256MiB"]);
    // File data goes through the page cache, charged to the container, but the kernel
    // drops it rather than fail a lower limit.
    d.ok(&[
        "exec",
        "c",
        "--",
        "sh",
        "-c",
        "dd if=/dev/zero of=/cache.bin bs=1M count=96 2>/dev/null && sync",
    ]);
    let charged: u64 = d.cgroup_value("memory", "c", "memory.usage_in_bytes").parse().unwrap();
    assert!(charged > 64 * MIB, "the file's pages were not charged: {charged}");
    d.ok(&["config", "set", "c", "limits.memory", "48MiB"]);
    assert_eq!(
        d.cgroup_value("memory", "c", "memory.limit_in_bytes"),
        (48 * MIB).to_string()
    );
    assert_eq!(d.state("c"), "RUNNING");
    assert_eq!(
        d.ok(&["exec", "c", "--", "wc", "-c", "/cache.bin"]),
        "100663296 /cache.bin\n"
    );
}

#[test]
fn config_show_edit_and_keys() {
    let d = Daemon::start();
    d.ok(&[
        "create",
        "busybox",
        "c",
        "-c",
        "limits.memory=64MiB",
        "-c",
        "environment.GREETING=hi",
    ]);
    let show = d.ok(&["config", "show", "c"]);
    assert!(
        show.contains("limits.memory: 64MiB") && show.contains("volatile.idmap.base"),
        "{show}"
    );

    let edit = |editor: &str| {
        let mut command = d.command(&["config", "edit", "c"]);
        command.env("EDITOR", editor).env_remove("VISUAL");
        command.stdin(std::process::Stdio::null()).output().unwrap()
    };
    let out = edit("sed -i -e 's/64MiB/96MiB/' -e '/GREETING/d'");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show = d.ok(&["config", "show", "c"]);
    assert!(
        show.contains("limits.memory: 96MiB") && !show.contains("GREETING"),
        "{show}"
    );
    // An invalid edit (stdin not a terminal: no second chance) changes nothing.
    let out = edit("sed -i -e 's/96MiB/lots/'");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lots"));
    assert_eq!(d.ok(&["config", "show", "c"]), show);

    // A change made while the editor is open is kept, not undone by the edit's save.
    let sysc = sysc_tests::binary("sysc");
    let meanwhile = |set: &str, edit: &str| {
        format!(
            "sh -c '{} config set c {set} && sed -i {edit} \"$1\"' editor",
            sysc.display()
        )
    };
    let out = edit(&meanwhile("boot.autostart=true", "s/96MiB/128MiB/"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show = d.ok(&["config", "show", "c"]);
    assert!(
        show.contains("limits.memory: 128MiB") && show.contains("boot.autostart: 'true'"),
        "{show}"
    );
    // When both changed one key, the edit is refused and the other change stays.
    let out = edit(&meanwhile("limits.memory=200MiB", "s/128MiB/160MiB/"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("limits.memory changed in container c while it was being edited"),
        "{err}"
    );
    assert!(d.ok(&["config", "show", "c"]).contains("limits.memory: 200MiB"));

    let keys = d.ok(&["config", "keys"]);
    for key in [
        "limits.memory",
        "limits.cpu.allowance",
        "environment.NAME",
        "boot.autostart",
    ] {
        assert!(keys.contains(key), "{key} missing:\n{keys}");
    }
    // The README's table is the registry's own (`sysc config keys --format markdown` prints it).
    let table = d.ok(&["config", "keys", "--format", "markdown"]);
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README's config key table is out of date; its rows should be:\n{table}"
    );
}

#[test]
fn the_v2_driver_freezes_kills_and_tracks_on_this_hosts_cgroup2() {
    // This host's cgroup2 has no controllers: limits are refused there with a clear
    // error, while freezing, killing and process tracking work as on a pure v2 host.
    let d = Daemon::start_with(sysc_tests::DaemonOptions {
        cgroup_driver: "v2",
        ..Default::default()
    });
    assert!(d.ok(&["info", "--host"]).contains("v2"));
    d.ok(&["launch", "busybox", "c"]);
    let dir = d.cgroup_dirs("c").pop().unwrap();
    let events = || std::fs::read_to_string(dir.join("cgroup.events")).unwrap();

    d.ok(&["pause", "c"]);
    assert_eq!(d.state("c"), "PAUSED");
    assert!(events().contains("frozen 1"), "{}", events());
    d.ok(&["resume", "c"]);
    assert!(events().contains("frozen 0"));
    assert!(
        d.container("c")["usage"]["processes"].as_u64().unwrap() >= 2,
        "tracked by cgroup.procs"
    );

    let err = d.fails(&["config", "set", "c", "limits.memory=64MiB"]);
    assert!(err.contains("memory cgroup controller is not available"), "{err}");
    assert!(
        d.ok(&["config", "show", "c"])
            .lines()
            .all(|l| !l.contains("limits.memory"))
    );

    let pid = d.init_pid("c");
    d.ok(&["pause", "c"]);
    d.ok(&["delete", "--force", "c"]);
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_err(),
        "a frozen container is killed too"
    );
    assert!(!dir.exists());
}
