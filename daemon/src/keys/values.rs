//! Parsers for config values: sizes, CPU sets, CPU allowances. Each returns a clear
//! message (without the key's name, which the caller adds) for a bad value.

use std::collections::BTreeSet;

/// A memory size: bytes with an optional unit (kB, MB, GB, TB, PB, EB in powers of 1000;
/// KiB, MiB, GiB, TiB, PiB, EiB in powers of 1024; B), or a percentage of `total`.
pub fn parse_size(value: &str) -> Result<Size, String> {
    let value = value.trim();
    if let Some(percent) = value.strip_suffix('%') {
        let percent: f64 = percent
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not a size (like 256MiB, 1GB or 50%)"))?;
        if !(percent > 0.0 && percent <= 100.0) {
            return Err(format!("{value:?}: a percentage must be above 0 and at most 100"));
        }
        return Ok(Size::Percent(percent));
    }
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a size (like 256MiB, 1GB or 50%)"))?;
    let multiplier: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "PB" => 1e15,
        "EB" => 1e18,
        "KiB" => 1024.0,
        "MiB" => 1024f64.powi(2),
        "GiB" => 1024f64.powi(3),
        "TiB" => 1024f64.powi(4),
        "PiB" => 1024f64.powi(5),
        "EiB" => 1024f64.powi(6),
        other => {
            return Err(format!(
                "{value:?}: unknown unit {other:?} (use kB, MB, GB or KiB, MiB, GiB)"
            ));
        }
    };
    let bytes = number * multiplier;
    if bytes > u64::MAX as f64 {
        return Err(format!("{value:?} is too large (at most 16EiB)"));
    }
    // NaN fails the comparison too.
    if bytes.is_nan() || bytes < 1.0 {
        return Err(format!("{value:?} must be a positive size"));
    }
    Ok(Size::Bytes(bytes as u64))
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Bytes(u64),
    Percent(f64),
}

impl Size {
    pub fn bytes(self, total: u64) -> u64 {
        match self {
            Size::Bytes(bytes) => bytes,
            Size::Percent(percent) => (total as f64 * percent / 100.0) as u64,
        }
    }
}

/// limits.cpu: a number of CPUs, or a set like "0-1,3" (a single CPU by number is
/// "1-1", as in Incus: a bare number is a count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cpus {
    Count(usize),
    Set(BTreeSet<usize>),
}

pub fn parse_cpus(value: &str) -> Result<Cpus, String> {
    let value = value.trim();
    if let Ok(count) = value.parse::<i64>() {
        if count < 1 {
            return Err(format!("{value:?}: the number of CPUs must be at least 1"));
        }
        return Ok(Cpus::Count(count as usize));
    }
    parse_cpu_list(value)
        .map(Cpus::Set)
        .ok_or_else(|| format!("{value:?} is not a CPU count or set (like 2, or 0-1,3)"))
}

/// A kernel CPU list ("0-3,5"), as in cpuset.cpus; None if it isn't one.
pub fn parse_cpu_list(value: &str) -> Option<BTreeSet<usize>> {
    let mut cpus = BTreeSet::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last): (usize, usize) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if first > last || last > 4096 {
            return None;
        }
        cpus.extend(first..=last);
    }
    (!cpus.is_empty()).then_some(cpus)
}

/// The kernel's way of writing a CPU set: "0-1,3".
pub fn format_cpu_list(cpus: &BTreeSet<usize>) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for &cpu in cpus {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == cpu => *last = cpu,
            _ => ranges.push((cpu, cpu)),
        }
    }
    ranges
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect::<Vec<_>>()
        .join(",")
}

/// limits.cpu.allowance: "50%" (a soft share, relative to other containers) or
/// "25ms/100ms" (a hard quota: that much CPU time per period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Allowance {
    Share(f64),
    Quota { quota_us: u64, period_us: u64 },
}

pub fn parse_allowance(value: &str) -> Result<Allowance, String> {
    let value = value.trim();
    if let Some(percent) = value.strip_suffix('%') {
        let percent: f64 = percent
            .trim()
            .parse()
            .map_err(|_| format!("{value:?} is not an allowance (like 50% or 25ms/100ms)"))?;
        if !(percent > 0.0 && percent <= 10000.0) {
            return Err(format!("{value:?}: a share must be above 0%"));
        }
        return Ok(Allowance::Share(percent));
    }
    let Some((quota, period)) = value.split_once('/') else {
        return Err(format!("{value:?} is not an allowance (like 50% or 25ms/100ms)"));
    };
    let quota_us = parse_ms(quota).ok_or_else(|| format!("{value:?}: {quota:?} is not a duration in ms"))?;
    let period_us = parse_ms(period).ok_or_else(|| format!("{value:?}: {period:?} is not a duration in ms"))?;
    if !(1000..=1_000_000).contains(&period_us) {
        return Err(format!("{value:?}: the period must be between 1ms and 1000ms"));
    }
    if quota_us < 1000 {
        return Err(format!("{value:?}: the quota must be at least 1ms"));
    }
    Ok(Allowance::Quota { quota_us, period_us })
}

fn parse_ms(text: &str) -> Option<u64> {
    let ms: f64 = text.trim().strip_suffix("ms")?.trim().parse().ok()?;
    (ms > 0.0 && ms < 1e9).then_some((ms * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Ok(Size::Bytes(256 << 20)));
        assert_eq!(parse_size("1GB"), Ok(Size::Bytes(1_000_000_000)));
        assert_eq!(parse_size("1.5GiB"), Ok(Size::Bytes(3 << 29)));
        assert_eq!(parse_size("4096"), Ok(Size::Bytes(4096)));
        assert_eq!(parse_size("50%").unwrap().bytes(1000), 500);
        for bad in ["lots", "", "-5MiB", "0", "0MiB", "10XB", "150%", "0%", "MiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_size("99999999999999999999GB"),
            Err("\"99999999999999999999GB\" is too large (at most 16EiB)".to_string())
        );
        assert_eq!(parse_size("0MiB"), Err("\"0MiB\" must be a positive size".to_string()));
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("2"), Ok(Cpus::Count(2)));
        assert_eq!(parse_cpus("0-1,3"), Ok(Cpus::Set([0, 1, 3].into())));
        assert_eq!(parse_cpus("1-1"), Ok(Cpus::Set([1].into())));
        for bad in ["0", "-1", "a", "3-1", "0-", ",", "1-99999"] {
            assert!(parse_cpus(bad).is_err(), "{bad}");
        }
        assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8].into()), "0-2,5,7-8");
        assert_eq!(parse_cpu_list("0-2,5,7-8").unwrap(), [0, 1, 2, 5, 7, 8].into());
    }

    #[test]
    fn allowances() {
        assert_eq!(parse_allowance("50%"), Ok(Allowance::Share(50.0)));
        assert_eq!(
            parse_allowance("25ms/100ms"),
            Ok(Allowance::Quota {
                quota_us: 25_000,
                period_us: 100_000
            })
        );
        for bad in [
            "fast",
            "0%",
            "-5%",
            "25ms",
            "25/100",
            "0ms/100ms",
            "25ms/0ms",
            "25ms/2000ms",
        ] {
            assert!(parse_allowance(bad).is_err(), "{bad}");
        }
    }
}
