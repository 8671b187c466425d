//! Commands and processes of the host: every command here runs with a time limit.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::pidfd::Pidfd;

/// Longest any one command may run (the slowest is the debian image's first build).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a command to completion: its stdout, or an error with its stderr.
pub fn run(command: &mut Command) -> Result<String> {
    let output = output_within(command, COMMAND_TIMEOUT)?;
    ensure!(
        output.status.success(),
        "`{}` failed ({}): {}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command's output; a command still running after `timeout` is killed, so that
/// a hang becomes a failure with a reason instead of a bench that never ends.
pub fn output_within(command: &mut Command, timeout: Duration) -> Result<Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run `{}`", describe(command)))?;
    // Opened before anything can reap the child, so it names this very process.
    let handle = Pidfd::open(child.id() as i32)?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(timeout) {
        Ok(output) => Ok(output?),
        Err(_) => {
            handle.kill();
            bail!("`{}` still running after {timeout:?}; killed it", describe(command))
        }
    }
}

/// The command line, shortened for messages.
fn describe(command: &Command) -> String {
    let words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub fn parent_pid(pid: i32) -> Result<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, fields)| fields.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse().ok())
        .ok_or_else(|| anyhow!("no parent in /proc/{pid}/stat"))
}

pub fn apparent_size_mib(path: &Path) -> Result<u64> {
    let du = run(Command::new("du").args(["-s", "--apparent-size", "-BM"]).arg(path))?;
    du.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|mib| mib.parse().ok())
        .ok_or_else(|| anyhow!("du of {} said {du:?}", path.display()))
}
