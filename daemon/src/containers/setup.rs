//! What makes a clone of an image this container: hostname, hosts, machine-id.
//! Written through rootfs_files, so nothing in the rootfs can redirect the writes.

use std::path::Path;

use crate::error::{Error, Result};
use crate::rootfs_files;

pub fn personalize(rootfs: &Path, name: &str) -> Result<()> {
    write(rootfs, "/etc/hostname", format!("{name}\n").as_bytes())?;
    write(rootfs, "/etc/hosts", hosts(name).as_bytes())?;
    write(rootfs, "/etc/machine-id", format!("{}\n", machine_id()).as_bytes())
}

/// After a rename: the new hostname, and hosts with the old name replaced.
pub fn rename(rootfs: &Path, old: &str, new: &str) -> Result<()> {
    write(rootfs, "/etc/hostname", format!("{new}\n").as_bytes())?;
    let hosts = rootfs_files::read(rootfs, "/etc/hosts", 1 << 20)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_else(|_| self::hosts(old));
    let renamed: Vec<String> = hosts
        .lines()
        .map(|line| {
            line.split_inclusive(char::is_whitespace)
                .map(|word| {
                    if word.trim_end() == old {
                        word.replacen(old, new, 1)
                    } else {
                        word.to_string()
                    }
                })
                .collect()
        })
        .collect();
    write(rootfs, "/etc/hosts", format!("{}\n", renamed.join("\n")).as_bytes())
}

/// A copy is another machine: its own hostname and machine-id.
pub fn reidentify(rootfs: &Path, old: &str, new: &str) -> Result<()> {
    rename(rootfs, old, new)?;
    write(rootfs, "/etc/machine-id", format!("{}\n", machine_id()).as_bytes())
}

fn hosts(name: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
    )
}

fn machine_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

fn write(rootfs: &Path, path: &str, contents: &[u8]) -> Result<()> {
    rootfs_files::write(rootfs, path, contents, 0o644)
        .map_err(|e| Error::internal(format!("write {path} in {}", rootfs.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_rewrites_hostname_and_hosts() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        personalize(root.path(), "web1").unwrap();
        let id = std::fs::read_to_string(root.path().join("etc/machine-id")).unwrap();
        assert_eq!(id.trim().len(), 32);
        rename(root.path(), "web1", "web2").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/hostname")).unwrap(),
            "web2\n"
        );
        let hosts = std::fs::read_to_string(root.path().join("etc/hosts")).unwrap();
        assert!(hosts.contains("127.0.1.1\tweb2\n"), "{hosts}");
        assert!(!hosts.contains("web1"), "{hosts}");
    }
}
