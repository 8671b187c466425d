//! 30 systemd containers at once. Each container's user namespace belongs to its own
//! host uid, so per-user kernel limits (fs.inotify.max_user_instances = 128 here) are
//! not shared: LXC and Incus, whose containers all count against root, stop booting at
//! about 14 on this machine.

use std::time::Duration;

use sysc_tests::{Daemon, in_container, wait_until};

const COUNT: usize = 30;

#[test]
fn thirty_debian_containers_boot_at_once() {
    let d = Daemon::start();
    d.ok(&["create", "debian", "deb0"]);
    let names: Vec<String> = (0..COUNT).map(|i| format!("deb{i}")).collect();
    for name in &names[1..] {
        d.ok(&["create", "debian", name]);
    }
    let mut start: Vec<&str> = vec!["start"];
    start.extend(names.iter().map(String::as_str));
    d.ok(&start);

    let list = d.list();
    assert_eq!(list.len(), COUNT);
    let mut owners = std::collections::HashSet::new();
    for c in &list {
        assert_eq!(c["state"], "RUNNING", "{c}");
        owners.insert(c["config"]["volatile.idmap.base"].as_str().unwrap().to_string());
    }
    assert_eq!(owners.len(), COUNT, "every container has its own id range");

    let mut states = Vec::new();
    for c in &list {
        let pid = c["pid"].as_i64().unwrap();
        let mut state = String::new();
        wait_until(Duration::from_secs(180), || {
            let (_, out) = in_container(pid, "systemctl is-system-running 2>/dev/null");
            state = out.trim().to_string();
            matches!(state.as_str(), "running" | "degraded" | "maintenance").then_some(())
        });
        let (_, failed) = in_container(pid, "systemctl --failed --no-legend --plain");
        states.push((c["name"].as_str().unwrap().to_string(), state, failed));
    }
    let bad: Vec<_> = states
        .iter()
        .filter(|(_, state, _)| state != "running" && state != "degraded")
        .collect();
    assert!(bad.is_empty(), "containers that did not boot: {bad:?}");
    let running = states.iter().filter(|(_, s, _)| s == "running").count();
    eprintln!("{running} of {COUNT} running, the rest degraded: {states:?}");

    d.ok(&["stop", "--all"]);
    assert!(d.list().iter().all(|c| c["state"] == "STOPPED"));
}
