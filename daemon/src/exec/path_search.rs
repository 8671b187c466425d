//! Finding a command the way a shell does: a name with a '/' is a path, anything else
//! is looked up in PATH (from the environment the command will get).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a command can't be run, with the exit status a shell would give.
#[derive(Debug, PartialEq, Eq)]
pub enum NotRunnable {
    /// 127
    NotFound,
    /// 126
    PermissionDenied,
}

pub fn find(command: &str, env: &[String]) -> Result<PathBuf, NotRunnable> {
    if command.is_empty() {
        return Err(NotRunnable::NotFound);
    }
    if command.contains('/') {
        return check(Path::new(command));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        match check(&Path::new(dir).join(command)) {
            Ok(found) => return Ok(found),
            Err(NotRunnable::PermissionDenied) => denied = true,
            Err(NotRunnable::NotFound) => {}
        }
    }
    Err(if denied {
        NotRunnable::PermissionDenied
    } else {
        NotRunnable::NotFound
    })
}

fn check(path: &Path) -> Result<PathBuf, NotRunnable> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Err(NotRunnable::NotFound);
    };
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Err(NotRunnable::NotFound);
    };
    // SAFETY: access(2) with a valid C string.
    let executable = unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } == 0;
    if meta.is_file() && executable {
        Ok(path.to_path_buf())
    } else {
        Err(NotRunnable::PermissionDenied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn searches_path_like_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "data").unwrap();
        let env = vec![format!("PATH=/nonexistent:{}", dir.path().display())];
        assert_eq!(find("tool", &env), Ok(tool.clone()));
        assert_eq!(find(tool.to_str().unwrap(), &env), Ok(tool));
        assert_eq!(find("missing", &env), Err(NotRunnable::NotFound));
        assert_eq!(find("", &env), Err(NotRunnable::NotFound));
        // Even root needs an x bit somewhere for X_OK on a regular file.
        assert_eq!(find("plain", &env), Err(NotRunnable::PermissionDenied));
        assert_eq!(
            find(dir.path().to_str().unwrap(), &env),
            Err(NotRunnable::PermissionDenied)
        );
    }
}
