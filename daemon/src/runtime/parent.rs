//! The monitor's side of starting a container: clone into new namespaces, map ids,
//! place the child in its cgroups, hand it an (idmapped) root filesystem, collect its
//! console, and learn whether its init ran.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::waitpid;
use nix::unistd::{Gid, Pid, Uid, setegid, seteuid};

use super::child;
use super::error::{Context, Result, RuntimeError};
use super::fdpass;
use super::mountapi;
use super::spec::ContainerSpec;
use crate::cgroup::Owner;

/// A container whose init has been exec'd.
pub struct Started {
    pub pid: Pid,
    /// Refers to the init for as long as we hold it, whatever happens to PID numbers.
    pub pidfd: OwnedFd,
    /// Master side of the pty bound on the container's /dev/console.
    pub console: OwnedFd,
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

    let pid = clone_child(spec, ours.as_raw_fd(), theirs)?;
    *child_pid = Some(pid);

    if let Some(idmap) = spec.idmap {
        let line = idmap.map_line();
        fs::write(format!("/proc/{pid}/uid_map"), &line).ctx("write the uid map")?;
        fs::write(format!("/proc/{pid}/gid_map"), &line).ctx("write the gid map")?;
    }
    cgroups.attach(&spec.name, pid.as_raw())?;

    let tree = mountapi::clone_tree(&spec.rootfs).ctx(format!("clone the mount of {}", spec.rootfs.display()))?;
    if spec.idmap.is_some() {
        let userns: OwnedFd = fs::File::open(format!("/proc/{pid}/ns/user"))
            .ctx("open the container's user namespace")?
            .into();
        mountapi::set_idmap(&tree, &userns).ctx("idmap the root filesystem")?;
    }
    fdpass::send(ours.as_fd(), b"go", &[tree.as_raw_fd()]).ctx("send the root filesystem")?;
    drop(tree);

    let mut console = None;
    loop {
        let (message, mut fds) = fdpass::recv(ours.as_fd()).ctx("read from the container's setup")?;
        if message.is_empty() {
            break; // its end of the socket closed on exec: the init runs
        }
        if message == b"console" && fds.len() == 1 {
            console = Some(fds.remove(0));
        } else if let Some(error) = message.strip_prefix(b"error ") {
            let _ = waitpid(pid, None);
            *child_pid = None;
            return Err(RuntimeError::Child(String::from_utf8_lossy(error).into_owned()));
        } else {
            return Err(RuntimeError::Protocol(
                "unexpected message from the container's setup".into(),
            ));
        }
    }
    let console = console.ok_or_else(|| RuntimeError::Protocol("the container's setup sent no console".into()))?;
    let pidfd = pidfd_open(pid)?;
    Ok(Started { pid, pidfd, console })
}

/// Clones the setup process into new namespaces. For an unprivileged container the
/// clone runs with the container's base uid as effective uid, so the new user namespace
/// is owned by that uid: per-user kernel limits (inotify instances above all) are then
/// charged to the container's own range, not to root.
fn clone_child(spec: &ContainerSpec, ours: i32, theirs: OwnedFd) -> Result<Pid> {
    let mut flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    if let Some(idmap) = spec.idmap {
        flags |= CloneFlags::CLONE_NEWUSER;
        setegid(Gid::from_raw(idmap.host_base)).ctx("switch to the container's gid")?;
        seteuid(Uid::from_raw(idmap.host_base)).ctx("switch to the container's uid")?;
    }
    // SAFETY: a fork-like clone (no new stack) in a single-threaded process; the child
    // only runs the setup below and then execs or _exits.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if rc == 0 {
        // SAFETY: closing the monitor's end in the child, which never uses it.
        unsafe { libc::close(ours) };
        child::run(spec, theirs);
    }
    let clone_result = Errno::result(rc);
    if spec.idmap.is_some() {
        seteuid(Uid::from_raw(0)).ctx("switch back to uid 0")?;
        setegid(Gid::from_raw(0)).ctx("switch back to gid 0")?;
    }
    let pid = clone_result.ctx("clone the container's namespaces")?;
    Ok(Pid::from_raw(pid as i32))
}

pub fn pidfd_open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open(2); the returned fd is owned by us.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd).ctx("pidfd_open")?;
    // SAFETY: a new descriptor from the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
