use std::io;
use std::path::PathBuf;

use super::address::AddressError;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy {key} address \"{value}\": {source}")]
    Address {
        key: &'static str,
        value: String,
        source: AddressError,
    },
    #[error("proxy device is missing the \"{0}\" key")]
    MissingKey(&'static str),
    #[error("proxy device has an unknown key \"{0}\" (a proxy device takes type, listen and connect)")]
    UnknownKey(String),
    #[error("device of type \"{0}\" is not a proxy device")]
    NotAProxy(String),
    #[error("open the proxy log {}: {source}", path.display())]
    Log { path: PathBuf, source: io::Error },
    #[error("start the proxy helper {}: {source}", exe.display())]
    Start { exe: PathBuf, source: io::Error },
    /// The helper's own `error: ...` report, e.g. the listen address is taken. Like the
    /// other errors of `spawn`, it leaves naming the device and container to the caller.
    #[error("{0}")]
    Failed(String),
    #[error("the proxy helper {outcome}; see {}", log.display())]
    NotReady { outcome: String, log: PathBuf },
}
