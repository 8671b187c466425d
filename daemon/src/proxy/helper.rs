//! The proxy helper (`sysc-proxy`), one per proxy device of a running container, started
//! by the daemon in a session of its own. It binds the listen address in the host's
//! network namespace, then moves into the container's, so that every connection it makes
//! afterwards starts there: `connect=tcp:127.0.0.1:80` reaches the container's own
//! loopback (as Incus's forkproxy does). It reports `ready` or `error: MESSAGE` on stdout,
//! logs to stderr, and serves until the container's init exits or it gets SIGTERM.
//!
//! It stays on one thread throughout: joining a network namespace only moves the calling
//! thread, so the runtime is a current-thread one and nothing may use a blocking pool.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use clap::Parser;
use nix::sched::{CloneFlags, setns};
use tokio::runtime::Runtime;

use super::address::ProxyAddress;
use super::serve::serve;
use super::shutdown::Shutdown;
use crate::monitor::init_pidfd::{self, InitPidfdError};

/// Forwards connections from a host address into a container.
#[derive(Debug, Parser)]
#[command(name = "sysc-proxy")]
struct Args {
    /// The container, for messages and for the daemon to recognise us by.
    #[arg(long)]
    container: String,
    /// The proxy device, likewise.
    #[arg(long)]
    device: String,
    /// The container's monitor socket, which hands out a pidfd of its init.
    #[arg(long)]
    monitor_socket: PathBuf,
    /// Where to accept connections, in the host's network namespace.
    #[arg(long)]
    listen: ProxyAddress,
    /// Where to forward them, in the container's network namespace.
    #[arg(long)]
    connect: ProxyAddress,
}

#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{0}")]
    InitPidfd(String),
    #[error("listen on {address}: {source}")]
    Listen { address: ProxyAddress, source: io::Error },
    #[error("join the network namespace of container {container}: {source}")]
    JoinNetns { container: String, source: nix::Error },
    #[error("{what}: {source}")]
    Io { what: &'static str, source: io::Error },
}

/// Everything the proxy needs to serve, set up before it reports ready.
struct Ready {
    runtime: Runtime,
    listener: std::net::TcpListener,
    shutdown: Shutdown,
}

/// Runs the helper. Returns its exit status: 0 once it stopped serving as asked, 1 if it
/// could not start or serving failed.
pub fn main() -> i32 {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(), // --help
        Err(e) => {
            report(&format!("error: {}", clap_message(&e)));
            return 1;
        }
    };
    init_logging();
    let span = tracing::info_span!("proxy", container = %args.container, device = %args.device);
    let _entered = span.enter();

    let ready = match set_up(&args) {
        Ok(ready) => ready,
        Err(e) => {
            tracing::error!("{e}");
            report(&format!("error: {e}"));
            return 1;
        }
    };
    report("ready");
    detach_stdout();
    tracing::info!(listen = %args.listen, connect = %args.connect, "serving");

    let Ready {
        runtime,
        listener,
        shutdown,
    } = ready;
    // block_on polls every task on this thread, the one that joined the namespace.
    match runtime.block_on(serve(listener, args.connect.addr, shutdown.wait())) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("serve on {}: {e}", args.listen);
            1
        }
    }
}

fn set_up(args: &Args) -> Result<Ready, SetupError> {
    let init = init_pidfd::request(&args.monitor_socket).map_err(|e| match e {
        InitPidfdError::NotRunning => SetupError::NotRunning(args.container.clone()),
        InitPidfdError::Failed(message) => SetupError::InitPidfd(message),
    })?;
    let listener = std::net::TcpListener::bind(args.listen.addr).map_err(|source| SetupError::Listen {
        address: args.listen,
        source,
    })?;
    join_network_namespace(&init, &args.container)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| SetupError::Io {
            what: "start the event loop",
            source,
        })?;
    let shutdown = {
        let _context = runtime.enter();
        Shutdown::watch(init).map_err(|source| SetupError::Io {
            what: "watch the container's init and signals",
            source,
        })?
    };
    Ok(Ready {
        runtime,
        listener,
        shutdown,
    })
}

/// Moves this (single) thread into the container's network namespace: sockets created
/// from here on are the container's, the listener bound before stays the host's.
fn join_network_namespace(init: &OwnedFd, container: &str) -> Result<(), SetupError> {
    setns(init, CloneFlags::CLONE_NEWNET).map_err(|source| SetupError::JoinNetns {
        container: container.to_string(),
        source,
    })
}

/// clap's message on one line, without its "error: " prefix and the usage after it.
fn clap_message(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    message.strip_prefix("error: ").unwrap_or(&message).to_string()
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_ansi(false)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
}

/// One line on stdout for the daemon, which waits for it.
fn report(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{}", line.replace('\n', " "));
    let _ = out.flush();
}

/// The daemon stops reading stdout after the report; nothing may block or fail on it later.
fn detach_stdout() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2(2) onto stdout, which we no longer use.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(args: &[&str]) -> String {
        clap_message(&Args::try_parse_from(args).unwrap_err())
    }

    #[test]
    fn argument_errors_fit_on_one_line() {
        let message = parse_error(&["sysc-proxy", "--container", "web", "--device", "http"]);
        assert!(
            message.starts_with("the following required arguments were not provided: --monitor-socket"),
            "{message}"
        );
        assert!(!message.contains('\n'));
        assert_eq!(
            parse_error(&[
                "sysc-proxy",
                "--container=web",
                "--device=http",
                "--monitor-socket=/run/m.sock",
                "--listen=udp:0.0.0.0:53",
                "--connect=tcp:127.0.0.1:53",
            ]),
            "invalid value 'udp:0.0.0.0:53' for '--listen <LISTEN>': only tcp is supported for now, not udp"
        );
    }
}
