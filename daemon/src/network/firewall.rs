//! The nftables table a network owns (`ip sysc-NAME`): masquerade for its subnet, and
//! accept rules so a host firewall's drop policy elsewhere does not starve its DHCP,
//! DNS and forwarding. Loaded with `nft -f -`, so each change is one transaction.

use std::io::Write;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use super::NetworkError;

pub fn table_name(network: &str) -> String {
    format!("sysc-{network}")
}

/// The whole table, replacing any previous version of it in the same transaction.
pub fn ruleset(network: &str, subnet: Ipv4Net, nat: bool) -> String {
    let table = table_name(network);
    let mut lines = vec![
        format!("table ip {table} {{}}"),
        format!("delete table ip {table}"),
        format!("table ip {table} {{"),
        "  chain postrouting {".into(),
        "    type nat hook postrouting priority srcnat; policy accept;".into(),
    ];
    if nat {
        lines.push(format!("    ip saddr {subnet} ip daddr != {subnet} masquerade"));
    }
    lines.extend([
        "  }".into(),
        "  chain forward {".into(),
        "    type filter hook forward priority filter; policy accept;".into(),
        format!("    iifname \"{network}\" accept"),
        format!("    oifname \"{network}\" accept"),
        "  }".into(),
        "  chain input {".into(),
        "    type filter hook input priority filter; policy accept;".into(),
        format!("    iifname \"{network}\" udp dport {{ 53, 67 }} accept"),
        format!("    iifname \"{network}\" tcp dport 53 accept"),
        "  }".into(),
        "}".into(),
    ]);
    lines.join("\n") + "\n"
}

pub fn apply(network: &str, subnet: Ipv4Net, nat: bool) -> Result<(), NetworkError> {
    nft(
        &ruleset(network, subnet, nat),
        &format!("load nftables table {}", table_name(network)),
    )
}

/// Removes the table; no table is not an error.
pub fn remove(network: &str) -> Result<(), NetworkError> {
    let table = table_name(network);
    nft(
        &format!("table ip {table} {{}}\ndelete table ip {table}\n"),
        &format!("delete nftables table {table}"),
    )
}

fn nft(script: &str, what: &str) -> Result<(), NetworkError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetworkError::Host(format!("{what}: run nft: {e} (apt-get install nftables)")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetworkError::Host(format!("{what}: write to nft: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| NetworkError::Host(format!("{what}: wait for nft: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Host(format!(
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ruleset_replaces_the_table_and_masquerades_only_leaving_traffic() {
        let rules = ruleset("br7", "10.7.0.0/24".parse().unwrap(), true);
        assert!(
            rules.starts_with("table ip sysc-br7 {}\ndelete table ip sysc-br7\n"),
            "{rules}"
        );
        assert!(
            rules.contains("ip saddr 10.7.0.0/24 ip daddr != 10.7.0.0/24 masquerade"),
            "{rules}"
        );
        assert!(rules.contains("iifname \"br7\" udp dport { 53, 67 } accept"), "{rules}");
        let without_nat = ruleset("br7", "10.7.0.0/24".parse().unwrap(), false);
        assert!(!without_nat.contains("masquerade"), "{without_nat}");
    }
}
