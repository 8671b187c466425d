//! Scheduled snapshots in the daemon: a cron schedule takes snapshots, expiry prunes
//! them, named schedules keep their own, and a run missed while the daemon was down is
//! taken when it comes back.

use std::time::Duration;

use chrono::Timelike;
use sysc_tests::{Daemon, wait_until};

#[test]
fn every_minute_schedule_takes_snapshots_and_expiry_prunes_them() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "c1"]);
    d.ok(&[
        "config",
        "set",
        "c1",
        "snapshots.schedule=* * * * *",
        "snapshots.expiry=1M",
        "snapshots.hourly.schedule=* * * * *",
        "snapshots.hourly.expiry=1d",
    ]);
    // Stopped containers: skipped unless the schedule says otherwise.
    d.ok(&["create", "busybox", "off"]);
    d.ok(&["create", "busybox", "off-too"]);
    d.ok(&[
        "config",
        "set",
        "off",
        "snapshots.schedule=* * * * *",
        "snapshots.schedule.stopped=true",
    ]);
    d.ok(&["config", "set", "off-too", "snapshots.schedule=* * * * *"]);
    let taken = wait_until(Duration::from_secs(130), || {
        d.snapshots("off").first()?;
        let list = d.snapshots("c1");
        let default = list.iter().find(|s| s["schedule"] == "default")?.clone();
        let named = list.iter().find(|s| s["schedule"] == "hourly")?.clone();
        Some((default, named))
    });
    let (default, named) = taken.unwrap_or_else(|| panic!("no scheduled snapshots:\n{}", d.log()));
    assert_eq!(default["name"], "snap0", "{default:?}");
    assert_eq!(named["name"], "hourly-0", "{named:?}");
    assert!(named["expires_at"].is_string());
    assert_eq!(d.state("c1"), "RUNNING");
    // The same tick went on to off-too (after off, by name) and skipped it.
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.snapshots("off-too").is_empty(), "a stopped container was snapshotted");

    // snap0 expires a minute after it was taken; the scheduler prunes it (and, like
    // Incus, may reuse the name for the next one: snapshots are told apart by time).
    let pruned = wait_until(Duration::from_secs(100), || {
        (!d.snapshots("c1").iter().any(|s| s["taken_at"] == default["taken_at"])).then_some(())
    });
    assert!(pruned.is_some(), "snap0 not pruned:\n{}", d.log());
    assert!(
        d.snapshots("c1").iter().any(|s| s["name"] == "hourly-0"),
        "the named schedule keeps its own for a day"
    );

    let err = d.fails(&["config", "set", "c1", "snapshots.schedule=61 * * * *"]);
    assert!(err.contains("snapshots.schedule"), "{err}");
    let err = d.fails(&["config", "set", "c1", "snapshots.default.schedule=@daily"]);
    assert!(err.contains("unknown config key"), "{err}");
    d.ok(&["delete", "--force", "c1", "off", "off-too"]);
}

#[test]
fn a_run_missed_while_the_daemon_was_down_is_taken_on_its_return() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "c1"]);
    // Hourly at the next minute: due once while the daemon is down, then not for an hour.
    // Not in the last seconds of a minute, so the scheduler sees it before it is due.
    while chrono::Local::now().second() >= 45 {
        std::thread::sleep(Duration::from_secs(1));
    }
    let due = (chrono::Local::now() + chrono::Duration::minutes(1)).minute();
    let spec = format!("snapshots.schedule={due} * * * *");
    d.ok(&["config", "set", "c1", &spec]);
    // The scheduler notes when it first saw the schedule (within one tick).
    std::thread::sleep(Duration::from_secs(7));
    d.stop();
    let passed = wait_until(Duration::from_secs(130), || {
        (chrono::Local::now().minute() != due && chrono::Local::now().minute() != (due + 59) % 60).then_some(())
    });
    assert!(passed.is_some());
    assert!(snapshots_offline_is_impossible(&d));
    d.start_again();
    let taken = wait_until(Duration::from_secs(20), || {
        d.snapshots("c1").into_iter().find(|s| s["schedule"] == "default")
    });
    assert!(taken.is_some(), "the missed run was not taken:\n{}", d.log());
    assert_eq!(
        d.state("c1"),
        "RUNNING",
        "the container ran on while the daemon was down"
    );
    d.ok(&["delete", "--force", "c1"]);
}

/// While the daemon is down nobody takes snapshots (the CLI cannot even ask).
fn snapshots_offline_is_impossible(d: &Daemon) -> bool {
    !d.sysc(&["snapshot", "list", "c1"]).success()
}
