//! The daemon's side of the monitor launcher (see monitor::launcher): started with the
//! first container, started again whenever it is gone.

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use super::seqpacket::SeqPacket;
use super::view::Live;
use crate::error::{Error, Result};
use crate::monitor::launcher::MAX_SPEC;
use crate::monitor::protocol::Response;
use crate::runtime::ContainerSpec;

/// How long a monitor may take to report that the init runs (a cold page cache and a
/// loaded machine can make mounts slow).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the launcher may leave a start unread before it counts as stuck.
const HAND_OVER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Launcher {
    exe: PathBuf,
    running: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    socket: SeqPacket,
    process: Child,
}

impl Launcher {
    /// `exe`: the sysc-monitor binary.
    pub fn new(exe: &Path) -> Self {
        Self {
            exe: exe.to_path_buf(),
            running: tokio::sync::Mutex::new(None),
        }
    }

    /// Has a monitor forked for `spec` and waits for it to report that the init runs;
    /// the container as it reported it. The monitor writes its log to `log`. It outlives
    /// the daemon, and reaches it only through its socket.
    pub async fn start_monitor(&self, spec: &ContainerSpec, log: &Path) -> Result<Live> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::internal(format!("open {}", log.display()), e))?;
        let spec_json = serde_json::to_vec(spec).map_err(|e| Error::internal("encode the container spec", e))?;
        if spec_json.len() > MAX_SPEC {
            return Err(Error::Internal(format!(
                "the spec of {} is {} bytes, more than a monitor takes",
                spec.name,
                spec_json.len()
            )));
        }
        let (report, report_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::internal("make a pipe", e))?;
        self.hand_over(&spec_json, [log_file.as_raw_fd(), report_end.as_raw_fd()])
            .await?;
        // The monitor holds the only write end now: its exit is our end of file.
        drop(report_end);
        let report =
            pipe::Receiver::from_owned_fd(report).map_err(|e| Error::internal("read the monitor's report", e))?;
        let mut line = String::new();
        match tokio::time::timeout(START_TIMEOUT, BufReader::new(report).read_line(&mut line)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Error::internal("read the monitor's report", e)),
            Err(_) => {
                return Err(Error::Internal(format!(
                    "the monitor did not report within {START_TIMEOUT:?}"
                )));
            }
        }
        if line.is_empty() {
            return Err(Error::Internal(format!(
                "the monitor exited without a report (see {})",
                log.display()
            )));
        }
        match serde_json::from_str(&line) {
            Ok(Response::Running {
                pid,
                monitor_pid,
                started_at_ms,
            }) => Ok(Live::Running {
                pid,
                monitor_pid,
                started_at_ms,
                frozen: false,
            }),
            Ok(Response::Error { message }) => Err(Error::Internal(message)),
            _ => Err(Error::Internal(format!("monitor reported {}", line.trim()))),
        }
    }

    /// Sends a start to the launcher, starting it first if there is none or the one
    /// there was is gone or stuck.
    async fn hand_over(&self, spec: &[u8], fds: [RawFd; 2]) -> Result<()> {
        let mut running = self.running.lock().await;
        let mut last_error = None;
        for _ in 0..2 {
            let launcher = match running.as_mut() {
                Some(launcher) => launcher,
                None => running.insert(self.spawn()?),
            };
            match tokio::time::timeout(HAND_OVER_TIMEOUT, launcher.socket.send(spec, &fds)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last_error = Some(e.to_string()),
                Err(_) => last_error = Some(format!("it read nothing for {HAND_OVER_TIMEOUT:?}")),
            }
            if let Some(mut gone) = running.take() {
                tracing::warn!(
                    "monitor launcher lost ({}); starting another",
                    last_error.as_deref().unwrap_or("")
                );
                let _ = gone.process.start_kill();
            }
        }
        Err(Error::Internal(format!(
            "hand a start to the monitor launcher: {}",
            last_error.unwrap_or_default()
        )))
    }

    fn spawn(&self) -> Result<Running> {
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
            .map_err(|e| Error::internal("make the monitor launcher's socket", e))?;
        let process = Command::new(&self.exe)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| Error::internal(format!("run {}", self.exe.display()), e))?;
        let socket = SeqPacket::new(ours).map_err(|e| Error::internal("watch the monitor launcher's socket", e))?;
        Ok(Running { socket, process })
    }
}
