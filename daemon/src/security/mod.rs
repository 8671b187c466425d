//! What confines a container's processes beyond its namespaces: the capability
//! bounding set, the seccomp filter, and the policy both are built from.

pub mod capabilities;
pub mod policy;
pub mod seccomp;

pub use policy::SecurityPolicy;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{0}")]
    Invalid(String),
    #[error("seccomp: {what}: {message}")]
    Seccomp { what: String, message: String },
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
}

pub type Result<T> = std::result::Result<T, SecurityError>;

/// Splits a list key's value: names separated by commas and/or spaces.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split([',', ' ', '\t', '\n']).filter(|s| !s.is_empty())
}
