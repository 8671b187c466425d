//! A process's resident memory, from /proc/PID/status, and the reset of its peak: a
//! long-lived daemon's lifetime peak says nothing about one stretch of its work.

use std::fs;

use anyhow::{Context, Result, anyhow};

pub struct Resident {
    /// VmRSS, in KiB.
    pub now_kib: u64,
    /// VmHWM: the highest VmRSS since the process began or its peak was last reset.
    pub peak_kib: u64,
}

pub fn resident(pid: i32) -> Result<Resident> {
    let field = |name: &str| {
        sysc_tests::proc_status_field(pid.into(), name)
            .and_then(|value| value.strip_suffix(" kB")?.parse().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok(Resident {
        now_kib: field("VmRSS")?,
        peak_kib: field("VmHWM")?,
    })
}

/// Sets the process's VmHWM back to its VmRSS (proc(5), clear_refs: "5").
pub fn reset_peak(pid: i32) -> Result<()> {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").with_context(|| format!("reset the peak RSS of {pid}"))
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
