//! A container's security settings, resolved from its config keys once, and handed to
//! whatever starts a process in it (the monitor for the init, the exec helper).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Result, capabilities, seccomp, split_list};
use crate::keys;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityPolicy {
    /// Capability numbers removed from the bounding set.
    pub dropped_capabilities: BTreeSet<u32>,
    /// System calls that fail with EPERM.
    pub denied_syscalls: BTreeSet<String>,
    /// security.nesting: user namespaces may be created.
    pub nesting: bool,
}

impl SecurityPolicy {
    /// The policy a container's keys describe; an error names the key that is wrong.
    pub fn from_config(config: &BTreeMap<String, String>) -> Result<Self> {
        let key = |name: &str| config.get(name).map(String::as_str).unwrap_or("");
        let dropped_capabilities =
            capabilities::to_drop(key("security.capabilities.drop"), key("security.capabilities.keep"))?;
        for list in ["security.syscalls.allow", "security.syscalls.deny"] {
            seccomp::check_names(key(list)).map_err(|e| super::SecurityError::Invalid(format!("{list}: {e}")))?;
        }
        let allowed: BTreeSet<String> = split_list(key("security.syscalls.allow"))
            .map(str::to_ascii_lowercase)
            .collect();
        let denied_syscalls = seccomp::DEFAULT_DENY
            .iter()
            .map(|s| s.to_string())
            .filter(|s| !allowed.contains(s))
            .chain(split_list(key("security.syscalls.deny")).map(str::to_ascii_lowercase))
            .collect();
        Ok(Self {
            dropped_capabilities,
            denied_syscalls,
            nesting: keys::get_bool(config, "security.nesting"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(pairs: &[(&str, &str)]) -> Result<SecurityPolicy> {
        SecurityPolicy::from_config(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn allow_takes_calls_off_the_default_list_and_deny_adds() {
        let p = policy(&[
            ("security.syscalls.allow", "open_by_handle_at"),
            ("security.syscalls.deny", "chroot, Mknod"),
        ])
        .unwrap();
        assert!(!p.denied_syscalls.contains("open_by_handle_at"));
        assert!(p.denied_syscalls.contains("kexec_load"));
        assert!(p.denied_syscalls.contains("chroot") && p.denied_syscalls.contains("mknod"));
        assert!(!p.nesting);
    }

    #[test]
    fn a_wrong_key_is_named() {
        let err = policy(&[("security.syscalls.deny", "nosuchcall")])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("security.syscalls.deny: \"nosuchcall\""), "{err}");
    }
}
