//! The registry of container config keys: one table that drives validation, defaults,
//! `sysc config keys` and the README's table. Names and meanings follow Incus.

pub mod values;

use std::collections::BTreeMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// An integer in a range.
    Integer {
        min: i64,
        max: i64,
    },
    /// Bytes with a unit, or a percentage of the host's memory.
    Size,
    /// A count of CPUs or a CPU set.
    Cpus,
    /// A soft share ("50%") or a hard quota ("25ms/100ms").
    Allowance,
    String,
    /// Cron expressions or @daily-style aliases, separated by ", ".
    Schedule,
    /// A duration as Incus writes it: "7d", "1w 2d", "30M".
    Expiry,
    /// A snapshot name pattern with one %d.
    Pattern,
    /// Capability names, separated by commas or spaces.
    Capabilities,
    /// System call names, separated by commas or spaces.
    Syscalls,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Integer { .. } => "integer",
            Kind::Size => "size",
            Kind::Cpus => "cpus",
            Kind::Allowance => "allowance",
            Kind::String => "string",
            Kind::Schedule => "schedule",
            Kind::Expiry => "expiry",
            Kind::Pattern => "pattern",
            Kind::Capabilities => "capabilities",
            Kind::Syscalls => "syscalls",
        }
    }
}

#[derive(Debug)]
pub struct Key {
    /// The name; for a prefix key (environment.NAME), the prefix including its dot.
    pub name: &'static str,
    pub kind: Kind,
    /// Empty: none (unlimited, or not set).
    pub default: &'static str,
    /// Whether a change takes effect on a running container at once.
    pub live: bool,
    /// Only settable when the container is created.
    pub create_only: bool,
    pub description: &'static str,
}

impl Key {
    pub fn is_prefix(&self) -> bool {
        self.name.ends_with('.')
    }

    /// Whether a key name is this key: equal, below a prefix key, or a named-schedule
    /// key (snapshots.NAME.schedule) with a valid NAME in place.
    fn matches(&self, name: &str) -> bool {
        if self.is_prefix() {
            return name.starts_with(self.name) && name.len() > self.name.len();
        }
        match self.name.split_once(SCHEDULE_NAME) {
            Some((before, after)) => name
                .strip_prefix(before)
                .and_then(|rest| rest.strip_suffix(after))
                .is_some_and(is_schedule_name),
            None => self.name == name,
        }
    }

    /// How the key is listed: "environment.NAME" for a prefix.
    pub fn display_name(&self) -> String {
        if self.is_prefix() {
            format!("{}NAME", self.name)
        } else {
            self.name.to_string()
        }
    }
}

pub const KEYS: &[Key] = &[
    Key {
        name: "boot.autostart",
        kind: Kind::Bool,
        default: "false",
        live: true,
        create_only: false,
        description: "Start the container when syscd starts",
    },
    Key {
        name: "environment.",
        kind: Kind::String,
        default: "",
        live: true,
        create_only: false,
        description: "An environment variable for every command exec and shell run in the container",
    },
    Key {
        name: "limits.cpu",
        kind: Kind::Cpus,
        default: "",
        live: true,
        create_only: false,
        description: "CPUs the container may run on: a count (that many CPUs, pinned; spread over the host by name) or a set like 0-1,3 (1-1 for CPU 1 alone)",
    },
    Key {
        name: "limits.cpu.allowance",
        kind: Kind::Allowance,
        default: "100%",
        live: true,
        create_only: false,
        description: "CPU time: 50% is a soft share relative to other containers (when CPUs are contended); 25ms/100ms is a hard quota of 25 ms per 100 ms",
    },
    Key {
        name: "limits.cpu.priority",
        kind: Kind::Integer { min: 0, max: 10 },
        default: "10",
        live: true,
        create_only: false,
        description: "Weight when CPUs are contended, 0 (least) to 10 (most): scales the share by (priority + 1) / 11",
    },
    Key {
        name: "limits.memory",
        kind: Kind::Size,
        default: "",
        live: true,
        create_only: false,
        description: "Memory limit: bytes with a unit (256MiB, 1GB) or a percentage of the host's memory; past it the kernel reclaims, then OOM-kills inside the container. Lowering it below the current use is refused",
    },
    Key {
        name: "limits.memory.swap",
        kind: Kind::Bool,
        default: "true",
        live: true,
        create_only: false,
        description: "Whether the container's memory may be swapped out; false caps memory plus swap at limits.memory",
    },
    Key {
        name: "limits.processes",
        kind: Kind::Integer { min: 1, max: 4_194_304 },
        default: "",
        live: true,
        create_only: false,
        description: "Maximum number of processes (and threads) in the container",
    },
    Key {
        name: "snapshots.schedule",
        kind: Kind::Schedule,
        default: "",
        live: true,
        create_only: false,
        description: "When to take snapshots: 5-field cron or @hourly, @daily, @weekly, @monthly (at a minute, hour and day derived from the container's name, so a fleet does not snapshot at once); several separated by \", \"",
    },
    Key {
        name: "snapshots.schedule.stopped",
        kind: Kind::Bool,
        default: "false",
        live: true,
        create_only: false,
        description: "Whether snapshots.schedule also snapshots the container while it is stopped",
    },
    Key {
        name: "snapshots.pattern",
        kind: Kind::Pattern,
        default: "snap%d",
        live: true,
        create_only: false,
        description: "Names of scheduled snapshots and of manual ones taken without a name; %d is the next number",
    },
    Key {
        name: "snapshots.expiry",
        kind: Kind::Expiry,
        default: "",
        live: true,
        create_only: false,
        description: "How long snapshots from snapshots.schedule are kept (and manual ones, unless snapshots.expiry.manual is set): terms of a number and M (minutes), H (hours), d, w, m (months) or y, e.g. 7d or 1w 2d",
    },
    Key {
        name: "snapshots.expiry.manual",
        kind: Kind::Expiry,
        default: "",
        live: true,
        create_only: false,
        description: "How long manual snapshots are kept when `snapshot create` gives no --expiry",
    },
    Key {
        name: "snapshots.NAME.schedule",
        kind: Kind::Schedule,
        default: "",
        live: true,
        create_only: false,
        description: "A named schedule beside snapshots.schedule, with its own retention: e.g. snapshots.hourly.schedule=@hourly with snapshots.hourly.expiry=1d, snapshots.daily.schedule=@daily with snapshots.daily.expiry=7d",
    },
    Key {
        name: "snapshots.NAME.expiry",
        kind: Kind::Expiry,
        default: "",
        live: true,
        create_only: false,
        description: "How long the snapshots of schedule NAME are kept (empty: until deleted)",
    },
    Key {
        name: "snapshots.NAME.pattern",
        kind: Kind::Pattern,
        default: "NAME-%d",
        live: true,
        create_only: false,
        description: "Names of the snapshots of schedule NAME",
    },
    Key {
        name: "snapshots.NAME.stopped",
        kind: Kind::Bool,
        default: "false",
        live: true,
        create_only: false,
        description: "Whether schedule NAME also snapshots the container while it is stopped",
    },
    Key {
        name: "security.capabilities.drop",
        kind: Kind::Capabilities,
        default: "",
        live: false,
        create_only: false,
        description: "Capabilities dropped from the bounding set besides the default five (sys_module, sys_rawio, sys_time, mac_override, mac_admin), as named in capabilities(7), separated by commas or spaces. From the next start",
    },
    Key {
        name: "security.capabilities.keep",
        kind: Kind::Capabilities,
        default: "",
        live: false,
        create_only: false,
        description: "If set, the only capabilities kept in the bounding set (the default five are dropped all the same); not together with security.capabilities.drop. From the next start",
    },
    Key {
        name: "security.idmap.base",
        kind: Kind::Integer {
            min: 65536,
            max: 4294901759,
        },
        default: "",
        live: false,
        create_only: true,
        description: "The first host id of the container's private range instead of the next free one; a range that overlaps another container's is refused. Only at create",
    },
    Key {
        name: "security.idmap.size",
        kind: Kind::Integer {
            min: 65536,
            max: 1073741824,
        },
        default: "65536",
        live: false,
        create_only: true,
        description: "How many ids the container's range maps (container ids 0 to size-1). Only at create",
    },
    Key {
        name: "security.nesting",
        kind: Kind::Bool,
        default: "false",
        live: false,
        create_only: false,
        description: "Allow what running containers inside needs: creating user namespaces (and clone3), and an unmasked procfs and sysfs at /dev/.sysc/proc and /dev/.sysc/sys, without which the kernel refuses a nested runtime's own proc and sysfs mounts. From the next start",
    },
    Key {
        name: "security.privileged",
        kind: Kind::Bool,
        default: "false",
        live: false,
        create_only: true,
        description: "Run without a user namespace: root inside is root on the host. Only at create",
    },
    Key {
        name: "security.syscalls.allow",
        kind: Kind::Syscalls,
        default: "",
        live: false,
        create_only: false,
        description: "System calls taken off the default deny list, separated by commas or spaces. From the next start",
    },
    Key {
        name: "security.syscalls.deny",
        kind: Kind::Syscalls,
        default: "",
        live: false,
        create_only: false,
        description: "System calls denied (EPERM) besides the default deny list, separated by commas or spaces. From the next start",
    },
];

/// Keys the daemon records for itself; users cannot set them.
pub const VOLATILE_PREFIX: &str = "volatile.";
pub const IDMAP_BASE: &str = "volatile.idmap.base";
pub const IDMAP_SIZE: &str = "volatile.idmap.size";
pub const ENVIRONMENT_PREFIX: &str = "environment.";
/// Stands for a schedule's name in the names of named-schedule keys.
const SCHEDULE_NAME: &str = "NAME";
/// Words that are keys of their own below snapshots., so no schedule can be named so.
const RESERVED_SCHEDULE_NAMES: &[&str] = &["schedule", "expiry", "pattern", "default"];

/// A named schedule: 1 to 32 lower-case letters, digits and '-', starting with a letter.
pub fn is_schedule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !RESERVED_SCHEDULE_NAMES.contains(&name)
}

/// The registry entry for a key name (prefix keys match any name below them).
pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter()
        .find(|k| k.name == name)
        .or_else(|| KEYS.iter().find(|k| k.matches(name)))
}

/// Checks a key a user names (to set or unset): known, and not the daemon's own.
pub fn check_name(name: &str) -> Result<&'static Key> {
    if name.starts_with(VOLATILE_PREFIX) {
        return Err(Error::InvalidArgument(format!(
            "config key {name} is set by the daemon and cannot be changed"
        )));
    }
    lookup(name).ok_or_else(|| {
        let near = nearest(name);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(" or "))
        };
        Error::InvalidArgument(format!("unknown config key {name}{hint}"))
    })
}

/// Checks a key and value a user wants to set; the value is returned normalized.
pub fn validate(name: &str, value: &str) -> Result<String> {
    let key = check_name(name)?;
    let bad = |problem: String| Error::InvalidArgument(format!("config key {name}: {problem}"));
    match key.kind {
        Kind::Bool => parse_bool(value)
            .map(|b| b.to_string())
            .ok_or_else(|| bad(format!("{value:?} is not true or false"))),
        Kind::Integer { min, max } => match value.trim().parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
            _ => Err(bad(format!("{value:?} is not an integer from {min} to {max}"))),
        },
        Kind::Size => values::parse_size(value).map(|_| value.trim().to_string()).map_err(bad),
        Kind::Cpus => values::parse_cpus(value).map(|_| value.trim().to_string()).map_err(bad),
        Kind::Allowance => values::parse_allowance(value)
            .map(|_| value.trim().to_string())
            .map_err(bad),
        Kind::String if key.name == ENVIRONMENT_PREFIX => validate_environment(name, value),
        Kind::String => Ok(value.to_string()),
        Kind::Schedule if value.trim().is_empty() => Ok(String::new()),
        Kind::Schedule => crate::schedule::Schedule::parse(value.trim(), "check")
            .map(|_| value.trim().to_string())
            .map_err(|e| bad(e.to_string())),
        Kind::Expiry if value.trim().is_empty() => Ok(String::new()),
        Kind::Expiry => crate::schedule::Expiry::parse(value.trim())
            .map(|_| value.trim().to_string())
            .map_err(|e| bad(e.to_string())),
        Kind::Capabilities => crate::security::capabilities::parse_list(value)
            .map(|_| normalize_list(value))
            .map_err(bad),
        Kind::Syscalls => crate::security::seccomp::check_names(value)
            .map(|_| normalize_list(value))
            .map_err(bad),
        Kind::Pattern => crate::schedule::validate_pattern(value.trim())
            .map(|_| value.trim().to_string())
            .map_err(|e| bad(e.to_string())),
    }
}

/// A list key's value as stored: its items, lower case, joined by ", ".
fn normalize_list(value: &str) -> String {
    crate::security::split_list(value)
        .map(|item| item.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

fn validate_environment(key: &str, value: &str) -> Result<String> {
    let variable = &key[ENVIRONMENT_PREFIX.len()..];
    let valid_name = variable.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && variable.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(Error::InvalidArgument(format!(
            "config key {key}: {variable:?} is not an environment variable name"
        )));
    }
    if value.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "config key {key}: the value contains a NUL byte"
        )));
    }
    Ok(value.to_string())
}

pub fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// A boolean key's value in a config map, or its default.
pub fn get_bool(config: &BTreeMap<String, String>, name: &str) -> bool {
    let default = lookup(name).map(|k| k.default).unwrap_or("false");
    parse_bool(config.get(name).map(String::as_str).unwrap_or(default)).unwrap_or(false)
}

/// The registered keys closest to a misspelt one.
fn nearest(name: &str) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = KEYS
        .iter()
        .map(|k| {
            let candidate = k.display_name();
            (distance(name, &candidate), candidate)
        })
        .collect();
    scored.sort();
    let best = scored.first().map(|s| s.0).unwrap_or(usize::MAX);
    let limit = (name.len() / 3).max(2);
    scored
        .into_iter()
        .filter(|(d, _)| *d == best && *d <= limit)
        .map(|(_, k)| k)
        .collect()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            prev = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_the_nearest() {
        let err = validate("security.privilegd", "true").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown config key security.privilegd (did you mean security.privileged?)"
        );
        let err = validate("limits.memroy", "1GB").unwrap_err().to_string();
        assert_eq!(err, "unknown config key limits.memroy (did you mean limits.memory?)");
        let err = validate("nothing.like.it", "1").unwrap_err().to_string();
        assert_eq!(err, "unknown config key nothing.like.it");
    }

    #[test]
    fn values_are_checked_and_normalized() {
        assert_eq!(validate("boot.autostart", "yes").unwrap(), "true");
        assert_eq!(validate("security.privileged", "0").unwrap(), "false");
        assert_eq!(validate("limits.processes", " 50 ").unwrap(), "50");
        assert_eq!(validate("limits.memory", "256MiB").unwrap(), "256MiB");
        let err = validate("boot.autostart", "maybe").unwrap_err().to_string();
        assert_eq!(err, "config key boot.autostart: \"maybe\" is not true or false");
        let err = validate("limits.memory", "lots").unwrap_err().to_string();
        assert!(
            err.starts_with("config key limits.memory: \"lots\" is not a size"),
            "{err}"
        );
        for (key, bad) in [
            ("limits.processes", "0"),
            ("limits.processes", "-5"),
            ("limits.cpu.priority", "11"),
            ("limits.cpu", "0"),
            ("limits.cpu.allowance", "0%"),
            ("limits.memory", "-1GB"),
        ] {
            assert!(validate(key, bad).is_err(), "{key}={bad}");
        }
    }

    #[test]
    fn environment_keys_take_any_value_under_a_variable_name() {
        assert_eq!(validate("environment.EDITOR", "vim -u NONE").unwrap(), "vim -u NONE");
        assert_eq!(validate("environment._X1", "").unwrap(), "");
        for bad in ["environment.", "environment.1X", "environment.A-B", "environment.A=B"] {
            assert!(validate(bad, "v").is_err(), "{bad}");
        }
    }

    #[test]
    fn named_schedule_keys_take_a_name_in_the_middle() {
        assert_eq!(
            lookup("snapshots.hourly.schedule").unwrap().name,
            "snapshots.NAME.schedule"
        );
        assert_eq!(
            lookup("snapshots.daily-2.expiry").unwrap().name,
            "snapshots.NAME.expiry"
        );
        assert_eq!(
            lookup("snapshots.schedule.stopped").unwrap().name,
            "snapshots.schedule.stopped"
        );
        assert_eq!(
            lookup("snapshots.expiry.manual").unwrap().name,
            "snapshots.expiry.manual"
        );
        for bad in [
            "snapshots.Hourly.schedule",
            "snapshots..schedule",
            "snapshots.default.schedule",
            "snapshots.a.b.schedule",
        ] {
            assert!(lookup(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn volatile_keys_are_refused() {
        assert!(validate(IDMAP_BASE, "5").is_err());
        assert!(check_name(IDMAP_BASE).is_err());
    }

    #[test]
    fn every_key_has_a_valid_default() {
        for key in KEYS.iter().filter(|k| !k.default.is_empty() && !k.is_prefix()) {
            validate(key.name, key.default).unwrap_or_else(|e| panic!("{}: {e}", key.name));
        }
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
