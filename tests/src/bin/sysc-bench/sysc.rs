//! sysc, through a private syscd and the real CLI: its default (unprivileged)
//! containers, or privileged ones from the same daemon and images.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use anyhow::{Result, anyhow};
use serde_json::Value;
use sysc_tests::Daemon;

use crate::interrupt::check_interrupted;
use crate::manager::{Manager, STOP_TIMEOUT_SECS, Template};
use crate::util::{json_list, run};

pub struct Sysc {
    /// Shared by both sides, so that they differ in nothing but the privilege.
    daemon: Rc<Daemon>,
    privileged: bool,
}

impl Sysc {
    /// The default side, with a daemon of its own.
    pub fn start() -> Self {
        Self {
            daemon: Rc::new(Daemon::start()),
            privileged: false,
        }
    }

    /// The privileged side, on the same daemon.
    pub fn privileged(&self) -> Self {
        Self {
            daemon: Rc::clone(&self.daemon),
            privileged: true,
        }
    }

    /// The container's sysc name: the privileged side's have a suffix, so that both
    /// sides can hold a scenario's containers in the one daemon.
    fn full_name<'a>(&self, name: &'a str) -> Cow<'a, str> {
        if self.privileged {
            Cow::Owned(format!("{name}-priv"))
        } else {
            Cow::Borrowed(name)
        }
    }

    /// `sysc ARGS` against our daemon, not started yet.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(sysc_tests::binary("sysc"));
        command.args(args).env("SYSC_SOCKET", &self.daemon.socket);
        command
    }

    /// `sysc ARGS` against our daemon, with the same time limit as every command here.
    fn cli(&self, args: &[&str]) -> Result<String> {
        run(&mut self.command(args))
    }

    fn json(&self, args: &[&str]) -> Result<Vec<Value>> {
        json_list(args, &self.cli(args)?)
    }

    fn containers(&self) -> Result<Vec<Value>> {
        self.json(&["list", "--format", "json"])
    }

    fn names(&self) -> Result<Vec<String>> {
        Ok(self
            .containers()?
            .iter()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect())
    }

    /// sysc name → init PID of every running container.
    fn running(&self) -> Result<HashMap<String, i32>> {
        Ok(self
            .containers()?
            .iter()
            .filter(|c| c["state"] == "RUNNING")
            .filter_map(|c| {
                let pid = c["pid"].as_i64().filter(|&pid| pid > 0)?;
                Some((c["name"].as_str()?.to_string(), i32::try_from(pid).ok()?))
            })
            .collect())
    }

    /// `sysc VERB TEMPLATE NAME` for `create` or `launch`: the privileged side asks
    /// for a privileged container.
    fn make(&self, verb: &str, template: Template, name: &str) -> Result<()> {
        let name = self.full_name(name);
        let mut args = vec![verb, template.name(), &name];
        if self.privileged {
            args.extend(["-c", "security.privileged=true"]);
        }
        self.cli(&args).map(drop)
    }

    pub fn create_missing(&self, template: Template, names: &[&str]) -> Result<()> {
        let existing = self.names()?;
        for name in names
            .iter()
            .filter(|name| !existing.iter().any(|e| *e == self.full_name(name)))
        {
            check_interrupted()?;
            self.make("create", template, name)?;
        }
        Ok(())
    }

    /// The root filesystem of the template's cached image, built first if need be
    /// (by creating and deleting a container, as a user would).
    pub fn image_rootfs(&self, template: Template) -> Result<PathBuf> {
        if let Some(path) = self.cached_image_rootfs(template)? {
            return Ok(path);
        }
        eprintln!("  building sysc's {} image", template.name());
        let seed = format!("seed-{}", template.name());
        self.cli(&["create", template.name(), &seed])?;
        self.cli(&["delete", &seed])?;
        self.cached_image_rootfs(template)?
            .ok_or_else(|| anyhow!("no {} image after creating a container", template.name()))
    }

    /// `sysc create TEMPLATE NAME --storage POOL`: a default (unprivileged) container
    /// in a pool other than the default one.
    pub fn create_in_pool(&self, template: Template, name: &str, pool: &str) -> Result<()> {
        self.cli(&["create", template.name(), name, "--storage", pool])
            .map(drop)
    }

    /// `sysc storage create NAME DRIVER`, unless the pool is there already.
    pub fn create_pool(&self, name: &str, driver: &str) -> Result<()> {
        if !self.pool_exists(name)? {
            self.cli(&["storage", "create", name, driver])?;
        }
        Ok(())
    }

    /// `sysc storage delete NAME`, if the pool is there.
    pub fn delete_pool(&self, name: &str) -> Result<()> {
        if self.pool_exists(name)? {
            self.cli(&["storage", "delete", name])?;
        }
        Ok(())
    }

    fn pool_exists(&self, name: &str) -> Result<bool> {
        let pools = self.json(&["storage", "list", "--format", "json"])?;
        Ok(pools.iter().any(|pool| pool["name"] == name))
    }

    /// The container's root filesystem on the host, as the daemon reports it.
    pub fn rootfs(&self, name: &str) -> Result<PathBuf> {
        let name = self.full_name(name);
        self.containers()?
            .iter()
            .find(|c| c["name"] == *name)
            .and_then(|c| c["paths"]["rootfs"].as_str())
            .map(PathBuf::from)
            .ok_or_else(|| anyhow!("sysc list shows no rootfs for {name}"))
    }

    /// `sysc snapshot create NAME SNAP`, not started yet: the command a user waits for.
    pub fn snapshot(&self, name: &str, snapshot: &str) -> Command {
        self.command(&["snapshot", "create", &self.full_name(name), snapshot])
    }

    /// `sysc snapshot delete NAME SNAP`, if the container has that snapshot.
    pub fn delete_snapshot(&self, name: &str, snapshot: &str) -> Result<()> {
        let name = self.full_name(name);
        let snapshots = self.json(&["snapshot", "list", &name, "--format", "json"])?;
        if snapshots.iter().any(|s| s["name"] == snapshot) {
            self.cli(&["snapshot", "delete", &name, snapshot])?;
        }
        Ok(())
    }

    /// `sysc export NAME FILE --instance-only --compression COMPRESSION`, not started yet.
    pub fn export(&self, name: &str, file: &Path, compression: &str) -> Command {
        let mut export = self.command(&["export", &self.full_name(name)]);
        export.arg(file).args(["--instance-only", "--compression", compression]);
        export
    }

    /// `sysc file push FLAGS SOURCE NAME/PATH`, not started yet: the command a user waits for.
    pub fn file_push(&self, flags: &[&str], source: &Path, name: &str, path: &str) -> Command {
        let mut push = self.command(&["file", "push"]);
        push.args(flags).arg(source).arg(self.file_target(name, path));
        push
    }

    /// `sysc file pull FLAGS NAME/PATH DEST`, not started yet.
    pub fn file_pull(&self, flags: &[&str], name: &str, path: &str, dest: &Path) -> Command {
        let mut pull = self.command(&["file", "pull"]);
        pull.args(flags).arg(self.file_target(name, path)).arg(dest);
        pull
    }

    /// NAME/PATH as `sysc file` takes it; `path` is absolute.
    fn file_target(&self, name: &str, path: &str) -> String {
        format!("{}{path}", self.full_name(name))
    }

    /// `sysc start NAME...`, not started yet: one command, whose CLI sends the starts at once.
    pub fn start_command(&self, names: &[&str]) -> Command {
        let names: Vec<Cow<str>> = names.iter().map(|name| self.full_name(name)).collect();
        let mut start = self.command(&["start"]);
        start.args(names.iter().map(|name| name.as_ref()));
        start
    }

    /// sysc name → its addresses in `sysc list` ("10.53.250.12 (eth0)"), for every container.
    pub fn ipv4(&self) -> Result<HashMap<String, Vec<String>>> {
        Ok(self
            .containers()?
            .iter()
            .filter_map(|c| {
                let addresses = c["ipv4_addresses"]
                    .as_array()?
                    .iter()
                    .filter_map(|a| Some(format!("{} ({})", a["address"].as_str()?, a["interface"].as_str()?)));
                Some((c["name"].as_str()?.to_string(), addresses.collect()))
            })
            .collect())
    }

    /// The daemon's default network (and its bridge): the test harness names it for this
    /// process and tears it down (dnsmasq, nftables table, bridge) once the containers and
    /// the daemon are gone.
    pub fn network(&self) -> &str {
        &self.daemon.bridge
    }

    /// The log of the default network's dnsmasq (every DHCP exchange, `--log-dhcp`).
    pub fn dnsmasq_log(&self) -> PathBuf {
        self.daemon
            .root
            .join("networks")
            .join(self.network())
            .join("dnsmasq.log")
    }

    /// How many DHCPNAKs that log holds so far: each sends a busybox client into a 3 s wait.
    pub fn dnsmasq_naks(&self) -> usize {
        std::fs::read_to_string(self.dnsmasq_log())
            .map(|log| log.lines().filter(|line| line.contains("DHCPNAK")).count())
            .unwrap_or(0)
    }

    /// The last `lines` lines of that log, for a failure's message.
    pub fn dnsmasq_log_tail(&self, lines: usize) -> String {
        match std::fs::read_to_string(self.dnsmasq_log()) {
            Ok(log) => {
                let all: Vec<&str> = log.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(err) => format!("({}: {err})", self.dnsmasq_log().display()),
        }
    }

    /// The unix socket of the syscd behind both sides.
    pub fn socket(&self) -> &Path {
        &self.daemon.socket
    }

    /// The PID of the syscd behind both sides.
    pub fn daemon_pid(&self) -> i32 {
        self.daemon.pid() as i32
    }

    fn cached_image_rootfs(&self, template: Template) -> Result<Option<PathBuf>> {
        let images = self.json(&["image", "list", "--format", "json"])?;
        let fingerprint = images
            .iter()
            .find(|image| image["template"] == template.name())
            .and_then(|image| image["fingerprint"].as_str());
        Ok(fingerprint.map(|fp| self.daemon.pool_dir().join("images").join(fp).join("rootfs")))
    }
}

impl Manager for Sysc {
    fn label(&self) -> &'static str {
        if self.privileged { "sysc privileged" } else { "sysc" }
    }

    fn start(&self, name: &str) -> Result<()> {
        self.cli(&["start", &self.full_name(name)]).map(drop)
    }

    fn init_pid(&self, name: &str) -> Result<Option<i32>> {
        Ok(self.running()?.get(&*self.full_name(name)).copied())
    }

    /// One `sysc list` for all of them.
    fn init_pids(&self, names: &[&str]) -> Result<Vec<i32>> {
        let running = self.running()?;
        names
            .iter()
            .map(|name| {
                running
                    .get(&*self.full_name(name))
                    .copied()
                    .ok_or_else(|| anyhow!("{name} is not running"))
            })
            .collect()
    }

    fn stop(&self, name: &str) -> Result<()> {
        self.cli(&[
            "stop",
            &self.full_name(name),
            "--timeout",
            &STOP_TIMEOUT_SECS.to_string(),
        ])
        .map(drop)
    }

    // One container per command: `sysc stop`/`delete` with many names sends them
    // all at once, and this syscd then hangs (20 deletes or 50 stops at once never
    // return; see the bench's report). These steps are untimed, so it costs nothing.
    fn kill_all(&self, names: &[&str]) -> Result<()> {
        let running = self.running()?;
        for name in names.iter().map(|name| self.full_name(name)) {
            if running.contains_key(&*name) {
                self.cli(&["stop", "--force", &name])?;
            }
        }
        Ok(())
    }

    fn launch(&self, template: Template, name: &str) -> Result<()> {
        self.make("launch", template, name)
    }

    fn delete_all(&self, names: &[&str]) -> Result<()> {
        let existing = self.names()?;
        for name in names.iter().map(|name| self.full_name(name)) {
            if existing.iter().any(|e| *e == name) {
                self.cli(&["delete", "--force", &name])?;
            }
        }
        Ok(())
    }

    fn exec(&self, name: &str, command: &[&str]) -> Command {
        let mut exec = self.command(&["exec", &self.full_name(name), "--"]);
        exec.args(command);
        exec
    }

    fn monitor_marker(&self) -> &'static str {
        "sysc-monitor"
    }
}
