//! The registry of container config keys: one table that drives validation, defaults
//! and the documentation. Key names follow Incus.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
}

#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    /// Whether a change takes effect on a running container.
    pub live: bool,
    pub description: &'static str,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "boot.autostart",
        kind: Kind::Bool,
        default: "false",
        live: true,
        description: "Start the container when syscd starts",
    },
    Key {
        name: "security.privileged",
        kind: Kind::Bool,
        default: "false",
        live: false,
        description: "Run without a user namespace: root inside is root on the host (set at create)",
    },
];

/// `environment.NAME`: an environment variable for every command run in the container.
pub const ENVIRONMENT_PREFIX: &str = "environment.";

/// Keys the daemon records for itself; users cannot set them.
pub const VOLATILE_PREFIX: &str = "volatile.";
pub const IDMAP_BASE: &str = "volatile.idmap.base";
pub const IDMAP_SIZE: &str = "volatile.idmap.size";

pub fn lookup(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Checks a key and value a user wants to set; the value is returned normalized.
pub fn validate(name: &str, value: &str) -> Result<String> {
    if name.starts_with(VOLATILE_PREFIX) {
        return Err(Error::InvalidArgument(format!(
            "config key {name} is set by the daemon and cannot be changed"
        )));
    }
    if let Some(variable) = name.strip_prefix(ENVIRONMENT_PREFIX) {
        return validate_environment(name, variable, value);
    }
    let Some(key) = lookup(name) else {
        let near = nearest(name);
        let hint = if near.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", near.join(" or "))
        };
        return Err(Error::InvalidArgument(format!("unknown config key {name}{hint}")));
    };
    match key.kind {
        Kind::Bool => parse_bool(value)
            .map(|b| b.to_string())
            .ok_or_else(|| Error::InvalidArgument(format!("config key {name}: {value:?} is not true or false"))),
    }
}

fn validate_environment(key: &str, variable: &str, value: &str) -> Result<String> {
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
pub fn get_bool(config: &std::collections::BTreeMap<String, String>, name: &str) -> bool {
    let default = lookup(name).map(|k| k.default).unwrap_or("false");
    parse_bool(config.get(name).map(String::as_str).unwrap_or(default)).unwrap_or(false)
}

/// The registered keys closest to a misspelt one.
fn nearest(name: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = KEYS.iter().map(|k| (distance(name, k.name), k.name)).collect();
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
        let err = validate("nothing.like.it", "1").unwrap_err().to_string();
        assert_eq!(err, "unknown config key nothing.like.it");
    }

    #[test]
    fn bool_values_are_checked_and_normalized() {
        assert_eq!(validate("boot.autostart", "yes").unwrap(), "true");
        assert_eq!(validate("security.privileged", "0").unwrap(), "false");
        let err = validate("boot.autostart", "maybe").unwrap_err().to_string();
        assert_eq!(err, "config key boot.autostart: \"maybe\" is not true or false");
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
    fn volatile_keys_are_refused() {
        assert!(validate(IDMAP_BASE, "5").is_err());
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }
}
