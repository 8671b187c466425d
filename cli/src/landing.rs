//! Where a file the client writes (a pulled file, an export) lands, decided as cp decides:
//! a new name or a regular file is replaced whole, anything else that exists is written
//! into. Renaming over /dev/null or a FIFO would put a regular file in its place.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};

use crate::connect::os_message;

pub enum Landing {
    /// Written under a temporary name beside this path and renamed over it when complete,
    /// so it is never seen half written. A symlink to a regular file has been followed
    /// here: the link stays and the file it names is replaced.
    Replace(PathBuf),
    /// A device, FIFO or socket that exists, such as /dev/null or /dev/stdout on a pipe:
    /// opened and written into.
    Into(PathBuf),
}

pub fn landing(path: &Path) -> anyhow::Result<Landing> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => bail!("{} is a directory", path.display()),
        Ok(meta) if meta.is_file() => std::fs::canonicalize(path)
            .map(Landing::Replace)
            .map_err(|err| anyhow!("resolve {}: {}", path.display(), os_message(&err))),
        Ok(_) => Ok(Landing::Into(path.to_path_buf())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if path.symlink_metadata().is_ok() {
                bail!("not writing through dangling symlink {}", path.display());
            }
            Ok(Landing::Replace(path.to_path_buf()))
        }
        Err(err) => bail!("{}: {}", path.display(), os_message(&err)),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn new_names_and_files_are_replaced_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        assert!(matches!(landing(&new).unwrap(), Landing::Replace(path) if path == new));
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let link = dir.path().join("link");
        symlink("file", &link).unwrap();
        let real = std::fs::canonicalize(&file).unwrap();
        assert!(matches!(landing(&link).unwrap(), Landing::Replace(path) if path == real));
    }

    #[test]
    fn devices_are_written_into_and_dangling_links_and_directories_refused() {
        assert!(matches!(landing(Path::new("/dev/null")).unwrap(), Landing::Into(_)));
        let dir = tempfile::tempdir().unwrap();
        let dangling = dir.path().join("dangling");
        symlink("nowhere", &dangling).unwrap();
        let err = landing(&dangling).err().unwrap().to_string();
        assert!(err.starts_with("not writing through dangling symlink"), "{err}");
        let err = landing(dir.path()).err().unwrap().to_string();
        assert!(err.ends_with("is a directory"), "{err}");
    }
}
