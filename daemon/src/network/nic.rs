//! A container's nic device: its keys, its MAC, the names of its veth pair.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::NetworkError;

pub const TYPE: &str = "nic";
const KEYS: &[&str] = &["type", "network", "ipv4.address", "name"];

/// Incus's prefix for the MACs it makes up (locally administered).
const MAC_PREFIX: [u8; 3] = [0x10, 0x66, 0x6a];

/// A nic's keys, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub network: String,
    pub address: Option<Ipv4Addr>,
    /// The interface's name inside the container.
    pub name: String,
}

impl Nic {
    /// `device` is the device's name, the default name of the interface.
    pub fn parse(device: &str, config: &BTreeMap<String, String>) -> Result<Self, NetworkError> {
        let bad = |why: String| NetworkError::Invalid(format!("nic device {device}: {why}"));
        if let Some(key) = config.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(bad(format!(
                "unknown key {key} (nic devices take network, ipv4.address and name)"
            )));
        }
        let network = config
            .get("network")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("network=NAME is required".into()))?
            .clone();
        let address = config
            .get("ipv4.address")
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse::<Ipv4Addr>()
                    .map_err(|_| bad(format!("ipv4.address {a:?} is not an IPv4 address")))
            })
            .transpose()?;
        let name = config.get("name").cloned().unwrap_or_else(|| device.to_string());
        check_interface_name(&name).map_err(|why| bad(format!("interface name {name:?} {why}")))?;
        Ok(Self { network, address, name })
    }
}

/// The kernel's rules for interface names, minus what would confuse the container.
pub fn check_interface_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 15 {
        Err("must be 1 to 15 characters")
    } else if name == "lo" || name == "." || name == ".." {
        Err("is reserved")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        Err("may only contain letters, digits, '-', '_' and '.'")
    } else {
        Ok(())
    }
}

/// The config key holding a nic's MAC.
pub fn hwaddr_key(device: &str) -> String {
    format!("volatile.{device}.hwaddr")
}

pub fn random_mac() -> String {
    let tail: [u8; 3] = rand::random();
    format_mac(&[MAC_PREFIX[0], MAC_PREFIX[1], MAC_PREFIX[2], tail[0], tail[1], tail[2]])
}

pub fn format_mac(bytes: &[u8; 6]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(text: &str) -> Result<[u8; 6], NetworkError> {
    let bad = || {
        NetworkError::Invalid(format!(
            "MAC address {text:?} is not six hex bytes like 10:66:6a:01:02:03"
        ))
    };
    let bytes: Vec<u8> = text
        .split(':')
        .map(|part| (part.len() == 2).then(|| u8::from_str_radix(part, 16).ok()).flatten())
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    bytes.try_into().map_err(|_| bad())
}

/// The host end's name of a veth pair for one start: `vethXXXXXXXX`, in the bridge.
pub fn veth_name() -> String {
    let id: [u8; 4] = rand::random();
    format!("veth{}", hex::encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn nics_need_a_network_and_take_known_keys_only() {
        let nic = Nic::parse("eth0", &config(&[("type", "nic"), ("network", "sysc0")])).unwrap();
        assert_eq!(nic.name, "eth0");
        assert_eq!(nic.address, None);
        let error = Nic::parse("eth0", &config(&[("type", "nic")])).unwrap_err().to_string();
        assert!(error.contains("network=NAME is required"), "{error}");
        let error = Nic::parse("eth0", &config(&[("network", "a"), ("mtu", "9000")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown key mtu"), "{error}");
        let error = Nic::parse("eth0", &config(&[("network", "a"), ("ipv4.address", "10.0.0.300")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not an IPv4 address"), "{error}");
        let error = Nic::parse("x", &config(&[("network", "a"), ("name", "averyveryverylongname")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("1 to 15"), "{error}");
    }

    #[test]
    fn macs_round_trip_and_carry_the_prefix() {
        let mac = random_mac();
        assert!(mac.starts_with("10:66:6a:"), "{mac}");
        assert_eq!(format_mac(&parse_mac(&mac).unwrap()), mac);
        assert!(parse_mac("10:66:6a:01:02").is_err());
        assert!(parse_mac("10:66:6a:01:02:zz").is_err());
    }

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        let host = veth_name();
        assert!(host.starts_with("veth") && host.len() <= 15, "{host}");
        assert_ne!(host, veth_name());
    }
}
