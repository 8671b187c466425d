//! The pure cgroup v2 driver.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::files::{chown, kill_unified, mkdir, procs_recursive, rmdir_if_unused, rmdir_tree, wait_empty, write};
use super::{CgroupConfig, CgroupDriver, Owner, Placement, Result};

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
        create_delegated(&self.dir(name), owner)
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
        kill_unified(&self.dir(name))
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
