//! `sysc copy` and `sysc move` between two daemons: the container relayed through the
//! client (an export streamed into an import), with its files and snapshots, a new
//! identity for a copy, and a move that leaves the source as it was when it fails.

use serde_json::Value;
use sysc_tests::{Client, Daemon, token_of};

/// Id ranges a test daemon hands out (tests/src/daemon.rs: RANGES_PER_DAEMON).
const RANGES_PER_DAEMON: u64 = 40;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two daemons listening with TLS on the loopback, and a client enrolled to both as h1
/// and h2 (its own unix socket leads nowhere: only the remotes exist for it).
fn two_remotes() -> (Daemon, Daemon, Client) {
    let (d1, d2) = (Daemon::start(), Daemon::start());
    let client = Client::new();
    for (d, remote) in [(&d1, "h1"), (&d2, "h2")] {
        d.ok(&[
            "config",
            "set",
            "core.https_address",
            &format!("127.0.0.1:{}", free_port()),
        ]);
        let token = token_of(&d.ok(&["config", "trust", "add", "laptop"]));
        client.ok(&["remote", "add", remote, &token]);
    }
    (d1, d2, client)
}

fn names(d: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = d
        .list()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn snapshot_names(d: &Daemon, name: &str) -> Vec<String> {
    d.snapshots(name)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn config(container: &Value, key: &str) -> String {
    container["config"][key].as_str().unwrap_or_default().to_string()
}

fn assert_in_range_of(d: &Daemon, container: &Value) {
    let base = container["idmap_base"].as_u64().unwrap();
    let region = u64::from(d.idmap_base)..u64::from(d.idmap_base) + RANGES_PER_DAEMON * 65536;
    assert!(region.contains(&base), "idmap base {base} outside {region:?}");
}

#[test]
fn copy_between_remotes_brings_files_and_snapshots_and_a_new_identity() {
    let (d1, d2, client) = two_remotes();
    client.ok(&["launch", "busybox", "h1:c1"]);
    client.ok(&["exec", "h1:c1", "--", "sh", "-c", "echo before > /root/file"]);
    client.ok(&["snapshot", "create", "h1:c1", "snap0"]);
    client.ok(&["exec", "h1:c1", "--", "sh", "-c", "echo after > /root/file"]);
    let source_pid = d1.init_pid("c1");

    // A running source is copied as it runs, and keeps running.
    let out = client.ok(&["copy", "h1:c1", "h2:c1"]);
    assert!(out.contains("h2:c1") && out.contains("h1:c1"), "{out}");
    assert_eq!(d1.state("c1"), "RUNNING");
    assert_eq!(d1.init_pid("c1"), source_pid);
    assert_eq!(d2.state("c1"), "STOPPED");
    assert_eq!(snapshot_names(&d2, "c1"), ["snap0"]);

    // Its own MAC and id range (within d2's region), and its own machine-id.
    let (source, copy) = (d1.container("c1"), d2.container("c1"));
    assert_in_range_of(&d2, &copy);
    let (source_mac, copy_mac) = (
        config(&source, "volatile.eth0.hwaddr"),
        config(&copy, "volatile.eth0.hwaddr"),
    );
    assert!(
        !copy_mac.is_empty() && copy_mac != source_mac,
        "{source_mac} / {copy_mac}"
    );
    client.ok(&["start", "h2:c1"]);
    assert_eq!(client.ok(&["exec", "h2:c1", "--", "cat", "/root/file"]), "after\n");
    assert_eq!(client.ok(&["exec", "h2:c1", "--", "hostname"]).trim(), "c1");
    let machine_id = |remote: &str| client.ok(&["exec", remote, "--", "cat", "/etc/machine-id"]);
    let copied_id = machine_id("h2:c1");
    assert_eq!(copied_id.trim().len(), 32, "{copied_id}");
    assert_ne!(copied_id, machine_id("h1:c1"));
    // The snapshot holds what it held on d1.
    client.ok(&["snapshot", "restore", "h2:c1", "snap0"]);
    assert_eq!(client.ok(&["exec", "h2:c1", "--", "cat", "/root/file"]), "before\n");

    // --instance-only leaves the snapshots; the name defaults to the source's; -c applies.
    client.ok(&["stop", "h1:c1"]);
    client.ok(&[
        "copy",
        "h1:c1",
        "h2:c5",
        "--instance-only",
        "-c",
        "limits.processes=500",
    ]);
    assert!(snapshot_names(&d2, "c5").is_empty(), "{:?}", d2.snapshots("c5"));
    assert_eq!(config(&d2.container("c5"), "limits.processes"), "500");
    assert_eq!(client.ok(&["file", "pull", "h2:c5/root/file", "-"]), "after\n");
    assert_eq!(client.ok(&["file", "pull", "h2:c5/etc/hostname", "-"]), "c5\n");
    client.ok(&["delete", "h2:c1", "--force"]);
    client.ok(&["copy", "h1:c1", "h2:"]);
    assert_eq!(names(&d2), ["c1", "c5"]);

    // What cannot be done is refused with nothing made.
    let err = client.fails(&["copy", "h1:c1/snap0", "h2:c6"]);
    assert!(
        err.contains("copying a snapshot to another remote is not supported"),
        "{err}"
    );
    let err = client.fails(&["copy", "h1:c1", "h2:c5"]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(names(&d2), ["c1", "c5"]);

    // Within one remote, a copy is still the daemon's own.
    client.ok(&["copy", "h1:c1", "h1:c3"]);
    assert_eq!(names(&d1), ["c1", "c3"]);
    assert_eq!(snapshot_names(&d1, "c3"), ["snap0"]);
}

#[test]
fn move_between_remotes_takes_a_running_container_across() {
    let (d1, d2, client) = two_remotes();
    client.ok(&["launch", "busybox", "h1:c2"]);
    client.ok(&["exec", "h1:c2", "--", "sh", "-c", "echo moved > /root/file"]);
    client.ok(&["snapshot", "create", "h1:c2", "snap0"]);
    let machine_id = client.ok(&["exec", "h1:c2", "--", "cat", "/etc/machine-id"]);

    let out = client.ok(&["move", "h1:c2", "h2:"]);
    assert!(out.contains("moved") && out.contains("h2:c2"), "{out}");
    assert!(names(&d1).is_empty(), "{:?}", names(&d1));
    assert_eq!(d2.state("c2"), "RUNNING");
    assert_in_range_of(&d2, &d2.container("c2"));
    assert_eq!(snapshot_names(&d2, "c2"), ["snap0"]);
    assert_eq!(client.ok(&["exec", "h2:c2", "--", "cat", "/root/file"]), "moved\n");
    // A move is the same machine elsewhere.
    assert_eq!(
        client.ok(&["exec", "h2:c2", "--", "cat", "/etc/machine-id"]),
        machine_id
    );

    // A name taken on the target: refused before the source is touched.
    client.ok(&["launch", "busybox", "h1:c4"]);
    client.ok(&["exec", "h1:c4", "--", "sh", "-c", "echo stays > /root/file"]);
    client.ok(&["create", "busybox", "h2:c4"]);
    let pid = d1.init_pid("c4");
    let err = client.fails(&["move", "h1:c4", "h2:"]);
    assert!(err.contains("h2:c4 already exists"), "{err}");
    assert_eq!(d1.state("c4"), "RUNNING");
    assert_eq!(d1.init_pid("c4"), pid, "the source was not stopped");
    assert_eq!(client.ok(&["exec", "h1:c4", "--", "cat", "/root/file"]), "stays\n");

    // Refused by the target once the source was stopped: it is started again, and
    // nothing is left on the target.
    let err = client.fails(&["move", "h1:c4", "h2:c4-"]);
    assert!(err.contains("invalid container name"), "{err}");
    assert!(err.contains("running again"), "{err}");
    assert_eq!(d1.state("c4"), "RUNNING");
    assert_eq!(client.ok(&["exec", "h1:c4", "--", "cat", "/root/file"]), "stays\n");
    assert_eq!(names(&d2), ["c2", "c4"]);

    // Within one remote a move is a rename; a running container is stopped for it and
    // started again.
    let out = client.ok(&["move", "h2:c2", "h2:c7"]);
    assert!(out.contains("started again"), "{out}");
    assert_eq!(d2.state("c7"), "RUNNING");
    assert_eq!(client.ok(&["exec", "h2:c7", "--", "cat", "/root/file"]), "moved\n");
    assert_eq!(snapshot_names(&d2, "c7"), ["snap0"]);

    // A stopped container moves stopped, without its snapshots if asked.
    client.ok(&["stop", "h2:c7"]);
    client.ok(&["move", "h2:c7", "h1:c8", "--instance-only"]);
    assert_eq!(d1.state("c8"), "STOPPED");
    assert!(snapshot_names(&d1, "c8").is_empty());
    assert_eq!(names(&d2), ["c4"]);
    assert_eq!(client.ok(&["file", "pull", "h1:c8/etc/hostname", "-"]), "c8\n");
}
