//! The monitor's control protocol: one JSON object per line in each direction, over
//! the unix socket `<run dir>/<container>/monitor.sock`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Answered with `Running`.
    Status,
    /// Sends a signal to the init (through its pidfd). Answered with `Ok` or `Error`.
    Signal { signal: i32 },
    /// SIGKILL to every process of the container. Answered with `Ok`.
    Kill,
    /// Answered with `Exited` once the init is gone and the container is cleaned up.
    Wait,
    /// Answered with `Ok` carrying a pidfd of the init (SCM_RIGHTS): whoever joins the
    /// container's namespaces through it can't be misled by a reused PID.
    Pidfd,
    /// Answered with `Ok`; from then on the connection carries raw bytes: what the
    /// console shows, and what is typed into it.
    Console,
    /// Sets the console's window size. Answered with `Ok`.
    Resize { rows: u16, cols: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Running {
        pid: i32,
        monitor_pid: i32,
        started_at_ms: i64,
    },
    Ok,
    Error {
        message: String,
    },
    Exited(ExitRecord),
}

/// How a container's init ended. Also written to `<run dir>/<container>/exit.json`
/// so a daemon that was down at the time learns it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub at_ms: i64,
}

impl ExitRecord {
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(signal)) => {
                let name = crate::runtime::signals::name(signal);
                match signal {
                    // What the kernel does to a PID namespace's init that calls reboot(2).
                    libc::SIGINT => format!("halted or powered off ({name})"),
                    libc::SIGHUP => format!("rebooted ({name})"),
                    libc::SIGKILL => format!("killed ({name})"),
                    _ => format!("killed by {name}"),
                }
            }
            (None, None) => "ended".to_string(),
        }
    }

    /// The init asked for a reboot (kernel sends SIGHUP to a PID namespace's init).
    pub fn is_reboot(&self) -> bool {
        self.code.is_none() && self.signal == Some(libc::SIGHUP)
    }
}

impl Response {
    /// This monitor's answer to `Status`, and its report to the daemon once the init runs
    /// (on its stdout, where a failure is reported as `Error`).
    pub fn running(pid: i32, started_at_ms: i64) -> Self {
        Self::Running {
            pid,
            monitor_pid: std::process::id() as i32,
            started_at_ms,
        }
    }
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).expect("protocol messages always serialize");
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_line() {
        let line = encode(&Request::Signal { signal: 37 });
        assert_eq!(line, b"{\"op\":\"signal\",\"signal\":37}\n");
        let back: Request = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, Request::Signal { signal: 37 });
    }

    #[test]
    fn exit_descriptions() {
        let rec = |code, signal| ExitRecord { code, signal, at_ms: 0 };
        assert_eq!(rec(Some(3), None).describe(), "exited with code 3");
        assert_eq!(
            rec(None, Some(libc::SIGINT)).describe(),
            "halted or powered off (SIGINT)"
        );
        assert!(rec(None, Some(libc::SIGHUP)).is_reboot());
        assert!(!rec(Some(0), None).is_reboot());
    }
}
