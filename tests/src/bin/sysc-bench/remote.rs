//! The CLI against a remote over TLS, beside the same calls over the local unix socket:
//! round trips of `sysc list` and `sysc exec c -- true`, and the throughput of `sysc copy`
//! of a stopped container from one daemon to another, beside `sysc export` of it to a file.
//!
//! The bench daemon listens with TLS on a free loopback port and trusts a client of the
//! bench's own (its own SYSC_CONFIG_DIR in a scratch directory, never root's
//! ~/.config/sysc), enrolled as remote `r` with a token from `sysc config trust add`. Every
//! call is a fresh `sysc` process, timed from its spawn until it has exited, as a user
//! pays for it: the CLI's start, its connection (over TLS: TCP, the handshake with both
//! certificates) and the call. Each run's sample is the median of CALLS such calls, after
//! WARM_UP untimed ones.
//!
//! For the copy a second private syscd (root, run directory, cgroup parent, id range and
//! bridge of its own, as the test harness makes every daemon) listens on another loopback
//! port and is enrolled as `r2`. `sysc copy r:big r2:big --instance-only` relays the
//! container through the CLI: Backups.Export on `r`, each chunk handed on to
//! Backups.Import on `r2` as it comes, uncompressed. Its reference is `sysc export big FILE
//! --instance-only --compression none` over the unix socket, to a file in the scratch
//! directory. Both read the same rootfs (busybox filled with random data to COPY_SIZE,
//! fill.rs), warm in the page cache; MB/s = the rootfs's apparent size / wall time. Each
//! copy is checked (untimed) to have landed on `r2` whole and deleted there again before
//! the next run, each archive removed.
//!
//! Everything made here goes on the way out, also after a failure or Ctrl-C: the second
//! daemon with its network, pool and files; on the bench daemon the containers, the
//! listener and the trusted certificate (or the unused token); the scratch directory.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use sysc_tests::Daemon;

use crate::bench::Bench;
use crate::fill::Fill;
use crate::interrupt::check_interrupted;
use crate::manager::{Manager, Template};
use crate::measure::{measured_then, round_trips, start_ready};
use crate::readiness::Readiness;
use crate::report::{Figure, Unit};
use crate::series::Sample;
use crate::sysc::Sysc;
use crate::util::{
    COMMAND_TIMEOUT, OnDrop, apparent_size_bytes, complain, filesystem_type, json_list, remove_if_there, run,
    run_counted,
};

/// Untimed calls before each run's timed ones.
const WARM_UP: usize = 3;
/// Timed calls per run; the run's sample is their median.
const CALLS: usize = 20;
/// Longest one `list` or `exec` call may take before the sample fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The stopped container's rootfs for the copy, and its name in the table.
const COPY_SIZE: (u64, &str) = (200_000_000, "200 MB");
/// A copy's apparent size may differ from its source's by this much (a new machine-id).
const COPY_SLACK_BYTES: u64 = 64 << 10;

/// The running container of the round trips, and the stopped one that is copied.
const RUNNING: &str = "c";
const BIG: &str = "big";
/// The remotes' names on the bench's client, and the name its certificate is trusted as.
const REMOTE: &str = "r";
const SECOND_REMOTE: &str = "r2";
const TRUSTED_AS: &str = "bench";

/// Scenario 12: `sysc list` and `sysc exec c -- true` over TLS beside the unix socket, and
/// `sysc copy` between two daemons beside `sysc export`. No targets: each TLS figure's
/// reference is the same call over the unix socket (ratio = TLS / local).
pub fn remote(bench: &Bench) -> Result<Vec<Figure>> {
    let sysc = &bench.sysc;
    let scratch = tempfile::Builder::new()
        .prefix("sysc-bench-remote")
        .tempdir_in("/tmp")?;
    let local = Client {
        config_dir: scratch.path().join("client"),
        socket: sysc.socket().to_path_buf(),
    };
    let _clean_up = OnDrop(|| {
        complain(sysc.delete_all(&[RUNNING, BIG]));
        complain(unlisten(&local));
    });
    let address = listen(&local)?;
    enrol(&local, REMOTE)?;
    eprintln!("  bench daemon listening on {address} as remote {REMOTE}");

    sysc.create_missing(Template::Busybox, &[RUNNING, BIG])?;
    start_ready(sysc, RUNNING, Readiness::ExecWorks(Template::Busybox))?;
    let containers = sysc_list_len(&local)?;

    let mut figures = Vec::new();
    check_interrupted()?;
    eprintln!("  list");
    let [unix, tls] = bench.in_turn([Ok(Route::Unix), Ok(Route::Tls)], Route::label, |route| {
        round_trips_of(|| match route {
            Route::Unix => local.command(&["list"]),
            Route::Tls => local.command(&["list", &format!("{REMOTE}:")]),
        })
    });
    figures.push(Figure::versus(
        &format!(
            "`sysc list {REMOTE}:` over TLS ({containers} containers), a fresh CLI process per call \
             (start + TLS handshake + call)"
        ),
        Unit::Ms,
        tls,
        "`sysc list`, unix socket",
        unix,
        None,
    ));

    check_interrupted()?;
    eprintln!("  exec");
    let [unix, tls] = bench.in_turn([Ok(Route::Unix), Ok(Route::Tls)], Route::label, |route| {
        round_trips_of(|| local.command(&["exec", &route.prefix(RUNNING), "--", "true"]))
    });
    figures.push(Figure::versus(
        &format!(
            "`sysc exec {REMOTE}:{RUNNING} -- true` over TLS, running busybox, a fresh CLI process per call \
             (start + TLS handshake + call)"
        ),
        Unit::Ms,
        tls,
        "`sysc exec`, unix socket",
        unix,
        None,
    ));
    complain(sysc.kill_all(&[RUNNING]));

    check_interrupted()?;
    figures.push(copy(bench, &local, scratch.path())?);
    Ok(figures)
}

/// The copy between two daemons beside an export, on a second daemon made for it and
/// gone again (with its network) when this returns.
fn copy(bench: &Bench, local: &Client, scratch: &Path) -> Result<Figure> {
    let sysc = &bench.sysc;
    eprintln!("  filling {BIG}'s rootfs to {}", COPY_SIZE.1);
    let rootfs = sysc.rootfs(BIG)?;
    Fill::new(&rootfs)?.grow_to(COPY_SIZE.0)?;
    let bytes = apparent_size_bytes(&rootfs)?;
    let disk = filesystem_type(scratch)?;
    let label = format!(
        "`sysc copy {REMOTE}:{BIG} {SECOND_REMOTE}:{BIG} --instance-only`, two daemons over TLS on the loopback, \
         stopped busybox, rootfs {}",
        COPY_SIZE.1
    );
    let reference = format!("`sysc export --compression none` → {disk} file");

    eprintln!("  starting a second private syscd");
    // Stopped, and its network, pool and files removed, when it drops at the end.
    let second_daemon = std::panic::catch_unwind(AssertUnwindSafe(Daemon::start))
        .map_err(|_| anyhow!("the second syscd did not start (see the panic above)"))?;
    let second = Client {
        config_dir: local.config_dir.clone(),
        socket: second_daemon.socket.clone(),
    };
    let second_address = listen(&second)?;
    enrol(&second, SECOND_REMOTE)?;
    eprintln!("  second daemon listening on {second_address} as remote {SECOND_REMOTE}");

    let copy = CopySide::Copy {
        command: Box::new(|| {
            local.command(&[
                "copy",
                &format!("{REMOTE}:{BIG}"),
                &format!("{SECOND_REMOTE}:{BIG}"),
                "--instance-only",
            ])
        }),
        target: &second,
        bytes,
    };
    let archive = scratch.join("big.tar");
    let export = CopySide::Export {
        sysc,
        archive: &archive,
    };

    // One untimed copy first: whether this build copies between remotes at all, and that
    // what it copies arrives whole.
    check_interrupted()?;
    eprintln!("  a first copy, untimed");
    measured_then(copy.run(), || copy.remove()).context("the first, untimed copy")?;
    let [copied, exported] = bench.in_turn([Ok(&copy), Ok(&export)], CopySide::label, |side| {
        let elapsed = measured_then(side.run(), || side.remove())?;
        Ok(Sample::plain(bytes as f64 / elapsed.as_secs_f64() / 1e6))
    });
    Ok(Figure::versus(&label, Unit::MBps, copied, &reference, exported, None))
}

/// How a call reaches the bench daemon.
#[derive(Clone, Copy)]
enum Route {
    /// Its unix socket (SYSC_SOCKET).
    Unix,
    /// Remote `r`: TLS on the loopback.
    Tls,
}

impl Route {
    fn label(self) -> &'static str {
        match self {
            Self::Unix => "unix socket",
            Self::Tls => "TLS",
        }
    }

    /// `name` as the command line names it on this route: `r:name` over TLS.
    fn prefix(self, name: &str) -> String {
        match self {
            Self::Unix => name.to_string(),
            Self::Tls => format!("{REMOTE}:{name}"),
        }
    }
}

/// The bench's `sysc`: its own config directory (certificate, remotes), and one daemon's
/// unix socket for the calls without a remote.
struct Client {
    config_dir: PathBuf,
    socket: PathBuf,
}

impl Client {
    /// `sysc ARGS`, not started yet.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(sysc_tests::binary("sysc"));
        command
            .args(args)
            .env("SYSC_CONFIG_DIR", &self.config_dir)
            .env("SYSC_SOCKET", &self.socket);
        command
    }

    fn cli(&self, args: &[&str]) -> Result<String> {
        run(&mut self.command(args))
    }

    fn json(&self, args: &[&str]) -> Result<Vec<Value>> {
        json_list(args, &self.cli(args)?)
    }

    /// Whether `sysc ARGS --format json` lists an entry named `name`.
    fn lists(&self, args: &[&str], name: &str) -> Result<bool> {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        Ok(self.json(&args)?.iter().any(|entry| entry["name"] == name))
    }

    /// The container's root filesystem on the host, if the daemon has it.
    fn rootfs(&self, name: &str) -> Result<Option<PathBuf>> {
        self.json(&["list", "--format", "json"])?
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| {
                c["paths"]["rootfs"]
                    .as_str()
                    .map(PathBuf::from)
                    .ok_or_else(|| anyhow!("sysc list shows no rootfs for {name}"))
            })
            .transpose()
    }
}

/// The number of containers `sysc list` shows, for the row's label.
fn sysc_list_len(client: &Client) -> Result<usize> {
    Ok(client.json(&["list", "--format", "json"])?.len())
}

/// The daemon behind `client`'s socket listens with TLS on a free loopback port; its address.
fn listen(client: &Client) -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("find a free port on the loopback")?
        .port();
    let address = format!("127.0.0.1:{port}");
    client.cli(&["config", "set", "core.https_address", &address])?;
    Ok(address)
}

/// Enrols the client with the daemon behind its socket as `remote`: a token from `config
/// trust add` (its longest word), then `remote add` with it, over TLS.
fn enrol(client: &Client, remote: &str) -> Result<()> {
    let added = client.cli(&["config", "trust", "add", TRUSTED_AS])?;
    let token = added
        .split_whitespace()
        .max_by_key(|word| word.len())
        .ok_or_else(|| anyhow!("`sysc config trust add` printed no token"))?;
    client.cli(&["remote", "add", remote, token])?;
    Ok(())
}

/// Undoes `listen` and `enrol` on the bench daemon: no listener, the client's certificate
/// no longer trusted, its token (if it was never used) revoked.
fn unlisten(client: &Client) -> Result<()> {
    if client.lists(&["config", "trust", "list"], TRUSTED_AS)? {
        client.cli(&["config", "trust", "remove", TRUSTED_AS])?;
    }
    if client.lists(&["config", "trust", "list-tokens"], TRUSTED_AS)? {
        client.cli(&["config", "trust", "revoke-token", TRUSTED_AS])?;
    }
    client.cli(&["config", "unset", "core.https_address"])?;
    Ok(())
}

/// A side of the copy figure: the command, and the removal of what it made.
enum CopySide<'a> {
    /// `sysc copy` to the second daemon, whose copy must hold `bytes` too.
    Copy {
        command: Box<dyn Fn() -> Command + 'a>,
        target: &'a Client,
        bytes: u64,
    },
    /// `sysc export` to a file.
    Export { sysc: &'a Sysc, archive: &'a Path },
}

impl CopySide<'_> {
    fn label(&self) -> &'static str {
        match self {
            Self::Copy { .. } => "sysc copy",
            Self::Export { .. } => "sysc export",
        }
    }

    /// From the spawn of the command until it has exited; then, untimed, a copy must
    /// have arrived whole.
    fn run(&self) -> Result<Duration> {
        match self {
            Self::Copy { command, target, bytes } => {
                let elapsed = run_counted(&mut command(), COMMAND_TIMEOUT)?.elapsed;
                let rootfs = target
                    .rootfs(BIG)?
                    .ok_or_else(|| anyhow!("{SECOND_REMOTE} has no {BIG} after the copy"))?;
                let copied = apparent_size_bytes(&rootfs)?;
                ensure!(
                    copied.abs_diff(*bytes) <= COPY_SLACK_BYTES,
                    "{SECOND_REMOTE}:{BIG} holds {copied} bytes, its source {bytes}"
                );
                Ok(elapsed)
            }
            Self::Export { sysc, archive } => {
                Ok(run_counted(&mut sysc.export(BIG, archive, "none"), COMMAND_TIMEOUT)?.elapsed)
            }
        }
    }

    fn remove(&self) -> Result<()> {
        match self {
            Self::Copy { target, .. } => {
                if target.lists(&["list"], BIG)? {
                    target.cli(&["delete", "--force", BIG])?;
                }
                Ok(())
            }
            Self::Export { archive, .. } => remove_if_there(archive),
        }
    }
}

/// One run's round trip: WARM_UP untimed calls, then CALLS timed ones.
fn round_trips_of(command: impl Fn() -> Command) -> Result<Sample> {
    round_trips(command, WARM_UP, CALLS, CALL_TIMEOUT)
}
