use std::fmt::Display;
use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The stream ends before the archive does.
    #[error("archive is truncated: {0}")]
    Truncated(String),
    /// The stream is not a well-formed archive: bad tar or zstd data, a digest mismatch.
    #[error("archive is corrupt: {0}")]
    Corrupt(String),
    /// An entry that is refused as it is: a checksum mismatch, an unsupported type, ...
    #[error("archive entry {path}: {reason}")]
    Entry { path: String, reason: String },
    /// An entry whose path would leave its destination directory.
    #[error("archive entry {path} escapes its directory")]
    Unsafe { path: String },
    /// Reading the archive stream failed: its sender or the connection went wrong.
    #[error("read archive: {0}")]
    Input(io::Error),
    /// Writing the archive stream failed.
    #[error("write archive: {0}")]
    Output(io::Error),
    /// A file system operation on this host failed, e.g. "write /path: No space left on device".
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
}

impl ArchiveError {
    /// True when the archive (or the stream that carries it) is at fault, false when this
    /// host is (a full disk, a file that cannot be read, a closed output).
    pub fn is_bad_input(&self) -> bool {
        match self {
            ArchiveError::Truncated(_)
            | ArchiveError::Corrupt(_)
            | ArchiveError::Entry { .. }
            | ArchiveError::Unsafe { .. }
            | ArchiveError::Input(_) => true,
            ArchiveError::Output(_) | ArchiveError::Io { .. } => false,
        }
    }

    pub(super) fn entry(path: &[u8], reason: impl Display) -> ArchiveError {
        ArchiveError::Entry {
            path: show(path),
            reason: reason.to_string(),
        }
    }
}

/// For `map_err`: a failed host operation `op` ("write", "create", ...) on `path`.
pub(super) fn io_failed<'a, E: Into<io::Error>>(op: &'a str, path: &'a Path) -> impl FnOnce(E) -> ArchiveError + 'a {
    move |error| ArchiveError::Io {
        what: format!("{op} {}", path.display()),
        error: error.into(),
    }
}

/// An archive path for a message: any bytes are possible, control characters are escaped
/// so that a name with a newline cannot forge a line of output.
pub(super) fn show(path: &[u8]) -> String {
    let mut shown = String::with_capacity(path.len());
    for c in String::from_utf8_lossy(path).chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}
