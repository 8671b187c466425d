//! The one btrfs ioctl on a hot path: taking a snapshot of a subvolume. Spawning
//! `btrfs subvolume snapshot` from the daemon costs more than the snapshot itself.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{Result, StorageError};

/// struct btrfs_ioctl_vol_args_v2 (linux/btrfs.h): 4096 bytes.
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; 4040],
}

const SUBVOL_RDONLY: u64 = 1 << 1;

nix::ioctl_write_ptr!(snap_create_v2, 0x94, 23, VolArgsV2);

/// Snapshots the subvolume at `source` as `target` (whose parent must exist).
pub fn snapshot(source: &Path, target: &Path, read_only: bool) -> Result<()> {
    let fail = |e: std::io::Error| StorageError::Io {
        what: format!("snapshot {} as {}", source.display(), target.display()),
        source: e,
    };
    let name = target
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .filter(|n| n.len() < 4040)
        .ok_or_else(|| fail(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    let parent = target.parent().unwrap_or(Path::new("/"));
    let directory = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
    };
    let (source_dir, parent_dir) = (directory(source).map_err(fail)?, directory(parent).map_err(fail)?);
    let mut args = VolArgsV2 {
        fd: i64::from(source_dir.as_raw_fd()),
        transid: 0,
        flags: if read_only { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; 4040],
    };
    args.name[..name.len()].copy_from_slice(name);
    // SAFETY: args is a valid, NUL-terminated btrfs_ioctl_vol_args_v2; both fds are open.
    unsafe { snap_create_v2(parent_dir.as_raw_fd(), &args) }.map_err(|e| fail(e.into()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_argument_block_is_the_kernels_size() {
        assert_eq!(std::mem::size_of::<super::VolArgsV2>(), 4096);
    }
}
