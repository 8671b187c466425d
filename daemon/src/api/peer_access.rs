//! Who may use the local API: root, and members of group `sysc` where the host has one.
//! The socket file's mode keeps others out too, but the kernel's word on the caller
//! (SO_PEERCRED) still holds when that mode was loosened by hand or by a bad umask.

use nix::unistd::{Gid, Group};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Status};

/// The group whose members may use the API besides root, as in Incus's `incus-admin`.
pub const GROUP: &str = "sysc";

/// The caller as the kernel and /proc describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups; empty when they could not be read.
    pub groups: Vec<u32>,
}

/// Root always; anyone else only through membership of the API group, when there is one.
pub fn allowed(peer: &Peer, group: Option<u32>) -> bool {
    peer.uid == 0 || group.is_some_and(|group| peer.gid == group || peer.groups.contains(&group))
}

/// The supplementary groups in a /proc/PID/status, provided the process is still the
/// caller: a PID freed and reused by another user's process must not lend its groups.
pub fn groups_from_status(status: &str, uid: u32) -> Option<Vec<u32>> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(':')))
    };
    // "Uid:" lists real, effective, saved and filesystem ids; SO_PEERCRED has the effective one.
    let effective = field("Uid")?.split_whitespace().nth(1)?.parse::<u32>().ok()?;
    if effective != uid {
        return None;
    }
    field("Groups")?
        .split_whitespace()
        .map(|gid| gid.parse::<u32>().ok())
        .collect()
}

/// The check on every call of every service, as a tonic interceptor on the whole server.
#[derive(Debug, Clone)]
pub struct PeerAccess {
    group: Option<Gid>,
}

impl PeerAccess {
    /// Looks the group up once: the socket's group is set from it at start-up as well.
    pub fn from_host() -> Self {
        let group = match Group::from_name(GROUP) {
            Ok(group) => group.map(|group| group.gid),
            Err(e) => {
                // Root-only is the safe side of not knowing; the log says why members are refused.
                tracing::warn!("look up group {GROUP}: {e}; the API is root only");
                None
            }
        };
        Self { group }
    }

    /// The group that may use the API besides root, if the host has one.
    pub fn group(&self) -> Option<Gid> {
        self.group
    }

    fn check(&self, info: Option<&UdsConnectInfo>) -> Result<(), Status> {
        let Some(cred) = info.and_then(|info| info.peer_cred) else {
            return Err(Status::permission_denied(
                "permission denied: the caller's credentials are unknown",
            ));
        };
        let group = self.group.map(Gid::as_raw);
        let mut peer = Peer {
            uid: cred.uid(),
            gid: cred.gid(),
            groups: Vec::new(),
        };
        // Only a non-root caller outside the group by its primary gid costs a read of /proc.
        if !allowed(&peer, group)
            && group.is_some()
            && let Some(pid) = cred.pid()
        {
            peer.groups = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| groups_from_status(&status, peer.uid))
                .unwrap_or_default();
        }
        if allowed(&peer, group) {
            return Ok(());
        }
        tracing::info!(uid = peer.uid, pid = cred.pid(), "refused an API call");
        Err(Status::permission_denied(denial(peer.uid, group.is_some())))
    }
}

fn denial(uid: u32, group_exists: bool) -> String {
    let hint = if group_exists {
        ""
    } else {
        " (the host has no such group)"
    };
    format!("permission denied: uid {uid} is neither root nor in group {GROUP}{hint}")
}

impl tonic::service::Interceptor for PeerAccess {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request.extensions().get::<UdsConnectInfo>())?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_is_allowed_with_or_without_the_group() {
        assert!(allowed(&peer(0, 0, &[]), None));
        assert!(allowed(&peer(0, 1000, &[]), Some(998)));
    }

    #[test]
    fn others_need_the_group_as_primary_or_supplementary() {
        assert!(allowed(&peer(1000, 998, &[]), Some(998)));
        assert!(allowed(&peer(1000, 1000, &[27, 998]), Some(998)));
        assert!(!allowed(&peer(1000, 1000, &[27]), Some(998)));
        assert!(!allowed(&peer(65534, 65534, &[]), Some(998)));
    }

    #[test]
    fn without_the_group_only_root_is_allowed() {
        assert!(!allowed(&peer(1000, 998, &[998]), None));
        // Group 0 is no substitute for uid 0.
        assert!(!allowed(&peer(1000, 0, &[0]), None));
    }

    const STATUS: &str = "Name:\tsysc\nUmask:\t0022\nState:\tS (sleeping)\n\
        Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nFDSize:\t64\n\
        Groups:\t4 27 998 \nNStgid:\t4242\n";

    #[test]
    fn supplementary_groups_come_from_proc_status() {
        assert_eq!(groups_from_status(STATUS, 1000), Some(vec![4, 27, 998]));
        let none = STATUS.replace("Groups:\t4 27 998 ", "Groups:\t");
        assert_eq!(groups_from_status(&none, 1000), Some(vec![]));
    }

    #[test]
    fn a_process_of_another_user_lends_no_groups() {
        assert_eq!(groups_from_status(STATUS, 65534), None);
        assert_eq!(groups_from_status("Name:\tx\n", 1000), None);
        let garbled = STATUS.replace("998", "x");
        assert_eq!(groups_from_status(&garbled, 1000), None);
    }

    #[test]
    fn missing_credentials_are_refused() {
        let access = PeerAccess { group: None };
        let status = access.check(None).unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn denial_names_the_uid_and_the_group() {
        assert_eq!(
            denial(65534, true),
            "permission denied: uid 65534 is neither root nor in group sysc"
        );
        assert!(denial(65534, false).ends_with("(the host has no such group)"));
    }
}
