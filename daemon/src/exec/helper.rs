//! The exec helper (`sysc-exec`), one per command, single-threaded. It gets the init's
//! pidfd from the container's monitor, steps into the container's v1 cgroups and PID
//! namespace, clones the command into a cgroup2 leaf of its own inside the container's
//! cgroup, reports `started`, relays signals, and reports the exit. If the daemon's end
//! of the control socket closes first (the client went away, or the daemon died), it
//! kills everything in the leaf.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};

use super::child;
use super::child::internal;
use super::messages::{Fault, FromHelper, ToHelper};
use super::spec::{CONTROL_FD, ExecSpec, MAX_SPEC_BYTES};
use crate::monitor::init_pidfd::{self, InitPidfdError};
use crate::runtime::{fdpass, process};

/// Runs the helper on the control socket at fd 3. Returns the helper's exit status.
pub fn main() -> i32 {
    // The command's process joins the container and takes its ids before it execs;
    // until then nothing in the container may trace it or open its /proc entries,
    // which would reach the helper's descriptors. exec makes the command dumpable.
    // SAFETY: prctl(2) with integer arguments; inherited by the forked child.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    // SAFETY: fd 3 is the control socket the daemon handed us; we own it from here.
    let control = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    let spec = match read_spec(&control) {
        Ok(spec) => spec,
        Err(message) => {
            report(
                &control,
                &FromHelper::Error {
                    fault: Fault::Host,
                    message,
                },
                None,
            );
            return 1;
        }
    };
    match run(&spec, &control) {
        Ok(()) => 0,
        Err(failure) => {
            report(
                &control,
                &FromHelper::Error {
                    fault: failure.fault,
                    message: failure.message,
                },
                None,
            );
            1
        }
    }
}

fn read_spec(control: &OwnedFd) -> Result<ExecSpec, String> {
    let (bytes, _) =
        fdpass::recv_up_to(control.as_fd(), MAX_SPEC_BYTES).map_err(|e| format!("read the exec spec: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("parse the exec spec: {e}"))
}

fn report(control: &OwnedFd, message: &FromHelper, fd: Option<&OwnedFd>) {
    let fds: Vec<i32> = fd.iter().map(|f| f.as_raw_fd()).collect();
    let _ = fdpass::send(control.as_fd(), message.encode().as_bytes(), &fds);
}

fn run(spec: &ExecSpec, control: &OwnedFd) -> Result<(), child::Failure> {
    let init = init_pidfd(spec)?;
    let leaf = make_leaf(spec)?;
    let leaf_dir: OwnedFd = fs::File::open(&leaf)
        .map_err(|e| internal("open the exec cgroup", e))?
        .into();
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .map_err(|e| internal("create the setup socket", e))?;

    setns(&init, CloneFlags::CLONE_NEWPID).map_err(|e| internal("join the container's PID namespace", e))?;
    let (host_pid, pidfd) = {
        let driver = spec.cgroup.driver();
        let _placement = driver
            .enter_v1(&spec.container)
            .map_err(|e| internal("enter the container's cgroups", e))?;
        clone_into(&leaf_dir, spec, &init, ours.as_raw_fd(), theirs)?
    };
    drop(leaf_dir);
    // Our copies of the command's stdio must not keep its pipes open once it is gone.
    detach_stdio();

    let mut master = None;
    let mut pid = None;
    loop {
        let (message, mut fds) = fdpass::recv(ours.as_fd()).map_err(|e| internal("read the command's setup", e))?;
        if message.is_empty() {
            break; // exec'd (or ended like a shell would, with 126/127)
        }
        let text = String::from_utf8_lossy(&message).into_owned();
        if text == "pty" && fds.len() == 1 {
            master = Some(fds.remove(0));
        } else if let Some(n) = text.strip_prefix("pid ") {
            pid = n.parse().ok();
        } else if let Some(error) = FromHelper::decode(&text) {
            let _ = waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED);
            remove_leaf(&leaf);
            if let FromHelper::Error { fault, message } = error {
                return Err(child::Failure { fault, message });
            }
        }
    }
    report(
        control,
        &FromHelper::Started {
            pid: pid.unwrap_or(0),
            host_pid,
        },
        master.as_ref(),
    );
    drop(master);
    supervise(control, &pidfd, &leaf);
    Ok(())
}

/// The init's pidfd, from the monitor (never a bare PID, which could be reused).
fn init_pidfd(spec: &ExecSpec) -> Result<OwnedFd, child::Failure> {
    init_pidfd::request(&spec.monitor_socket).map_err(|e| match e {
        InitPidfdError::NotRunning => child::Failure {
            fault: Fault::State,
            message: format!("container {} is not running", spec.container),
        },
        InitPidfdError::Failed(message) => internal("find the container's init", message),
    })
}

/// A cgroup2 leaf under the container's cgroup for this one command.
fn make_leaf(spec: &ExecSpec) -> Result<PathBuf, child::Failure> {
    let suffix: u64 = rand::random();
    let leaf = spec
        .cgroup
        .driver()
        .unified_dir(&spec.container)
        .join(format!(".sysc-exec-{suffix:016x}"));
    match fs::create_dir(&leaf) {
        Ok(()) => Ok(leaf),
        // The container's cgroup went away with it: it stopped after the daemon looked.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(child::Failure {
            fault: Fault::State,
            message: format!("container {} is not running", spec.container),
        }),
        Err(e) => Err(internal("create the exec cgroup", e)),
    }
}

fn remove_leaf(leaf: &Path) {
    // A daemon the command started may still live there; then the leaf stays until the
    // container stops (the monitor removes the whole tree).
    let _ = fs::remove_dir(leaf);
}

/// Forks the command into the exec cgroup.
fn clone_into(
    leaf: &OwnedFd,
    spec: &ExecSpec,
    init: &OwnedFd,
    ours: i32,
    theirs: OwnedFd,
) -> Result<(i32, OwnedFd), child::Failure> {
    // SAFETY: the helper is single-threaded; the child runs child::run, which execs or
    // _exits.
    match unsafe { process::fork_into_cgroup(0, leaf.as_fd()) } {
        Ok(process::Forked::Child) => {
            // SAFETY: the helper's end of the setup socket, unused in the child.
            unsafe { libc::close(ours) };
            child::run(spec, init, theirs);
        }
        Ok(process::Forked::Parent { pid, pidfd }) => Ok((pid, pidfd)),
        // pids.max reached: the container's own limit, not a host failure.
        Err(nix::errno::Errno::EAGAIN) => Err(child::Failure {
            fault: Fault::State,
            message: format!(
                "container {} is at its process limit (limits.processes); no room for the command",
                spec.container
            ),
        }),
        Err(e) => Err(internal("start the command", e)),
    }
}

fn detach_stdio() {
    if let Ok(null) = fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2(2) onto our standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Relays signals until the command ends; kills everything in its leaf if the daemon
/// goes away first.
fn supervise(control: &OwnedFd, pidfd: &OwnedFd, leaf: &Path) {
    let mut killed = false;
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(control.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
        let exited = fds[0].any().unwrap_or(false);
        let from_daemon = fds[1].any().unwrap_or(false);
        if exited {
            break;
        }
        if from_daemon && !killed {
            let message = fdpass::recv(control.as_fd()).ok().map(|(m, _)| m).unwrap_or_default();
            match ToHelper::decode(&String::from_utf8_lossy(&message)) {
                Some(ToHelper::Signal(signal)) => {
                    // SAFETY: pidfd_send_signal(2) to our own child.
                    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, 0usize, 0u32) };
                }
                // "kill", or the daemon's end closed (empty message): nobody wants the
                // output any more, so nothing the command started may linger.
                Some(ToHelper::Kill) | None => {
                    kill_leaf(leaf);
                    killed = true;
                }
            }
        }
    }
    let status = waitid(Id::PIDFd(pidfd.as_fd()), WaitPidFlag::WEXITED);
    let (code, signal) = match status {
        Ok(WaitStatus::Exited(_, code)) => (Some(code), None),
        Ok(WaitStatus::Signaled(_, signal, _)) => (None, Some(signal as i32)),
        _ => (None, Some(libc::SIGKILL)),
    };
    if killed {
        wait_until_empty(leaf);
    }
    report(control, &FromHelper::Exited { code, signal }, None);
    remove_leaf(leaf);
}

fn kill_leaf(leaf: &Path) {
    let _ = fs::write(leaf.join("cgroup.kill"), "1");
}

fn wait_until_empty(leaf: &Path) {
    let events = leaf.join("cgroup.events");
    for _ in 0..500 {
        let populated = fs::File::open(&events)
            .map(|f| {
                BufReader::new(f)
                    .lines()
                    .any(|l| l.map(|l| l == "populated 1").unwrap_or(false))
            })
            .unwrap_or(false);
        if !populated {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
