//! The Exec stream: client messages to the command's stdin, resizes and signals;
//! the command's output and exit back. A client that goes away takes the command (and
//! everything it started) with it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use sysc_proto::v1 as pb;
use sysc_proto::v1::exec_request::Request as In;
use sysc_proto::v1::exec_response::Response as Out;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use super::stopping::{Session, until_stopping};
use crate::containers::{ExecIo, ExecParams, ExecSession, Manager};
use crate::exec::WindowSize;
use crate::exec::messages::{FromHelper, ToHelper};
use crate::monitor::protocol::ExitRecord;

pub type ExecStream = Session<pb::ExecResponse>;
type Sender = mpsc::Sender<Result<pb::ExecResponse, Status>>;

/// After the command exits, output still in flight is passed on until its pipes close
/// or nothing more arrives for this long (a daemon it started may hold them open).
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// Output is passed on in pieces of up to this much (the pipes are as large).
const CHUNK: usize = 1 << 20;
/// A terminal's output comes in small bursts.
const PTY_CHUNK: usize = 64 * 1024;

pub async fn serve(manager: Arc<Manager>, mut input: Streaming<pb::ExecRequest>) -> Result<ExecStream, Status> {
    let bus = manager.events.bus.clone();
    let Some(pb::ExecRequest {
        request: Some(In::Start(start)),
    }) = input.message().await?
    else {
        return Err(Status::invalid_argument("the first exec message must be start"));
    };
    let params = ExecParams {
        name: start.name,
        command: start.command,
        env: start.env.into_iter().collect(),
        cwd: (!start.cwd.is_empty()).then_some(start.cwd),
        uid: start.uid,
        gid: start.gid,
        tty: start.tty.then(|| convert::window_size(start.window.as_ref())),
        term: start.term,
    };
    let session = manager.exec(params).await?;
    let (tx, rx) = mpsc::channel(16);
    let started = Out::Started(pb::ExecStarted {
        pid: i64::from(session.pid),
        host_pid: i64::from(session.host_pid),
    });
    let _ = tx
        .send(Ok(pb::ExecResponse {
            response: Some(started),
        }))
        .await;
    tokio::spawn(relay(session, input, tx));
    Ok(until_stopping(ReceiverStream::new(rx), &bus))
}

/// Where client input goes.
enum Input {
    Pipe(Option<ChildStdin>),
    Pty(Arc<AsyncFd<OwnedFd>>),
}

/// Where output comes from.
enum Output {
    Pipes(Box<dyn AsyncRead + Send + Unpin>, Box<dyn AsyncRead + Send + Unpin>),
    Pty(Arc<AsyncFd<OwnedFd>>),
}

async fn relay(session: ExecSession, input: Streaming<pb::ExecRequest>, tx: Sender) {
    let ExecSession {
        io,
        control,
        mut helper,
        ..
    } = session;
    let (writer, output) = match io {
        ExecIo::Pipes { stdin, stdout, stderr } => (
            Input::Pipe(Some(stdin)),
            Output::Pipes(Box::new(stdout), Box::new(stderr)),
        ),
        ExecIo::Pty(master) => {
            let master = Arc::new(master);
            (Input::Pty(master.clone()), Output::Pty(master))
        }
    };
    let input_task = tokio::spawn(forward_input(input, writer, control.clone()));
    let exit = forward_output(output, &control, &tx).await;
    input_task.abort();
    if let Some(exit) = exit {
        let status = convert::exit_status(&exit);
        let _ = tx
            .send(Ok(pb::ExecResponse {
                response: Some(Out::Exit(status)),
            }))
            .await;
    }
    drop(control);
    let _ = helper.wait().await;
}

async fn forward_input(
    mut input: Streaming<pb::ExecRequest>,
    mut writer: Input,
    control: Arc<crate::containers::SeqPacketHandle>,
) {
    loop {
        let message = match input.message().await {
            Ok(Some(message)) => message,
            // The client is done sending: its input is over.
            Ok(None) => {
                end_input(&mut writer).await;
                return;
            }
            // The client went away: nobody wants the command any more.
            Err(_) => {
                let _ = control.send(ToHelper::Kill.encode().as_bytes(), &[]).await;
                return;
            }
        };
        match message.request {
            Some(In::Stdin(data)) => write_input(&mut writer, &data).await,
            Some(In::StdinEof(_)) => end_input(&mut writer).await,
            Some(In::Resize(size)) => {
                if let Input::Pty(master) = &writer {
                    resize(master.get_ref(), convert::window_size(Some(&size)));
                }
            }
            Some(In::Signal(signal)) => {
                let _ = control.send(ToHelper::Signal(signal).encode().as_bytes(), &[]).await;
            }
            Some(In::Start(_)) | None => {}
        }
    }
}

async fn write_input(writer: &mut Input, data: &[u8]) {
    match writer {
        Input::Pipe(Some(stdin)) => {
            if stdin.write_all(data).await.is_err() {
                // The command closed its stdin: further input has nowhere to go.
                *writer = Input::Pipe(None);
            }
        }
        Input::Pipe(None) => {}
        Input::Pty(master) => write_pty(master, data).await,
    }
}

/// Closes the command's stdin; on a pty, types the EOF character (^D) as a user would.
async fn end_input(writer: &mut Input) {
    match writer {
        Input::Pipe(stdin) => drop(stdin.take()),
        Input::Pty(master) => write_pty(master, &[0x04]).await,
    }
}

async fn write_pty(master: &AsyncFd<OwnedFd>, mut data: &[u8]) {
    while !data.is_empty() {
        let Ok(mut ready) = master.writable().await else { return };
        match ready.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(_)) => return,
            Err(_would_block) => {}
        }
    }
}

fn resize(master: &OwnedFd, size: WindowSize) {
    let window = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize; the kernel signals the pty's foreground group.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &window) };
}

/// Passes output on until the command has exited and its output is drained. None if
/// the client went away first (the command has then been killed).
async fn forward_output(
    output: Output,
    control: &crate::containers::SeqPacketHandle,
    tx: &Sender,
) -> Option<ExitRecord> {
    let (mut out, mut err, pty) = match output {
        Output::Pipes(out, err) => (Some(out), Some(err), None),
        Output::Pty(master) => (None, None, Some(master)),
    };
    let mut pty_open = pty.is_some();
    // Never zero-filled: read_buf writes into spare capacity. (Zeroing megabyte buffers
    // for every command cost more than a whole `exec -- true`.)
    let (mut out_buf, mut err_buf) = (Vec::with_capacity(CHUNK), Vec::with_capacity(CHUNK));
    let mut pty_buf = vec![0u8; PTY_CHUNK];
    let mut exit: Option<ExitRecord> = None;
    loop {
        let open = out.is_some() || err.is_some() || pty_open;
        if exit.is_some() && !open {
            return exit;
        }
        let chunk = tokio::select! {
            read = read_some(&mut out, &mut out_buf) => read.map(|_| Out::Stdout(out_buf.clone())),
            read = read_some(&mut err, &mut err_buf) => read.map(|_| Out::Stderr(err_buf.clone())),
            read = read_pty(pty.as_deref(), pty_open, &mut pty_buf) => match read {
                Some(n) => Some(Out::Stdout(pty_buf[..n].to_vec())),
                None => { pty_open = false; None }
            },
            message = control.recv(), if exit.is_none() => {
                exit = Some(exit_record(message.ok().map(|(m, _)| m)));
                None
            }
            _ = tx.closed() => {
                let _ = control.send(ToHelper::Kill.encode().as_bytes(), &[]).await;
                return None;
            }
            _ = tokio::time::sleep(DRAIN_QUIET), if exit.is_some() => return exit,
        };
        if let Some(chunk) = chunk
            && tx.send(Ok(pb::ExecResponse { response: Some(chunk) })).await.is_err()
        {
            let _ = control.send(ToHelper::Kill.encode().as_bytes(), &[]).await;
            return None;
        }
    }
}

/// Reads from a pipe into `buf` (replacing what it held); at EOF (or an error) the pipe
/// is dropped and this never resolves again, so select! stops polling it.
async fn read_some(pipe: &mut Option<Box<dyn AsyncRead + Send + Unpin>>, buf: &mut Vec<u8>) -> Option<usize> {
    let Some(reader) = pipe else {
        return std::future::pending().await;
    };
    buf.clear();
    match reader.read_buf(buf).await {
        Ok(0) | Err(_) => {
            *pipe = None;
            None
        }
        Ok(n) => Some(n),
    }
}

/// Reads the pty master; None once every slave is closed (EIO).
async fn read_pty(master: Option<&AsyncFd<OwnedFd>>, open: bool, buf: &mut [u8]) -> Option<usize> {
    let Some(master) = master.filter(|_| open) else {
        return std::future::pending().await;
    };
    loop {
        let mut ready = master.readable().await.ok()?;
        match ready.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(std::io::Error::from)) {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => return Some(n),
            Err(_would_block) => {}
        }
    }
}

fn exit_record(message: Option<Vec<u8>>) -> ExitRecord {
    let decoded = message.and_then(|m| FromHelper::decode(&String::from_utf8_lossy(&m)));
    let (code, signal) = match decoded {
        Some(FromHelper::Exited { code, signal }) => (code, signal),
        // The helper died without a word: the command went with it.
        _ => (None, Some(libc::SIGKILL)),
    };
    ExitRecord {
        code,
        signal,
        at_ms: crate::time::now_ms(),
    }
}
