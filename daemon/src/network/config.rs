//! A network's config keys (Incus's names) and the checks on a new network's name.

use std::collections::BTreeMap;

use super::NetworkError;
use super::subnet::Gateway;

pub const IPV4_ADDRESS: &str = "ipv4.address";
pub const IPV4_NAT: &str = "ipv4.nat";
pub const DNS_DOMAIN: &str = "dns.domain";
const KEYS: &[&str] = &[IPV4_ADDRESS, IPV4_NAT, DNS_DOMAIN];
pub const DEFAULT_DOMAIN: &str = "sysc";

/// A network's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub gateway: Gateway,
    pub nat: bool,
    pub domain: String,
}

impl Settings {
    /// From a stored config, whose ipv4.address is concrete.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self, NetworkError> {
        let address = config.get(IPV4_ADDRESS).map(String::as_str).unwrap_or_default();
        Ok(Self {
            gateway: Gateway::parse(address)?,
            nat: parse_nat(config)?,
            domain: config
                .get(DNS_DOMAIN)
                .cloned()
                .unwrap_or_else(|| DEFAULT_DOMAIN.to_string()),
        })
    }
}

/// Checks a requested config. ipv4.address may be missing or "auto": the caller picks.
pub fn check_requested(config: &BTreeMap<String, String>) -> Result<(), NetworkError> {
    if let Some(key) = config.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(NetworkError::Invalid(format!(
            "unknown network config key {key} (known: {})",
            KEYS.join(", ")
        )));
    }
    if let Some(address) = config.get(IPV4_ADDRESS).filter(|a| !is_auto(a)) {
        Gateway::parse(address)?;
    }
    parse_nat(config)?;
    if let Some(domain) = config.get(DNS_DOMAIN) {
        check_domain(domain)?;
    }
    Ok(())
}

pub fn is_auto(address: &str) -> bool {
    address.is_empty() || address == "auto"
}

fn parse_nat(config: &BTreeMap<String, String>) -> Result<bool, NetworkError> {
    match config.get(IPV4_NAT).map(String::as_str) {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(NetworkError::Invalid(format!(
            "{IPV4_NAT} {other:?}: expected true or false"
        ))),
    }
}

fn check_domain(domain: &str) -> Result<(), NetworkError> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if domain.len() > 253 || !domain.split('.').all(label_ok) {
        return Err(NetworkError::Invalid(format!(
            "{DNS_DOMAIN} {domain:?}: expected a DNS domain such as sysc or lab.example"
        )));
    }
    Ok(())
}

/// A network's name is its bridge's name and part of its nftables table's name: 1 to 15
/// lower-case letters, digits, '-' and '_', starting with a letter.
pub fn check_name(name: &str) -> Result<(), NetworkError> {
    let problem = if name.is_empty() || name.len() > 15 {
        Some("must be 1 to 15 characters (it names the bridge)")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lower-case letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        Some("may only contain lower-case letters, digits, '-' and '_'")
    } else if name == "none" {
        Some("\"none\" means no network")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(NetworkError::Invalid(format!(
            "invalid network name {name:?}: {problem}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn requested_configs_are_checked_key_by_key() {
        check_requested(&config(&[("ipv4.address", "auto"), ("dns.domain", "lab.example")])).unwrap();
        for (pairs, expected) in [
            (
                vec![("ipv6.address", "none")],
                "unknown network config key ipv6.address",
            ),
            (vec![("ipv4.address", "10.1.2.0/24")], "ipv4.address"),
            (vec![("ipv4.nat", "yes")], "ipv4.nat"),
            (vec![("dns.domain", "bad_domain")], "dns.domain"),
        ] {
            let error = check_requested(&config(&pairs)).unwrap_err().to_string();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn stored_configs_default_nat_and_domain() {
        let settings = Settings::from_config(&config(&[("ipv4.address", "10.9.0.1/24")])).unwrap();
        assert!(settings.nat);
        assert_eq!(settings.domain, "sysc");
    }

    #[test]
    fn names_fit_a_bridge() {
        check_name("sysc0").unwrap();
        check_name("lab_net-2").unwrap();
        for bad in ["", "Br0", "0br", "a-very-long-bridge", "br 0", "none"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
