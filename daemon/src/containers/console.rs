//! The console: attach through the monitor (which owns the pty master and its log),
//! and the log itself.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{Live, Manager};
use crate::error::{Error, Result};
use crate::exec::WindowSize;
use crate::monitor::protocol::{Request, Response, encode};

/// The most of the log `console_log` returns (the monitor keeps two files of 1 MiB).
const LOG_LIMIT: usize = 2 << 20;

/// A connection that carries the console's raw bytes both ways.
pub struct ConsoleConnection {
    pub reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    pub writer: tokio::net::unix::OwnedWriteHalf,
}

impl Manager {
    pub async fn console(&self, name: &str, window: Option<WindowSize>) -> Result<ConsoleConnection> {
        self.record(name)?;
        if !matches!(self.probe(name).await, Live::Running { .. }) {
            return Err(Error::FailedPrecondition(format!("container {name} is not running")));
        }
        if let Some(size) = window {
            self.console_resize(name, size).await?;
        }
        let stream = UnixStream::connect(self.settings.monitor_socket(name))
            .await
            .map_err(|e| Error::internal(format!("reach the monitor of {name}"), e))?;
        let (read, mut writer) = stream.into_split();
        let mut reader = BufReader::new(read);
        writer
            .write_all(&encode(&Request::Console))
            .await
            .map_err(|e| Error::internal("attach to the console", e))?;
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .await
            .map_err(|e| Error::internal("attach to the console", e))?;
        match serde_json::from_str::<Response>(&line) {
            Ok(Response::Ok) => Ok(ConsoleConnection { reader, writer }),
            _ => Err(Error::Internal(format!(
                "the monitor of {name} refused the console: {line}"
            ))),
        }
    }

    pub async fn console_resize(&self, name: &str, size: WindowSize) -> Result<()> {
        let client = super::monitor_client::MonitorClient::new(self.settings.monitor_socket(name));
        let request = Request::Resize {
            rows: size.rows,
            cols: size.cols,
        };
        match client.request(&request).await {
            Ok(Response::Ok) => Ok(()),
            Ok(Response::Error { message }) => Err(Error::Internal(message)),
            other => Err(Error::Internal(format!("resize the console of {name}: {other:?}"))),
        }
    }

    /// What the console showed: the rotated log and the current one, at most
    /// LOG_LIMIT bytes, newest last. Works whether or not the container runs.
    pub async fn console_log(&self, name: &str) -> Result<Vec<u8>> {
        self.record(name)?;
        let log = self.volume(name)?.join("console.log");
        let mut rotated = log.clone().into_os_string();
        rotated.push(".1");
        let mut data = tokio::fs::read(&rotated).await.unwrap_or_default();
        data.extend(tokio::fs::read(&log).await.unwrap_or_default());
        if data.len() > LOG_LIMIT {
            data.drain(..data.len() - LOG_LIMIT);
        }
        Ok(data)
    }
}
