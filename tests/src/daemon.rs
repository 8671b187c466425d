//! One syscd for one test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use syscd::cgroup::CgroupConfig;

use crate::host::wait_until;

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Id ranges each test daemon may hand out (the 30-container test needs 30).
const RANGES_PER_DAEMON: u32 = 40;

#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// "btrfs" or "dir".
    pub storage: &'static str,
    /// "auto" or "v2".
    pub cgroup_driver: &'static str,
    /// A templates directory other than the repository's.
    pub templates: Option<PathBuf>,
    /// A network namespace (in /run/netns) to run the daemon in: a host of its own.
    pub netns: Option<String>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        Self {
            storage: "btrfs",
            cgroup_driver: "auto",
            templates: None,
            netns: None,
        }
    }
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub run_dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    /// The default network's bridge, named for this test.
    pub bridge: String,
    pub idmap_base: u32,
    pub options: DaemonOptions,
    child: Option<Child>,
}

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The binaries cargo built (target/<profile>/): the parent of a test's deps/
/// directory, or the directory of a binary target such as sysc-bench.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let exe_dir = exe.parent().unwrap();
    let profile_dir = exe_dir.parent().unwrap();
    [profile_dir.join(name), exe_dir.join(name)]
        .into_iter()
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not built in {} or {}: run `cargo build --workspace` first",
                profile_dir.display(),
                exe_dir.display()
            )
        })
}

/// Shared by every daemon of a test run, so debootstrap runs once per run.
fn template_cache() -> PathBuf {
    std::env::var_os("SYSC_TEST_TEMPLATE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/template-cache"))
}

impl Daemon {
    pub fn start() -> Self {
        Self::start_with(DaemonOptions::default())
    }

    pub fn start_with(options: DaemonOptions) -> Self {
        let n = SEQUENCE.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = tempfile::Builder::new().prefix("sysc-t").tempdir_in("/tmp").unwrap();
        // 1600 slots of 40 ranges fit below u32::MAX; neighbours in time get different ones.
        let slot = (pid * 4 + n) % 1600;
        let mut daemon = Self {
            root: dir.path().join("root"),
            run_dir: dir.path().join("run"),
            socket: dir.path().join("root/unix.socket"),
            cgroup_parent: format!("sysc-t{pid}-{n}"),
            bridge: format!("sysct{}x{n}", pid % 100_000),
            idmap_base: 1_000_000 + slot * RANGES_PER_DAEMON * 65536,
            options,
            dir,
            child: None,
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let templates = self
            .options
            .templates
            .clone()
            .unwrap_or_else(|| workspace().join("templates"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("syscd.log"))
            .unwrap();
        let mut command = match &self.options.netns {
            Some(netns) => {
                let mut command = Command::new("nsenter");
                command.arg(format!("--net=/run/netns/{netns}")).arg(binary("syscd"));
                command
            }
            None => Command::new(binary("syscd")),
        };
        let child = command
            .arg("--root")
            .arg(&self.root)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--cgroup-driver")
            .arg(self.options.cgroup_driver)
            .arg("--templates")
            .arg(&templates)
            .arg("--template-cache")
            .arg(template_cache())
            .arg("--idmap-base")
            .arg(self.idmap_base.to_string())
            .arg("--storage-driver")
            .arg(self.options.storage)
            .arg("--storage-size-gib")
            .arg("8")
            .arg("--network")
            .arg(&self.bridge)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start syscd");
        self.child = Some(child);
        let ready = wait_until(Duration::from_secs(30), || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("syscd exited at start-up ({status}):\n{}", self.log());
            }
            self.sysc(&["list", "--format", "json"]).success().then_some(())
        });
        assert!(ready.is_some(), "syscd did not come up:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("syscd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Runs `sysc ARGS...` against this daemon.
    pub fn sysc(&self, args: &[&str]) -> Output {
        self.sysc_stdin(args, None)
    }

    pub fn sysc_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut child = Command::new(binary("sysc"))
            .args(args)
            .env("SYSC_SOCKET", &self.socket)
            .env("SYSC_CONFIG_DIR", self.client_config_dir())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sysc");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let output = child.wait_with_output().unwrap();
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `sysc ARGS...` aimed at this daemon, to run however the test needs.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("sysc"));
        command
            .args(args)
            .env("SYSC_SOCKET", &self.socket)
            .env("SYSC_CONFIG_DIR", self.client_config_dir());
        command
    }

    /// The CLI's own directory (client certificate, remotes) for commands run against
    /// this daemon: never the user's ~/.config/sysc.
    pub fn client_config_dir(&self) -> PathBuf {
        self.dir.path().join("client")
    }

    /// Runs `sysc ARGS...` and insists it succeeds; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.sysc(args);
        assert!(
            output.success(),
            "sysc {args:?} failed ({}):\n{}\n{}\ndaemon log:\n{}",
            output.code,
            output.stdout,
            output.stderr,
            self.log()
        );
        output.stdout
    }

    /// Runs `sysc ARGS...`, insists it fails, and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.sysc(args);
        assert!(
            !output.success(),
            "sysc {args:?} should have failed:\n{}",
            output.stdout
        );
        output.stderr
    }

    pub fn list(&self) -> Vec<Value> {
        let text = self.ok(&["list", "--format", "json"]);
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn container(&self, name: &str) -> Value {
        self.list()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in sysc list"))
    }

    /// `sysc snapshot list NAME --format json`, oldest first.
    pub fn snapshots(&self, name: &str) -> Vec<Value> {
        let text = self.ok(&["snapshot", "list", name, "--format", "json"]);
        serde_json::from_str::<Value>(&text)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn state(&self, name: &str) -> String {
        self.container(name)["state"].as_str().unwrap().to_string()
    }

    pub fn init_pid(&self, name: &str) -> i64 {
        self.container(name)["pid"].as_i64().unwrap()
    }

    /// kill -9 of the daemon, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A clean SIGTERM stop of the daemon.
    pub fn stop(&mut self) {
        self.stop_within(Duration::from_secs(20));
    }

    /// SIGTERM to the daemon; how it exited if it did so within `limit` (else it is killed).
    pub fn stop_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: kill(2) of our own child by its PID.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let stopped = wait_until(limit, || child.try_wait().ok().flatten());
        if stopped.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        stopped
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "daemon still running");
        self.spawn();
    }

    pub fn pool_dir(&self) -> PathBuf {
        self.root.join("storage-pools/default")
    }

    fn cgroup(&self) -> CgroupConfig {
        let config = CgroupConfig::detect(Path::new("/sys/fs/cgroup"), &self.cgroup_parent).unwrap();
        if self.options.cgroup_driver == "v2" {
            CgroupConfig::v2(config.unified, &self.cgroup_parent)
        } else {
            config
        }
    }

    /// The container's directory in the v1 hierarchy of `controller` (hybrid hosts).
    pub fn v1_cgroup(&self, controller: &str, name: &str) -> PathBuf {
        self.cgroup()
            .v1
            .iter()
            .find(|h| {
                h.file_name()
                    .is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no v1 {controller} hierarchy"))
            .join(&self.cgroup_parent)
            .join(name)
    }

    /// A number from a cgroup file of the container.
    pub fn cgroup_value(&self, controller: &str, name: &str, file: &str) -> String {
        let path = self.v1_cgroup(controller, name).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .to_string()
    }

    /// Every cgroup directory of a container, in every hierarchy.
    pub fn cgroup_dirs(&self, name: &str) -> Vec<PathBuf> {
        let config = self.cgroup();
        config
            .v1
            .iter()
            .chain([&config.unified])
            .map(|h| h.join(&self.cgroup_parent).join(name))
            .collect()
    }

    /// Kills whatever the test left: containers through their monitors, stray
    /// processes through the cgroups, then the daemon, the pool mount, the files.
    fn clean_up(&mut self) {
        let driver = self.cgroup().driver();
        let containers: Vec<String> = std::fs::read_dir(self.cgroup().unified.join(&self.cgroup_parent))
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        // A container that a failed test left frozen would not die of the monitors' kill.
        for name in &containers {
            let _ = driver.thaw(name);
        }
        self.kill_monitors();
        self.stop();
        for name in &containers {
            let _ = driver.remove(name);
        }
        driver.remove_parent();
        // Bridges, nftables tables and dnsmasq outlive a daemon by design.
        if let Ok(entries) = std::fs::read_dir(self.root.join("networks")) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                syscd::network::tear_down_blocking(&self.root, &self.run_dir, &name);
            }
        }
        // Every pool's loop mount: the default one and those a test created.
        if let Ok(entries) = std::fs::read_dir(self.root.join("storage-pools")) {
            for pool in entries.flatten().map(|e| e.path()) {
                if crate::host::is_mounted(&pool.display().to_string()) {
                    let _ = Command::new("umount").arg("-l").arg(&pool).status();
                }
            }
        }
    }

    fn kill_monitors(&self) {
        let Ok(entries) = std::fs::read_dir(&self.run_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let socket = entry.path().join("monitor.sock");
            if let Ok(mut stream) = std::os::unix::net::UnixStream::connect(&socket) {
                use std::io::Write;
                let _ = stream.write_all(b"{\"op\":\"kill\"}\n");
                wait_until(Duration::from_secs(10), || (!socket.exists()).then_some(()));
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.clean_up();
    }
}
