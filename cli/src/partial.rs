//! A file written beside where it belongs and put in its place in one rename once it is
//! complete, so nobody sees it half written. Where the file system offers O_TMPFILE it has
//! no name at all until then, so nothing is left behind however sysc ends (kill -9 too);
//! elsewhere it has a hidden temporary name and is removed when dropped.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::AtFlags;

use crate::connect::os_message;
use tempfile::{Builder, NamedTempFile};

pub struct Partial {
    file: File,
    /// The temporary name, when the file has one.
    named: Option<NamedTempFile<()>>,
    dir: PathBuf,
    prefix: String,
}

impl Partial {
    /// Made in `target`'s directory, readable by its owner only while written (an export
    /// holds the container's keys). `prefix` starts the temporary name, if one is needed.
    pub fn beside(target: &Path, prefix: &str) -> anyhow::Result<Self> {
        let dir = directory_of(target).to_path_buf();
        Self::open_in(dir, prefix).map_err(|err| {
            anyhow::anyhow!(
                "create a file in {}: {}",
                directory_of(target).display(),
                os_message(&err)
            )
        })
    }

    fn open_in(dir: PathBuf, prefix: &str) -> io::Result<Self> {
        let unnamed = File::options()
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_TMPFILE)
            .open(&dir);
        match unnamed {
            Ok(file) => Ok(Self {
                file,
                named: None,
                dir,
                prefix: prefix.to_string(),
            }),
            // No O_TMPFILE on this file system (or kernel): a hidden name instead.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(nix::libc::EOPNOTSUPP | nix::libc::EISDIR | nix::libc::EINVAL)
                ) =>
            {
                let mut file = None;
                let named = Builder::new().prefix(prefix).make_in(&dir, |path| {
                    file = Some(File::options().write(true).create_new(true).mode(0o600).open(path)?);
                    Ok(())
                })?;
                Ok(Self {
                    file: file.expect("made with the name"),
                    named: Some(named),
                    dir,
                    prefix: prefix.to_string(),
                })
            }
            Err(err) => Err(err),
        }
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Puts it in `target`'s place (which it replaces), under its final name.
    pub fn persist(self, target: &Path) -> io::Result<()> {
        let named = match self.named {
            Some(named) => named,
            // Linked in under a temporary name first: linkat cannot replace a file.
            None => {
                let fd = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                Builder::new().prefix(&self.prefix).make_in(&self.dir, |path| {
                    nix::unistd::linkat(
                        nix::fcntl::AT_FDCWD,
                        fd.as_str(),
                        nix::fcntl::AT_FDCWD,
                        path,
                        AtFlags::AT_SYMLINK_FOLLOW,
                    )
                    .map_err(io::Error::from)
                })?
            }
        };
        named.persist(target).map(drop).map_err(|err| err.error)
    }
}

pub fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// The names in `dir`, sorted: what a test sees of partial files.
#[cfg(test)]
pub(crate) fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn nameless_until_persisted_then_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        std::fs::write(&target, "old").unwrap();
        let mut partial = Partial::beside(&target, ".x-").unwrap();
        partial.file().write_all(b"new").unwrap();
        assert_eq!(entries(dir.path()), ["out"], "an unnamed file while written");
        partial.persist(&target).unwrap();
        assert_eq!(entries(dir.path()), ["out"]);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }

    #[test]
    fn dropped_it_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut partial = Partial::beside(&dir.path().join("out"), ".x-").unwrap();
        partial.file().write_all(b"half").unwrap();
        drop(partial);
        assert!(entries(dir.path()).is_empty());
    }
}
