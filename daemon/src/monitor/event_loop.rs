//! The monitor's loop: drain the console into its log (and to attached console
//! clients), answer control requests, and when the init ends, clean up (remaining
//! processes, cgroups), record how it ended and tell whoever waits.

use std::fs;
use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use super::ConsoleLog;
use super::protocol::{ExitRecord, Request, Response, encode};
use crate::runtime::{ContainerSpec, Started};
use crate::time::now_ms;

#[derive(PartialEq, Eq)]
enum Mode {
    /// JSON requests and answers.
    Control,
    /// Raw console bytes both ways.
    Console,
}

struct Client {
    stream: UnixStream,
    buffer: Vec<u8>,
    waiting: bool,
    mode: Mode,
}

/// What the loop needs to answer requests.
struct Container<'a> {
    spec: &'a ContainerSpec,
    pid: i32,
    pidfd: &'a OwnedFd,
    console: &'a OwnedFd,
    started_at_ms: i64,
}

/// Serves until the container's init has ended and everything is cleaned up.
pub fn run(spec: &ContainerSpec, started: Started, listener: UnixListener, mut log: ConsoleLog) -> ExitRecord {
    let Started {
        pid,
        pidfd,
        console,
        started_at_ms,
    } = started;
    let container = Container {
        spec,
        pid: pid.as_raw(),
        pidfd: &pidfd,
        console: &console,
        started_at_ms,
    };
    // Holding a slave open means the master never reports hang-up while nothing in the
    // container has the console open (between two gettys, say).
    let _console_peer = open_peer(&console);
    set_nonblocking(console.as_fd());
    listener.set_nonblocking(true).ok();
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];

    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(console.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(clients.iter().map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                super::log_line(format_args!("poll: {e}"));
                continue;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
        drop(fds);

        if ready[2] {
            drain_console(&console, &mut log, &mut clients, &mut buf);
        }
        let mut closed = Vec::new();
        for (i, client) in clients.iter_mut().enumerate() {
            if ready[3 + i] && !serve(client, &container) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            clients.remove(i);
        }
        if ready[1] {
            while let Ok((stream, _)) = listener.accept() {
                stream.set_nonblocking(true).ok();
                clients.push(Client {
                    stream,
                    buffer: Vec::new(),
                    waiting: false,
                    mode: Mode::Control,
                });
            }
        }
        if ready[0] {
            break;
        }
    }

    let status = waitpid(pid, Some(WaitPidFlag::__WALL));
    drain_console(&console, &mut log, &mut clients, &mut buf);
    let record = ExitRecord {
        code: match status {
            Ok(WaitStatus::Exited(_, code)) => Some(code),
            _ => None,
        },
        signal: match status {
            Ok(WaitStatus::Signaled(_, signal, _)) => Some(signal as i32),
            _ => None,
        },
        at_ms: now_ms(),
    };
    if let Err(e) = spec.cgroup.driver().remove(&spec.name) {
        super::log_line(format_args!("removing the cgroups of {}: {e}", spec.name));
    }
    write_exit_record(spec, &record);
    let _ = fs::remove_file(spec.socket_path());
    let answer = encode(&Response::Exited(record.clone()));
    for client in clients.iter_mut().filter(|c| c.waiting) {
        client.stream.set_nonblocking(false).ok();
        let _ = client.stream.write_all(&answer);
    }
    record
}

/// Reads what the client sent and acts on it; false when it hung up.
fn serve(client: &mut Client, container: &Container) -> bool {
    let mut chunk = [0u8; 4096];
    let n = match client.stream.read(&mut chunk) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => return true,
        Err(_) => return false,
    };
    if client.mode == Mode::Console {
        type_into_console(container.console, &chunk[..n]);
        return true;
    }
    client.buffer.extend_from_slice(&chunk[..n]);
    while client.mode == Mode::Control
        && let Some(end) = client.buffer.iter().position(|&b| b == b'\n')
    {
        let line: Vec<u8> = client.buffer.drain(..=end).collect();
        let request = serde_json::from_slice::<Request>(&line);
        let mut pass_fd = None;
        let response = match request {
            Ok(Request::Status) => Some(Response::running(container.pid, container.started_at_ms)),
            Ok(Request::Signal { signal }) => Some(send_signal(container.pidfd, signal)),
            Ok(Request::Kill) => {
                let result = send_signal(container.pidfd, libc::SIGKILL);
                let _ = container.spec.cgroup.driver().kill(&container.spec.name);
                Some(result)
            }
            Ok(Request::Wait) => {
                client.waiting = true;
                None
            }
            Ok(Request::Pidfd) => {
                pass_fd = Some(container.pidfd.as_fd());
                Some(Response::Ok)
            }
            Ok(Request::Console) => {
                client.mode = Mode::Console;
                Some(Response::Ok)
            }
            Ok(Request::Resize { rows, cols }) => Some(resize(container.console, rows, cols)),
            Err(e) => Some(Response::Error {
                message: format!("bad request: {e}"),
            }),
        };
        if let Some(response) = response
            && answer(&client.stream, &response, pass_fd).is_err()
        {
            return false;
        }
    }
    // Bytes that followed the console request in the same read were typed already.
    if client.mode == Mode::Console && !client.buffer.is_empty() {
        type_into_console(container.console, &std::mem::take(&mut client.buffer));
    }
    true
}

fn answer(stream: &UnixStream, response: &Response, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    let line = encode(response);
    let result = match fd {
        Some(fd) => {
            let fds = [fd.as_raw_fd()];
            let cmsgs = [ControlMessage::ScmRights(&fds)];
            sendmsg::<()>(
                stream.as_raw_fd(),
                &[IoSlice::new(&line)],
                &cmsgs,
                MsgFlags::empty(),
                None,
            )
            .map(drop)
            .map_err(std::io::Error::from)
        }
        None => (&*stream).write_all(&line),
    };
    stream.set_nonblocking(true)?;
    result
}

fn send_signal(pidfd: &OwnedFd, signal: i32) -> Response {
    // SAFETY: pidfd_send_signal(2) on the init's pidfd; no siginfo.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, 0usize, 0u32) };
    match Errno::result(rc) {
        Ok(_) => Response::Ok,
        Err(e) => Response::Error {
            message: format!("signal {}: {e}", crate::runtime::signals::name(signal)),
        },
    }
}

fn resize(console: &OwnedFd, rows: u16, cols: u16) -> Response {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    let rc = unsafe { libc::ioctl(console.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    match Errno::result(rc) {
        Ok(_) => Response::Ok,
        Err(e) => Response::Error {
            message: format!("resize the console: {e}"),
        },
    }
}

/// Input for the console. Nothing reads it while no getty runs, and then the pty's
/// buffer fills: what does not fit is dropped rather than blocking the monitor.
fn type_into_console(console: &OwnedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(console, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Moves what the console printed into the log and to every attached console client.
/// A client that can't keep up misses output (the log has all of it) rather than
/// stalling the console.
fn drain_console(console: &OwnedFd, log: &mut ConsoleLog, clients: &mut Vec<Client>, buf: &mut [u8]) {
    loop {
        let n = match nix::unistd::read(console.as_fd(), buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if let Some(e) = log.record(&buf[..n]) {
            super::log_line(format_args!("console log: {e}"));
        }
        clients.retain_mut(|client| {
            if client.mode != Mode::Console {
                return true;
            }
            // A partial write drops the rest for this client, as explained above.
            match client.stream.write(&buf[..n]) {
                Ok(_written) => true,
                Err(e) => e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted,
            }
        });
    }
}

fn open_peer(master: &OwnedFd) -> Option<OwnedFd> {
    // SAFETY: TIOCGPTPEER opens the slave of a pty master we own.
    let fd = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a new descriptor from the kernel.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// Written atomically: a daemon reading it never sees half a record.
fn write_exit_record(spec: &ContainerSpec, record: &ExitRecord) {
    let path = spec.exit_path();
    let tmp = path.with_extension("json.tmp");
    let result = fs::write(&tmp, serde_json::to_vec(record).unwrap_or_default()).and_then(|_| fs::rename(&tmp, &path));
    if let Err(e) = result {
        super::log_line(format_args!("writing {}: {e}", path.display()));
    }
}
