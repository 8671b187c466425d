//! `exec` and `shell`: a command inside a running container, wired to our stdin, stdout
//! and stderr, and its exit status as ours.

use std::collections::HashMap;
use std::convert::Infallible;
use std::env;
use std::io::{self, IsTerminal};
use std::process::ExitCode;

use anyhow::anyhow;
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::{Empty, ExecRequest, ExecResponse, ExecStart, ExitStatus, exec_request, exec_response};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::terminal::{self, RawMode, WindowChanges};

/// Requests waiting for the connection; stdin's own read-ahead is what bounds the memory.
const REQUESTS_AHEAD: usize = 4;

/// What `sysc shell` runs: a login shell for root, with root's environment and home.
const LOGIN_SHELL: [&str; 2] = ["su", "-l"];

/// Whether the command gets a terminal (a pty inside the container).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TtyMode {
    /// When both our stdin and stdout are terminals, as for an interactive user.
    #[default]
    Auto,
    Always,
    Never,
}

impl TtyMode {
    fn wanted(self, stdin_is_terminal: bool, stdout_is_terminal: bool) -> bool {
        match self {
            TtyMode::Auto => stdin_is_terminal && stdout_is_terminal,
            TtyMode::Always => true,
            TtyMode::Never => false,
        }
    }
}

#[derive(Debug, Default)]
pub struct ExecOptions {
    pub name: String,
    pub command: Vec<String>,
    pub env: HashMap<String, String>,
    pub cwd: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub tty: TtyMode,
}

/// A `--env NAME=VALUE` argument. Values may hold '=' themselves, so only the first one splits.
pub fn parse_env_pair(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err("the variable name before '=' is empty".to_string()),
        Some((name, value)) => Ok((name.to_string(), value.to_string())),
        None => Err("expected NAME=VALUE".to_string()),
    }
}

pub async fn exec(channel: Channel, options: ExecOptions) -> anyhow::Result<ExitCode> {
    let stdin_is_terminal = io::stdin().is_terminal();
    let tty = options.tty.wanted(stdin_is_terminal, io::stdout().is_terminal());
    // Raw mode only has a meaning for a terminal we read keys from; with a tty requested
    // but piped input, the remote terminal still does the line editing and echo.
    run(channel, start_request(options, tty), tty && stdin_is_terminal).await
}

/// A login shell always gets a terminal, even when ours is not one: `su -l` and the shell
/// behave differently without one, and the user asked for a shell, not a command.
pub async fn shell(channel: Channel, name: String) -> anyhow::Result<ExitCode> {
    let options = ExecOptions {
        name,
        command: LOGIN_SHELL.map(String::from).to_vec(),
        tty: TtyMode::Always,
        ..ExecOptions::default()
    };
    exec(channel, options).await
}

fn start_request(options: ExecOptions, tty: bool) -> ExecStart {
    let (window, term) = if tty {
        // An unset or non-UTF-8 TERM leaves the daemon's default (xterm).
        (terminal::window_size(), env::var("TERM").unwrap_or_default())
    } else {
        (None, String::new())
    };
    ExecStart {
        name: options.name,
        command: options.command,
        env: options.env,
        cwd: options.cwd.unwrap_or_default(),
        uid: options.uid,
        gid: options.gid,
        tty,
        window,
        term,
    }
}

async fn run(channel: Channel, start: ExecStart, raw_mode: bool) -> anyhow::Result<ExitCode> {
    let tty = start.tty;
    let start = ExecRequest {
        request: Some(exec_request::Request::Start(start)),
    };
    let (requests, queued) = mpsc::channel(REQUESTS_AHEAD);
    let request_stream = tokio_stream::once(start).chain(ReceiverStream::new(queued));
    let mut responses = ContainersClient::new(channel)
        .exec(request_stream)
        .await
        .map_err(rpc_error)?
        .into_inner();

    // Dropped on every return below, before main prints an error.
    let _raw_mode = raw_mode.then(RawMode::enable).transpose()?;
    let window_changes = WindowChanges::watch(tty)?;
    let signals = if raw_mode { None } else { Some(forwarded_signals()?) };
    let stdin = terminal::read_stdin()?;
    tokio::select! {
        status = relay_output(&mut responses) => status,
        never = forward_input(requests, stdin, window_changes, signals) => match never {},
    }
}

/// Without a terminal in raw mode, Ctrl+C and a supervisor's SIGTERM reach sysc rather
/// than the command: like Incus, sysc passes them on and lives until the command ends.
/// (In raw mode Ctrl+C is a key the remote terminal turns into SIGINT itself.)
fn forwarded_signals() -> io::Result<mpsc::Receiver<i32>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = mpsc::channel(8);
    use nix::sys::signal::Signal;
    let forwarded = [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ];
    for number in forwarded.map(|s| s as i32) {
        let mut arrivals = signal(SignalKind::from_raw(number))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while arrivals.recv().await.is_some() {
                if tx.send(number).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}

/// Sends stdin and window changes until the call ends, and is dropped then. Stdin's end is
/// told with `stdin_eof`, and the request stream stays open after it: the command may still
/// be writing, and a call that ends early tells the daemon the client went away, which
/// kills the command.
async fn forward_input(
    requests: mpsc::Sender<ExecRequest>,
    mut stdin: mpsc::Receiver<Vec<u8>>,
    mut window_changes: WindowChanges,
    mut signals: Option<mpsc::Receiver<i32>>,
) -> Infallible {
    let mut stdin_open = true;
    loop {
        let request = tokio::select! {
            Some(number) = async { signals.as_mut()?.recv().await } => exec_request::Request::Signal(number),
            chunk = stdin.recv(), if stdin_open => match chunk {
                Some(data) => exec_request::Request::Stdin(data),
                None => {
                    stdin_open = false;
                    exec_request::Request::StdinEof(Empty {})
                }
            },
            size = window_changes.next() => exec_request::Request::Resize(size),
        };
        let request = ExecRequest { request: Some(request) };
        if requests.send(request).await.is_err() {
            // The call is over; relay_output reports how.
            return std::future::pending().await;
        }
    }
}

/// Copies the command's output to ours as it comes and returns its exit status as ours.
async fn relay_output(responses: &mut Streaming<ExecResponse>) -> anyhow::Result<ExitCode> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut exit = None;
    while let Some(response) = responses.message().await.map_err(rpc_error)? {
        match response.response {
            Some(exec_response::Response::Stdout(data)) => write_now(&mut stdout, &data).await?,
            Some(exec_response::Response::Stderr(data)) => write_now(&mut stderr, &data).await?,
            // Read on to the end of the stream: leaving at `exit` would cancel the call,
            // and the daemon would kill what the command left running in the background.
            Some(exec_response::Response::Exit(status)) => exit = Some(status),
            // `started`, and response kinds added to the API after this client was built.
            Some(exec_response::Response::Started(_)) | None => {}
        }
    }
    let status = exit.ok_or_else(|| anyhow!("syscd ended the exec stream without the command's exit status"))?;
    exit_code(&status)
        .map(ExitCode::from)
        .ok_or_else(|| anyhow!("syscd reported neither an exit code nor a signal for the command"))
}

/// Flushed at once: the user may be watching, or a program may be waiting for a reply.
async fn write_now(output: &mut (impl AsyncWrite + Unpin), data: &[u8]) -> io::Result<()> {
    output.write_all(data).await?;
    output.flush().await
}

/// Our exit code for the command's end: its own code, or 128 + the signal that killed
/// it, as a shell reports it.
fn exit_code(status: &ExitStatus) -> Option<u8> {
    match (status.code, status.signal) {
        // The low byte, all that exit(3) passes on to a parent.
        (Some(code), _) => Some(code as u8),
        (None, Some(signal)) => u8::try_from(128 + signal).ok(),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_pairs_split_at_the_first_equals() {
        assert_eq!(parse_env_pair("LANG=C"), Ok(("LANG".to_string(), "C".to_string())));
        assert_eq!(
            parse_env_pair("OPTS=-a --b=c"),
            Ok(("OPTS".to_string(), "-a --b=c".to_string()))
        );
        assert_eq!(parse_env_pair("EMPTY="), Ok(("EMPTY".to_string(), String::new())));
        assert_eq!(parse_env_pair("LANG"), Err("expected NAME=VALUE".to_string()));
        assert!(parse_env_pair("=C").is_err());
    }

    #[test]
    fn tty_by_default_only_when_both_ends_are_terminals() {
        assert!(TtyMode::Auto.wanted(true, true));
        assert!(!TtyMode::Auto.wanted(true, false));
        assert!(!TtyMode::Auto.wanted(false, true));
        assert!(!TtyMode::Auto.wanted(false, false));
        assert!(TtyMode::Always.wanted(false, false));
        assert!(!TtyMode::Never.wanted(true, true));
    }

    fn status(code: Option<i32>, signal: Option<i32>) -> ExitStatus {
        ExitStatus {
            code,
            signal,
            ..ExitStatus::default()
        }
    }

    #[test]
    fn exit_codes_pass_through_and_signals_add_128() {
        assert_eq!(exit_code(&status(Some(0), None)), Some(0));
        assert_eq!(exit_code(&status(Some(3), None)), Some(3));
        assert_eq!(exit_code(&status(Some(127), None)), Some(127));
        assert_eq!(exit_code(&status(Some(255), None)), Some(255));
        assert_eq!(exit_code(&status(Some(256 + 7), None)), Some(7));
        // SIGKILL, SIGTERM, SIGINT.
        assert_eq!(exit_code(&status(None, Some(9))), Some(137));
        assert_eq!(exit_code(&status(None, Some(15))), Some(143));
        assert_eq!(exit_code(&status(None, Some(2))), Some(130));
        assert_eq!(exit_code(&status(None, Some(200))), None);
        assert_eq!(exit_code(&status(None, None)), None);
    }

    #[test]
    fn start_request_carries_the_options() {
        let options = ExecOptions {
            name: "web1".to_string(),
            command: vec!["ls".to_string(), "-l".to_string()],
            env: HashMap::from([("LANG".to_string(), "C".to_string())]),
            cwd: Some("/srv".to_string()),
            uid: Some(1000),
            gid: None,
            tty: TtyMode::Never,
        };
        let start = start_request(options, false);
        assert_eq!(start.name, "web1");
        assert_eq!(start.command, ["ls", "-l"]);
        assert_eq!(start.env.get("LANG").map(String::as_str), Some("C"));
        assert_eq!(start.cwd, "/srv");
        assert_eq!((start.uid, start.gid), (Some(1000), None));
        // Without a tty, the terminal's size and type mean nothing to the command.
        assert!(!start.tty);
        assert_eq!(start.window, None);
        assert!(start.term.is_empty());
    }

    #[test]
    fn defaults_are_left_to_the_daemon() {
        let start = start_request(ExecOptions::default(), true);
        assert!(start.tty);
        assert!(start.cwd.is_empty());
        assert_eq!((start.uid, start.gid), (None, None));
    }
}
