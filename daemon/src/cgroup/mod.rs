//! Container cgroups behind one driver interface, with two implementations: pure cgroup
//! v2 (production hosts) and hybrid (v1 controllers plus a controller-less cgroup2,
//! which is what the CI machines have).
//!
//! Every container gets `<parent>/<name>` in each hierarchy. The cgroup2 directory is
//! delegated to the container's root (chowned to its mapped uid) so that systemd inside
//! can build its own subtree under its cgroup namespace root.

mod devices;
mod files;
mod hybrid;
mod limits;
mod unified;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use files::FREEZE_TIMEOUT;
pub use hybrid::Hybrid;
pub use limits::{DEFAULT_CPU_WEIGHT, Limits, Usage};
pub use unified::Unified;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no cgroup2 hierarchy found under {0} (neither a pure cgroup v2 nor a hybrid host)")]
    NoUnified(PathBuf),
    #[error("cgroup {0} still has processes after they were killed")]
    Busy(PathBuf),
    #[error("the {controller} cgroup controller is not available for containers on this host")]
    NoController { controller: &'static str },
    #[error("cgroup {path} did not freeze within {}s; its tasks wait: {waits}", FREEZE_TIMEOUT.as_secs())]
    NotFrozen { path: PathBuf, waits: String },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// How the host mounts its cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One cgroup2 hierarchy with every controller.
    V2,
    /// v1 controllers, each in its own hierarchy, plus a controller-less cgroup2.
    Hybrid,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
        }
    }
}

/// Everything a process needs to find a container's cgroups: serializable, so the
/// daemon can hand it to a monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CgroupConfig {
    pub layout: Layout,
    /// Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on a v2 host,
    /// /sys/fs/cgroup/unified on a hybrid one.
    pub unified: PathBuf,
    /// The v1 hierarchies (hybrid only), e.g. /sys/fs/cgroup/memory.
    #[serde(default)]
    pub v1: Vec<PathBuf>,
    /// Directory under each hierarchy's root that holds the containers' cgroups.
    pub parent: String,
}

impl CgroupConfig {
    /// Detects the host's layout from the cgroup mounts under `root`
    /// (normally /sys/fs/cgroup).
    pub fn detect(root: &Path, parent: &str) -> Result<Self> {
        let mounts = files::read_mounts().map_err(|source| CgroupError::Io {
            path: "/proc/self/mounts".into(),
            source,
        })?;
        Self::from_mounts(&mounts, root, parent)
    }

    fn from_mounts(mounts: &[(PathBuf, String)], root: &Path, parent: &str) -> Result<Self> {
        let unified = mounts
            .iter()
            .find(|(path, fs)| fs == "cgroup2" && (path == root || path.parent() == Some(root)))
            .map(|(path, _)| path.clone())
            .ok_or_else(|| CgroupError::NoUnified(root.to_path_buf()))?;
        if unified == root {
            return Ok(Self::v2(unified, parent));
        }
        let v1 = mounts
            .iter()
            .filter(|(path, fs)| fs == "cgroup" && path.parent() == Some(root))
            .map(|(path, _)| path.clone())
            .collect();
        Ok(Self {
            layout: Layout::Hybrid,
            unified,
            v1,
            parent: parent.to_string(),
        })
    }

    /// A pure v2 driver rooted at `unified`. On a hybrid host this can be pointed at the
    /// controller-less hierarchy, which exercises the v2 code path without limits.
    pub fn v2(unified: PathBuf, parent: &str) -> Self {
        Self {
            layout: Layout::V2,
            unified,
            v1: Vec::new(),
            parent: parent.to_string(),
        }
    }

    pub fn driver(&self) -> Box<dyn CgroupDriver> {
        match self.layout {
            Layout::V2 => Box::new(Unified::new(self)),
            Layout::Hybrid => Box::new(Hybrid::new(self)),
        }
    }

    /// The container's directory in the cgroup2 hierarchy.
    pub fn unified_dir(&self, name: &str) -> PathBuf {
        self.unified.join(&self.parent).join(name)
    }
}

/// The mapped root of an unprivileged container, which owns its delegated cgroup.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Where a process moved itself from; moves it back when dropped.
#[derive(Debug, Default)]
pub struct Placement {
    previous: Vec<PathBuf>,
}

impl Drop for Placement {
    fn drop(&mut self) {
        for tasks in &self.previous {
            let _ = std::fs::write(tasks, "0");
        }
    }
}

pub trait CgroupDriver {
    /// Creates the container's cgroups (and the parent's, if missing), delegating the
    /// cgroup2 directory to `owner` when given.
    fn create(&self, name: &str, owner: Option<Owner>) -> Result<()>;
    /// Moves the calling process, which must be single-threaded, into the container's
    /// v1 cgroups (none on a v2 host); dropping the placement moves it back. A child it
    /// forks meanwhile inherits them. Moving oneself is cheap, while moving another
    /// process takes the kernel's global cgroup_threadgroup_rwsem for writing, whose
    /// first use costs an RCU grace period (about 10 ms here).
    fn enter_v1(&self, name: &str) -> Result<Placement>;
    /// The container's cgroup2 directory, for clone3(CLONE_INTO_CGROUP), which has the
    /// same cost advantage and no window in which the child is outside.
    fn unified_dir(&self, name: &str) -> PathBuf;
    /// PIDs (host namespace) of every process in the container's cgroup2 subtree.
    fn processes(&self, name: &str) -> Result<Vec<i32>>;
    /// Sends SIGKILL to every process of the container (thawing it if it is frozen,
    /// since a frozen process can't die).
    fn kill(&self, name: &str) -> Result<()>;
    /// Sets every limit, resetting those that are None to unlimited.
    fn apply(&self, name: &str, limits: &Limits) -> Result<()>;
    /// Freezes every process of the container; returns once they are frozen.
    fn freeze(&self, name: &str) -> Result<()>;
    fn thaw(&self, name: &str) -> Result<()>;
    fn is_frozen(&self, name: &str) -> bool;
    fn usage(&self, name: &str) -> Result<Usage>;
    /// The CPUs containers may use (the cpuset of their parent).
    fn available_cpus(&self) -> Result<String>;
    /// Kills what is left and removes the container's cgroups, children first.
    /// Missing directories are not an error.
    fn remove(&self, name: &str) -> Result<()>;
    /// Removes the parent directories if nothing is left in them.
    fn remove_parent(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
        list.iter().map(|(p, f)| (PathBuf::from(p), f.to_string())).collect()
    }

    #[test]
    fn a_pure_v2_host_is_detected() {
        let found = CgroupConfig::from_mounts(
            &mounts(&[("/", "ext4"), ("/sys/fs/cgroup", "cgroup2")]),
            Path::new("/sys/fs/cgroup"),
            "sysc",
        )
        .unwrap();
        assert_eq!(found.layout, Layout::V2);
        assert_eq!(found.unified, Path::new("/sys/fs/cgroup"));
        assert!(found.v1.is_empty());
    }

    #[test]
    fn a_hybrid_host_is_detected_with_its_v1_hierarchies() {
        let found = CgroupConfig::from_mounts(
            &mounts(&[
                ("/sys/fs/cgroup", "tmpfs"),
                ("/sys/fs/cgroup/cpu,cpuacct", "cgroup"),
                ("/sys/fs/cgroup/memory", "cgroup"),
                ("/sys/fs/cgroup/systemd", "cgroup"),
                ("/sys/fs/cgroup/unified", "cgroup2"),
            ]),
            Path::new("/sys/fs/cgroup"),
            "sysc",
        )
        .unwrap();
        assert_eq!(found.layout, Layout::Hybrid);
        assert_eq!(found.unified, Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(found.v1.len(), 3);
        assert_eq!(found.unified_dir("c1"), Path::new("/sys/fs/cgroup/unified/sysc/c1"));
    }

    #[test]
    fn a_host_without_cgroup2_is_refused() {
        let err = CgroupConfig::from_mounts(
            &mounts(&[("/sys/fs/cgroup/memory", "cgroup")]),
            Path::new("/sys/fs/cgroup"),
            "sysc",
        )
        .unwrap_err();
        assert!(matches!(err, CgroupError::NoUnified(_)));
    }
}
