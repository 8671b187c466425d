//! The daemon's error type. Each variant says what kind of failure it is, which is
//! what the API turns into a gRPC status code (see api::status).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// What the request was based on changed meanwhile: read again and retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("database: {0}")]
    Db(#[from] sled::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn internal(what: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Error::Internal(format!("{what}: {err}"))
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => Error::Db(e),
        }
    }
}
