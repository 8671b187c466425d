//! When a booting container counts as up: the probes, and the polling for them.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};

use crate::interrupt::check_interrupted;
use crate::manager::Template;
use crate::util::output_within;

/// How long a container may take to come up or go away before the sample fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest one readiness probe (an nsenter) may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy)]
pub enum Readiness {
    /// The init has exec'd the template's init and `nsenter -a true` works.
    ExecWorks(Template),
    /// `systemctl is-system-running` (through nsenter) says running or degraded.
    SystemdSettled,
}

impl Readiness {
    pub fn interval(self) -> Duration {
        match self {
            // nsenter itself takes a few ms: poll back to back.
            Self::ExecWorks(_) => Duration::from_millis(1),
            Self::SystemdSettled => Duration::from_millis(10),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::ExecWorks(_) => "exec works",
            Self::SystemdSettled => "systemd settled",
        }
    }

    /// `Some(note)` once ready (the note is systemd's state, or empty); `last` keeps
    /// the last answer for the error message of a timeout.
    pub fn check(self, pid: i32, last: &mut String) -> Result<Option<Option<String>>> {
        match self {
            Self::ExecWorks(template) => {
                // Before the init's exec the PID runs the manager's own code, in
                // namespaces still being set up: an early nsenter would be no proof.
                if !runs_binary(pid, template.init_binary()) {
                    *last = "init not exec'd yet".into();
                    return Ok(None);
                }
                let exec = output_within(&mut nsenter(pid, &["true"]), PROBE_TIMEOUT)?.status;
                *last = format!("nsenter true: {exec}");
                Ok(exec.success().then_some(None))
            }
            Self::SystemdSettled => {
                if !runs_binary(pid, Template::Debian.init_binary()) {
                    *last = "init not exec'd yet".into();
                    return Ok(None);
                }
                let output = output_within(&mut nsenter(pid, &["systemctl", "is-system-running"]), PROBE_TIMEOUT)?;
                let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
                *last = state.clone();
                Ok(matches!(state.as_str(), "running" | "degraded").then_some(Some(state)))
            }
        }
    }
}

fn nsenter(pid: i32, command: &[&str]) -> Command {
    let mut nsenter = Command::new("nsenter");
    nsenter.args(["-t", &pid.to_string(), "-a"]).args(command);
    nsenter
}

/// Whether the process `pid` runs a binary whose path ends with `binary`.
fn runs_binary(pid: i32, binary: &str) -> bool {
    fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.to_string_lossy().ends_with(binary))
}

/// Calls `check` every `interval` until it gives a value; fails after READY_TIMEOUT.
pub fn poll_until<T>(what: &str, interval: Duration, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let began = Instant::now();
    loop {
        check_interrupted()?;
        if let Some(value) = check()? {
            return Ok(value);
        }
        ensure!(began.elapsed() < READY_TIMEOUT, "{what}: not after {READY_TIMEOUT:?}");
        std::thread::sleep(interval);
    }
}
