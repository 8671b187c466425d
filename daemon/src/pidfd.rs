//! Processes the daemon started but that are not (or no longer) its children — dnsmasq,
//! port-forwarding proxies — addressed through pidfds, so a PID reused by another
//! process is never signalled.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// A pidfd for `pid`, or None when no such process exists.
pub fn open(pid: u32) -> Option<OwnedFd> {
    // 0 would be ourselves; above i32::MAX no PID the kernel gives out.
    let pid = libc::pid_t::try_from(pid).ok().filter(|pid| *pid > 0)?;
    // SAFETY: pidfd_open(2) returns a new file descriptor we then own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    // SAFETY: a non-negative result is a fresh descriptor.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The process behind `pid` if its command line passes `is_ours`, checked after the
/// pidfd was opened: a reused PID then fails the check rather than getting the signal.
pub fn open_checked(pid: u32, is_ours: impl Fn(&[String]) -> bool) -> Option<OwnedFd> {
    let pidfd = open(pid)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|arg| !arg.is_empty())
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    is_ours(&args).then_some(pidfd)
}

/// A PID from a pid file, if the file holds one.
pub fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub fn signal(pidfd: &OwnedFd, signal: i32) -> bool {
    // SAFETY: pidfd_send_signal(2) with no siginfo.
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, 0usize, 0u32) == 0 }
}

/// Whether the process exits within `timeout` (its pidfd turns readable).
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let mut poll = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let millis = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        match unsafe { libc::poll(&mut poll, 1, millis) } {
            1 => return true,
            -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return false,
        }
    }
}

/// SIGTERM, then SIGKILL if it is still there after `grace`; whether it is gone.
pub fn terminate(pidfd: &OwnedFd, grace: Duration) -> bool {
    if !signal(pidfd, libc::SIGTERM) {
        return true; // already gone
    }
    if wait_exit(pidfd, grace) {
        return true;
    }
    tracing::warn!("process still running {grace:?} after SIGTERM; killing it");
    signal(pidfd, libc::SIGKILL);
    wait_exit(pidfd, Duration::from_secs(5))
}

/// A pidfd the tokio reactor watches: readable once the process has exited.
pub fn watch(pidfd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the same descriptor,
    // until the AsyncFd is dropped.
    Ok(unsafe { tokio::io::unix::AsyncFd::register(pidfd) }?)
}
