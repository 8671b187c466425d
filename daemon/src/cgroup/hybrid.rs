//! The hybrid driver: v1 controllers (memory, cpu, cpuset, pids, ...) in their own
//! hierarchies, each with a directory per container, plus the controller-less cgroup2
//! for tracking and killing processes and for systemd inside the container.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::files::{
    FREEZE_TIMEOUT, chown, kill_unified, mkdir, procs_recursive, read, read_field, read_u64, rmdir_if_unused,
    rmdir_tree, task_waits, wait_empty, wait_for, write,
};
use super::unified::create_delegated;
use super::{CgroupConfig, CgroupDriver, CgroupError, Limits, Owner, Placement, Result, Usage};

/// How long a freeze waits before it asks the tasks again.
const REFREEZE_INTERVAL: Duration = Duration::from_millis(20);

pub struct Hybrid {
    unified_parent: PathBuf,
    v1_parents: Vec<PathBuf>,
}

impl Hybrid {
    pub fn new(config: &CgroupConfig) -> Self {
        Self {
            unified_parent: config.unified.join(&config.parent),
            v1_parents: config.v1.iter().map(|h| h.join(&config.parent)).collect(),
        }
    }

    fn is_cpuset(dir: &Path) -> bool {
        dir.join("cpuset.cpus").exists()
    }

    /// A new cpuset cgroup starts with no CPUs and no memory nodes; it inherits its
    /// parent's so that processes may join it.
    fn init_cpuset(dir: &Path) -> Result<()> {
        let parent = dir.parent().unwrap_or(dir);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let current = fs::read_to_string(dir.join(file)).unwrap_or_default();
            if current.trim().is_empty() {
                let inherited = fs::read_to_string(parent.join(file)).unwrap_or_default();
                write(&dir.join(file), inherited.trim())?;
            }
        }
        Ok(())
    }

    fn create_v1(dir: &Path) -> Result<()> {
        mkdir(dir)?;
        if Self::is_cpuset(dir) {
            Self::init_cpuset(dir)?;
        }
        Ok(())
    }

    /// The container's directory in the v1 hierarchy that has `controller`.
    fn controller_dir(&self, controller: &'static str, name: &str) -> Result<PathBuf> {
        self.controller_parent(controller)
            .map(|parent| parent.join(name))
            .ok_or(CgroupError::NoController { controller })
    }

    fn controller_parent(&self, controller: &str) -> Option<&PathBuf> {
        self.v1_parents.iter().find(|parent| {
            let hierarchy = parent.parent().and_then(|h| h.file_name());
            hierarchy.is_some_and(|h| h.to_string_lossy().split(',').any(|c| c == controller))
        })
    }

    /// v1 keeps memory+swap (memsw) at or above memory: depending on which way the
    /// limits move, one order of writes is refused and the other works.
    fn apply_memory(dir: &Path, memory: Option<u64>, swap: bool) -> Result<()> {
        let limit = memory.map(|m| m.to_string()).unwrap_or_else(|| "-1".into());
        let memsw_file = dir.join("memory.memsw.limit_in_bytes");
        let limit_file = dir.join("memory.limit_in_bytes");
        if !memsw_file.exists() {
            // No swap accounting on this host: the best we can do is not to swap.
            let _ = write(&dir.join("memory.swappiness"), if swap { "60" } else { "0" });
            return write(&limit_file, &limit);
        }
        let memsw = if swap || memory.is_none() {
            "-1".to_string()
        } else {
            limit.clone()
        };
        if write(&limit_file, &limit)
            .and_then(|_| write(&memsw_file, &memsw))
            .is_ok()
        {
            return Ok(());
        }
        write(&memsw_file, &memsw)?;
        write(&limit_file, &limit)
    }

    /// The named systemd hierarchy is delegated like cgroup2: systemd tools look there.
    fn is_systemd_hierarchy(parent: &Path) -> bool {
        parent
            .parent()
            .and_then(|h| h.file_name())
            .is_some_and(|n| n == "systemd")
    }
}

/// (hierarchy mount point, our cgroup's directory in it) for every v1 hierarchy this
/// process is in, from /proc/self/cgroup and the mount table.
fn own_v1_cgroups() -> Result<Vec<(PathBuf, PathBuf)>> {
    let text = fs::read_to_string("/proc/self/cgroup").map_err(super::files::io_err(Path::new("/proc/self/cgroup")))?;
    let mounts = super::files::read_mounts().map_err(super::files::io_err(Path::new("/proc/self/mounts")))?;
    let mut own = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        if controllers.is_empty() {
            continue; // the cgroup2 line
        }
        let hierarchy = mounts.iter().find(|(mount, fs)| {
            fs == "cgroup"
                && mount.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n == controllers
                        || controllers
                            .split(',')
                            .any(|c| c == n || c.strip_prefix("name=") == Some(&n))
                })
        });
        if let Some((mount, _)) = hierarchy {
            own.push((mount.clone(), mount.join(path.trim_start_matches('/'))));
        }
    }
    Ok(own)
}

impl CgroupDriver for Hybrid {
    fn create(&self, name: &str, owner: Option<Owner>) -> Result<()> {
        for parent in &self.v1_parents {
            Self::create_v1(parent)?;
            let dir = parent.join(name);
            Self::create_v1(&dir)?;
            if dir.join("devices.deny").exists() {
                super::devices::restrict_v1(&dir)?;
            }
            if let (Some(owner), true) = (owner, Self::is_systemd_hierarchy(parent)) {
                chown(&dir, owner.uid, owner.gid)?;
                chown(&dir.join("cgroup.procs"), owner.uid, owner.gid)?;
            }
        }
        mkdir(&self.unified_parent)?;
        create_delegated(&self.unified_parent.join(name), owner)
    }

    fn enter_v1(&self, name: &str) -> Result<Placement> {
        let current = own_v1_cgroups()?;
        let mut placement = Placement::default();
        for parent in &self.v1_parents {
            let hierarchy = parent.parent().unwrap_or(parent);
            let Some(own) = current.iter().find(|(h, _)| h == hierarchy) else {
                continue;
            };
            // "0" in `tasks` is the writing thread itself: no global lock, see the trait.
            write(&parent.join(name).join("tasks"), "0")?;
            placement.previous.push(own.1.join("tasks"));
        }
        Ok(placement)
    }

    fn unified_dir(&self, name: &str) -> PathBuf {
        self.unified_parent.join(name)
    }

    fn processes(&self, name: &str) -> Result<Vec<i32>> {
        procs_recursive(&self.unified_parent.join(name))
    }

    fn kill(&self, name: &str) -> Result<()> {
        kill_unified(&self.unified_parent.join(name))?;
        // A task frozen by the v1 freezer can't act on SIGKILL until thawed.
        if self.is_frozen(name) {
            self.thaw(name)?;
        }
        Ok(())
    }

    fn apply(&self, name: &str, limits: &Limits) -> Result<()> {
        let cpuset = self.controller_dir("cpuset", name)?;
        let cpus = match &limits.cpus {
            Some(cpus) => cpus.clone(),
            None => self.available_cpus()?,
        };
        write(&cpuset.join("cpuset.cpus"), &cpus)?;
        let cpu = self.controller_dir("cpu", name)?;
        write(&cpu.join("cpu.shares"), &limits.cpu_shares().to_string())?;
        match limits.cpu_quota {
            Some((quota, period)) => {
                write(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            None => {
                write(&cpu.join("cpu.cfs_quota_us"), "-1")?;
                write(&cpu.join("cpu.cfs_period_us"), "100000")?;
            }
        }
        Self::apply_memory(&self.controller_dir("memory", name)?, limits.memory, limits.swap)?;
        let processes = limits.processes.map(|p| p.to_string()).unwrap_or_else(|| "max".into());
        write(&self.controller_dir("pids", name)?.join("pids.max"), &processes)
    }

    fn freeze(&self, name: &str) -> Result<()> {
        let dir = self.controller_dir("freezer", name)?;
        let started = Instant::now();
        let mut frozen = false;
        while !frozen && started.elapsed() < FREEZE_TIMEOUT {
            // Each write asks every task once more. Asked only once, a task that was
            // in vfork() then sleeps there unfrozen for good: its child froze before
            // it could exec, and the v1 freezer never asks the parent again.
            write(&dir.join("freezer.state"), "FROZEN")?;
            frozen = wait_for(REFREEZE_INTERVAL, || self.is_frozen(name));
        }
        if frozen {
            Ok(())
        } else {
            let waits = task_waits(&dir);
            // Left as it was, not half frozen and freezing on after the caller gave up.
            write(&dir.join("freezer.state"), "THAWED")?;
            Err(CgroupError::NotFrozen { path: dir, waits })
        }
    }

    fn thaw(&self, name: &str) -> Result<()> {
        write(&self.controller_dir("freezer", name)?.join("freezer.state"), "THAWED")
    }

    fn is_frozen(&self, name: &str) -> bool {
        self.controller_dir("freezer", name)
            .and_then(|dir| read(&dir.join("freezer.state")))
            .is_ok_and(|state| state == "FROZEN")
    }

    fn usage(&self, name: &str) -> Result<Usage> {
        let memory = self.controller_dir("memory", name)?;
        Ok(Usage {
            memory_bytes: read_u64(&memory.join("memory.usage_in_bytes"))?,
            // The hierarchy's own total: memory.usage_in_bytes counts the children too.
            memory_reclaimable_bytes: read_field(&memory.join("memory.stat"), "total_inactive_file").unwrap_or(0),
            memory_peak_bytes: read_u64(&memory.join("memory.max_usage_in_bytes"))?,
            cpu_nanoseconds: read_u64(&self.controller_dir("cpuacct", name)?.join("cpuacct.usage"))?,
            processes: read_u64(&self.controller_dir("pids", name)?.join("pids.current"))?,
        })
    }

    fn available_cpus(&self) -> Result<String> {
        let parent = self
            .controller_parent("cpuset")
            .ok_or(CgroupError::NoController { controller: "cpuset" })?;
        Self::create_v1(parent)?;
        read(&parent.join("cpuset.cpus"))
    }

    fn remove(&self, name: &str) -> Result<()> {
        let unified = self.unified_parent.join(name);
        kill_unified(&unified)?;
        if unified.exists() {
            wait_empty(&unified, Duration::from_secs(10))?;
        }
        for parent in &self.v1_parents {
            let dir = parent.join(name);
            if dir.exists() {
                // Every process of the container is in its cgroup2 subtree too, so this only
                // catches a process that was never attached there.
                for pid in procs_recursive(&dir)? {
                    // SAFETY: plain kill(2) of a PID listed in the container's own cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                wait_empty(&dir, Duration::from_secs(10))?;
                rmdir_tree(&dir)?;
            }
        }
        rmdir_tree(&unified)
    }

    fn remove_parent(&self) {
        for parent in self.v1_parents.iter().chain([&self.unified_parent]) {
            rmdir_if_unused(parent);
        }
    }
}
