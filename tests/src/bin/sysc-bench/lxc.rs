//! LXC, unprivileged as sysc runs by default or privileged, with a private lxcpath on
//! its own btrfs loop file; or, for the dir-backed comparisons, on a plain directory of
//! /tmp's filesystem. Its containers are on sysc's default network.

mod cgroups;
mod config;

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use self::cgroups::{cgroup_hierarchies, pivot_cgroups, remove_cgroup_tree};
pub use self::config::Ids;
use self::config::{lxc_config, personalize};
use crate::interrupt::check_interrupted;
use crate::manager::{Manager, STOP_TIMEOUT_SECS, Template};
use crate::util::run;

/// LXC names all start with this, so leakcheck's default pattern (`sysc`) also finds
/// anything of LXC's that this bench left behind.
const LXC_PREFIX: &str = "syscbench-";

/// What holds the lxcpath, and so each container's rootfs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// A btrfs loop file: every rootfs a subvolume, a snapshot where LXC can make one.
    Btrfs,
    /// A directory on /tmp's filesystem: every rootfs a plain directory, copies by rsync.
    Dir,
}

impl Backing {
    /// The storage type in `lxc.rootfs.path = TYPE:PATH`.
    fn storage_type(self) -> &'static str {
        match self {
            Self::Btrfs => "btrfs",
            Self::Dir => "dir",
        }
    }
}

pub struct Lxc {
    /// Holds the lxcpath (on btrfs the loop file and its mount point); removed after
    /// the unmount.
    dir: tempfile::TempDir,
    lxcpath: PathBuf,
    backing: Backing,
    /// The bridge each container's eth0 is on: sysc's default network.
    bridge: String,
    /// Whose ids the containers (not the image) run with.
    ids: Ids,
    mounted: bool,
    pub version: String,
    /// Every container this bench defined (full names), for the clean-up of
    /// whatever LXC leaves in the cgroup hierarchies.
    made: RefCell<Vec<String>>,
    /// Hierarchies that had LXC's shared `lxc.pivot` cgroup before the bench, whose
    /// lxc.pivot is therefore not ours to remove.
    pivots_before: Vec<PathBuf>,
}

impl Lxc {
    pub fn new(backing: Backing, bridge: &str, ids: Ids) -> Result<Self> {
        let version = run(Command::new("lxc-start").arg("--version"))?.trim().to_string();
        let dir = tempfile::Builder::new().prefix("sysc-bench-lxc").tempdir_in("/tmp")?;
        let mut lxc = Self {
            lxcpath: dir.path().join("lxcpath"),
            dir,
            backing,
            bridge: bridge.to_string(),
            ids,
            mounted: false,
            version,
            made: RefCell::new(Vec::new()),
            pivots_before: pivot_cgroups(),
        };
        match backing {
            Backing::Btrfs => lxc.mount_pool()?,
            Backing::Dir => {
                // lxc-copy copies a dir rootfs with rsync and fails without a word when
                // it is missing.
                run(Command::new("rsync").arg("--version"))
                    .context("LXC on dir needs rsync to copy a rootfs (apt install rsync)")?;
                fs::create_dir(&lxc.lxcpath)?
            }
        }
        Ok(lxc)
    }

    /// btrfs so that `lxc-copy -s` makes a real snapshot, as sysc's pool does.
    fn mount_pool(&mut self) -> Result<()> {
        let image = self.dir.path().join("pool.img");
        fs::File::create(&image)?.set_len(8 << 30)?;
        run(Command::new("mkfs.btrfs").arg("-q").arg(&image))?;
        fs::create_dir(&self.lxcpath)?;
        // A loop mount detaches its loop device on unmount (autoclear).
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&self.lxcpath))?;
        self.mounted = true;
        Ok(())
    }

    /// Privileged ones apart, so that two of a name can run at once (one per lxcpath)
    /// without sharing cgroup names.
    fn full_name(&self, name: &str) -> String {
        match self.ids {
            Ids::Host => format!("{LXC_PREFIX}priv-{name}"),
            Ids::Mapped { .. } => format!("{LXC_PREFIX}{name}"),
        }
    }

    fn image_name(&self, template: Template) -> String {
        self.full_name(&format!("{}-image", template.name()))
    }

    fn config_path(&self, full: &str) -> PathBuf {
        self.lxcpath.join(full).join("config")
    }

    fn exists(&self, full: &str) -> bool {
        self.config_path(full).is_file()
    }

    /// An `lxc-*` tool aimed at one container of our lxcpath.
    fn tool(&self, tool: &str, full: &str) -> Command {
        let mut command = Command::new(tool);
        command.args(["-n", full, "-P"]).arg(&self.lxcpath);
        command
    }

    fn remember(&self, full: &str) {
        let mut made = self.made.borrow_mut();
        if !made.iter().any(|m| m == full) {
            made.push(full.to_string());
        }
    }

    /// A never-started container whose rootfs (a btrfs subvolume, or a directory) holds
    /// a plain copy of sysc's image: every LXC container of the template is a snapshot
    /// of it on btrfs, a copy of it on dir.
    pub fn import_image(&self, template: Template, image_rootfs: &Path) -> Result<()> {
        let full = self.image_name(template);
        if self.exists(&full) {
            return Ok(());
        }
        let storage = self.backing.storage_type();
        eprintln!("  copying sysc's {} image for LXC on {storage}", template.name());
        let rootfs = self.lxcpath.join(&full).join("rootfs");
        fs::create_dir_all(self.lxcpath.join(&full))?;
        self.remember(&full);
        match self.backing {
            Backing::Btrfs => {
                run(Command::new("btrfs").args(["subvolume", "create"]).arg(&rootfs))?;
            }
            Backing::Dir => fs::create_dir(&rootfs)?,
        }
        run(Command::new("cp").arg("-a").arg(image_rootfs.join(".")).arg(&rootfs))?;
        personalize(&rootfs, &full)?;
        // Never started: it keeps its storage type, so that lxc-copy -s snapshots it.
        self.write_config(template, &full, Ids::Host)
    }

    /// Our config for the container `full`, in place of whatever lxc-copy wrote (which
    /// would give a copy a random MAC).
    fn write_config(&self, template: Template, full: &str, ids: Ids) -> Result<()> {
        let rootfs = self.lxcpath.join(full).join("rootfs");
        let storage = self.backing.storage_type();
        let config = lxc_config(full, storage, &rootfs, template, &self.bridge, ids);
        fs::write(self.config_path(full), config).with_context(|| format!("write the LXC config of {full}"))
    }

    pub fn create_missing(&self, template: Template, names: &[&str]) -> Result<()> {
        for name in names {
            let full = self.full_name(name);
            if !self.exists(&full) {
                check_interrupted()?;
                self.clone_image(template, &full)?;
                // sysc gives every container its own machine-id; so do we, untimed.
                personalize(&self.lxcpath.join(&full).join("rootfs"), &full)?;
            }
        }
        Ok(())
    }

    /// `lxc-copy -s` on btrfs, a subvolume snapshot; plain `lxc-copy` (rsync) on dir,
    /// where `-s` would make an overlay container instead. It also renames the copy.
    fn clone_image(&self, template: Template, full: &str) -> Result<()> {
        self.remember(full);
        let mut copy = self.tool("lxc-copy", &self.image_name(template));
        copy.args(["-N", full]);
        if self.backing == Backing::Btrfs {
            copy.arg("-s");
        }
        run(&mut copy)?;
        self.write_config(template, full, self.ids)
    }

    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.lxcpath.join(self.full_name(name)).join("rootfs")
    }

    /// Where `lxc-snapshot` keeps a container's snapshots, each one a container there.
    fn snapshots_path(&self, name: &str) -> PathBuf {
        self.lxcpath.join(self.full_name(name)).join("snaps")
    }

    /// The snapshot of a running container, as LXC makes it, not started yet.
    /// `lxc-snapshot` refuses a running container; LXC's own error says to force it with
    /// `lxc-copy --allowrunning`. This is that clone with lxc-snapshot's own flags (keep
    /// the name and the MAC, the same backing; `-s`: a subvolume snapshot on btrfs),
    /// into the directory lxc-snapshot uses. On dir it is an rsync copy.
    pub fn snapshot(&self, name: &str, snapshot: &str) -> Result<Command> {
        let snapshots = self.snapshots_path(name);
        fs::create_dir_all(&snapshots)?;
        let mut copy = self.tool("lxc-copy", &self.full_name(name));
        copy.args(["-N", snapshot, "-a", "-K", "-M", "-p"]).arg(&snapshots);
        if self.backing == Backing::Btrfs {
            copy.arg("-s");
        }
        Ok(copy)
    }

    /// `lxc-destroy` of the snapshot, if it is there.
    pub fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<()> {
        let snapshots = self.snapshots_path(name);
        if snapshots.join(snapshot).join("config").is_file() {
            run(Command::new("lxc-destroy").args(["-n", snapshot, "-P"]).arg(&snapshots))?;
        }
        Ok(())
    }

    fn is_running(&self, full: &str) -> Result<bool> {
        let state = run(self.tool("lxc-info", full).args(["-s", "-H"]))?;
        Ok(state.trim() != "STOPPED")
    }

    /// The end of the container's log, to explain a failed start.
    fn log_tail(&self, full: &str) -> String {
        let log = fs::read_to_string(self.lxcpath.join(full).join(format!("{full}.log"))).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    /// Kills what runs, then removes the cgroups LXC leaves behind after failed
    /// starts (ours only: `lxc.payload.NAME`, `lxc.monitor.NAME`), our lxc.pivot, the
    /// mount.
    fn clean_up(&mut self) {
        let made = self.made.take();
        for full in made.iter().rev() {
            if self.is_running(full).unwrap_or(false)
                && let Err(err) = run(self.tool("lxc-stop", full).arg("-k"))
            {
                eprintln!("sysc-bench: kill LXC container {full}: {err:#}");
            }
        }
        for full in &made {
            for kind in ["payload", "monitor"] {
                for hierarchy in cgroup_hierarchies() {
                    remove_cgroup_tree(&hierarchy.join(format!("lxc.{kind}.{full}")));
                }
            }
        }
        for pivot in pivot_cgroups() {
            if !self.pivots_before.contains(&pivot) {
                remove_cgroup_tree(&pivot);
            }
        }
        if self.mounted {
            if let Err(err) = run(Command::new("umount").arg(&self.lxcpath)) {
                eprintln!("sysc-bench: {err:#}; unmounting lazily");
                let _ = run(Command::new("umount").arg("-l").arg(&self.lxcpath));
            }
            self.mounted = false;
        }
    }
}

impl Drop for Lxc {
    fn drop(&mut self) {
        self.clean_up();
    }
}

impl Manager for Lxc {
    fn label(&self) -> &'static str {
        match self.ids {
            Ids::Host => "LXC privileged",
            Ids::Mapped { .. } => "LXC",
        }
    }

    fn start(&self, name: &str) -> Result<()> {
        let full = self.full_name(name);
        let config = self.config_path(&full);
        run(self.tool("lxc-start", &full).arg("-d").arg("-f").arg(&config))
            .map(drop)
            .with_context(|| format!("its log ends:\n{}", self.log_tail(&full)))
    }

    fn init_pid(&self, name: &str) -> Result<Option<i32>> {
        let pid = run(self.tool("lxc-info", &self.full_name(name)).args(["-p", "-H"]))?;
        Ok(pid.trim().parse().ok())
    }

    fn stop(&self, name: &str) -> Result<()> {
        let timeout = STOP_TIMEOUT_SECS.to_string();
        run(self.tool("lxc-stop", &self.full_name(name)).args(["-t", &timeout])).map(drop)
    }

    fn kill_all(&self, names: &[&str]) -> Result<()> {
        for full in names.iter().map(|name| self.full_name(name)) {
            if self.is_running(&full)? {
                run(self.tool("lxc-stop", &full).arg("-k"))?;
            }
        }
        Ok(())
    }

    fn launch(&self, template: Template, name: &str) -> Result<()> {
        self.clone_image(template, &self.full_name(name))?;
        self.start(name)
    }

    fn delete_all(&self, names: &[&str]) -> Result<()> {
        self.kill_all(names)?;
        for full in names.iter().map(|name| self.full_name(name)) {
            if self.exists(&full) {
                run(&mut self.tool("lxc-destroy", &full))?;
            }
        }
        Ok(())
    }

    /// With our config, where `lxc-start -f` took it from: LXC's default place for it.
    fn exec(&self, name: &str, command: &[&str]) -> Command {
        let mut attach = self.tool("lxc-attach", &self.full_name(name));
        attach.arg("--").args(command);
        attach
    }

    fn monitor_marker(&self) -> &'static str {
        "[lxc monitor]"
    }
}
