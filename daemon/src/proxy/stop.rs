//! Stopping a proxy helper that this daemon, or an earlier one, started. All we have is
//! a PID, which may have been reused since: so a pidfd is opened first, and only then is
//! the PID's command line checked. Signals go through the pidfd, so they reach the process
//! that was checked or nobody.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::error::ProxyError;

/// How long the proxy gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(5);

/// How long to wait after SIGKILL; only a process stuck in the kernel takes this long.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Ends the proxy for `device` of `container` running as `pid`: SIGTERM, then SIGKILL if
/// it is still there after 5 s. Returns false when no such proxy was running (the PID is
/// gone, or belongs to another process now). Blocks until the proxy is gone.
pub fn stop(pid: u32, container: &str, device: &str) -> Result<bool, ProxyError> {
    stop_within(pid, container, device, GRACE)
}

fn stop_within(pid: u32, container: &str, device: &str, grace: Duration) -> Result<bool, ProxyError> {
    let failed = |what, source| ProxyError::Stop {
        container: container.to_string(),
        device: device.to_string(),
        pid,
        what,
        source,
    };
    let pidfd = match pidfd_open(pid) {
        Ok(pidfd) => pidfd,
        Err(Errno::ESRCH) => return Ok(false),
        Err(e) => return Err(failed("open a pidfd", e.into())),
    };
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) if is_proxy_for(&cmdline, container, device) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => return Ok(false),
        Err(e) => return Err(failed("read its command line", e)),
    }

    match pidfd_send_signal(&pidfd, libc::SIGTERM) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Ok(false),
        Err(e) => return Err(failed("send SIGTERM", e.into())),
    }
    if wait_for_exit(&pidfd, grace).map_err(|e| failed("wait for it to exit", e.into()))? {
        return Ok(true);
    }
    tracing::warn!(
        pid,
        container,
        device,
        "proxy still running {grace:?} after SIGTERM; killing it"
    );
    match pidfd_send_signal(&pidfd, libc::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => return Err(failed("send SIGKILL", e.into())),
    }
    if wait_for_exit(&pidfd, KILL_WAIT).map_err(|e| failed("wait for it to exit", e.into()))? {
        return Ok(true);
    }
    Err(failed(
        "wait for it to exit after SIGKILL",
        io::Error::from(io::ErrorKind::TimedOut),
    ))
}

/// Whether a /proc/PID/cmdline is that of sysc-proxy serving `device` of `container`.
fn is_proxy_for(cmdline: &[u8], container: &str, device: &str) -> bool {
    let mut args = cmdline.split(|&b| b == 0);
    let Some(program) = args.next() else {
        return false;
    };
    let args: Vec<&[u8]> = args.collect();
    Path::new(OsStr::from_bytes(program)).file_name() == Some(OsStr::new("sysc-proxy"))
        && option_value(&args, "--container") == Some(container.as_bytes())
        && option_value(&args, "--device") == Some(device.as_bytes())
}

/// The value of `--name VALUE` or `--name=VALUE`.
fn option_value<'a>(args: &[&'a [u8]], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    args.iter().enumerate().find_map(|(i, arg)| {
        if *arg == name {
            args.get(i + 1).copied()
        } else {
            arg.strip_prefix(name).and_then(|rest| rest.strip_prefix(b"="))
        }
    })
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    // Not a PID the kernel could have given out (and 0 would mean ourselves).
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Err(Errno::ESRCH);
    };
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    // SAFETY: pidfd_open(2); the descriptor it returns (close-on-exec) is ours to own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a new descriptor, owned by nothing else; it fits an i32 as every fd does.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> Result<(), Errno> {
    // SAFETY: pidfd_send_signal(2) with no siginfo and no flags.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, 0usize, 0u32) };
    if rc < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Whether the process exited within `limit` (a pidfd turns readable when it does).
fn wait_for_exit(pidfd: &OwnedFd, limit: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) if left.is_zero() => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    use super::*;

    fn cmdline(args: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for arg in args {
            bytes.extend_from_slice(arg.as_bytes());
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn recognises_the_proxy_for_a_device() {
        let args = [
            "/usr/lib/sysc/sysc-proxy",
            "--container",
            "web",
            "--device",
            "http",
            "--monitor-socket",
            "/run/sysc/web/monitor.sock",
            "--listen",
            "tcp:0.0.0.0:80",
            "--connect",
            "tcp:127.0.0.1:80",
        ];
        assert!(is_proxy_for(&cmdline(&args), "web", "http"));
        assert!(is_proxy_for(
            &cmdline(&["sysc-proxy", "--device=http", "--container=web"]),
            "web",
            "http"
        ));
    }

    #[test]
    fn refuses_other_devices_containers_and_programs() {
        let proxy = ["sysc-proxy", "--container", "web", "--device", "http"];
        assert!(!is_proxy_for(&cmdline(&proxy), "web", "https"));
        assert!(!is_proxy_for(&cmdline(&proxy), "db", "http"));
        assert!(!is_proxy_for(&cmdline(&proxy), "we", "http"));
        assert!(!is_proxy_for(
            &cmdline(&["/usr/bin/sysc-proxy-old", "--container", "web", "--device", "http"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(
            &cmdline(&["sysc-proxy", "--container", "--device", "http"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(
            &cmdline(&["sysc-proxy", "--container", "web"]),
            "web",
            "http"
        ));
        assert!(!is_proxy_for(b"", "web", "http"));
    }

    /// A shell that /proc shows as `sysc-proxy --container web --device http`.
    fn fake_proxy(script: &str) -> Child {
        let child = Command::new("sh")
            .arg0("sysc-proxy")
            .args(["-c", script, "--container", "web", "--device", "http"])
            .spawn()
            .unwrap();
        // Until the shell has exec'd, /proc shows the test binary's command line.
        let expected = cmdline(&["sysc-proxy", "-c", script, "--container", "web", "--device", "http"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default() != expected {
            assert!(Instant::now() < deadline, "the fake proxy did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    fn is_running(child: &mut Child) -> bool {
        child.try_wait().unwrap().is_none()
    }

    #[test]
    fn stops_a_running_proxy() {
        let mut child = fake_proxy("while :; do sleep 0.05; done");
        assert!(stop(child.id(), "web", "http").unwrap());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }

    #[test]
    fn kills_a_proxy_that_ignores_sigterm() {
        let mut child = fake_proxy("trap '' TERM; while :; do sleep 0.05; done");
        assert!(stop_within(child.id(), "web", "http", Duration::from_millis(200)).unwrap());
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }

    #[test]
    fn leaves_another_process_alone() {
        let mut child = fake_proxy("while :; do sleep 0.05; done");
        assert!(!stop(child.id(), "web", "https").unwrap());
        assert!(!stop(child.id(), "db", "http").unwrap());
        assert!(is_running(&mut child));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reports_a_proxy_already_gone() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!stop(pid, "web", "http").unwrap());
        assert!(!stop(0, "web", "http").unwrap());
        assert!(!stop(u32::MAX, "web", "http").unwrap());
    }
}
