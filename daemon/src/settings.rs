//! Where the daemon keeps things, decided once at start-up from its flags.

use std::path::PathBuf;

use crate::cgroup::CgroupConfig;

#[derive(Debug, Clone)]
pub struct Settings {
    /// All persistent state: db/, containers/, storage-pools/, disks/.
    pub root: PathBuf,
    /// Monitors' sockets and exit records (tmpfs in production: gone at reboot).
    pub run_dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup: CgroupConfig,
    /// First host id of the first container's private range.
    pub idmap_base: u32,
    pub monitor_exe: PathBuf,
    /// The exec helper (sysc-exec), one per command run in a container.
    pub exec_exe: PathBuf,
    /// The file helper (sysc-file), one per file request.
    pub file_exe: PathBuf,
    /// The port forwarder (sysc-proxy), one per proxy device of a running container.
    pub proxy_exe: PathBuf,
    pub templates_dir: PathBuf,
    pub template_cache: PathBuf,
    /// `--https-address`: replaces core.https_address at start-up.
    pub https_address: Option<String>,
}

/// Every container gets this many ids: 0-65535 inside.
pub const IDMAP_SIZE: u32 = 65536;

impl Settings {
    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }

    /// `<root>/containers/<name>`: a link to the container's volume in its pool.
    pub fn container_link(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }

    pub fn monitor_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    pub fn monitor_socket(&self, name: &str) -> PathBuf {
        self.monitor_dir(name).join("monitor.sock")
    }

    pub fn exit_record(&self, name: &str) -> PathBuf {
        self.monitor_dir(name).join("exit.json")
    }

    /// Present while the daemon holds a container frozen for a snapshot, so a daemon
    /// that died meanwhile thaws it on its next start (a user's pause has no marker).
    pub fn freeze_marker(&self, name: &str) -> PathBuf {
        self.monitor_dir(name).join("frozen-for-snapshot")
    }
}
