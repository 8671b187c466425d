//! From a container's config keys to the limits its cgroups enforce. What depends on the
//! host (which CPUs exist, how much memory) is checked here, against the host as it is.

use std::collections::{BTreeMap, BTreeSet};

use crate::cgroup::{CgroupDriver, DEFAULT_CPU_WEIGHT, Limits};
use crate::error::{Error, Result};
use crate::keys::values::{self, Allowance, Cpus};
use crate::keys::{self};

/// A memory limit below this leaves nothing to run with.
const MIN_MEMORY: u64 = 4 << 20;

/// What the host offers the containers.
#[derive(Debug, Clone)]
pub struct Host {
    pub cpus: BTreeSet<usize>,
    pub memory: u64,
}

impl Host {
    pub fn read(driver: &dyn CgroupDriver) -> Result<Self> {
        let cpus = driver
            .available_cpus()
            .map_err(|e| Error::internal("read the host's CPUs", e))?;
        let cpus = values::parse_cpu_list(&cpus)
            .ok_or_else(|| Error::Internal(format!("the host's CPU list {cpus:?} is not readable")))?;
        Ok(Self {
            cpus,
            memory: total_memory().unwrap_or(u64::MAX),
        })
    }
}

fn total_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn invalid(key: &str, value: &str, problem: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("config key {key}: {value:?} {problem}"))
}

/// The limits a container's config asks for on this host.
pub fn resolve(name: &str, config: &BTreeMap<String, String>, host: &Host) -> Result<Limits> {
    let get = |key: &str| config.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let mut limits = Limits::default();

    if let Some(value) = get("limits.cpu") {
        let cpus =
            values::parse_cpus(value).map_err(|e| Error::InvalidArgument(format!("config key limits.cpu: {e}")))?;
        let chosen = match cpus {
            Cpus::Count(count) if count > host.cpus.len() => {
                return Err(invalid(
                    "limits.cpu",
                    value,
                    format!("asks for more CPUs than the host has ({})", host.cpus.len()),
                ));
            }
            Cpus::Count(count) => spread(name, count, &host.cpus),
            Cpus::Set(set) => {
                let missing: BTreeSet<usize> = set.difference(&host.cpus).copied().collect();
                if !missing.is_empty() {
                    return Err(invalid(
                        "limits.cpu",
                        value,
                        format!(
                            "names CPUs this host lacks ({}; it has {})",
                            values::format_cpu_list(&missing),
                            values::format_cpu_list(&host.cpus)
                        ),
                    ));
                }
                set
            }
        };
        limits.cpus = Some(values::format_cpu_list(&chosen));
    }
    let mut weight = DEFAULT_CPU_WEIGHT as f64;
    if let Some(value) = get("limits.cpu.allowance") {
        match values::parse_allowance(value)
            .map_err(|e| Error::InvalidArgument(format!("config key limits.cpu.allowance: {e}")))?
        {
            Allowance::Share(percent) => weight = DEFAULT_CPU_WEIGHT as f64 * percent / 100.0,
            Allowance::Quota { quota_us, period_us } => limits.cpu_quota = Some((quota_us, period_us)),
        }
    }
    if let Some(value) = get("limits.cpu.priority") {
        let priority: f64 = keys::validate("limits.cpu.priority", value)?
            .parse()
            .expect("validated as an integer");
        weight *= (priority + 1.0) / 11.0;
    }
    limits.cpu_weight = (weight.round() as u64).clamp(1, 10_000);
    if let Some(value) = get("limits.memory") {
        let size =
            values::parse_size(value).map_err(|e| Error::InvalidArgument(format!("config key limits.memory: {e}")))?;
        let bytes = size.bytes(host.memory);
        if bytes < MIN_MEMORY {
            return Err(invalid("limits.memory", value, "is too small: at least 4MiB"));
        }
        limits.memory = Some(bytes);
    }
    limits.swap = keys::get_bool(config, "limits.memory.swap");
    if let Some(value) = get("limits.processes") {
        limits.processes = Some(
            keys::validate("limits.processes", value)?
                .parse()
                .expect("validated as an integer"),
        );
    }
    Ok(limits)
}

/// `count` of the host's CPUs, starting at a place that depends on the container's
/// name, so that containers asking for one CPU don't all get CPU 0.
fn spread(name: &str, count: usize, cpus: &BTreeSet<usize>) -> BTreeSet<usize> {
    let all: Vec<usize> = cpus.iter().copied().collect();
    let start = name
        .bytes()
        .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        % all.len();
    (0..count).map(|i| all[(start + i) % all.len()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            cpus: [0, 1, 2, 3].into(),
            memory: 8 << 30,
        }
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nothing_set_is_unlimited() {
        assert_eq!(resolve("c", &BTreeMap::new(), &host()).unwrap(), Limits::default());
    }

    #[test]
    fn every_key_lands_in_its_limit() {
        let limits = resolve(
            "c",
            &config(&[
                ("limits.cpu", "1-2"),
                ("limits.cpu.allowance", "25ms/100ms"),
                ("limits.memory", "50%"),
                ("limits.memory.swap", "false"),
                ("limits.processes", "64"),
            ]),
            &host(),
        )
        .unwrap();
        assert_eq!(limits.cpus.as_deref(), Some("1-2"));
        assert_eq!(limits.cpu_quota, Some((25_000, 100_000)));
        assert_eq!(limits.memory, Some(4 << 30));
        assert!(!limits.swap);
        assert_eq!(limits.processes, Some(64));
    }

    #[test]
    fn shares_and_priority_set_the_weight() {
        let weight = |pairs: &[(&str, &str)]| resolve("c", &config(pairs), &host()).unwrap().cpu_weight;
        assert_eq!(weight(&[]), 100);
        assert_eq!(weight(&[("limits.cpu.allowance", "50%")]), 50);
        assert_eq!(weight(&[("limits.cpu.priority", "0")]), 9);
        assert_eq!(
            weight(&[("limits.cpu.allowance", "200%"), ("limits.cpu.priority", "10")]),
            200
        );
    }

    #[test]
    fn a_cpu_count_is_pinned_and_spread_by_name() {
        let pinned = |name: &str| {
            resolve(name, &config(&[("limits.cpu", "2")]), &host())
                .unwrap()
                .cpus
                .unwrap()
        };
        assert_eq!(values::parse_cpu_list(&pinned("web1")).unwrap().len(), 2);
        let all: BTreeSet<String> = (0..20).map(|i| pinned(&format!("c{i}"))).collect();
        assert!(all.len() > 1, "every container got the same CPUs: {all:?}");
    }

    #[test]
    fn what_the_host_lacks_is_refused() {
        let err = resolve("c", &config(&[("limits.cpu", "2-5")]), &host())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "config key limits.cpu: \"2-5\" names CPUs this host lacks (4-5; it has 0-3)"
        );
        let err = resolve("c", &config(&[("limits.cpu", "8")]), &host())
            .unwrap_err()
            .to_string();
        assert!(err.contains("more CPUs than the host has (4)"), "{err}");
        let err = resolve("c", &config(&[("limits.memory", "1MiB")]), &host())
            .unwrap_err()
            .to_string();
        assert!(err.contains("too small"), "{err}");
    }
}
