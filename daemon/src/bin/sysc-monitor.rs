//! sysc-monitor: started by syscd, one per running container. Reads the container's
//! spec (JSON) on stdin, starts the container, reports "ok PID" or "error MESSAGE" on
//! stdout, then stays as the init's parent until it ends. See syscd::monitor.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::process::ExitCode;

use syscd::monitor::{self, ConsoleLog};
use syscd::runtime::{self, ContainerSpec};

fn main() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        return report(Err(format!("read the container spec: {e}")));
    }
    let spec: ContainerSpec = match serde_json::from_slice(&input) {
        Ok(spec) => spec,
        Err(e) => return report(Err(format!("parse the container spec: {e}"))),
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
        Err(e) => return report(Err(format!("listen on {}: {e}", socket.display()))),
    };
    let log = match ConsoleLog::open(&spec.console_log, ConsoleLog::DEFAULT_LIMIT) {
        Ok(log) => log,
        Err(e) => return report(Err(format!("open {}: {e}", spec.console_log.display()))),
    };
    let started = match runtime::start(&spec) {
        Ok(started) => started,
        Err(e) => {
            let _ = std::fs::remove_file(&socket);
            return report(Err(e.to_string()));
        }
    };
    report(Ok(started.pid.as_raw()));
    detach_stdio();
    let record = monitor::run(&spec, started, listener, log);
    monitor::log_line(format_args!("{} {}", spec.name, record.describe()));
    ExitCode::SUCCESS
}

fn report(result: Result<i32, String>) -> ExitCode {
    let (line, code) = match result {
        Ok(pid) => (format!("ok {pid}\n"), ExitCode::SUCCESS),
        Err(message) => (format!("error {}\n", message.replace('\n', " ")), ExitCode::FAILURE),
    };
    let mut out = std::io::stdout();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
    code
}

/// The daemon stops reading our stdout after the report; point stdin and stdout at
/// /dev/null so nothing blocks or dies on a closed pipe.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in [0, 1] {
            // SAFETY: dup2(2) onto stdin and stdout.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
