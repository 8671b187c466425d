//! Asking a monitor for its container's init as a pidfd: how the helpers that step into
//! a container (sysc-exec, sysc-file) find it without trusting a bare PID.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::protocol::{Request, Response, encode};
use crate::runtime::fdpass;

#[derive(Debug)]
pub enum InitPidfdError {
    /// Nobody answers on the monitor's socket.
    NotRunning,
    Failed(String),
}

/// The init's pidfd, from the monitor listening on `socket`. Blocking.
pub fn request(socket: &Path) -> Result<OwnedFd, InitPidfdError> {
    let stream = UnixStream::connect(socket).map_err(|_| InitPidfdError::NotRunning)?;
    (&stream)
        .write_all(&encode(&Request::Pidfd))
        .map_err(|e| InitPidfdError::Failed(format!("ask the monitor for the init: {e}")))?;
    let (answer, mut fds) =
        fdpass::recv(stream.as_fd()).map_err(|e| InitPidfdError::Failed(format!("read the init's pidfd: {e}")))?;
    if !fds.is_empty() {
        return Ok(fds.remove(0));
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    Err(InitPidfdError::Failed(
        match serde_json::from_str::<Response>(answer.lines().next().unwrap_or_default()) {
            Ok(Response::Error { message }) => format!("get the container's init: {message}"),
            _ => "get the container's init: the monitor sent no pidfd".into(),
        },
    ))
}
