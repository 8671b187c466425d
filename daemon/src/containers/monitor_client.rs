//! The daemon's side of the monitor control protocol (see monitor::protocol).

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::monitor::protocol::{ExitRecord, Request, Response, encode};

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
