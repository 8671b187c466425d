//! The files written for an LXC container: its config, and what sysc would write into
//! its root filesystem.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::manager::Template;

/// LXC's config for a container: the work sysc does, no network, privileged.
/// `storage` is the rootfs's LXC storage type: "btrfs" or "dir".
pub fn lxc_config(full: &str, storage: &str, rootfs: &Path, template: Template) -> String {
    format!(
        "# sysc-bench: privileged (no idmap), no network, the same init and halt signal as sysc\n\
         lxc.uts.name = {full}\n\
         lxc.rootfs.path = {storage}:{rootfs}\n\
         lxc.init.cmd = /sbin/init\n\
         lxc.signal.halt = {halt}\n\
         lxc.net.0.type = empty\n\
         lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n\
         lxc.autodev = 1\n\
         lxc.tty.max = 0\n\
         lxc.pty.max = 1024\n\
         lxc.apparmor.profile = unconfined\n\
         # The capabilities sysc drops as well (so does LXC's own common.conf).\n\
         lxc.cap.drop = mac_admin mac_override sys_time sys_module sys_rawio\n",
        rootfs = rootfs.display(),
        halt = template.halt_signal(),
    )
}

/// What sysc writes into every new container: hostname, hosts, a fresh machine-id
/// (an empty one would make systemd treat each boot as a first boot).
pub fn personalize(rootfs: &Path, hostname: &str) -> Result<()> {
    let machine_id: String =
        fs::read("/proc/sys/kernel/random/uuid").map(|uuid| String::from_utf8_lossy(&uuid).replace(['-', '\n'], ""))?;
    let hosts = format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\t\tlocalhost ip6-localhost ip6-loopback\n");
    replace_file(&rootfs.join("etc/hostname"), &format!("{hostname}\n"))?;
    replace_file(&rootfs.join("etc/hosts"), &hosts)?;
    replace_file(&rootfs.join("etc/machine-id"), &format!("{machine_id}\n"))
}

/// Writes a new file in place of the old one; never through a symlink the rootfs
/// might hold there, since we write as host root.
fn replace_file(path: &Path, contents: &str) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("remove {}", path.display()));
        }
        _ => {}
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
