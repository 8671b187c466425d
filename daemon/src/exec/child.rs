//! The command's process: joins the container's namespaces through the init's pidfd,
//! takes its terminal, ids and working directory, and execs the command. Failures
//! before the command runs go to the helper as `error ...`; a command that can't be
//! found or run ends like it would under a shell (127, 126).

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sched::{CloneFlags, setns};
use nix::unistd::{Gid, Uid, setresgid, setresuid, setsid};

use super::messages::{Fault, FromHelper};
use super::path_search::{self, NotRunnable};
use super::spec::ExecSpec;
use crate::runtime::{fdpass, process};
use crate::security;

pub struct Failure {
    pub fault: Fault,
    pub message: String,
}

fn invalid(message: String) -> Failure {
    Failure {
        fault: Fault::Request,
        message,
    }
}

pub fn internal(what: &str, err: impl std::fmt::Display) -> Failure {
    Failure {
        fault: Fault::Host,
        message: format!("{what}: {err}"),
    }
}

/// Never returns: execs the command or exits.
pub fn run(spec: &ExecSpec, init: &OwnedFd, setup: OwnedFd) -> ! {
    let Err(failure) = setup_and_exec(spec, init, &setup);
    let report = FromHelper::Error {
        fault: failure.fault,
        message: failure.message,
    };
    let _ = fdpass::send(setup.as_fd(), report.encode().as_bytes(), &[]);
    // SAFETY: _exit(2) without running the helper's destructors.
    unsafe { libc::_exit(1) }
}

fn setup_and_exec(spec: &ExecSpec, init: &OwnedFd, setup: &OwnedFd) -> Result<Infallible, Failure> {
    // SAFETY: prctl(2); the command dies with its helper (the helper kills the rest).
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWCGROUP;
    if spec.userns {
        namespaces |= CloneFlags::CLONE_NEWUSER;
    }
    setns(init, namespaces).map_err(|e| internal("join the container's namespaces", e))?;

    let terminal = match spec.tty {
        Some(size) => {
            let (master, slave) = open_pty(size)?;
            fdpass::send(setup.as_fd(), b"pty", &[master.as_raw_fd()]).map_err(|e| internal("hand over the pty", e))?;
            Some(slave)
        }
        None => None,
    };
    // SAFETY: getpid(2) cannot fail; inside the container's PID namespace.
    let pid = unsafe { libc::getpid() };
    fdpass::send(setup.as_fd(), format!("pid {pid}").as_bytes(), &[]).map_err(|e| internal("report the pid", e))?;

    setsid().map_err(|e| internal("setsid", e))?;
    if let Some(slave) = terminal {
        // SAFETY: TIOCSCTTY on our new pty's slave; we are a session leader.
        if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
            return Err(internal("take the pty as controlling terminal", nix::Error::last()));
        }
        for fd in 0..3 {
            // SAFETY: dup2(2) onto the standard descriptors.
            unsafe { libc::dup2(slave.as_raw_fd(), fd) };
        }
    }

    // While still root in the container: the bounding set is what a setuid program
    // run by the command could regain, and loading the filter needs CAP_SYS_ADMIN.
    security::capabilities::drop_bounding(&spec.security.dropped_capabilities)
        .map_err(|e| internal("drop capabilities", e))?;
    security::seccomp::load(&spec.security).map_err(|e| internal("load the seccomp filter", e))?;
    nix::unistd::setgroups(&[Gid::from_raw(spec.gid)])
        .map_err(|e| invalid(format!("gid {} is not usable in the container: {e}", spec.gid)))?;
    setresgid(
        Gid::from_raw(spec.gid),
        Gid::from_raw(spec.gid),
        Gid::from_raw(spec.gid),
    )
    .map_err(|e| invalid(format!("gid {} is not usable in the container: {e}", spec.gid)))?;
    setresuid(
        Uid::from_raw(spec.uid),
        Uid::from_raw(spec.uid),
        Uid::from_raw(spec.uid),
    )
    .map_err(|e| invalid(format!("uid {} is not usable in the container: {e}", spec.uid)))?;
    match &spec.cwd {
        Some(cwd) => nix::unistd::chdir(cwd.as_str()).map_err(|e| invalid(format!("cwd {cwd}: {}", e.desc())))?,
        None => {
            if nix::unistd::chdir(spec.home.as_str()).is_err() {
                nix::unistd::chdir("/").map_err(|e| internal("chdir /", e))?;
            }
        }
    }
    process::reset_signals();
    exec(spec)
}

fn open_pty(size: super::WindowSize) -> Result<(OwnedFd, OwnedFd), Failure> {
    let master = nix::pty::posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY)
        .map_err(|e| internal("open /dev/ptmx in the container", e))?;
    nix::pty::grantpt(&master).map_err(|e| internal("grantpt", e))?;
    nix::pty::unlockpt(&master).map_err(|e| internal("unlockpt", e))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| internal("ptsname", e))?;
    let slave = nix::fcntl::open(
        name.as_str(),
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| internal("open the pty", e))?;
    let window = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize.
    unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &window) };
    let master: OwnedFd = master.into();
    set_cloexec(&master);
    Ok((master, slave))
}

fn set_cloexec(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
}

/// Execs the command; if it can't, says so on stderr and exits like a shell.
fn exec(spec: &ExecSpec) -> Result<Infallible, Failure> {
    let to_c = |s: &String| CString::new(s.as_bytes()).map_err(|_| invalid(format!("NUL byte in {s:?}")));
    let argv = spec.argv.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let env = spec.env.iter().map(to_c).collect::<Result<Vec<_>, _>>()?;
    let command = spec.argv.first().map(String::as_str).unwrap_or_default();
    // Not the control socket to syscd (fd 3), nor anything else of the helper's: the
    // command could forge its own exit status through the one, or leave its root through
    // another.
    crate::descriptors::close_on_exec_above_stderr().map_err(|e| internal("mark descriptors close-on-exec", e))?;
    let failure = match path_search::find(command, &spec.env) {
        Ok(path) => {
            let path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| invalid("bad path".into()))?;
            match nix::unistd::execve(&path, &argv, &env) {
                Err(nix::errno::Errno::ENOENT) => NotRunnable::NotFound,
                Err(_) => NotRunnable::PermissionDenied,
                Ok(never) => match never {},
            }
        }
        Err(why) => why,
    };
    let (code, text) = match failure {
        NotRunnable::NotFound => (127, "command not found"),
        NotRunnable::PermissionDenied => (126, "permission denied"),
    };
    let line = format!("sysc exec: {command}: {text}\n");
    // SAFETY: write(2) to our stderr, then _exit(2).
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(code)
    }
}
