//! Directory trees as one tar stream, for `sysc file push -r` and `sysc file pull -r`.
//!
//! Both ends may face a hostile peer: the walk runs in a helper whose directory fd is inside a
//! container that can change the tree under it, and extraction may read an archive a container
//! made. So every file is reached from its parent's fd one name at a time without following
//! symlinks, and every archive path is checked before anything is touched.

mod dest;
mod error;
mod extract;
mod input;
mod names;
mod progress;
mod tarout;
mod write;

pub use error::TreeError;
pub use extract::extract;
pub use write::write_tree;

#[derive(Debug, Default, Clone)]
pub struct WriteOptions {
    /// Replace every entry's owner with this (uid, gid); None: the numeric owner from the file system.
    pub owner: Option<(u32, u32)>,
    /// Replace the permission bits (07777) of every regular file with this; directories and symlinks keep theirs.
    pub file_mode: Option<u32>,
}

#[derive(Debug, Default, Clone)]
pub struct ExtractOptions {
    /// Give entries the archive's numeric uid/gid (fchown / fchownat AT_SYMLINK_NOFOLLOW). False: leave
    /// them owned by whoever extracts (like tar run as a non-root user).
    pub owners: bool,
    /// Keep set-user-ID and set-group-ID bits. False (pulling from a container onto the
    /// host): they are dropped, as cp drops them, so a container cannot plant a set-id
    /// program there.
    pub set_id: bool,
}

/// What a tree held. The top directory counts among `dirs`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Bytes of regular-file content.
    pub bytes: u64,
    /// Paths (relative, as in the archive) left out: FIFOs, sockets, devices (write_tree only).
    pub skipped: Vec<String>,
}
