//! The data a snapshot or an export has to carry: files of random bytes in a mix of
//! sizes, added to a container's root filesystem until the whole rootfs holds a given
//! total (its apparent size, as `du --apparent-size` counts it).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::interrupt::check_interrupted;
use crate::util::apparent_size_bytes;

/// Where in the rootfs the files go.
const FILL_DIR: &str = "srv/bench-fill";
/// Files per directory, so no directory grows huge.
const FILES_PER_DIR: usize = 100;
/// The sizes of successive files, over and over: mostly small files by count, mostly
/// large ones by bytes (9.7 MiB in 16 files a round), as a rootfs with data in it has.
const SIZES: [u64; 16] = [
    4 << 10,
    4 << 10,
    4 << 10,
    4 << 10,
    4 << 10,
    4 << 10,
    4 << 10,
    4 << 10,
    32 << 10,
    32 << 10,
    32 << 10,
    32 << 10,
    256 << 10,
    256 << 10,
    1 << 20,
    8 << 20,
];

/// One rootfs being filled; it remembers how far it got, so growing it to the next total
/// only writes the difference.
pub struct Fill {
    dir: PathBuf,
    /// The next file's number, which also seeds its contents.
    next: usize,
    /// The rootfs's apparent size so far.
    total: u64,
}

impl Fill {
    /// Measures the rootfs as it is; nothing is written yet.
    pub fn new(rootfs: &Path) -> Result<Self> {
        Ok(Self {
            dir: rootfs.join(FILL_DIR),
            next: 0,
            total: apparent_size_bytes(rootfs)?,
        })
    }

    /// Adds files until the rootfs holds `total` bytes (the last file is cut to fit);
    /// nothing if it holds that much already.
    pub fn grow_to(&mut self, total: u64) -> Result<()> {
        while self.total < total {
            check_interrupted()?;
            let dir = self.dir.join(format!("d{:04}", self.next / FILES_PER_DIR));
            if self.next.is_multiple_of(FILES_PER_DIR) {
                fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
            }
            let bytes = SIZES[self.next % SIZES.len()].min(total - self.total);
            write_random(&dir.join(format!("f{:06}", self.next)), bytes, self.next as u64)?;
            self.next += 1;
            self.total += bytes;
        }
        Ok(())
    }
}

/// `bytes` bytes of splitmix64 output seeded by `seed`: incompressible like random data,
/// but the same in every rootfs (so every side copies the very same tree) and written at
/// memory speed rather than /dev/urandom's.
pub fn write_random(path: &Path, bytes: u64, seed: u64) -> Result<()> {
    let mut file = File::create_new(path).with_context(|| format!("create {}", path.display()))?;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let chunk = left.min(buffer.len() as u64) as usize;
        for word in buffer[..chunk].chunks_mut(8) {
            let value = splitmix64(&mut state).to_le_bytes();
            word.copy_from_slice(&value[..word.len()]);
        }
        file.write_all(&buffer[..chunk])
            .with_context(|| format!("write {}", path.display()))?;
        left -= chunk as u64;
    }
    Ok(())
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
