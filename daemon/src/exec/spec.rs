//! What the daemon tells the exec helper: the first message on the control socket.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupConfig;
use crate::security::SecurityPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    pub container: String,
    /// The container monitor's socket, from which the helper gets the init's pidfd.
    pub monitor_socket: PathBuf,
    pub cgroup: CgroupConfig,
    /// Whether the container has its own user namespace (not privileged).
    pub userns: bool,
    pub argv: Vec<String>,
    /// KEY=VALUE.
    pub env: Vec<String>,
    /// Working directory; None: `home`, or / if that is missing.
    pub cwd: Option<String>,
    pub home: String,
    pub uid: u32,
    pub gid: u32,
    /// Some: run on a pty of this size.
    pub tty: Option<WindowSize>,
    /// The container's capabilities and seccomp filter, as its init has them.
    pub security: SecurityPolicy,
}

/// The file descriptor the helpers (sysc-exec, sysc-file) find their control socket on.
pub const CONTROL_FD: i32 = 3;

/// Largest spec (mostly argv and environment) the helper accepts.
pub const MAX_SPEC_BYTES: usize = 1 << 20;
