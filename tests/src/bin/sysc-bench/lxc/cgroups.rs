//! The cgroups LXC leaves behind (a failed start's `lxc.payload.NAME` and
//! `lxc.monitor.NAME`, the shared `lxc.pivot`), found and removed.

use std::fs;
use std::path::{Path, PathBuf};

pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default()
}

pub fn pivot_cgroups() -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("lxc.pivot"))
        .filter(|p| p.is_dir())
        .collect()
}

/// rmdir, children first (systemd in a container makes its own sub-cgroups). A
/// cgroup that still holds processes stays, and that is reported.
pub fn remove_cgroup_tree(path: &Path) {
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    if let Err(err) = fs::remove_dir(path) {
        eprintln!("sysc-bench: cannot remove cgroup {}: {err}", path.display());
    }
}
