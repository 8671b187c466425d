//! Messages between the daemon and `sysc-file` on its control socket (SOCK_SEQPACKET,
//! one JSON message each). The daemon sends a `FileSpec` first; the helper answers with
//! `Reply`s, as described for each `Op`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the helper finds its control socket, as sysc-exec does.
pub use crate::exec::spec::CONTROL_FD;

/// Largest message on the control socket (a batch of directory entries).
pub const MAX_MESSAGE_BYTES: usize = 256 << 10;

/// Directory entries are sent in batches of about this many bytes of JSON.
pub const LIST_BATCH_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSpec {
    pub container: String,
    pub root: Root,
    pub op: Op,
}

/// Where the container's root is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Root {
    /// Running: join the init's mount namespace (and user namespace, unless privileged),
    /// whose pidfd the container's monitor hands out.
    Running { monitor_socket: PathBuf, userns: bool },
    /// Stopped: the rootfs directory of the container's volume.
    Stopped { rootfs: PathBuf },
}

/// Paths are absolute, as the container sees them, as bytes (any name but NUL).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// `Entries` batches, then `Done`. A path that is not a directory lists itself.
    List { path: Vec<u8> },
    /// A regular file: `Opened` with the file open for reading attached, then the helper
    /// exits. A directory with `recursive`: `Tree`, the tar stream on stdout, then `Done`
    /// with the summary.
    Pull { path: Vec<u8>, recursive: bool },
    /// One file: `Ready` with a temporary file open for writing attached, beside the
    /// destination. The daemon fills it and sends `Commit`; the helper then sets owner
    /// and mode, renames it into place and answers `Done` with the file's info. If the
    /// control socket closes first, the temporary file is removed.
    Push(PushFile),
    /// A tree: `Ready`, then the tar stream (made by sysc_filetree) is read from stdin and
    /// extracted; after the stream ends the helper waits for `Commit` and answers `Done`
    /// with the summary.
    PushTree(PushTree),
    /// `Done` with the new directory's info.
    Mkdir {
        path: Vec<u8>,
        parents: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// `Done`. `recursive`: also non-empty directories, and a missing path is no error.
    Delete { path: Vec<u8>, recursive: bool },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushFile {
    /// The destination: a file, or a directory to put `name` in (an existing directory,
    /// or any path ending in '/').
    pub path: Vec<u8>,
    /// The source's file name; empty when there is none (stdin).
    pub name: Vec<u8>,
    pub create_dirs: bool,
    /// None: those of the file being replaced, else 0, 0 and 0644.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushTree {
    /// A directory to put `name` in (an existing one, or any path ending in '/'), or
    /// the path the tree's top gets (like cp -r).
    pub path: Vec<u8>,
    pub name: Vec<u8>,
    pub create_dirs: bool,
    /// The owner the client gave every entry (--uid/--gid), if it did: checked against the
    /// container's id range before anything is made.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl Kind {
    pub fn from_mode(mode: u32) -> Self {
        match mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Directory,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            _ => Kind::File,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Fifo => "a FIFO",
            Kind::Socket => "a socket",
            Kind::CharDevice => "a character device",
            Kind::BlockDevice => "a block device",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    pub name: Vec<u8>,
    pub kind: Kind,
    /// Permission bits (07777).
    pub mode: u32,
    /// As the container sees them.
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub link_target: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSummary {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub bytes: u64,
    pub skipped: Vec<Vec<u8>>,
}

/// Whose fault a failure is: decides the gRPC status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    NotFound,
    Exists,
    /// The request: a bad path, a directory without -r, a FIFO, ...
    Invalid,
    /// The container's state (it stopped, it is at its process limit, ...).
    State,
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Entries(Vec<Info>),
    Opened(Info),
    Tree(Info),
    Ready,
    Done {
        info: Option<Info>,
        summary: Option<TreeSummary>,
    },
    Error {
        fault: Fault,
        message: String,
    },
}

/// The daemon's word that the data is complete.
pub const COMMIT: &[u8] = b"commit";
