//! Looking at containers from the host, the way a user would check them.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a command inside a running container's namespaces (nsenter, as root).
pub fn in_container(pid: i64, command: &str) -> (bool, String) {
    let output = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-a", "sh", "-c", command])
        .output()
        .expect("run nsenter");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// `command` run by `unshare --net`, in a network namespace of its own: a `sysc` there
/// is as a remote client is to syscd, which cannot reach its socket for a pulled file
/// handed over, and streams the file instead.
pub fn in_own_network_namespace(command: Command) -> Command {
    let mut unshare = Command::new("unshare");
    unshare.arg("--net").arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => unshare.env(key, value),
            None => unshare.env_remove(key),
        };
    }
    unshare
}

/// A field of /proc/PID/status, e.g. "NSpid".
pub fn proc_status_field(pid: i64, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Polls `check` until it returns Some or `timeout` passes.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether anything is mounted at or below `prefix` in the host's mount table.
pub fn is_mounted(prefix: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .any(|target| target.starts_with(prefix))
}
