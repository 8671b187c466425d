//! The pure cgroup v2 driver.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::files::{
    FREEZE_TIMEOUT, chown, kill_unified, mkdir, procs_recursive, read, read_field, read_u64, rmdir_if_unused,
    rmdir_tree, task_waits, wait_empty, wait_for, write,
};
use super::{CgroupConfig, CgroupDriver, CgroupError, DEFAULT_CPU_WEIGHT, Limits, Owner, Placement, Result, Usage};

/// Files a delegated cgroup's owner must be able to write (see the kernel's
/// cgroup-v2.rst, "Delegation Containment").
pub(super) const DELEGATED_FILES: [&str; 3] = ["cgroup.procs", "cgroup.subtree_control", "cgroup.threads"];

pub struct Unified {
    root: PathBuf,
    parent: PathBuf,
}

impl Unified {
    pub fn new(config: &CgroupConfig) -> Self {
        Self {
            root: config.unified.clone(),
            parent: config.unified.join(&config.parent),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.parent.join(name)
    }

    /// Makes every controller the hierarchy offers available to the containers below
    /// `parent`. A controller-less hierarchy has nothing to enable.
    fn enable_controllers(&self) -> Result<()> {
        for level in [&self.root, &self.parent] {
            let available = fs::read_to_string(level.join("cgroup.controllers")).unwrap_or_default();
            let enabled = fs::read_to_string(level.join("cgroup.subtree_control")).unwrap_or_default();
            let wanted: Vec<String> = available
                .split_whitespace()
                .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
                .map(|c| format!("+{c}"))
                .collect();
            if !wanted.is_empty() {
                write(&level.join("cgroup.subtree_control"), &wanted.join(" "))?;
            }
        }
        Ok(())
    }
}

/// Creates `dir` and hands it and its delegation files to `owner`.
pub(super) fn create_delegated(dir: &std::path::Path, owner: Option<Owner>) -> Result<()> {
    mkdir(dir)?;
    if let Some(owner) = owner {
        chown(dir, owner.uid, owner.gid)?;
        for file in DELEGATED_FILES {
            chown(&dir.join(file), owner.uid, owner.gid)?;
        }
    }
    Ok(())
}

impl CgroupDriver for Unified {
    fn create(&self, name: &str, owner: Option<Owner>) -> Result<()> {
        mkdir(&self.parent)?;
        self.enable_controllers()?;
        create_delegated(&self.dir(name), owner)?;
        // An unprivileged container cannot create device nodes, so it needs no program.
        if owner.is_none() {
            super::devices::attach_v2(&self.dir(name))?;
        }
        Ok(())
    }

    fn enter_v1(&self, _name: &str) -> Result<Placement> {
        Ok(Placement::default())
    }

    fn unified_dir(&self, name: &str) -> PathBuf {
        self.dir(name)
    }

    fn processes(&self, name: &str) -> Result<Vec<i32>> {
        procs_recursive(&self.dir(name))
    }

    fn kill(&self, name: &str) -> Result<()> {
        // cgroup v2's freezer lets SIGKILL through: no need to thaw first.
        kill_unified(&self.dir(name))
    }

    fn apply(&self, name: &str, limits: &Limits) -> Result<()> {
        let dir = self.dir(name);
        // A value that is set needs its controller; resetting one the host lacks is moot.
        let set = |file: &str, value: String, controller: &'static str, needed: bool| -> Result<()> {
            let path = dir.join(file);
            match (path.exists(), needed) {
                (true, _) => write(&path, &value),
                (false, true) => Err(CgroupError::NoController { controller }),
                (false, false) => Ok(()),
            }
        };
        // An empty cpuset.cpus means "the parent's".
        set(
            "cpuset.cpus",
            limits.cpus.clone().unwrap_or_default(),
            "cpuset",
            limits.cpus.is_some(),
        )?;
        set(
            "cpu.weight",
            limits.cpu_weight.clamp(1, 10_000).to_string(),
            "cpu",
            limits.cpu_weight != DEFAULT_CPU_WEIGHT,
        )?;
        let max = match limits.cpu_quota {
            Some((quota, period)) => format!("{quota} {period}"),
            None => "max 100000".into(),
        };
        set("cpu.max", max, "cpu", limits.cpu_quota.is_some())?;
        let memory = limits.memory.map(|m| m.to_string()).unwrap_or_else(|| "max".into());
        set("memory.max", memory, "memory", limits.memory.is_some())?;
        let swap = if limits.swap { "max" } else { "0" };
        set("memory.swap.max", swap.into(), "memory", !limits.swap)?;
        let processes = limits.processes.map(|p| p.to_string()).unwrap_or_else(|| "max".into());
        set("pids.max", processes, "pids", limits.processes.is_some())
    }

    fn freeze(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        write(&dir.join("cgroup.freeze"), "1")?;
        if wait_for(FREEZE_TIMEOUT, || {
            read_field(&dir.join("cgroup.events"), "frozen") == Some(1)
        }) {
            Ok(())
        } else {
            let waits = task_waits(&dir);
            // Left as it was, not half frozen and freezing on after the caller gave up.
            write(&dir.join("cgroup.freeze"), "0")?;
            Err(CgroupError::NotFrozen { path: dir, waits })
        }
    }

    fn thaw(&self, name: &str) -> Result<()> {
        write(&self.dir(name).join("cgroup.freeze"), "0")
    }

    fn is_frozen(&self, name: &str) -> bool {
        read_field(&self.dir(name).join("cgroup.events"), "frozen") == Some(1)
    }

    fn usage(&self, name: &str) -> Result<Usage> {
        let dir = self.dir(name);
        let optional = |file: &str| read_u64(&dir.join(file)).unwrap_or(0);
        let processes = match read_u64(&dir.join("pids.current")) {
            Ok(n) => n,
            Err(_) => procs_recursive(&dir)?.len() as u64,
        };
        Ok(Usage {
            memory_bytes: optional("memory.current"),
            memory_reclaimable_bytes: read_field(&dir.join("memory.stat"), "inactive_file").unwrap_or(0),
            memory_peak_bytes: optional("memory.peak"),
            cpu_nanoseconds: read_field(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
            processes,
        })
    }

    fn available_cpus(&self) -> Result<String> {
        for file in [
            self.parent.join("cpuset.cpus.effective"),
            self.root.join("cpuset.cpus.effective"),
        ] {
            if let Ok(cpus) = read(&file) {
                return Ok(cpus);
            }
        }
        read(std::path::Path::new("/sys/devices/system/cpu/online"))
    }

    fn remove(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        if !dir.exists() {
            return Ok(());
        }
        kill_unified(&dir)?;
        wait_empty(&dir, Duration::from_secs(10))?;
        rmdir_tree(&dir)
    }

    fn remove_parent(&self) {
        rmdir_if_unused(&self.parent);
    }
}

#[cfg(test)]
mod tests {
    //! The v2 driver against a fake cgroupfs: plain files in a temporary directory, as a
    //! pure cgroup v2 host with every controller would show them.

    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::cgroup::Limits;

    const FILES: [&str; 12] = [
        "cgroup.procs",
        "cgroup.freeze",
        "cgroup.events",
        "cgroup.kill",
        "cpuset.cpus",
        "cpu.weight",
        "cpu.max",
        "memory.max",
        "memory.swap.max",
        "pids.max",
        "memory.current",
        "pids.current",
    ];

    fn fake_host(root: &Path) -> Unified {
        fs::write(root.join("cgroup.controllers"), "").unwrap();
        fs::write(root.join("cpuset.cpus.effective"), "0-3\n").unwrap();
        let container = root.join("sysc/c1");
        fs::create_dir_all(&container).unwrap();
        for file in FILES {
            fs::write(container.join(file), "").unwrap();
        }
        fs::write(container.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        Unified::new(&CgroupConfig::v2(root.to_path_buf(), "sysc"))
    }

    fn read(root: &Path, file: &str) -> String {
        fs::read_to_string(root.join("sysc/c1").join(file)).unwrap()
    }

    #[test]
    fn limits_are_written_to_the_v2_files() {
        let root = tempfile::tempdir().unwrap();
        let driver = fake_host(root.path());
        let limits = Limits {
            cpus: Some("1-2".into()),
            cpu_weight: 50,
            cpu_quota: Some((25_000, 100_000)),
            memory: Some(256 << 20),
            swap: false,
            processes: Some(64),
        };
        driver.apply("c1", &limits).unwrap();
        for (file, value) in [
            ("cpuset.cpus", "1-2"),
            ("cpu.weight", "50"),
            ("cpu.max", "25000 100000"),
            ("memory.max", "268435456"),
            ("memory.swap.max", "0"),
            ("pids.max", "64"),
        ] {
            assert_eq!(read(root.path(), file), value, "{file}");
        }
        driver.apply("c1", &Limits::default()).unwrap();
        for (file, value) in [
            ("cpuset.cpus", ""),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("pids.max", "max"),
        ] {
            assert_eq!(read(root.path(), file), value, "{file} after a reset");
        }
    }

    #[test]
    fn a_missing_controller_is_an_error_only_when_a_limit_needs_it() {
        let root = tempfile::tempdir().unwrap();
        let driver = fake_host(root.path());
        fs::remove_file(root.path().join("sysc/c1/memory.max")).unwrap();
        driver.apply("c1", &Limits::default()).unwrap();
        let limits = Limits {
            memory: Some(1 << 30),
            ..Limits::default()
        };
        let err = driver.apply("c1", &limits).unwrap_err().to_string();
        assert_eq!(
            err,
            "the memory cgroup controller is not available for containers on this host"
        );
    }

    #[test]
    fn freeze_thaw_and_usage() {
        let root = tempfile::tempdir().unwrap();
        let driver = fake_host(root.path());
        let container = root.path().join("sysc/c1");
        // The kernel reports frozen in cgroup.events; the fake says so up front.
        fs::write(container.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        driver.freeze("c1").unwrap();
        assert_eq!(read(root.path(), "cgroup.freeze"), "1");
        assert!(driver.is_frozen("c1"));
        driver.thaw("c1").unwrap();
        assert_eq!(read(root.path(), "cgroup.freeze"), "0");
        fs::write(container.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        assert!(!driver.is_frozen("c1"));

        fs::write(container.join("memory.current"), "1048576\n").unwrap();
        fs::write(
            container.join("memory.stat"),
            "anon 8192\nactive_file 4096\ninactive_file 65536\n",
        )
        .unwrap();
        fs::write(container.join("pids.current"), "7\n").unwrap();
        let usage = driver.usage("c1").unwrap();
        assert_eq!(usage.memory_bytes, 1 << 20);
        assert_eq!(usage.memory_reclaimable_bytes, 65536);
        assert_eq!(usage.memory_in_use(), (1 << 20) - 65536);
        assert_eq!(usage.processes, 7);
        assert_eq!(usage.cpu_nanoseconds, 1_500_000);
        assert_eq!(driver.available_cpus().unwrap(), "0-3");
    }

    #[test]
    fn kill_writes_cgroup_kill() {
        let root = tempfile::tempdir().unwrap();
        let driver = fake_host(root.path());
        driver.kill("c1").unwrap();
        assert_eq!(read(root.path(), "cgroup.kill"), "1");
    }
}
