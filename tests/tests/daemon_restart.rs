//! The daemon can die or restart at any time; containers don't notice.

use std::process::Stdio;
use std::time::Duration;

use sysc_tests::{Daemon, binary, in_container, proc_status_field, wait_until};

#[test]
fn kill_9_of_the_daemon_leaves_containers_running_and_they_are_found_again() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    d.ok(&["launch", "busybox", "b2"]);
    d.ok(&["create", "busybox", "b3"]);
    let (pid1, pid2) = (d.init_pid("b1"), d.init_pid("b2"));

    d.kill9();
    assert!(d.sysc(&["list"]).code != 0, "the daemon is down");
    for pid in [pid1, pid2] {
        assert!(
            std::fs::metadata(format!("/proc/{pid}")).is_ok(),
            "container init {pid} died with the daemon"
        );
        let (ok, _) = in_container(pid, "true");
        assert!(ok);
    }

    d.start_again();
    assert_eq!(d.state("b1"), "RUNNING");
    assert_eq!(d.init_pid("b1"), pid1, "same init after the restart");
    assert_eq!(d.init_pid("b2"), pid2);
    assert_eq!(d.state("b3"), "STOPPED");

    // The re-attached containers are fully managed again.
    d.ok(&["stop", "b1"]);
    assert_eq!(d.state("b1"), "STOPPED");
    assert!(std::fs::metadata(format!("/proc/{pid1}")).is_err());
    d.ok(&["delete", "--force", "b2"]);
    assert!(std::fs::metadata(format!("/proc/{pid2}")).is_err());
    d.ok(&["start", "b3"]);
    assert_eq!(d.state("b3"), "RUNNING");
}

#[test]
fn a_container_that_powers_off_while_the_daemon_is_down_is_recorded_as_stopped() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let pid = d.init_pid("b1");
    d.kill9();
    in_container(pid, "poweroff");
    let gone = wait_until(Duration::from_secs(15), || {
        std::fs::metadata(format!("/proc/{pid}")).is_err().then_some(())
    });
    assert!(gone.is_some(), "poweroff did not end the container");

    d.start_again();
    let c = d.container("b1");
    assert_eq!(c["state"], "STOPPED");
    assert_eq!(c["last_exit"]["signal"], libc::SIGINT, "{c}");
    for dir in d.cgroup_dirs("b1") {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // The exit is in the database now, not only in the monitor's note: it survives
    // another restart.
    d.restart();
    assert_eq!(d.container("b1")["last_exit"]["signal"], libc::SIGINT);
}

#[test]
fn a_clean_daemon_stop_leaves_containers_running() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let pid = d.init_pid("b1");
    d.restart();
    assert_eq!(d.init_pid("b1"), pid);
    assert_eq!(d.state("b1"), "RUNNING");
}

#[test]
fn a_clean_daemon_stop_ends_exec_sessions_rather_than_wait_for_them() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let session = d
        .command(&["exec", "b1", "--", "sleep", "600"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = wait_until(Duration::from_secs(20), || {
        d.ok(&["exec", "b1", "--", "ps"]).contains("sleep 600").then_some(())
    });
    assert!(running.is_some(), "the exec'd command never ran");

    let stopped = d.stop_within(Duration::from_secs(10));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "syscd did not stop cleanly: {stopped:?}"
    );
    let out = session.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("syscd is stopping"), "{err}");
    d.start_again();
    assert_eq!(d.state("b1"), "RUNNING");
    // Like a dropped connection: nobody is left to see its output, so the command is ended.
    let ended = wait_until(Duration::from_secs(10), || {
        (!d.ok(&["exec", "b1", "--", "ps"]).contains("sleep 600")).then_some(())
    });
    assert!(ended.is_some(), "the session's command kept running");
}

#[test]
fn autostart_containers_start_with_the_daemon() {
    let mut d = Daemon::start();
    d.ok(&["create", "busybox", "auto", "-c", "boot.autostart=true"]);
    d.ok(&["create", "busybox", "manual"]);
    d.restart();
    let started = wait_until(Duration::from_secs(20), || (d.state("auto") == "RUNNING").then_some(()));
    assert!(started.is_some(), "autostart container did not start:\n{}", d.log());
    assert_eq!(d.state("manual"), "STOPPED");
}

#[test]
fn reboot_inside_starts_the_container_again() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let pid = d.init_pid("b1");
    in_container(pid, "reboot");
    let again = wait_until(Duration::from_secs(20), || {
        let c = d.container("b1");
        (c["state"] == "RUNNING" && c["pid"].as_i64() != Some(pid)).then_some(c)
    });
    let c = again.expect("container did not come back after reboot");
    assert_eq!(c["last_exit"]["signal"], libc::SIGHUP, "{c}");
}

#[test]
fn a_second_daemon_on_the_same_root_is_refused() {
    let d = Daemon::start();
    let out = std::process::Command::new(binary("syscd"))
        .arg("--root")
        .arg(&d.root)
        .arg("--run-dir")
        .arg(&d.run_dir)
        .arg("--cgroup-parent")
        .arg(&d.cgroup_parent)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another syscd"), "{err}");
    assert_eq!(d.list().len(), 0, "the first daemon still serves");
}

/// Monitors are forked by one launcher process per daemon. If it is lost, the running
/// containers do not notice, and the next start gets a new one.
#[test]
fn a_lost_monitor_launcher_is_replaced_and_its_containers_run_on() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let init = d.init_pid("b1");
    let parent = |pid: i64| -> i64 { proc_status_field(pid, "PPid").unwrap().parse().unwrap() };
    let launcher = parent(parent(init));
    assert_eq!(
        parent(launcher),
        i64::from(d.pid()),
        "the launcher is the daemon's child"
    );
    assert_eq!(proc_status_field(launcher, "Name").unwrap(), "sysc-monitor");

    // SAFETY: kill(2) of the launcher this test's daemon started.
    assert_eq!(unsafe { libc::kill(launcher as i32, libc::SIGKILL) }, 0);
    wait_until(Duration::from_secs(10), || {
        let state = proc_status_field(launcher, "State").unwrap_or_default();
        (state.is_empty() || state.starts_with('Z')).then_some(())
    })
    .expect("the launcher dies");

    assert_eq!(d.state("b1"), "RUNNING");
    assert_eq!(d.init_pid("b1"), init);
    d.ok(&["launch", "busybox", "b2"]);
    let second = parent(parent(d.init_pid("b2")));
    assert_ne!(second, launcher, "a new launcher forked b2's monitor");
    assert_eq!(parent(second), i64::from(d.pid()));
    d.ok(&["stop", "b1"]);
    d.ok(&["stop", "b2"]);
}
