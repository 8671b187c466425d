//! Files inside a container: stat, list, pull, push, mkdir, delete. The daemon never
//! resolves a path from a container itself: it starts `sysc-file`, a single-threaded
//! helper, per request. For a running container the helper joins the container's user
//! and mount namespaces (so it sees what is mounted inside, with the container's ids);
//! for a stopped one it works on the volume's rootfs. Either way every path is resolved
//! with openat2(RESOLVE_IN_ROOT) below the container's root, so no symlink or `..` can
//! lead outside. Bulk data does not pass through the helper: it hands the daemon an
//! open descriptor (a file to read, a temporary file to fill) or, for a directory tree,
//! a tar stream on its stdin or stdout.

pub mod helper;
mod ops;
pub mod protocol;
mod resolve;
mod transfer;
