//! pidfds: for timing an init's exit exactly, and for killing a hung command.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// A process handle that survives PID reuse.
pub struct Pidfd(OwnedFd);

impl Pidfd {
    pub fn open(pid: i32) -> Result<Self> {
        // SAFETY: pidfd_open(2) takes a PID and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        ensure!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
        // SAFETY: the descriptor was just made and nothing else owns it.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    pub fn kill(&self) {
        let _ = self.signal(libc::SIGKILL);
    }

    pub fn signal(&self, signal: i32) -> Result<()> {
        // SAFETY: pidfd_send_signal(2) with a pidfd we own, no siginfo, no flags.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        ensure!(sent == 0, "send signal {signal}: {}", std::io::Error::last_os_error());
        Ok(())
    }

    /// Whether the process exited within `timeout` (a pidfd polls readable then).
    pub fn wait_for_exit(&self, timeout: Duration) -> Result<bool> {
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::try_from(timeout)?).context("poll the init's pidfd")?;
        Ok(ready > 0)
    }
}
