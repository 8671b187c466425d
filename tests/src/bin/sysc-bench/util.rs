//! Commands and processes of the host: every command here runs with a time limit.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::pidfd::Pidfd;

/// Longest any one command may run (the slowest is the debian image's first build).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

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

/// What `run_counted` saw of a command.
pub struct Counted {
    /// From just before the spawn until the command had exited and been reaped.
    pub elapsed: Duration,
    /// Everything it wrote to stdout, counted and dropped.
    pub stdout_bytes: u64,
    /// Its peak resident set (and that of any child it waited for), in KiB.
    pub max_rss_kib: u64,
}

/// Runs a command as a script would (stdin from /dev/null, stdout and stderr pipes, no
/// terminal), timed from just before the spawn until it has exited. Its stdout is read
/// as it comes and only counted, so it may be as large as it likes. A command that
/// fails, or still runs after `timeout` (then killed), is an error with its stderr.
pub fn run_counted(command: &mut Command, timeout: Duration) -> Result<Counted> {
    // Allocated before the clock starts.
    let mut buffer = vec![0; 1 << 20];
    let began = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run `{}`", describe(command)))?;
    let deadline = began + timeout;
    let counted = match read_to_exit(&mut child, deadline, &mut buffer) {
        Ok((stdout_bytes, stderr)) => reap(&child).and_then(|(status, max_rss_kib)| {
            let elapsed = began.elapsed();
            ensure!(
                status.success(),
                "failed ({status}): {}",
                String::from_utf8_lossy(&stderr).trim()
            );
            Ok(Counted {
                elapsed,
                stdout_bytes,
                max_rss_kib,
            })
        }),
        Err(err) => {
            // Not reaped yet on the way here, unless it failed on its own: a no-op then.
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    };
    counted.with_context(|| format!("`{}`", describe(command)))
}

/// Reaps a child that has exited. wait4(2) rather than `Child::wait`, for the peak RSS
/// that only the reaping parent is told.
fn reap(child: &Child) -> Result<(ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: all zeroes is a valid rusage, which wait4 overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4(2) of our own child, with pointers to locals that outlive the call.
        let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
        match reaped {
            -1 if Errno::last() == Errno::EINTR => continue,
            -1 => return Err(Errno::last()).context("wait4 for the command"),
            _ => break,
        }
    }
    // ru_maxrss is in KiB on Linux.
    Ok((
        ExitStatus::from_raw(status),
        u64::try_from(usage.ru_maxrss).unwrap_or(0),
    ))
}

/// Reads the child's stdout (counted) and stderr (kept) to their ends, then waits until it
/// has exited, without reaping it; all before `deadline`.
fn read_to_exit(child: &mut Child, deadline: Instant, buffer: &mut [u8]) -> Result<(u64, Vec<u8>)> {
    let pipe = |pipe: Option<OwnedFd>| pipe.map(File::from).ok_or_else(|| anyhow!("no pipe"));
    let stdout = pipe(child.stdout.take().map(OwnedFd::from))?;
    let stderr = pipe(child.stderr.take().map(OwnedFd::from))?;
    let handle = Pidfd::open(child.id() as i32)?;
    let (mut stdout_bytes, mut kept) = (0, Vec::new());
    // Either pipe may fill while we wait for the other: poll both until both are at their end.
    let files = [&stdout, &stderr];
    let mut open = [true, true];
    while open.contains(&true) {
        let left = PollTimeout::try_from(remaining(deadline)?)?;
        let polled: Vec<usize> = (0..files.len()).filter(|&index| open[index]).collect();
        let mut fds: Vec<PollFd> = polled
            .iter()
            .map(|&index| PollFd::new(files[index].as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, left) {
            Err(Errno::EINTR) => continue,
            result => result.context("poll the command's output")?,
        };
        // Readable, or at its end (POLLHUP): a read tells which.
        let ready: Vec<usize> = polled
            .into_iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|events| !events.is_empty()))
            .map(|(index, _)| index)
            .collect();
        for index in ready {
            let mut file = files[index];
            let read = match file.read(buffer) {
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                read => read.context("read the command's output")?,
            };
            match (index, read) {
                (_, 0) => open[index] = false,
                (0, read) => stdout_bytes += read as u64,
                (_, read) => kept.extend_from_slice(&buffer[..read]),
            }
        }
    }
    // The pipes close as the command exits, just before it can be waited for.
    ensure!(
        handle.wait_for_exit(remaining(deadline)?)?,
        "still running at the deadline; killed it"
    );
    Ok((stdout_bytes, kept))
}

fn remaining(deadline: Instant) -> Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    ensure!(!left.is_zero(), "still running at the deadline; killed it");
    Ok(left)
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
    Ok(apparent_size_bytes(path)?.div_ceil(1 << 20))
}

/// What the files under `path` hold, as `du --apparent-size` counts it.
pub fn apparent_size_bytes(path: &Path) -> Result<u64> {
    let du = run(Command::new("du").args(["-s", "--apparent-size", "-B1"]).arg(path))?;
    du.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|bytes| bytes.parse().ok())
        .ok_or_else(|| anyhow!("du of {} said {du:?}", path.display()))
}

/// The type of the filesystem that holds `path` ("ext4", "btrfs"), as findmnt names it.
pub fn filesystem_type(path: &Path) -> Result<String> {
    let fstype = run(Command::new("findmnt").args(["-n", "-o", "FSTYPE", "-T"]).arg(path))?;
    Ok(fstype.trim().to_string())
}

/// A failed clean-up step is no measurement: the final clean-up gets another go.
pub fn complain(cleaned: Result<()>) {
    if let Err(err) = cleaned {
        eprintln!("  clean-up: {err:#}");
    }
}

/// Removes a file or a whole directory tree; nothing if it is not there.
pub fn remove_if_there(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Err(err) if err.kind() != ErrorKind::NotFound => Err(err).with_context(|| format!("remove {}", path.display())),
        _ => Ok(()),
    }
}

/// Runs its closure when dropped: a scenario's clean-up, on every way out of it
/// (an error, a Ctrl-C noticed between steps).
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The JSON array `sysc ARGS --format json` printed as `text`.
pub fn json_list(args: &[&str], text: &str) -> Result<Vec<serde_json::Value>> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("parse `sysc {}`", args.join(" ")))?;
    value
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("`sysc {}` gave no list", args.join(" ")))
}
