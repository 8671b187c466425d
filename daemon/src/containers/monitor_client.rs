//! The daemon's side of the monitor control protocol (see monitor::protocol).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::Command;

use crate::error::{Error, Result};
use crate::monitor::protocol::{ExitRecord, Request, Response, encode};
use crate::runtime::ContainerSpec;

/// How long a monitor may take to report that the init runs (a cold page cache and a
/// loaded machine can make mounts slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);

struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Connection {
    async fn open(socket: &Path) -> io::Result<Self> {
        let (read, write) = UnixStream::connect(socket).await?.into_split();
        Ok(Self {
            reader: BufReader::new(read),
            writer: write,
        })
    }

    async fn send(&mut self, request: &Request) -> io::Result<()> {
        self.writer.write_all(&encode(request)).await
    }

    async fn receive(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "monitor closed the connection",
            ));
        }
        serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

pub struct MonitorClient {
    socket: PathBuf,
}

/// A connection that has asked to be told when the container's init is gone.
pub struct ExitWaiter(Connection);

impl ExitWaiter {
    pub async fn exited(&mut self) -> io::Result<ExitRecord> {
        match self.0.receive().await? {
            Response::Exited(record) => Ok(record),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected answer {other:?}"),
            )),
        }
    }
}

impl MonitorClient {
    pub fn new(socket: PathBuf) -> Self {
        Self { socket }
    }

    pub async fn request(&self, request: &Request) -> io::Result<Response> {
        let mut connection = Connection::open(&self.socket).await?;
        connection.send(request).await?;
        connection.receive().await
    }

    pub async fn waiter(&self) -> io::Result<ExitWaiter> {
        let mut connection = Connection::open(&self.socket).await?;
        connection.send(&Request::Wait).await?;
        Ok(ExitWaiter(connection))
    }
}

/// Starts a monitor for `spec` and waits for it to report that the init runs.
/// The monitor stays our child until it exits (reaped in the background); after a
/// daemon restart it is nobody's child and reaches us only through its socket.
pub async fn spawn_monitor(exe: &Path, spec: &ContainerSpec, log: &Path) -> Result<i32> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::internal(format!("open {}", log.display()), e))?;
    let mut child = Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::internal(format!("run {}", exe.display()), e))?;
    let spec_json = serde_json::to_vec(spec).map_err(|e| Error::internal("encode the container spec", e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    let report = async move {
        stdin.write_all(&spec_json).await?;
        drop(stdin);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        io::Result::Ok(line)
    };
    let report = tokio::time::timeout(START_TIMEOUT, report).await;
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    let line = match report {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => return Err(Error::internal("read the monitor's report", e)),
        Err(_) => {
            return Err(Error::Internal(format!(
                "the monitor did not report within {START_TIMEOUT:?}"
            )));
        }
    };
    let line = line.trim();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .parse()
            .map_err(|_| Error::Internal(format!("monitor reported a bad pid: {line}")));
    }
    let message = line.strip_prefix("error ").unwrap_or(line);
    let message = if message.is_empty() {
        format!("the monitor exited without a report (see {})", log.display())
    } else {
        message.to_string()
    };
    Err(Error::Internal(message))
}
