//! Who may use the API over the network: the server's own certificate, the store of
//! trusted client certificates and enrolment tokens, and the TLS listener that checks
//! every call against them.

pub mod access;
pub mod hub;
pub mod identity;
pub mod listener;
pub mod store;
mod verifier;

pub use hub::TrustHub;
pub use identity::ServerIdentity;
pub use store::TrustStore;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    #[error("{what}: {message}")]
    Host { what: String, message: String },
}

impl TrustError {
    pub fn host(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Host {
            what: what.into(),
            message: err.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, TrustError>;

pub use sysc_proto::token::certificate_fingerprint as fingerprint;

/// How a fingerprint is shown: "SHA256:" and its first 12 hex digits.
pub fn short(fingerprint: &str) -> String {
    format!("SHA256:{}", &fingerprint[..fingerprint.len().min(12)])
}
