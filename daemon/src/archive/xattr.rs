//! Extended attributes through libc (nix has no binding). Entries that cannot be opened
//! (symlinks, devices, FIFOs) are reached as /proc/self/fd/<dir>/<name> with the l*
//! calls: the directory is a descriptor already checked, the name is not followed.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The path of `name` inside the directory `dir`, usable without following `name`.
pub(super) fn at(dir: BorrowedFd<'_>, name: &CStr) -> CString {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.to_bytes());
    CString::new(path).expect("a CStr and a number have no NUL")
}

/// All extended attributes of `path` (not followed if a symlink), in name order.
pub(super) fn list(path: &CStr) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    list_with(
        // SAFETY: the kernel writes at most `size` bytes to `buf`.
        |buf, size| unsafe { libc::llistxattr(path.as_ptr(), buf, size) },
        // SAFETY: as above; both strings are NUL-terminated.
        |name, buf, size| unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.cast(), size) },
    )
}

/// All extended attributes of the file `fd` is open on, in name order. Cheaper than
/// `list`, which resolves a path through /proc.
pub(super) fn list_fd(fd: BorrowedFd<'_>) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let fd = fd.as_raw_fd();
    list_with(
        // SAFETY: the kernel writes at most `size` bytes to `buf`.
        |buf, size| unsafe { libc::flistxattr(fd, buf, size) },
        // SAFETY: as above; the name is NUL-terminated.
        |name, buf, size| unsafe { libc::fgetxattr(fd, name.as_ptr(), buf.cast(), size) },
    )
}

/// `list` and `list_fd` with their system calls: `names(buf, size)` and
/// `value(name, buf, size)`.
fn list_with(
    mut names: impl FnMut(*mut libc::c_char, usize) -> isize,
    mut value: impl FnMut(&CStr, *mut libc::c_char, usize) -> isize,
) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match read_sized(&mut names) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut attrs = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).expect("split at NUL");
        match read_sized(|buf, size| value(&cname, buf, size)) {
            Ok(value) => attrs.push((name.to_vec(), value)),
            // Removed since it was listed.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => {}
            Err(e) => return Err(e),
        }
    }
    attrs.sort();
    Ok(attrs)
}

/// Sets an attribute on the file `fd` is open on.
pub(super) fn set_fd(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid pointers with their lengths.
    let rc = unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets an attribute on `path`, not following it if it is a symlink.
pub(super) fn set_path(path: &CStr, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid pointers with their lengths.
    let rc = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Calls `get(buf, size)` first for the size, then for the data, again if it grew between.
fn read_sized(mut get: impl FnMut(*mut libc::c_char, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = get(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size as usize];
        let got = get(buf.as_mut_ptr().cast(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) {
            return Err(error);
        }
    }
}
