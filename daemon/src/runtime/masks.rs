//! Parts of /proc and /sys that show or change the whole host, hidden or made
//! read-only in the container, as runc and LXC do. An unprivileged container's root
//! could not use most of them anyway (the kernel checks against the host's root); the
//! masks are what stands in a privileged one, and they hide what the host leaks.

use std::path::Path;

use nix::mount::{MsFlags, mount};

use super::error::{Context, Result};

/// Files hidden behind the container's /dev/null: kernel memory, the kernel log, and
/// timer and scheduler internals of every process on the host.
const HIDDEN_FILES: [&str; 6] = [
    "proc/kcore",
    "proc/kmsg",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/latency_stats",
];

/// Directories hidden behind an empty read-only tmpfs: firmware tables and the
/// host's hardware.
const HIDDEN_DIRS: [&str; 4] = ["proc/acpi", "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap"];

/// Left visible, read-only: the magic SysRq trigger (absent on some kernels) and the
/// host's bus, filesystem and interrupt settings.
const READ_ONLY: [&str; 4] = ["proc/sysrq-trigger", "proc/bus", "proc/fs", "proc/irq"];

/// Mounts the masks under `root`, whose /proc, /sys and /dev are mounted. Entries this
/// kernel does not have are skipped.
pub fn apply(root: &Path) -> Result<()> {
    let null = root.join("dev/null");
    for file in HIDDEN_FILES {
        let path = root.join(file);
        if path.exists() {
            mount(Some(&null), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx(format!("mask /{file}"))?;
        }
    }
    for dir in HIDDEN_DIRS {
        let path = root.join(dir);
        if path.is_dir() {
            mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0,mode=555"),
            )
            .ctx(format!("mask /{dir}"))?;
        }
    }
    for entry in READ_ONLY {
        let path = root.join(entry);
        if path.exists() {
            read_only(&path).ctx(format!("make /{entry} read-only"))?;
        }
    }
    Ok(())
}

/// Where a nesting container finds /proc and /sys without masks.
pub const UNMASKED_DIR: &str = "dev/.sysc";

/// For security.nesting: a fresh procfs and sysfs with nothing mounted over them. A
/// runtime inside the container mounts proc and sysfs for its own containers in a new
/// user namespace, and the kernel allows that only while some instance of each is
/// fully visible there (from the new namespace, our masks are locked mounts that hide
/// parts of /proc and /sys). Incus does the same under /dev/.lxc.
pub fn unmasked_views(root: &Path) -> Result<()> {
    let dir = root.join(UNMASKED_DIR);
    for (fs, name) in [("proc", "proc"), ("sysfs", "sys")] {
        let target = dir.join(name);
        std::fs::create_dir_all(&target).ctx(format!("create /{UNMASKED_DIR}/{name}"))?;
        mount(
            Some(fs),
            &target,
            Some(fs),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .ctx(format!("mount {fs} on /{UNMASKED_DIR}/{name}"))?;
    }
    Ok(())
}

/// /proc/sys read-only except /proc/sys/net, which belongs to the container's own
/// network namespace.
pub fn proc_sys(root: &Path) -> Result<()> {
    let sys = root.join("proc/sys");
    bind_self(&sys).ctx("bind /proc/sys")?;
    // Bind mounts copy their source's flags: net is bound before /proc/sys turns read-only.
    bind_self(&sys.join("net")).ctx("bind /proc/sys/net")?;
    remount_read_only(&sys).ctx("make /proc/sys read-only")
}

/// Binds `path` onto itself read-only.
fn read_only(path: &Path) -> nix::Result<()> {
    bind_self(path)?;
    remount_read_only(path)
}

fn bind_self(path: &Path) -> nix::Result<()> {
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
}

/// Makes the mount at `path` read-only, keeping the flags a mount in a user namespace
/// must keep.
pub fn remount_read_only(path: &Path) -> nix::Result<()> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}
