//! The monitor's side of starting a container: clone into new namespaces, map ids,
//! place the child in its cgroups, hand it an (idmapped) root filesystem, collect its
//! console, and learn whether its init ran.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid, setegid, seteuid};

use super::child;
use super::error::{Context, Result, RuntimeError};
use super::fdpass;
use super::mountapi;
use super::process;
use super::spec::ContainerSpec;
use crate::cgroup::Owner;
use crate::network::links::{VethPlug, create_veths_blocking};

/// A container whose init has been exec'd.
pub struct Started {
    pub pid: Pid,
    /// Refers to the init for as long as we hold it, whatever happens to PID numbers.
    pub pidfd: OwnedFd,
    /// Master side of the pty bound on the container's /dev/console.
    pub console: OwnedFd,
    /// When the init was exec'd.
    pub started_at_ms: i64,
}

/// Starts the container described by `spec`. The caller must be single-threaded and
/// becomes the init's parent. On failure nothing is left: no process, no cgroup.
pub fn start(spec: &ContainerSpec) -> Result<Started> {
    let cgroups = spec.cgroup.driver();
    let owner = spec.idmap.map(|m| Owner {
        uid: m.host_base,
        gid: m.host_base,
    });
    cgroups.create(&spec.name, owner)?;
    if let Err(e) = cgroups.apply(&spec.name, &spec.limits) {
        let _ = cgroups.remove(&spec.name);
        return Err(e.into());
    }
    let mut pid = None;
    let result = start_in_cgroup(spec, &*cgroups, &mut pid);
    if result.is_err() {
        if let Some(pid) = pid {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        let _ = cgroups.remove(&spec.name);
    }
    result
}

fn start_in_cgroup(
    spec: &ContainerSpec,
    cgroups: &dyn crate::cgroup::CgroupDriver,
    child_pid: &mut Option<Pid>,
) -> Result<Started> {
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx("create the setup socket")?;
    let unified = cgroups.unified_dir(&spec.name);
    let cgroup_dir: OwnedFd = fs::File::open(&unified)
        .ctx(format!("open {}", unified.display()))?
        .into();
    let (pid, pidfd) = {
        let _placement = cgroups.enter_v1(&spec.name)?;
        clone_child(spec, ours.as_raw_fd(), theirs, &cgroup_dir)?
    };
    *child_pid = Some(pid);

    if let Some(idmap) = spec.idmap {
        let line = idmap.map_line();
        fs::write(format!("/proc/{pid}/uid_map"), &line).ctx("write the uid map")?;
        fs::write(format!("/proc/{pid}/gid_map"), &line).ctx("write the gid map")?;
    }
    let plugs: Vec<VethPlug> = spec
        .nics
        .iter()
        .map(|nic| VethPlug {
            host: &nic.host,
            bridge: nic.bridge,
            pid: pid.as_raw() as u32,
            inside: &nic.name,
            mac: nic.mac,
        })
        .collect();
    let tree = mountapi::clone_tree(&spec.rootfs).ctx(format!("clone the mount of {}", spec.rootfs.display()))?;
    if spec.idmap.is_some() {
        let userns: OwnedFd = fs::File::open(format!("/proc/{pid}/ns/user"))
            .ctx("open the container's user namespace")?
            .into();
        mountapi::set_idmap(&tree, &userns).ctx("idmap the root filesystem")?;
    }
    fdpass::send(ours.as_fd(), b"go", &[tree.as_raw_fd()]).ctx("send the root filesystem")?;
    drop(tree);
    // While the setup builds the root filesystem: it needs its links only at the end.
    if let Err(e) = create_veths_blocking(&plugs) {
        // A setup that failed meanwhile took its namespace, and our error, with it.
        return Err(setup_error(ours.as_fd()).unwrap_or_else(|| e.into()));
    }
    fdpass::send(ours.as_fd(), child::LINKS_MADE, &[]).ctx("tell the container's setup its links are made")?;

    let mut console = None;
    loop {
        let (message, mut fds) = fdpass::recv(ours.as_fd()).ctx("read from the container's setup")?;
        if message.is_empty() {
            break; // its end of the socket closed on exec: the init runs
        }
        if message == b"console" && fds.len() == 1 {
            console = Some(fds.remove(0));
        } else if let Some(error) = setup_failure(&message) {
            let _ = waitpid(pid, None);
            *child_pid = None;
            return Err(error);
        } else {
            return Err(RuntimeError::Protocol(
                "unexpected message from the container's setup".into(),
            ));
        }
    }
    let console = console.ok_or_else(|| RuntimeError::Protocol("the container's setup sent no console".into()))?;
    Ok(Started {
        pid,
        pidfd,
        console,
        started_at_ms: crate::time::now_ms(),
    })
}

/// The error the setup process reported, if one is waiting on the socket.
fn setup_error(ours: BorrowedFd<'_>) -> Option<RuntimeError> {
    loop {
        let mut ready = [PollFd::new(ours, PollFlags::POLLIN)];
        if !matches!(poll(&mut ready, PollTimeout::ZERO), Ok(1..)) {
            return None;
        }
        let (message, _) = fdpass::recv(ours).ok()?;
        if message.is_empty() {
            return None;
        }
        if let Some(error) = setup_failure(&message) {
            return Some(error);
        }
    }
}

/// The setup's "error ..." message as an error.
fn setup_failure(message: &[u8]) -> Option<RuntimeError> {
    let error = message.strip_prefix(b"error ")?;
    Some(RuntimeError::Child(String::from_utf8_lossy(error).into_owned()))
}

/// Clones the setup process into new namespaces, born in the container's cgroup2
/// directory (and in the v1 cgroups the caller stepped into), with a pidfd for it.
///
/// For an unprivileged container the clone runs with the container's base uid as
/// effective uid, so the new user namespace is owned by that uid: per-user kernel
/// limits (inotify instances above all) are then charged to the container's own range,
/// not to root. The filesystem uid stays 0, because CLONE_INTO_CGROUP checks write
/// access to the common ancestor of the source and target cgroups.
fn clone_child(spec: &ContainerSpec, ours: i32, theirs: OwnedFd, cgroup: &OwnedFd) -> Result<(Pid, OwnedFd)> {
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    if let Some(idmap) = spec.idmap {
        flags |= CloneFlags::CLONE_NEWUSER;
        setegid(Gid::from_raw(idmap.host_base)).ctx("switch to the container's gid")?;
        seteuid(Uid::from_raw(idmap.host_base)).ctx("switch to the container's uid")?;
        nix::unistd::setfsuid(Uid::from_raw(0));
        nix::unistd::setfsgid(Gid::from_raw(0));
    }
    // SAFETY: the monitor is single-threaded; the child runs the setup, then execs
    // the init or _exits.
    let forked = unsafe { process::fork_into_cgroup(flags.bits() as u64, cgroup.as_fd()) };
    if let Ok(process::Forked::Child) = forked {
        // SAFETY: closing the monitor's end in the child, which never uses it.
        unsafe { libc::close(ours) };
        child::run(spec, theirs);
    }
    if spec.idmap.is_some() {
        seteuid(Uid::from_raw(0)).ctx("switch back to uid 0")?;
        setegid(Gid::from_raw(0)).ctx("switch back to gid 0")?;
    }
    match forked.ctx("clone the container's namespaces")? {
        process::Forked::Parent { pid, pidfd } => Ok((Pid::from_raw(pid), pidfd)),
        process::Forked::Child => unreachable!("the child never gets here"),
    }
}
