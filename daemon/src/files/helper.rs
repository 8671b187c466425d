//! The file helper (`sysc-file`), one per request, single-threaded: reads its spec from
//! the control socket at fd 3, steps into the container (see the module docs), serves
//! the one request and exits.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid, setresgid, setresuid};

use super::ops::{self, MkdirRequest};
use super::protocol::{COMMIT, CONTROL_FD, Fault, FileSpec, MAX_MESSAGE_BYTES, Op, Reply, Root};
use super::resolve::{self, Failure};
use super::transfer::{self, Control};
use crate::monitor::init_pidfd::{self, InitPidfdError};
use crate::runtime::fdpass;

/// Runs the helper on the control socket at fd 3. Returns its exit status.
pub fn main() -> i32 {
    // SAFETY: fd 3 is the control socket the daemon handed us; we own it from here.
    let control = Socket(unsafe { OwnedFd::from_raw_fd(CONTROL_FD) });
    match serve(&control) {
        Ok(()) => 0,
        Err(failure) => {
            let _ = control.send(
                &Reply::Error {
                    fault: failure.fault,
                    message: failure.message,
                },
                None,
            );
            1
        }
    }
}

fn serve(control: &Socket) -> Result<(), Failure> {
    let (bytes, _) = fdpass::recv_up_to(control.0.as_fd(), MAX_MESSAGE_BYTES)
        .map_err(|e| Failure::new(Fault::Host, format!("read the file request: {e}")))?;
    let spec: FileSpec = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::new(Fault::Host, format!("parse the file request: {e}")))?;
    // Nothing in the container may inspect or trace the helper through /proc.
    // SAFETY: prctl(2) with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0) };
    let root = enter(&spec)?;
    let root = root.as_fd();
    match &spec.op {
        Op::List { path } => {
            resolve::check(path)?;
            ops::list(root, path, |entries| {
                let _ = control.send(&Reply::Entries(entries), None);
            })?;
            done(control)
        }
        Op::Pull { path, recursive } => {
            resolve::check(path)?;
            let top = top_name(path, &spec.container);
            transfer::pull(root, path, *recursive, &top, control)
        }
        Op::Push(request) => {
            resolve::check(&request.path)?;
            transfer::push(root, request, control)
        }
        Op::PushTree(request) => {
            resolve::check(&request.path)?;
            transfer::push_tree(root, request, control)
        }
        Op::Mkdir {
            path,
            parents,
            mode,
            uid,
            gid,
        } => {
            resolve::check(path)?;
            let request = MkdirRequest {
                path,
                parents: *parents,
                mode: *mode,
                uid: *uid,
                gid: *gid,
            };
            let info = ops::mkdir(root, &request)?;
            control.send(
                &Reply::Done {
                    info: Some(info),
                    summary: None,
                },
                None,
            )
        }
        Op::Delete { path, recursive } => {
            resolve::check(path)?;
            ops::delete(root, path, *recursive)?;
            done(control)
        }
    }
}

fn done(control: &Socket) -> Result<(), Failure> {
    control.send(
        &Reply::Done {
            info: None,
            summary: None,
        },
        None,
    )
}

/// The name a pulled directory has at the top of its tar stream: its own, or the
/// container's for the root.
fn top_name(path: &[u8], container: &str) -> Vec<u8> {
    match resolve::split(path) {
        Ok((_, name)) => name,
        Err(_) => container.as_bytes().to_vec(),
    }
}

/// The container's root directory, with this process inside the container when it runs.
fn enter(spec: &FileSpec) -> Result<OwnedFd, Failure> {
    let root = match &spec.root {
        Root::Stopped { rootfs } => rootfs.clone(),
        Root::Running { monitor_socket, userns } => {
            let init = init_pidfd::request(monitor_socket).map_err(|e| match e {
                InitPidfdError::NotRunning => {
                    Failure::new(Fault::State, format!("container {} is not running", spec.container))
                }
                InitPidfdError::Failed(message) => Failure::new(Fault::Host, message),
            })?;
            let mut namespaces = CloneFlags::CLONE_NEWNS;
            if *userns {
                namespaces |= CloneFlags::CLONE_NEWUSER;
            }
            setns(&init, namespaces)
                .map_err(|e| Failure::new(Fault::Host, format!("join the container's namespaces: {e}")))?;
            if *userns {
                // The container's root, so that new files belong to it and ids are the
                // container's own.
                let root_id = |e| Failure::new(Fault::Host, format!("become the container's root: {e}"));
                nix::unistd::setgroups(&[Gid::from_raw(0)]).map_err(root_id)?;
                setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).map_err(root_id)?;
                setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).map_err(root_id)?;
            }
            "/".into()
        }
    };
    nix::fcntl::open(
        &root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Failure::new(
            Fault::Host,
            format!("open the container's root {}: {e}", root.display()),
        )
    })
}

struct Socket(OwnedFd);

impl Control for Socket {
    fn send(&self, reply: &Reply, fd: Option<BorrowedFd<'_>>) -> Result<(), Failure> {
        let message =
            serde_json::to_vec(reply).map_err(|e| Failure::new(Fault::Host, format!("encode a reply: {e}")))?;
        let fds: Vec<i32> = fd.iter().map(|f| f.as_raw_fd()).collect();
        fdpass::send(self.0.as_fd(), &message, &fds)
            .map_err(|e| Failure::new(Fault::Host, format!("answer the daemon: {e}")))
    }

    fn wait_commit(&self) -> bool {
        matches!(fdpass::recv(self.0.as_fd()), Ok((message, _)) if message == COMMIT)
    }
}
