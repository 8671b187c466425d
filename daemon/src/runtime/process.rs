//! Process-level steps shared by a container's init and by commands run in it.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Default dispositions and an empty signal mask. Our programs ignore SIGPIPE (every
/// Rust program does) and ignored signals survive exec, so without this whatever we
/// start would inherit it.
pub fn reset_signals() {
    // SAFETY: resetting dispositions and the mask of a single-threaded process.
    unsafe {
        for signal in 1..libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The kernel's struct clone_args (clone3(2)).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A forked child's point of view.
pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// fork(2) with namespace `flags`, born in the cgroup2 directory `cgroup`
/// (CLONE_INTO_CGROUP: no migration afterwards, see cgroup::CgroupDriver) and with a
/// pidfd for the parent.
///
/// # Safety
/// The caller must be single-threaded, and the child must only exec or _exit in the
/// end (the usual rules after fork).
pub unsafe fn fork_into_cgroup(flags: u64, cgroup: BorrowedFd<'_>) -> nix::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | CLONE_INTO_CGROUP,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..Default::default()
    };
    // SAFETY: a fork-like clone3 (no new stack); the caller upholds the fork rules.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(rc)? {
        0 => Ok(Forked::Child),
        // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}
