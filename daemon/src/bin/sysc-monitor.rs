//! sysc-monitor: started once by syscd as the launcher (see syscd::monitor::launcher),
//! which forks one monitor per running container. A monitor starts the container its
//! spec describes, reports on stdout (a protocol `Running` or `Error` line), then stays
//! as the init's parent until it ends. See syscd::monitor.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::process::ExitCode;

use syscd::monitor::protocol::{Response, encode};
use syscd::monitor::{self, ConsoleLog, launcher};
use syscd::runtime::{self, ContainerSpec};

fn main() -> ExitCode {
    // SAFETY: syscd starts the launcher with its end of a socket as stdin, which nothing
    // else here uses.
    let socket = unsafe { OwnedFd::from_raw_fd(0) };
    launcher::serve(socket, monitor)
}

/// One forked monitor: starts the container `spec` describes, reports on stdout, and
/// stays its init's parent.
fn monitor(spec: &[u8]) -> bool {
    let spec: ContainerSpec = match serde_json::from_slice(spec) {
        Ok(spec) => spec,
        Err(e) => return report(failure(format!("parse the container spec: {e}"))),
    };
    // Its own session, and deaf to the signals a terminal or a dying daemon would send:
    // the container must not go down with whoever started it.
    let _ = nix::unistd::setsid();
    for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
        // SAFETY: setting a disposition; the child resets it before exec.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }

    let socket = spec.socket_path();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(spec.exit_path());
    let listener = match UnixListener::bind(&socket) {
        Ok(listener) => listener,
        Err(e) => return report(failure(format!("listen on {}: {e}", socket.display()))),
    };
    let log = match ConsoleLog::open(&spec.console_log, ConsoleLog::DEFAULT_LIMIT) {
        Ok(log) => log,
        Err(e) => return report(failure(format!("open {}: {e}", spec.console_log.display()))),
    };
    let started = match runtime::start(&spec) {
        Ok(started) => started,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return report(failure(e.to_string()));
        }
    };
    report(Response::running(started.pid.as_raw(), started.started_at_ms));
    detach_stdout();
    let record = monitor::run(&spec, started, listener, log);
    monitor::log_line(format_args!("{} {}", spec.name, record.describe()));
    true
}

fn failure(message: String) -> Response {
    Response::Error { message }
}

/// The daemon's answer to its start: one protocol line on stdout. Whether it ran.
fn report(response: Response) -> bool {
    let ok = matches!(response, Response::Running { .. });
    let mut out = std::io::stdout();
    let _ = out.write_all(&encode(&response));
    let _ = out.flush();
    ok
}

/// The daemon stops reading our stdout after the report; point it at /dev/null so
/// nothing blocks or dies on a closed pipe.
fn detach_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2(2) onto stdout.
        unsafe { libc::dup2(null.as_raw_fd(), 1) };
    }
}
