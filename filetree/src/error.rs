use std::io;

use nix::errno::Errno;

/// Why a tree could not be written or extracted. Paths are as in the archive (`top/a/b`).
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// The stream ended early: cut in a file's data, in a header, or before the end-of-archive marker.
    #[error("archive is truncated: {0}")]
    Truncated(String),
    /// Not a tar stream, a bad checksum or number field, or not laid out like one made by write_tree.
    #[error("archive is corrupt: {0}")]
    Corrupt(String),
    /// One entry cannot be extracted (or written); `reason` completes the sentence after the path.
    #[error("{path} {reason}")]
    Entry { path: String, reason: String },
    /// An entry that would land outside the destination: absolute, `..`, through a symlink, another top.
    #[error("archive entry {path} escapes its directory")]
    Unsafe { path: String },
    /// Reading the archive stream itself failed (the connection broke, not the archive's content).
    #[error("read archive: {}", describe(.0))]
    Input(io::Error),
    /// Writing the archive stream failed.
    #[error("write archive: {}", describe(.0))]
    Output(io::Error),
    /// A system call on the tree failed; `what` is e.g. "write top/a/b".
    #[error("{what}: {}", describe(error))]
    Io { what: String, error: io::Error },
}

impl TreeError {
    /// True when the archive (or its stream) is to blame rather than the machine doing the work:
    /// the sender should hear about it as bad input, not as an internal failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            TreeError::Truncated(_)
                | TreeError::Corrupt(_)
                | TreeError::Entry { .. }
                | TreeError::Unsafe { .. }
                | TreeError::Input(_)
        )
    }

    pub(crate) fn entry(path: &[u8], reason: impl Into<String>) -> Self {
        TreeError::Entry {
            path: show(path),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsafe_path(path: &[u8]) -> Self {
        TreeError::Unsafe { path: show(path) }
    }

    /// `what` is a verb, `path` the archive path it was done to: "create", b"top/a" → "create top/a: ...".
    pub(crate) fn sys(what: &str, path: &[u8], errno: Errno) -> Self {
        TreeError::Io {
            what: format!("{what} {}", show(path)),
            error: io::Error::from(errno),
        }
    }

    pub(crate) fn io(what: &str, path: &[u8], error: io::Error) -> Self {
        TreeError::Io {
            what: format!("{what} {}", show(path)),
            error,
        }
    }
}

/// A path (or other archive text) for messages. Names may be any bytes and may come from a
/// hostile archive, while messages end up on a terminal: control characters are escaped so a
/// name cannot move the cursor or fake another line, and invalid UTF-8 shows as U+FFFD.
pub(crate) fn show(path: &[u8]) -> String {
    let mut text = String::with_capacity(path.len());
    for c in String::from_utf8_lossy(path).chars() {
        if c.is_control() {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text
}

/// A tar crate error about the archive, which may quote the archive's bytes at length.
pub(crate) fn corrupt(error: &io::Error) -> TreeError {
    const LIMIT: usize = 200;
    let mut text = show(error.to_string().as_bytes());
    if let Some((cut, _)) = text.char_indices().nth(LIMIT) {
        text.truncate(cut);
        text.push_str("...");
    }
    TreeError::Corrupt(text)
}

/// An io error without the "(os error N)" suffix and lower case, like the rest of our messages.
fn describe(error: &io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => error.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_path_in_lower_case() {
        let e = TreeError::sys("write", b"top/a/b", Errno::ENOSPC);
        assert_eq!(e.to_string(), "write top/a/b: no space left on device");
        assert!(!e.is_bad_input());
        let e = TreeError::entry(b"top/d", "is a directory");
        assert_eq!(e.to_string(), "top/d is a directory");
        assert!(e.is_bad_input());
        let e = TreeError::unsafe_path(b"top/../x");
        assert_eq!(e.to_string(), "archive entry top/../x escapes its directory");
    }

    #[test]
    fn hostile_names_cannot_drive_the_terminal() {
        let e = TreeError::entry(b"top/a\n\x1b[2Jb\xff", "is a directory");
        assert_eq!(e.to_string(), "top/a\\n\\u{1b}[2Jb\u{fffd} is a directory");
        let e = corrupt(&io::Error::other("x".repeat(1000)));
        assert_eq!(e.to_string().len(), "archive is corrupt: ".len() + 203);
    }
}
