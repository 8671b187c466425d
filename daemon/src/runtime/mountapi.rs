//! The new mount API calls nix does not wrap: open_tree, mount_setattr, move_mount.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

fn cstring(path: &Path) -> nix::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

/// A detached copy of the mount at `path` (a bind mount not attached anywhere yet).
pub fn clone_tree(path: &Path) -> nix::Result<OwnedFd> {
    let path = cstring(path)?;
    // SAFETY: open_tree(2) with a valid C string; the returned fd is owned by us.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC,
        )
    };
    let fd = Errno::result(fd)?;
    // SAFETY: the kernel returned a new file descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Makes a detached mount show file ownership through the id mapping of `userns`.
pub fn set_idmap(tree: &OwnedFd, userns: &OwnedFd) -> nix::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: mount_setattr(2) on a valid fd with a correctly sized attribute struct.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// Attaches a detached mount at `target`.
pub fn attach_tree(tree: &OwnedFd, target: &Path) -> nix::Result<()> {
    let target = cstring(target)?;
    let empty = c"";
    // SAFETY: move_mount(2) with a valid fd and C strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    Errno::result(rc).map(drop)
}
