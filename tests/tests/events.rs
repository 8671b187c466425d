//! `sysc monitor` and `sysc operation`: every client of a daemon sees what happens on it,
//! as it happens, and the long operations any client began.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sysc_tests::{Daemon, in_container, wait_until};

/// How long an expected event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A `sysc monitor --format json` running against a daemon, its events read as they come.
struct Monitor {
    child: Child,
    events: mpsc::Receiver<Value>,
}

impl Monitor {
    /// Starts a monitor and waits until the daemon has it listening: nothing after this
    /// is missed.
    fn start(d: &Daemon, types: &[&str]) -> Self {
        let listening = listeners(d);
        let mut args = vec!["monitor", "--format", "json"];
        for t in types {
            args.extend(["--type", t]);
        }
        let mut child = d
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sysc monitor");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let connected = wait_until(Duration::from_secs(15), || (listeners(d) > listening).then_some(()));
        assert!(connected.is_some(), "the monitor did not connect:\n{}", d.log());
        Self { child, events }
    }

    /// The next event, or None after `timeout`.
    fn next(&self, timeout: Duration) -> Option<Value> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Events until one satisfies `last` (included); panics if it does not come.
    fn until(&self, what: &str, last: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.next(left) else {
                panic!("no {what} event within {EVENT_TIMEOUT:?}; saw {seen:#?}");
            };
            let done = last(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Monitors the daemon has taken on so far (it logs each).
fn listeners(d: &Daemon) -> usize {
    d.log().matches("event listener connected").count()
}

fn is(event: &Value, action: &str) -> bool {
    event["action"] == action
}

/// The (action, source) of each lifecycle event.
fn lifecycle(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["type"] == "lifecycle")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["source"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_client_sees_a_container_from_launch_to_delete_and_its_operations() {
    let d = Daemon::start();
    let first = Monitor::start(&d, &["lifecycle"]);
    let operations = Monitor::start(&d, &["operation"]);
    let everything = Monitor::start(&d, &[]);

    d.ok(&["launch", "busybox", "c1"]);
    d.ok(&["snapshot", "create", "c1", "s0"]);
    d.ok(&["stop", "c1"]);
    d.ok(&["delete", "c1"]);

    let expected: Vec<(String, String)> = [
        ("container-created", "containers/c1"),
        ("container-started", "containers/c1"),
        ("snapshot-created", "containers/c1/snapshots/s0"),
        ("container-stopped", "containers/c1"),
        ("container-deleted", "containers/c1"),
    ]
    .into_iter()
    .map(|(a, s)| (a.to_string(), s.to_string()))
    .collect();
    let seen = first.until("container-deleted", |e| is(e, "container-deleted"));
    assert!(
        seen.iter().all(|e| e["type"] == "lifecycle"),
        "only lifecycle: {seen:#?}"
    );
    assert_eq!(lifecycle(&seen), expected);
    let stopped = seen.iter().find(|e| is(e, "container-stopped")).unwrap();
    assert_eq!(stopped["context"]["reason"], "requested", "{stopped}");
    assert!(
        stopped["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{stopped}"
    );

    // Another client sees the same, among the other kinds.
    let all = everything.until("container-deleted", |e| is(e, "container-deleted"));
    assert_eq!(lifecycle(&all), expected);
    assert!(all.iter().any(|e| e["type"] == "operation"), "{all:#?}");
    assert!(
        all.iter()
            .any(|e| e["type"] == "logging" && e["message"].as_str().is_some()),
        "the daemon's log lines: {all:#?}"
    );

    // The launch, as an operation: running, then success.
    let ops = operations.until("operation-finished", |e| is(e, "operation-finished"));
    assert!(ops.iter().all(|e| e["type"] == "operation"), "{ops:#?}");
    let created = &ops[0]["operation"];
    assert_eq!(ops[0]["action"], "operation-created");
    assert_eq!(created["status"], "running");
    assert_eq!(created["kind"], "create");
    assert_eq!(created["resources"][0], "containers/c1");
    let finished = &ops.last().unwrap()["operation"];
    assert_eq!(finished["id"], created["id"]);
    assert_eq!(finished["status"], "success", "{finished}");
}

#[test]
fn a_container_that_powers_itself_off_is_reported_stopped() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let monitor = Monitor::start(&d, &["lifecycle"]);
    in_container(d.init_pid("b1"), "poweroff");
    let seen = monitor.until("container-stopped", |e| is(e, "container-stopped"));
    let stopped = seen.last().unwrap();
    assert_eq!(stopped["source"], "containers/b1");
    assert_eq!(stopped["context"]["reason"], "exited", "{stopped}");
}

#[test]
fn exports_are_operations_every_client_can_list_and_show() {
    let d = Daemon::start();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("b1.tar.zst");
    d.ok(&["launch", "busybox", "b1"]);
    let monitor = Monitor::start(&d, &["lifecycle"]);
    d.ok(&["export", "b1", archive.to_str().unwrap()]);
    monitor.until("container-exported", |e| is(e, "container-exported"));

    let list: Value = serde_json::from_str(&d.ok(&["operation", "list", "--format", "json"])).unwrap();
    let list = list.as_array().unwrap();
    let export = list
        .iter()
        .find(|op| op["kind"] == "export")
        .unwrap_or_else(|| panic!("no export in {list:#?}"));
    assert_eq!(export["status"], "success", "{export}");
    assert_eq!(export["resources"][0], "containers/b1");
    assert!(export["progress"].as_str().unwrap().ends_with('%'), "{export}");
    assert!(
        list.iter()
            .any(|op| op["kind"] == "create" && op["status"] == "success"),
        "the launch is listed too: {list:#?}"
    );

    let id = export["id"].as_str().unwrap();
    let shown = d.ok(&["operation", "show", &id[..8]]);
    assert!(shown.contains(id) && shown.contains("success"), "{shown}");
    let table = d.ok(&["operation", "list"]);
    assert!(
        table.contains(&id[..12]) && table.contains("Exporting container b1"),
        "{table}"
    );

    // A failed import is listed as a failure, with its error.
    let bogus = dir.path().join("bogus.tar.zst");
    std::fs::write(&bogus, b"not an archive").unwrap();
    d.fails(&["import", bogus.to_str().unwrap(), "b2"]);
    let list: Value = serde_json::from_str(&d.ok(&["operation", "list", "--format", "json"])).unwrap();
    let import = list
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["kind"] == "import")
        .unwrap_or_else(|| panic!("no import in {list:#}"));
    assert_eq!(import["status"], "failure", "{import}");
    assert!(!import["error"].as_str().unwrap().is_empty(), "{import}");

    let unknown = d.fails(&["operation", "show", "ffffffffffff"]);
    assert!(unknown.contains("not found"), "{unknown}");
    let bad = d.fails(&["monitor", "--type", "everything"]);
    assert!(bad.contains("everything"), "{bad}");
}

#[test]
fn a_daemon_stops_promptly_with_monitors_attached_and_they_end() {
    let mut d = Daemon::start();
    let mut monitor = Monitor::start(&d, &[]);
    let began = Instant::now();
    d.stop();
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "the daemon took {:?} to stop with a monitor attached",
        began.elapsed()
    );
    let ended = wait_until(Duration::from_secs(10), || monitor.child.try_wait().ok().flatten());
    let status = ended.expect("sysc monitor still running after the daemon stopped");
    assert!(!status.success(), "an ended stream is an error: {status}");
}
