//! The tarball of `sysc export` / `sysc import`: whole Linux root filesystems with
//! numeric owners, modes, devices, hard links and extended attributes, checked on the way
//! in so that a damaged, cut or hostile archive is refused rather than half-imported.
//!
//! The format is a tar stream that GNU tar can also read, optionally in one zstd frame
//! with its content checksum:
//! - GNU headers (GNU long-name and long-link records past 100 bytes), numeric ids only;
//!   a tree's directory comes before its contents.
//! - Before an entry that needs one, a PAX extended header with `SCHILY.xattr.<name>` (an
//!   extended attribute, raw value; `%` and `=` in the name escaped as `%25` and `%3D`,
//!   as GNU tar does) and `mtime` (`<seconds>.<nanoseconds>`, when there are nanoseconds).
//! - Hard links after the first occurrence of an inode are link entries naming the first
//!   path; links never cross from one tree (`add_tree` call) to another.
//! - The last entry is the regular file `.sysc-end`, holding `sysc-archive 2`, `entries
//!   N`, `sha256 HEX` and `content-sha256 HEX` lines: the number of entries before it, a
//!   digest of their metadata (see `meta::Manifest`), so that a lost or damaged header is
//!   noticed too, and the SHA-256 of the content of all regular files before it, one
//!   after the other in archive order.
//! - Then the tar end (two zero blocks), and nothing else.

mod copy;
mod error;
mod extract;
mod input;
mod meta;
mod pax;
mod reader;
mod walk;
mod writer;
mod xattr;

#[cfg(test)]
mod tests;

pub use copy::copy_tree;
pub use error::ArchiveError;
pub use reader::Reader;
pub use writer::{Writer, tree_size};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Zstd,
}

/// Copy buffer size, and the size of the buffers before the output and after the input.
const BUF_SIZE: usize = 1 << 20;

/// File bytes between two progress reports.
const PROGRESS_STEP: u64 = 4 << 20;

/// File bytes archived or extracted so far, reported to a progress callback now and then.
#[derive(Default)]
struct Counter {
    done: u64,
    reported: u64,
}

impl Counter {
    fn add(&mut self, bytes: usize, progress: &mut dyn FnMut(u64)) {
        self.done += bytes as u64;
        if self.done - self.reported >= PROGRESS_STEP {
            self.report(progress);
        }
    }

    fn report(&mut self, progress: &mut dyn FnMut(u64)) {
        self.reported = self.done;
        progress(self.done);
    }
}
