//! The managers behind one interface, so each measurement is written once for all sides.

use std::process::Command;

use anyhow::{Result, anyhow};

/// Clean-stop budget on every side (sysc's default; LXC is given the same).
pub const STOP_TIMEOUT_SECS: u32 = 30;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Template {
    Busybox,
    Debian,
}

impl Template {
    pub fn name(self) -> &'static str {
        match self {
            Self::Busybox => "busybox",
            Self::Debian => "debian",
        }
    }

    /// What /proc/INIT/exe ends with once /sbin/init has been exec'd.
    pub fn init_binary(self) -> &'static str {
        match self {
            Self::Busybox => "busybox",
            Self::Debian => "systemd",
        }
    }

    /// The clean-stop signal of sysc's template, given to LXC too.
    pub fn halt_signal(self) -> &'static str {
        match self {
            Self::Busybox => "SIGUSR1",
            Self::Debian => "SIGRTMIN+3",
        }
    }

    /// The same signal's number.
    pub fn halt_signo(self) -> i32 {
        match self {
            Self::Busybox => libc::SIGUSR1,
            Self::Debian => libc::SIGRTMIN() + 3,
        }
    }
}

/// A container manager driven through its own command line tools. Names are sysc's
/// ("b", "web"); LXC prefixes its own, privileged sysc suffixes its own.
pub trait Manager {
    fn label(&self) -> &'static str;
    fn start(&self, name: &str) -> Result<()>;
    /// The host PID of the running container's init; None while there is none.
    fn init_pid(&self, name: &str) -> Result<Option<i32>>;
    fn init_pids(&self, names: &[&str]) -> Result<Vec<i32>> {
        names
            .iter()
            .map(|name| self.init_pid(name)?.ok_or_else(|| anyhow!("{name} is not running")))
            .collect()
    }
    /// The clean stop: the init's halt signal, a kill only after the timeout.
    fn stop(&self, name: &str) -> Result<()>;
    /// Kills the container if it runs.
    fn kill(&self, name: &str) -> Result<()> {
        self.kill_all(&[name])
    }
    fn kill_all(&self, names: &[&str]) -> Result<()>;
    /// Creates the container from the template's cached image and starts it.
    fn launch(&self, template: Template, name: &str) -> Result<()>;
    /// Kills and deletes those of `names` that exist.
    fn delete_all(&self, names: &[&str]) -> Result<()>;
    /// The manager's own command that runs `command` in the running container (`sysc
    /// exec`, `lxc-attach`), as a user would type it; not started yet.
    fn exec(&self, name: &str, command: &[&str]) -> Command;
    /// Part of the command line of the process that is an init's parent.
    fn monitor_marker(&self) -> &'static str;
}
