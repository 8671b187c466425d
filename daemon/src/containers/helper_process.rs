//! Starting a helper binary (sysc-exec, sysc-file) with its control socket at fd 3.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;

use tokio::process::Child;

use super::seqpacket::SeqPacket;
use crate::error::{Error, Result};
use crate::exec::spec::CONTROL_FD;

/// Starts `exe` with the given stdio and a SOCK_SEQPACKET control socket at fd 3, and
/// sends it `first` (its spec). The child is not killed when dropped: helpers end by
/// themselves once the control socket closes, cleaning up after them.
pub async fn spawn(exe: &Path, stdio: [Stdio; 3], first: &[u8]) -> Result<(Child, SeqPacket)> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::internal("create a helper's control socket", e))?;
    let mut command = tokio::process::Command::new(exe);
    let [stdin, stdout, stderr] = stdio;
    command.stdin(stdin).stdout(stdout).stderr(stderr);
    let control_fd = theirs.as_raw_fd();
    // SAFETY: between fork and exec: dup2 and fcntl only.
    unsafe {
        command.pre_exec(move || {
            if control_fd == CONTROL_FD {
                nix::fcntl::fcntl(
                    std::os::fd::BorrowedFd::borrow_raw(CONTROL_FD),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )?;
            } else if libc::dup2(control_fd, CONTROL_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let helper = command
        .spawn()
        .map_err(|e| Error::internal(format!("run {}", exe.display()), e))?;
    drop(theirs);
    let control = SeqPacket::new(ours).map_err(|e| Error::internal("a helper's control socket", e))?;
    control
        .send(first, &[])
        .await
        .map_err(|e| Error::internal("send a helper its request", e))?;
    Ok((helper, control))
}
