//! The files written for an LXC container: its config, and what sysc would write into
//! its root filesystem.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::manager::Template;

/// Whose ids an LXC container runs with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// The host's: no user namespace.
    Host,
    /// Container ids 0–65535 are host ids `base`…, as in a sysc container by default, and
    /// the rootfs is an idmapped mount of the unshifted tree, as sysc's is. LXC makes
    /// idmapped rootfs mounts only with its "dir" storage driver, which mounts the same
    /// directory (a btrfs subvolume or a plain one) as the "btrfs" driver would.
    Mapped { base: u32 },
}

/// LXC's config for a container: the work sysc does. `storage` is the rootfs's LXC
/// storage type ("btrfs" or "dir"; "dir" whatever it says with mapped ids). eth0 is
/// what a sysc container has on its default network: a veth on that bridge (sysc's own,
/// so the same dnsmasq answers both), with a MAC of its own kept from start to start.
pub fn lxc_config(full: &str, storage: &str, rootfs: &Path, template: Template, bridge: &str, ids: Ids) -> String {
    let (storage, idmap) = match ids {
        Ids::Host => (storage, String::new()),
        Ids::Mapped { base } => (
            "dir",
            format!(
                "lxc.idmap = u 0 {base} 65536\n\
                 lxc.idmap = g 0 {base} 65536\n\
                 lxc.rootfs.options = idmap=container\n"
            ),
        ),
    };
    let privilege = match ids {
        Ids::Host => "privileged (no user namespace)",
        Ids::Mapped { .. } => "unprivileged (own user namespace, idmapped rootfs)",
    };
    format!(
        "# sysc-bench: {privilege}, the same init, halt signal and network as sysc\n\
         lxc.uts.name = {full}\n\
         lxc.rootfs.path = {storage}:{rootfs}\n\
         {idmap}\
         lxc.init.cmd = /sbin/init\n\
         lxc.signal.halt = {halt}\n\
         lxc.net.0.type = veth\n\
         lxc.net.0.link = {bridge}\n\
         lxc.net.0.name = eth0\n\
         lxc.net.0.flags = up\n\
         lxc.net.0.hwaddr = {mac}\n\
         lxc.mount.auto = proc:mixed sys:mixed cgroup:mixed\n\
         lxc.autodev = 1\n\
         lxc.tty.max = 0\n\
         lxc.pty.max = 1024\n\
         lxc.apparmor.profile = unconfined\n\
         # The capabilities sysc drops as well (so does LXC's own common.conf).\n\
         lxc.cap.drop = mac_admin mac_override sys_time sys_module sys_rawio\n",
        rootfs = rootfs.display(),
        halt = template.halt_signal(),
        mac = mac_address(rootfs),
    )
}

/// A MAC in the 00:16:3e block LXC uses, the same for a container (named by its rootfs)
/// every time: a random one per start would take a new DHCP lease each time and drain
/// the range.
fn mac_address(rootfs: &Path) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    rootfs.hash(&mut hasher);
    let [a, b, c, ..] = hasher.finish().to_le_bytes();
    format!("00:16:3e:{a:02x}:{b:02x}:{c:02x}")
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
