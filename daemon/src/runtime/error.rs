use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// The container's setup process reported a failure before its init ran.
    #[error("container setup failed: {0}")]
    Child(String),
    #[error("{0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// Adds what was being done to a low-level error, so messages name the thing that failed.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl Display) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, what: impl Display) -> Result<T> {
        self.map_err(|source| RuntimeError::Sys {
            what: what.to_string(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx(self, what: impl Display) -> Result<T> {
        self.map_err(|source| RuntimeError::Io {
            what: what.to_string(),
            source,
        })
    }
}
