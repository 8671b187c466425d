//! The console's output, kept in a bounded log: `console.log` grows to a limit, then
//! becomes `console.log.1` and a new one starts, so at most twice the limit is kept.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct ConsoleLog {
    path: PathBuf,
    file: File,
    size: u64,
    limit: u64,
    /// The last write failed (a full pool): further failures are not news.
    failing: bool,
}

impl ConsoleLog {
    pub const DEFAULT_LIMIT: u64 = 1 << 20;

    pub fn open(path: &Path, limit: u64) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            limit,
            failing: false,
        })
    }

    /// Appends `data`; an error is returned only when writing starts to fail, since a
    /// full disk would otherwise be reported for every line the console prints.
    pub fn record(&mut self, data: &[u8]) -> Option<io::Error> {
        match self.write(data) {
            Ok(()) => {
                self.failing = false;
                None
            }
            Err(_) if self.failing => None,
            Err(e) => {
                self.failing = true;
                Some(e)
            }
        }
    }

    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.size + data.len() as u64 > self.limit && self.size > 0 {
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            fs::rename(&self.path, &old)?;
            self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            self.size = 0;
        }
        self.file.write_all(data)?;
        self.size += data.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_twice_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = ConsoleLog::open(&path, 10).unwrap();
        for chunk in [b"aaaaaa", b"bbbbbb", b"cccccc"] {
            log.write(chunk).unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"cccccc");
        assert_eq!(fs::read(dir.path().join("console.log.1")).unwrap(), b"bbbbbb");
    }

    #[test]
    fn a_failing_disk_is_reported_once_per_streak() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut log = ConsoleLog::open(&path, 100).unwrap();
        // /dev/full fails every write with ENOSPC, like a full pool.
        log.file = File::options().append(true).open("/dev/full").unwrap();
        let first = log.record(b"one").expect("the first failure is reported");
        assert_eq!(first.raw_os_error(), Some(libc::ENOSPC));
        assert!(log.record(b"two").is_none());
        log.file = File::options().append(true).open(&path).unwrap();
        assert!(log.record(b"three").is_none());
        log.file = File::options().append(true).open("/dev/full").unwrap();
        assert!(log.record(b"four").is_some(), "a new streak is reported again");
    }

    #[test]
    fn appends_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        ConsoleLog::open(&path, 100).unwrap().write(b"one ").unwrap();
        ConsoleLog::open(&path, 100).unwrap().write(b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one two");
    }
}
