//! The container's setup process: runs inside the new namespaces, builds the root
//! filesystem and /dev, wires the console, pivots and execs the init (PID 1).
//!
//! The order follows what was measured to boot systemd to `running` on our hosts (see
//! shared/HOST-NOTES.md): ids first, then the cgroup namespace (only once the monitor
//! has put us in our cgroups), mounts, console, pivot_root, capabilities, exec.

use std::convert::Infallible;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{Gid, Uid, chdir, pivot_root, sethostname, setresgid, setresuid, setsid};

use super::devices;
use super::error::{Context, Result, RuntimeError};
use super::fdpass;
use super::masks;
use super::mountapi;
use super::process;
use super::spec::ContainerSpec;
use crate::security;

/// The monitor's word that the nics' links are in our network namespace: it makes them
/// while we build the root filesystem.
pub const LINKS_MADE: &[u8] = b"links";

/// Entry point of the cloned process; never returns. Failures go to the monitor as an
/// "error ..." message.
pub fn run(spec: &ContainerSpec, sock: OwnedFd) -> ! {
    let Err(err) = setup(spec, &sock);
    let _ = fdpass::send(sock.as_fd(), format!("error {err}").as_bytes(), &[]);
    // SAFETY: _exit(2) ends this process without running the monitor's destructors.
    unsafe { libc::_exit(1) }
}

fn setup(spec: &ContainerSpec, sock: &OwnedFd) -> Result<Infallible> {
    // SAFETY: prctl(2); dies with the monitor while setting up, cleared before exec.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let (message, mut fds) = fdpass::recv(sock.as_fd()).ctx("wait for the monitor")?;
    if message != b"go" || fds.len() != 1 {
        return Err(RuntimeError::Protocol(
            "monitor did not send the root filesystem".into(),
        ));
    }
    let tree = fds.remove(0);

    if spec.idmap.is_some() {
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).ctx("become gid 0")?;
        nix::unistd::setgroups(&[]).ctx("drop supplementary groups")?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).ctx("become uid 0")?;
    }
    unshare(CloneFlags::CLONE_NEWCGROUP).ctx("create the cgroup namespace")?;
    sethostname(&spec.hostname).ctx("set the hostname")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .ctx("make / private")?;

    // The container's root is attached over `/` of our private mount namespace and
    // entered through its own fd, and everything below is done relative to it: the
    // pool's directories are root-only on the host, and the container's uid must not
    // need to walk them. Absolute paths still resolve in the host's tree (the mount
    // on top of `/` is only entered through the fd), which the /dev binds rely on.
    mountapi::attach_tree(&tree, Path::new("/")).ctx(format!("mount the root filesystem {}", spec.rootfs.display()))?;
    nix::unistd::fchdir(&tree).ctx("enter the root filesystem")?;
    drop(tree);
    let root = Path::new(".");
    for dir in ["proc", "sys", "dev", "run"] {
        fs::create_dir_all(root.join(dir)).ctx(format!("create /{dir}"))?;
    }
    mount_proc(root)?;
    mount_sys(root)?;
    devices::populate(root, spec.idmap.is_some())?;
    fake_boot_id(root)?;
    masks::proc_sys(root)?;
    masks::apply(root)?;
    if spec.security.nesting {
        masks::unmasked_views(root)?;
    }
    mount(
        Some("tmpfs"),
        &root.join("run"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=755,size=20%"),
    )
    .ctx("mount tmpfs on /run")?;
    let console = console(root)?;
    fdpass::send(sock.as_fd(), b"console", &[console.as_raw_fd()]).ctx("send the console to the monitor")?;
    drop(console);

    pivot_root(".", ".").ctx("pivot_root")?;
    umount2(".", MntFlags::MNT_DETACH).ctx("detach the host's root")?;
    chdir("/").ctx("chdir /")?;

    link_up("lo")?;
    let (message, _) = fdpass::recv(sock.as_fd()).ctx("wait for the container's links")?;
    if message != LINKS_MADE {
        return Err(RuntimeError::Protocol(
            "monitor did not make the container's links".into(),
        ));
    }
    for nic in &spec.nics {
        link_up(&nic.name)?;
    }
    setsid().ctx("setsid")?;
    attach_console()?;
    security::capabilities::drop_bounding(&spec.security.dropped_capabilities)
        .map_err(|e| RuntimeError::Child(e.to_string()))?;
    process::reset_signals();
    // SAFETY: prctl(2); the init must outlive a monitor that crashes.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) };
    // Last: from here on every system call the setup makes is the init's.
    security::seccomp::load(&spec.security).map_err(|e| RuntimeError::Child(e.to_string()))?;
    exec(spec)
}

fn mount_proc(root: &Path) -> Result<()> {
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .ctx("mount /proc")
}

/// sysfs read-only, with the container's own cgroup2 subtree (its cgroup namespace
/// root) at /sys/fs/cgroup, writable so systemd can manage it. The mount is read-only,
/// not the filesystem: a nesting container's runtimes mount sysfs read-write.
fn mount_sys(root: &Path) -> Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let sys = root.join("sys");
    mount(Some("sysfs"), &sys, Some("sysfs"), flags, None::<&str>).ctx("mount /sys")?;
    masks::remount_read_only(&sys).ctx("make /sys read-only")?;
    mount(
        Some("cgroup2"),
        &root.join("sys/fs/cgroup"),
        Some("cgroup2"),
        flags,
        None::<&str>,
    )
    .ctx("mount cgroup2 on /sys/fs/cgroup")
}

/// Without its own boot id every container shares the host's `journalctl -b`.
fn fake_boot_id(root: &Path) -> Result<()> {
    let mut bytes = [0u8; 16];
    // SAFETY: getrandom(2) into a buffer of the given length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        return Err(nix::Error::last()).ctx("read random bytes for the boot id");
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}\n",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let file = root.join("dev/.sysc-boot-id");
    fs::write(&file, uuid).ctx("write the boot id")?;
    let target = root.join("proc/sys/kernel/random/boot_id");
    mount(Some(&file), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx("bind the boot id")
}

/// Opens a pty of the container's own devpts and binds its slave onto /dev/console;
/// the master goes to the monitor. Never a host pty (see HOST-NOTES: pitfalls).
fn console(root: &Path) -> Result<OwnedFd> {
    let master: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(root.join("dev/pts/ptmx"))
        .ctx("open the console pty")?
        .into();
    let mut unlock: libc::c_int = 0;
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCSPTLCK and TIOCGPTN take pointers to ints of the given types.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) != 0
            || libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) != 0
        {
            return Err(nix::Error::last()).ctx("unlock the console pty");
        }
    }
    let slave = root.join(format!("dev/pts/{number}"));
    let console = root.join("dev/console");
    fs::write(&console, b"").ctx("create /dev/console")?;
    mount(Some(&slave), &console, None::<&str>, MsFlags::MS_BIND, None::<&str>).ctx("bind /dev/console")?;
    Ok(master)
}

/// Makes /dev/console the init's standard streams. Not its controlling terminal: in a
/// user namespace a terminal that is some session's ctty cannot be taken over, and the
/// init's gettys (busybox's, systemd's console-getty) must be able to acquire it.
fn attach_console() -> Result<()> {
    let fd = nix::fcntl::open(
        "/dev/console",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /dev/console")?;
    for target in 0..3 {
        // SAFETY: dup2(2) onto the standard descriptors.
        if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
            return Err(nix::Error::last()).ctx("attach /dev/console to stdio");
        }
    }
    Ok(())
}

/// Sets a link of the container's network namespace up, as LXC does for its nics
/// (`lxc.net.N.flags = up`): the guest's DHCP client finds a working interface.
fn link_up(name: &str) -> Result<()> {
    let what = || format!("bring up {name}");
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ {
        return Err(RuntimeError::Protocol(format!("interface name {name:?} is too long")));
    }
    // SAFETY: a datagram socket only used for the interface flag ioctls below.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(nix::Error::last()).ctx(what());
    }
    // SAFETY: ifreq is plain data; the name fits with its NUL (zeroed); the fd is closed below.
    let rc = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in req.ifr_name.iter_mut().zip(bytes) {
            *slot = *byte as libc::c_char;
        }
        let mut rc = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        }
        let err = nix::Error::last();
        libc::close(sock);
        if rc == 0 { Ok(()) } else { Err(err) }
    };
    rc.ctx(what())
}

fn exec(spec: &ContainerSpec) -> Result<Infallible> {
    let to_c = |s: &String| CString::new(s.as_bytes()).map_err(|_| RuntimeError::Protocol(format!("NUL in {s:?}")));
    let argv = spec.init.iter().map(to_c).collect::<Result<Vec<_>>>()?;
    let env = spec.env.iter().map(to_c).collect::<Result<Vec<_>>>()?;
    let Some(program) = argv.first() else {
        return Err(RuntimeError::Protocol("no init given".into()));
    };
    // The monitor's own descriptors stay behind.
    crate::descriptors::close_on_exec_above_stderr().ctx("mark descriptors close-on-exec")?;
    Err(nix::unistd::execve(program, &argv, &env).unwrap_err()).ctx(format!("exec {}", spec.init[0]))
}
