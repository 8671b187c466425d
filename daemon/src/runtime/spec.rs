//! What a monitor needs to know to start one container. The daemon writes it as JSON on
//! the monitor's standard input.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cgroup::{CgroupConfig, Limits};
use crate::security::SecurityPolicy;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub hostname: String,
    /// The container's root filesystem on the host.
    pub rootfs: PathBuf,
    /// argv of the init, e.g. ["/sbin/init"].
    pub init: Vec<String>,
    /// Environment of the init ("KEY=VALUE").
    pub env: Vec<String>,
    /// The container's private id range; None for a privileged container.
    pub idmap: Option<IdMap>,
    pub cgroup: CgroupConfig,
    /// Applied to the container's cgroups before its init runs.
    pub limits: Limits,
    /// The monitor's directory: control socket, exit record.
    pub run_dir: PathBuf,
    /// Where the console's output is kept (bounded, rotated once).
    pub console_log: PathBuf,
    /// The veth pairs the monitor makes, each peer straight in the container's network
    /// namespace.
    #[serde(default)]
    pub nics: Vec<NicPlug>,
    /// Capabilities, system calls and nesting: applied to the init before it runs.
    #[serde(default)]
    pub security: SecurityPolicy,
}

/// A veth pair the monitor makes once the container's network namespace exists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NicPlug {
    /// The host end's name, in the bridge.
    pub host: String,
    /// The index of the network's bridge.
    pub bridge: u32,
    /// The peer's name inside the container.
    pub name: String,
    /// The peer's MAC.
    pub mac: [u8; 6],
}

/// Container ids 0..size map to host ids host_base..host_base+size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub host_base: u32,
    pub size: u32,
}

impl IdMap {
    /// The line for /proc/PID/uid_map and gid_map.
    pub fn map_line(&self) -> String {
        format!("0 {} {}\n", self.host_base, self.size)
    }
}

impl ContainerSpec {
    pub fn socket_path(&self) -> PathBuf {
        self.run_dir.join("monitor.sock")
    }

    pub fn exit_path(&self) -> PathBuf {
        self.run_dir.join("exit.json")
    }
}
