//! The launcher: one `sysc-monitor` process per daemon, which forks a monitor for each
//! container start. A fork of this small single-threaded process costs a tenth of an
//! exec of the monitor binary (about 1 ms here, with the dynamic loader), and every
//! start pays it.
//!
//! The daemon sends one message per start on the launcher's stdin, a SOCK_SEQPACKET
//! socket: the container spec (JSON), with the monitor's log file and the write end of
//! a pipe for its report attached. The forked monitor has the log as its stderr and the
//! pipe as its stdout, as an exec'd one would. End of file on the socket (the daemon
//! went away) ends the launcher; the monitors it forked run on.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::ExitCode;

use super::protocol::{Response, encode};
use crate::runtime::fdpass;

/// The largest spec the launcher takes.
pub const MAX_SPEC: usize = 256 << 10;

/// Serves `socket`, the launcher's stdin, until the daemon closes its end, running
/// `monitor` with each spec in a forked child (which exits 0 if it returns true).
pub fn serve(socket: OwnedFd, monitor: impl Fn(&[u8]) -> bool) -> ExitCode {
    // The monitors are reaped by the kernel: nobody waits for them here.
    // SAFETY: setting a disposition in a single-threaded process.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    // One buffer for every spec: a fresh zeroed one per start would be copied into each
    // monitor's memory, where it stays for the container's life.
    let mut buffer = vec![0u8; MAX_SPEC];
    loop {
        let (len, fds) = match fdpass::recv_into(socket.as_fd(), &mut buffer) {
            Ok(received) => received,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return ExitCode::FAILURE,
        };
        if len == 0 {
            return ExitCode::SUCCESS;
        }
        let spec = &buffer[..len];
        let Ok::<[OwnedFd; 2], _>([log, report]) = fds.try_into() else {
            continue; // not a start: nothing to report to
        };
        // SAFETY: the launcher is single-threaded; the child only runs the monitor and exits.
        match unsafe { libc::fork() } {
            0 => {
                let ok = become_monitor(log, report).is_ok_and(|()| monitor(spec));
                std::process::exit(if ok { 0 } else { 1 });
            }
            -1 => {
                let message = format!("fork a monitor: {}", std::io::Error::last_os_error());
                let _ = nix::unistd::write(&report, &encode(&Response::Error { message }));
            }
            _ => {}
        }
    }
}

/// The forked child's standard streams: /dev/null in place of the launcher's socket,
/// the report pipe, the log; and SIGCHLD back to its default so the monitor can wait
/// for its init.
fn become_monitor(log: OwnedFd, report: OwnedFd) -> std::io::Result<()> {
    // SAFETY: setting a disposition in the single-threaded child.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let null = std::fs::OpenOptions::new().read(true).open("/dev/null")?;
    for (fd, target) in [(null.as_raw_fd(), 0), (report.as_raw_fd(), 1), (log.as_raw_fd(), 2)] {
        // SAFETY: dup2(2) onto the standard descriptors.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
