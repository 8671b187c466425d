//! Capability names and the bounding set a container's processes get.
//!
//! The default follows LXC and Incus: every capability except the five below, which
//! touch the whole host (or, for SYS_MODULE and SYS_RAWIO, make systemd try modprobe
//! and debugfs and end `degraded`). `security.capabilities.drop` removes more;
//! `security.capabilities.keep` names the only ones kept.

use std::collections::BTreeSet;

use nix::errno::Errno;

use super::{Result, SecurityError, split_list};

/// capabilities(7), by number.
const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Dropped from every container, whatever its keys say.
pub const ALWAYS_DROPPED: [&str; 5] = ["sys_module", "sys_rawio", "sys_time", "mac_override", "mac_admin"];

/// The number of a capability named as in capabilities(7), with or without `CAP_`, in
/// any case.
pub fn number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|n| *n == bare).map(|n| n as u32)
}

pub fn name(number: u32) -> &'static str {
    NAMES.get(number as usize).copied().unwrap_or("unknown")
}

/// The capabilities a list key names, each checked.
pub fn parse_list(value: &str) -> std::result::Result<BTreeSet<u32>, String> {
    split_list(value)
        .map(|item| number(item).ok_or_else(|| format!("{item:?} is not a capability")))
        .collect()
}

/// The capabilities to drop from the bounding set, from the `drop` and `keep` keys'
/// values (either may be empty, not both set).
pub fn to_drop(drop: &str, keep: &str) -> Result<BTreeSet<u32>> {
    let always: BTreeSet<u32> = ALWAYS_DROPPED.iter().filter_map(|n| number(n)).collect();
    let drop = parse_list(drop).map_err(SecurityError::Invalid)?;
    let keep = parse_list(keep).map_err(SecurityError::Invalid)?;
    if !drop.is_empty() && !keep.is_empty() {
        return Err(SecurityError::Invalid(
            "security.capabilities.drop and security.capabilities.keep cannot both be set".into(),
        ));
    }
    if let Some(forbidden) = keep.intersection(&always).next() {
        return Err(SecurityError::Invalid(format!(
            "security.capabilities.keep: {} is always dropped",
            name(*forbidden)
        )));
    }
    if keep.is_empty() {
        return Ok(always.union(&drop).copied().collect());
    }
    Ok((0..NAMES.len() as u32).filter(|n| !keep.contains(n)).collect())
}

/// Drops `caps` from the calling thread's bounding set. Capabilities the running
/// kernel does not know are skipped.
pub fn drop_bounding(caps: &BTreeSet<u32>) -> Result<()> {
    for &cap in caps {
        // SAFETY: prctl(2) with integer arguments.
        match Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }) {
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(source) => {
                return Err(SecurityError::Sys {
                    what: format!("drop capability {} from the bounding set", name(cap)),
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_with_or_without_the_prefix() {
        assert_eq!(number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(number("net_raw"), Some(13));
        assert_eq!(number("checkpoint_restore"), Some(40));
        assert_eq!(number("sys_admn"), None);
    }

    #[test]
    fn the_default_drops_the_host_wide_five() {
        let names: Vec<_> = to_drop("", "").unwrap().into_iter().map(name).collect();
        assert_eq!(
            names,
            ["sys_module", "sys_rawio", "sys_time", "mac_override", "mac_admin"]
        );
    }

    #[test]
    fn drop_adds_and_keep_replaces() {
        assert!(to_drop("net_raw, sys_ptrace", "").unwrap().contains(&13));
        let dropped = to_drop("", "chown setuid setgid").unwrap();
        assert_eq!(dropped.len(), NAMES.len() - 3);
        assert!(!dropped.contains(&0) && dropped.contains(&21));
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!(
            to_drop("net_raw", "chown")
                .unwrap_err()
                .to_string()
                .contains("cannot both be set")
        );
        assert!(
            to_drop("", "sys_module")
                .unwrap_err()
                .to_string()
                .contains("sys_module is always dropped")
        );
        assert_eq!(
            parse_list("chown, nosuch").unwrap_err(),
            "\"nosuch\" is not a capability"
        );
    }
}
