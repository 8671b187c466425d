//! Running the storage tools (btrfs, cp, mount, ...) with their stderr in our errors.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::{Result, StorageError};

pub fn run(program: &str, args: &[&std::ffi::OsStr]) -> Result<String> {
    let rendered = std::iter::once(program.to_string())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(program);
    command.args(args);
    // A copy must not outlive a daemon killed mid-way: recovery removes its target.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let output = command.output().map_err(|e| StorageError::Command {
        command: rendered.clone(),
        output: e.to_string(),
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(StorageError::Command {
            command: rendered,
            output: format!("{}: {}", output.status, stderr.trim()),
        })
    }
}

/// `du -sb`: apparent size in bytes; 0 when it cannot be read.
pub fn disk_usage(path: &Path) -> u64 {
    run("du", &["-sbx".as_ref(), path.as_os_str()])
        .ok()
        .and_then(|out| out.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn is_available(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
