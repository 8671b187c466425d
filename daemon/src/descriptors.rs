//! Descriptors that must not reach a container: whatever syscd inherited from the shell
//! or service manager that started it (a file, a directory, a pipe), and the sockets and
//! files a monitor or exec helper holds while it sets a container up. An open directory
//! handed to a process in a container is a way out of its root.

use std::io;

/// Marks every descriptor above stderr close-on-exec, so none survives an exec: called
/// by syscd as it starts and by the container's init and exec'd commands just before
/// their exec.
pub fn close_on_exec_above_stderr() -> io::Result<()> {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
    let rc = unsafe { libc::close_range(3, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use nix::fcntl::{FcntlArg, FdFlag, fcntl};

    use super::*;

    #[test]
    fn an_inherited_descriptor_becomes_close_on_exec() {
        let file = std::fs::File::open("/").unwrap();
        // As a shell would pass it: without FD_CLOEXEC.
        fcntl(&file, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
        close_on_exec_above_stderr().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC), "fd {} kept", file.as_raw_fd());
    }
}
