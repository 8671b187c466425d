//! Messages on the helper's control socket (SOCK_SEQPACKET, one message each).
//!
//! helper → daemon: `started PID HOST_PID` (with the pty master attached when there is
//! a tty), `error invalid|state|internal MESSAGE`, `exit code N` / `exit signal N`.
//! daemon → helper: `signal N`, `kill`.

/// Whose fault a failure before the command ran was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request (a uid outside the range, a missing cwd, ...).
    Request,
    /// The container's state (it stopped meanwhile).
    State,
    /// The host.
    Host,
}

impl Fault {
    fn word(self) -> &'static str {
        match self {
            Fault::Request => "invalid",
            Fault::State => "state",
            Fault::Host => "internal",
        }
    }

    fn from_word(word: &str) -> Self {
        match word {
            "invalid" => Fault::Request,
            "state" => Fault::State,
            _ => Fault::Host,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromHelper {
    Started { pid: i32, host_pid: i32 },
    Error { fault: Fault, message: String },
    Exited { code: Option<i32>, signal: Option<i32> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToHelper {
    Signal(i32),
    Kill,
}

impl FromHelper {
    pub fn encode(&self) -> String {
        match self {
            Self::Started { pid, host_pid } => format!("started {pid} {host_pid}"),
            Self::Error { fault, message } => format!("error {} {message}", fault.word()),
            Self::Exited { code: Some(code), .. } => format!("exit code {code}"),
            Self::Exited { signal, .. } => format!("exit signal {}", signal.unwrap_or(0)),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        let mut words = text.splitn(3, ' ');
        match (words.next()?, words.next(), words.next()) {
            ("started", Some(pid), Some(host_pid)) => Some(Self::Started {
                pid: pid.parse().ok()?,
                host_pid: host_pid.parse().ok()?,
            }),
            ("error", Some(kind), message) => Some(Self::Error {
                fault: Fault::from_word(kind),
                message: message.unwrap_or_default().to_string(),
            }),
            ("exit", Some("code"), Some(n)) => Some(Self::Exited {
                code: Some(n.parse().ok()?),
                signal: None,
            }),
            ("exit", Some("signal"), Some(n)) => Some(Self::Exited {
                code: None,
                signal: Some(n.parse().ok()?),
            }),
            _ => None,
        }
    }
}

impl ToHelper {
    pub fn encode(&self) -> String {
        match self {
            Self::Signal(n) => format!("signal {n}"),
            Self::Kill => "kill".into(),
        }
    }

    pub fn decode(text: &str) -> Option<Self> {
        match text.split_once(' ') {
            Some(("signal", n)) => n.parse().ok().map(Self::Signal),
            None if text == "kill" => Some(Self::Kill),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for message in [
            FromHelper::Started {
                pid: 7,
                host_pid: 12345,
            },
            FromHelper::Error {
                fault: Fault::Request,
                message: "cwd /nope: No such file or directory".into(),
            },
            FromHelper::Error {
                fault: Fault::State,
                message: "container c is not running".into(),
            },
            FromHelper::Error {
                fault: Fault::Host,
                message: "setns: EPERM".into(),
            },
            FromHelper::Exited {
                code: Some(127),
                signal: None,
            },
            FromHelper::Exited {
                code: None,
                signal: Some(15),
            },
        ] {
            assert_eq!(FromHelper::decode(&message.encode()), Some(message));
        }
        for message in [ToHelper::Signal(2), ToHelper::Kill] {
            assert_eq!(ToHelper::decode(&message.encode()), Some(message));
        }
        assert_eq!(ToHelper::decode("signal x"), None);
        assert_eq!(FromHelper::decode("bogus"), None);
    }
}
