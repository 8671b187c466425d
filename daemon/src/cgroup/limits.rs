//! What a driver enforces and reports, independent of the cgroup layout.

use serde::{Deserialize, Serialize};

/// The kernel's default CPU weight on cgroup v2 (cpu.weight); v1's cpu.shares default,
/// 1024, corresponds to it.
pub const DEFAULT_CPU_WEIGHT: u64 = 100;

/// Limits of one container. `None` means unlimited (or the default), and applying it
/// resets what an earlier value set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// cpuset.cpus, e.g. "0-1"; None: every CPU the containers' parent has.
    pub cpus: Option<String>,
    /// cgroup v2 cpu.weight scale (1–10000, default 100).
    pub cpu_weight: u64,
    /// (quota, period) in microseconds.
    pub cpu_quota: Option<(u64, u64)>,
    pub memory: Option<u64>,
    /// May the container's memory be swapped out.
    pub swap: bool,
    pub processes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpus: None,
            cpu_weight: DEFAULT_CPU_WEIGHT,
            cpu_quota: None,
            memory: None,
            swap: true,
            processes: None,
        }
    }
}

impl Usage {
    /// What a memory limit cannot go below: the usage that is not easily reclaimed
    /// (the "working set" of other container tools).
    pub fn memory_in_use(&self) -> u64 {
        self.memory_bytes.saturating_sub(self.memory_reclaimable_bytes)
    }
}

impl Limits {
    /// cgroup v1's cpu.shares for the same weight.
    pub fn cpu_shares(&self) -> u64 {
        (self.cpu_weight * 1024 / DEFAULT_CPU_WEIGHT).max(2)
    }
}

/// What a container uses right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory_bytes: u64,
    /// Of `memory_bytes`, page cache nobody has touched lately (inactive_file), which the
    /// kernel drops before it would fail a lower limit.
    pub memory_reclaimable_bytes: u64,
    pub memory_peak_bytes: u64,
    pub cpu_nanoseconds: u64,
    pub processes: u64,
}
