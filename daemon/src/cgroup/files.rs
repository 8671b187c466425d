//! File operations shared by both cgroup drivers.

use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{CgroupError, Result};

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// (mount point, filesystem type) of every mount in this process's namespace.
pub(super) fn read_mounts() -> io::Result<Vec<(PathBuf, String)>> {
    Ok(fs::read_to_string("/proc/self/mounts")?
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let _source = fields.next()?;
            let target = fields.next()?.replace("\\040", " ");
            let fstype = fields.next()?;
            Some((PathBuf::from(target), fstype.to_string()))
        })
        .collect())
}

pub(super) fn write(path: &Path, value: &str) -> Result<()> {
    fs::write(path, value).map_err(io_err(path))
}

pub(super) fn mkdir(path: &Path) -> Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

pub(super) fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(path))
}

/// PIDs listed in `dir/cgroup.procs` and in every cgroup below it.
pub(super) fn procs_recursive(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    collect_procs(dir, &mut pids)?;
    Ok(pids)
}

fn collect_procs(dir: &Path, pids: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(text) => pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&procs)(e)),
    }
    for child in subdirs(dir)? {
        collect_procs(&child, pids)?;
    }
    Ok(())
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect())
}

/// Kills every process of a cgroup2 subtree: `cgroup.kill` where the kernel has it,
/// otherwise by PID (a process forking in between is caught by the next round).
pub(super) fn kill_unified(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let kill = dir.join("cgroup.kill");
    if kill.exists() {
        return write(&kill, "1");
    }
    for _ in 0..10 {
        let pids = procs_recursive(dir)?;
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: plain kill(2); a PID that is already gone gives ESRCH, ignored.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Waits until no process is left in the subtree (killed processes take a moment to
/// leave their cgroups).
pub(super) fn wait_empty(dir: &Path, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        if procs_recursive(dir)?.is_empty() {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(CgroupError::Busy(dir.to_path_buf()));
        }
        sleep(Duration::from_millis(2));
    }
}

/// Removes a cgroup directory and every cgroup below it, deepest first.
pub(super) fn rmdir_tree(dir: &Path) -> Result<()> {
    for child in subdirs(dir)? {
        rmdir_tree(&child)?;
    }
    let start = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            // A dying process can keep the cgroup busy for a moment after it left cgroup.procs.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < Duration::from_secs(5) => {
                sleep(Duration::from_millis(2))
            }
            Err(e) => return Err(io_err(dir)(e)),
        }
    }
}

/// Removes a directory only if it is an empty cgroup (no children, no processes).
pub(super) fn rmdir_if_unused(dir: &Path) {
    let _ = fs::remove_dir(dir);
}

pub(super) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(io_err(path))
}

pub(super) fn read_u64(path: &Path) -> Result<u64> {
    let text = read(path)?;
    text.parse().map_err(|_| CgroupError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(ErrorKind::InvalidData, format!("not a number: {text:?}")),
    })
}

/// A field of a "key value" file such as cpu.stat or cgroup.events.
pub(super) fn read_field(path: &Path, field: &str) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(' ')?.trim().parse().ok())
}

/// How long a freeze may take: a task in uninterruptible sleep (disk I/O on a busy host)
/// holds it up until it wakes.
pub(super) const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the threads of a cgroup (and below) wait, leaving out those parked by the
/// freezer: what a user needs to see why a pause or snapshot did not freeze. Tasks the
/// freezer stopped in place (in a freezable sleep) still show their own wait.
pub(super) fn task_waits(dir: &Path) -> String {
    let mut waits = Vec::new();
    for pid in procs_recursive(dir).unwrap_or_default() {
        let Ok(threads) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for thread in threads.flatten() {
            let task = thread.path();
            let read = |file: &str| fs::read_to_string(task.join(file)).unwrap_or_default();
            let tid = thread.file_name().to_string_lossy().into_owned();
            waits.extend(task_wait(&tid, read("comm").trim(), &read("stat"), &read("wchan")));
        }
    }
    let shown = waits.len().min(SHOWN_TASKS);
    let more = waits.len() - shown;
    let mut text = if waits.is_empty() {
        "none".to_string()
    } else {
        waits[..shown].join(", ")
    };
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

const SHOWN_TASKS: usize = 8;

/// "TID comm (state, in wchan)", or None for a task parked by the v1 freezer's
/// refrigerator or the v2 freezer's trap.
fn task_wait(tid: &str, comm: &str, stat: &str, wchan: &str) -> Option<String> {
    if ["__refrigerator", "do_freezer_trap"].contains(&wchan) {
        return None;
    }
    // The state follows the comm's closing parenthesis (a comm may hold one too).
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .unwrap_or("?");
    let wait = if wchan.is_empty() || wchan == "0" {
        "running".to_string()
    } else {
        format!("in {wchan}")
    };
    Some(format!("{tid} {comm} ({state}, {wait})"))
}

/// Polls until `done` or `timeout` has passed.
pub(super) fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return true;
        }
        sleep(Duration::from_millis(1));
    }
    done()
}

#[cfg(test)]
mod tests {
    use super::task_wait;

    #[test]
    fn a_task_wait_names_the_task_its_state_and_where_it_sleeps() {
        let stat = "4242 (odd) name) D 1 4242 4242 0 -1 4194560";
        assert_eq!(
            task_wait("4242", "odd) name", stat, "kernel_clone").as_deref(),
            Some("4242 odd) name (D, in kernel_clone)")
        );
        assert_eq!(
            task_wait("7", "yes", "7 (yes) R 1", "0").as_deref(),
            Some("7 yes (R, running)")
        );
        assert_eq!(task_wait("8", "sh", "8 (sh) D 1", "__refrigerator"), None);
        assert_eq!(task_wait("9", "sh", "9 (sh) S 1", "do_freezer_trap"), None);
    }
}
