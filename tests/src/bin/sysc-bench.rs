//! sysc-bench: sysc beside LXC on this host, both doing the same work on the same root
//! filesystems in the same run. Prints a table of medians, each sysc figure with its
//! target ratio to the reference (LXC unless the row says otherwise), then every raw
//! sample.
//!
//! sysc runs as it does by default: unprivileged (its own user namespace, idmapped
//! rootfs) on a btrfs loop-file pool, through a private syscd. LXC runs privileged (no
//! idmap) from config files written here, with a private lxcpath on its own btrfs loop
//! file, booting `cp -a` copies of sysc's own image root filesystems. Everything made
//! here (daemon, containers, cgroups, mounts, loop devices) is removed on the way out,
//! also after a failure or Ctrl-C.
//!
//! Build and run: `scripts/bench [--runs N] [--only SCENARIO]`. With
//! SYSC_TEST_TEMPLATE_CACHE pointing at a debootstrap cache the debian image builds in
//! seconds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::{Parser, ValueEnum};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use serde_json::Value;
use sysc_tests::Daemon;

/// How long a container may take to come up or go away before the sample fails.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest any one command may run (the slowest is the debian image's first build).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one readiness probe (an nsenter) may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Quiet time before each measurement, after a `sync`.
const SETTLE_PAUSE: Duration = Duration::from_millis(200);
/// Clean-stop budget on both sides (sysc's default; LXC is given the same).
const STOP_TIMEOUT_SECS: u32 = 30;
/// LXC names all start with this, so leakcheck's default pattern (`sysc`) also finds
/// anything of LXC's that this bench left behind.
const LXC_PREFIX: &str = "syscbench-";
/// "Second launch must not grow with the image's size": debian may take at most this
/// many times as long as busybox. The brief names no figure; this one is ours.
const FLAT_LAUNCH_RATIO: f64 = 1.25;

#[derive(Parser)]
#[command(
    name = "sysc-bench",
    about = "sysc beside LXC on this host: start, stop, density and second-launch timings",
    after_help = "Run as root. Set SYSC_TEST_TEMPLATE_CACHE to a debootstrap cache \
                  (e.g. /var/cache/sysc-dev) so the debian image builds in seconds."
)]
struct Args {
    /// Runs per scenario; the table shows medians
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Run only this scenario (repeatable)
    #[arg(long, value_enum, value_name = "NAME")]
    only: Vec<Scenario>,
    /// Containers started one after another in busybox-100 (fewer for a quick try)
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..1000))]
    containers: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Scenario {
    /// busybox: start until `nsenter -t INIT -a true` works
    BusyboxStart,
    /// debian: start until `systemctl is-system-running` says running or degraded
    DebianStart,
    /// debian: clean stop, from running to gone
    DebianStop,
    /// 100 busybox containers started one after another, and each one's monitor memory
    #[value(name = "busybox-100")]
    BusyboxMany,
    /// create + start from a cached image, debian beside busybox
    SecondLaunch,
}

impl Scenario {
    fn run(self, bench: &Bench) -> Result<Vec<Figure>> {
        match self {
            Self::BusyboxStart => busybox_start(bench),
            Self::DebianStart => debian_start(bench),
            Self::DebianStop => debian_stop(bench),
            Self::BusyboxMany => busybox_many(bench),
            Self::SecondLaunch => second_launch(bench),
        }
    }

    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(err) = catch_interrupts() {
        eprintln!("sysc-bench: {err:#}");
        return ExitCode::FAILURE;
    }
    let scenarios = if args.only.is_empty() {
        Scenario::value_variants().to_vec()
    } else {
        args.only.clone()
    };
    let bench = Bench::new(args.runs as usize, args.containers as usize);
    let mut report = Report::new(&bench);
    for scenario in scenarios {
        if interrupted() {
            report
                .failures
                .push("interrupted: the remaining scenarios did not run".into());
            break;
        }
        eprintln!("== {}", scenario.name());
        match scenario.run(&bench) {
            Ok(figures) => report.figures.extend(figures),
            Err(err) => report.failures.push(format!("{}: {err:#}", scenario.name())),
        }
    }
    // Cleaning up first keeps its complaints (stderr) ahead of the report (stdout).
    eprintln!("== cleaning up");
    drop(bench);
    report.print();
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------
// Scenarios

/// Scenario 1: busybox start until an exec would succeed. Target: sysc ≤ LXC.
fn busybox_start(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Busybox, &["b"])?;
    let readiness = Readiness::ExecWorks(Template::Busybox);
    let (sysc, lxc) = bench.side_by_side(lxc, |m| boot_then_kill(m, "b", readiness));
    Ok(vec![Figure::versus_lxc(
        "busybox start → exec works",
        Unit::Ms,
        sysc,
        lxc,
        Some(1.0),
    )])
}

/// Scenario 2: debian start until systemd says running or degraded. Target: sysc ≤ 0.9 × LXC.
fn debian_start(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Debian, &["web"])?;
    let (sysc, lxc) = bench.side_by_side(lxc, |m| boot_then_kill(m, "web", Readiness::SystemdSettled));
    Ok(vec![Figure::versus_lxc(
        "debian start → systemd running/degraded",
        Unit::Ms,
        sysc,
        lxc,
        Some(0.9),
    )])
}

/// Scenario 3: debian clean stop, from running to gone. Target: sysc ≤ 0.7 × LXC.
fn debian_stop(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Debian, &["web"])?;
    let (sysc, lxc) = bench.side_by_side(lxc, |m| boot_then_time_clean_stop(m, "web"));
    Ok(vec![Figure::versus_lxc(
        "debian clean stop → init gone",
        Unit::Ms,
        sysc,
        lxc,
        Some(0.7),
    )])
}

/// Scenario 4: N busybox containers started one after another (total), and the PSS of each
/// running container's monitor (median). Targets: sysc ≤ LXC for both.
fn busybox_many(bench: &Bench) -> Result<Vec<Figure>> {
    let names: Vec<String> = (0..bench.containers).map(|i| format!("m{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let lxc_side = bench.prepare(Template::Busybox, &names)?;
    let (sysc, lxc) = bench.side_by_side(lxc_side.clone(), |m| start_all_then_kill(m, &names));
    eprintln!("  deleting the {} containers on both sides", names.len());
    if let Err(err) = bench.delete_everywhere(lxc_side.ok(), &names) {
        // Not a measurement: the final clean-up gets another go at them.
        eprintln!("  deleting them failed: {err:#}");
    }
    let (sysc_time, sysc_pss) = sysc.split();
    let (lxc_time, lxc_pss) = lxc.split();
    Ok(vec![
        Figure::versus_lxc(
            &format!("{} busybox started one after another (total)", names.len()),
            Unit::Ms,
            sysc_time,
            lxc_time,
            Some(1.0),
        ),
        Figure::versus_lxc(
            "monitor PSS per running container (median)",
            Unit::KiB,
            sysc_pss,
            lxc_pss,
            Some(1.0),
        ),
    ])
}

/// Scenario 5: a second launch (create + start from the cached image) until the command
/// returns, debian beside busybox: on a CoW pool it must not grow with the image.
fn second_launch(bench: &Bench) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut sysc_by_template = HashMap::new();
    for template in [Template::Debian, Template::Busybox] {
        let lxc = bench.prepare(template, &[])?;
        let size = apparent_size_mib(&bench.sysc.image_rootfs(template)?)?;
        eprintln!("  {}", template.name());
        let mut launches = 0;
        let (sysc, lxc) = bench.side_by_side(lxc, |m| {
            launches += 1;
            launch_then_delete(m, template, &format!("x{launches}"))
        });
        sysc_by_template.insert(template, sysc.clone());
        figures.push(Figure::versus_lxc(
            &format!("second launch, {} ({size} MiB image)", template.name()),
            Unit::Ms,
            sysc,
            lxc,
            None,
        ));
    }
    figures.push(Figure {
        label: "second launch is flat: debian vs busybox".into(),
        unit: Unit::Ms,
        sysc: sysc_by_template.remove(&Template::Debian).unwrap_or_default(),
        reference_label: "sysc busybox",
        reference: sysc_by_template.remove(&Template::Busybox).unwrap_or_default(),
        target: Some(FLAT_LAUNCH_RATIO),
    });
    Ok(figures)
}

// ---------------------------------------------------------------------------------
// One measurement, the same code for both managers

fn boot_then_kill(m: &dyn Manager, name: &str, readiness: Readiness) -> Result<Sample> {
    let booted = boot(m, name, readiness).map(|b| b.sample);
    measured_then(booted, || m.kill(name))
}

fn boot_then_time_clean_stop(m: &dyn Manager, name: &str) -> Result<Sample> {
    let stopped = boot(m, name, Readiness::SystemdSettled).and_then(|booted| time_clean_stop(m, name, booted.pid));
    measured_then(stopped, || m.kill(name))
}

/// The total of the sequential starts, then (untimed) the median monitor PSS.
fn start_all_then_kill(m: &dyn Manager, names: &[&str]) -> Result<(Sample, Sample)> {
    let measured = time_sequential_starts(m, names).and_then(|total| {
        let pss = median_monitor_pss_kib(m, names)?;
        Ok((total, Sample::plain(pss)))
    });
    measured_then(measured, || m.kill_all(names))
}

fn time_sequential_starts(m: &dyn Manager, names: &[&str]) -> Result<Sample> {
    let began = Instant::now();
    for name in names {
        check_interrupted()?;
        m.start(name)?;
    }
    Ok(Sample::plain(millis(began.elapsed())))
}

fn launch_then_delete(m: &dyn Manager, template: Template, name: &str) -> Result<Sample> {
    let began = Instant::now();
    let launched = m
        .launch(template, name)
        .map(|()| Sample::plain(millis(began.elapsed())));
    measured_then(launched, || m.delete_all(&[name]))
}

/// Lets the previous measurement's write-back (a killed container's files, a deleted
/// subvolume) finish before the next one, so no sample pays for its predecessor.
fn settle() {
    let _ = run(&mut Command::new("sync"));
    std::thread::sleep(SETTLE_PAUSE);
}

/// Untimed clean-up after a measurement, done whether or not the measurement
/// worked; the measurement's own error wins.
fn measured_then<T>(measured: Result<T>, clean_up: impl FnOnce() -> Result<()>) -> Result<T> {
    let cleaned = clean_up();
    let value = measured?;
    cleaned.context("clean up after the measurement")?;
    Ok(value)
}

struct Booted {
    sample: Sample,
    pid: i32,
}

/// From just before the start command until `readiness` holds. The init's PID comes
/// from the manager's own tool (`sysc list`, `lxc-info`), as a user would get it, and
/// that look-up is part of the time on both sides.
fn boot(m: &dyn Manager, name: &str, readiness: Readiness) -> Result<Booted> {
    let began = Instant::now();
    m.start(name)?;
    let started = began.elapsed();
    let what = format!("{} {name}", m.label());
    let pid = poll_until(&format!("{what}: init PID"), readiness.interval(), || m.init_pid(name))?;
    let found = began.elapsed();
    let mut last = String::new();
    let state = poll_until(
        &format!("{what}: {}", readiness.describe()),
        readiness.interval(),
        || readiness.check(pid, &mut last),
    )
    .with_context(|| format!("last answer: {last:?}"))?;
    let ready = began.elapsed();
    // Where the time went: the start command, the PID look-up, the wait for readiness.
    let phases = format!(
        "{:.0}+{:.0}+{:.0}",
        millis(started),
        millis(found - started),
        millis(ready - found)
    );
    let note = match state {
        Some(state) => format!("{state}; {phases}"),
        None => phases,
    };
    let sample = Sample {
        value: millis(ready),
        note: Some(note),
    };
    Ok(Booted { sample, pid })
}

/// From just before the stop command until the init has exited (a pidfd, so a reused
/// PID cannot fool it) and the command has returned. The init is watched from another
/// thread, so the note can tell the init's own shutdown from the manager's work after it.
fn time_clean_stop(m: &dyn Manager, name: &str, pid: i32) -> Result<Sample> {
    let init = Pidfd::open(pid)?;
    let budget = Duration::from_secs(STOP_TIMEOUT_SECS.into()) + Duration::from_secs(10);
    let began = Instant::now();
    let watcher = std::thread::spawn(move || Ok::<_, anyhow::Error>(init.wait_for_exit(budget)?.then(Instant::now)));
    let stopped = m.stop(name);
    let returned = began.elapsed();
    let exited = watcher.join().map_err(|_| anyhow!("the init's watcher panicked"))??;
    stopped?;
    let gone = exited
        .ok_or_else(|| anyhow!("{} {name}: init {pid} still running after the stop command", m.label()))?
        .duration_since(began);
    Ok(Sample {
        value: millis(returned.max(gone)),
        note: Some(format!(
            "{:.0}+{:.0}",
            millis(gone),
            millis(returned.saturating_sub(gone))
        )),
    })
}

/// The median PSS, in KiB, of the monitors of the running containers `names`.
fn median_monitor_pss_kib(m: &dyn Manager, names: &[&str]) -> Result<f64> {
    let pids = m.init_pids(names)?;
    let pss: Vec<f64> = pids
        .iter()
        .map(|&pid| monitor_pss_kib(pid, m.monitor_marker()))
        .collect::<Result<_>>()?;
    median(&pss).ok_or_else(|| anyhow!("no running containers to measure"))
}

/// PSS of the container's monitor: the parent of its init, checked to be the
/// manager's monitor and not some other process.
fn monitor_pss_kib(init: i32, marker: &str) -> Result<f64> {
    let monitor = parent_pid(init)?;
    let cmdline = fs::read(format!("/proc/{monitor}/cmdline")).with_context(|| format!("monitor {monitor}"))?;
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    ensure!(
        cmdline.contains(marker),
        "the parent of init {init} is `{}`, not a {marker}",
        cmdline.trim()
    );
    let rollup = fs::read_to_string(format!("/proc/{monitor}/smaps_rollup"))?;
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .ok_or_else(|| anyhow!("no Pss in /proc/{monitor}/smaps_rollup"))
}

#[derive(Clone, Copy)]
enum Readiness {
    /// The init has exec'd the template's init and `nsenter -a true` works.
    ExecWorks(Template),
    /// `systemctl is-system-running` (through nsenter) says running or degraded.
    SystemdSettled,
}

impl Readiness {
    fn interval(self) -> Duration {
        match self {
            // nsenter itself takes a few ms: poll back to back.
            Self::ExecWorks(_) => Duration::from_millis(1),
            Self::SystemdSettled => Duration::from_millis(10),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ExecWorks(_) => "exec works",
            Self::SystemdSettled => "systemd settled",
        }
    }

    /// `Some(note)` once ready (the note is systemd's state, or empty); `last` keeps
    /// the last answer for the error message of a timeout.
    fn check(self, pid: i32, last: &mut String) -> Result<Option<Option<String>>> {
        match self {
            Self::ExecWorks(template) => {
                // Before the init's exec the PID runs the manager's own code, in
                // namespaces still being set up: an early nsenter would be no proof.
                if !runs_binary(pid, template.init_binary()) {
                    *last = "init not exec'd yet".into();
                    return Ok(None);
                }
                let exec = output_within(&mut nsenter(pid, &["true"]), PROBE_TIMEOUT)?.status;
                *last = format!("nsenter true: {exec}");
                Ok(exec.success().then_some(None))
            }
            Self::SystemdSettled => {
                if !runs_binary(pid, Template::Debian.init_binary()) {
                    *last = "init not exec'd yet".into();
                    return Ok(None);
                }
                let output = output_within(&mut nsenter(pid, &["systemctl", "is-system-running"]), PROBE_TIMEOUT)?;
                let state = String::from_utf8_lossy(&output.stdout).trim().to_string();
                *last = state.clone();
                Ok(matches!(state.as_str(), "running" | "degraded").then_some(Some(state)))
            }
        }
    }
}

fn nsenter(pid: i32, command: &[&str]) -> Command {
    let mut nsenter = Command::new("nsenter");
    nsenter.args(["-t", &pid.to_string(), "-a"]).args(command);
    nsenter
}

/// Whether the process `pid` runs a binary whose path ends with `binary`.
fn runs_binary(pid: i32, binary: &str) -> bool {
    fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe.to_string_lossy().ends_with(binary))
}

/// Calls `check` every `interval` until it gives a value; fails after READY_TIMEOUT.
fn poll_until<T>(what: &str, interval: Duration, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let began = Instant::now();
    loop {
        check_interrupted()?;
        if let Some(value) = check()? {
            return Ok(value);
        }
        ensure!(began.elapsed() < READY_TIMEOUT, "{what}: not after {READY_TIMEOUT:?}");
        std::thread::sleep(interval);
    }
}

// ---------------------------------------------------------------------------------
// The two managers behind one interface, so each measurement is written once

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Template {
    Busybox,
    Debian,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Self::Busybox => "busybox",
            Self::Debian => "debian",
        }
    }

    /// What /proc/INIT/exe ends with once /sbin/init has been exec'd.
    fn init_binary(self) -> &'static str {
        match self {
            Self::Busybox => "busybox",
            Self::Debian => "systemd",
        }
    }

    /// The clean-stop signal of sysc's template, given to LXC too.
    fn halt_signal(self) -> &'static str {
        match self {
            Self::Busybox => "SIGUSR1",
            Self::Debian => "SIGRTMIN+3",
        }
    }
}

/// A container manager driven through its own command line tools. Names are sysc's
/// ("b", "web"); LXC prefixes its own.
trait Manager {
    fn label(&self) -> &'static str;
    fn start(&self, name: &str) -> Result<()>;
    /// The host PID of the running container's init; None while there is none.
    fn init_pid(&self, name: &str) -> Result<Option<i32>>;
    fn init_pids(&self, names: &[&str]) -> Result<Vec<i32>> {
        names
            .iter()
            .map(|name| self.init_pid(name)?.ok_or_else(|| anyhow!("{name} is not running")))
            .collect()
    }
    /// The clean stop: the init's halt signal, a kill only after the timeout.
    fn stop(&self, name: &str) -> Result<()>;
    /// Kills the container if it runs.
    fn kill(&self, name: &str) -> Result<()> {
        self.kill_all(&[name])
    }
    fn kill_all(&self, names: &[&str]) -> Result<()>;
    /// Creates the container from the template's cached image and starts it.
    fn launch(&self, template: Template, name: &str) -> Result<()>;
    /// Kills and deletes those of `names` that exist.
    fn delete_all(&self, names: &[&str]) -> Result<()>;
    /// Part of the command line of the process that is an init's parent.
    fn monitor_marker(&self) -> &'static str;
}

/// The LXC side of a scenario, ready; or why it cannot run.
type LxcSide<'a> = std::result::Result<&'a Lxc, String>;

struct Bench {
    sysc: Sysc,
    lxc: std::result::Result<Lxc, String>,
    runs: usize,
    containers: usize,
}

impl Bench {
    fn new(runs: usize, containers: usize) -> Self {
        eprintln!("== starting a private syscd");
        let sysc = Sysc {
            daemon: Daemon::start(),
        };
        eprintln!("== making LXC's btrfs lxcpath");
        let lxc = Lxc::new().map_err(|err| format!("LXC setup failed: {err:#}"));
        if let Err(reason) = &lxc {
            eprintln!("  {reason}");
        }
        Self {
            sysc,
            lxc,
            runs,
            containers,
        }
    }

    /// Creates `names` from `template` on both sides, untimed: sysc's from its
    /// template, LXC's as btrfs snapshots of a copy of sysc's image. A failure on the
    /// sysc side ends the scenario; on the LXC side it becomes that side's reason.
    fn prepare(&self, template: Template, names: &[&str]) -> Result<LxcSide<'_>> {
        self.sysc.create_missing(template, names)?;
        let rootfs = self.sysc.image_rootfs(template)?;
        let lxc = self.lxc.as_ref().map_err(String::clone).and_then(|lxc| {
            lxc.import_image(template, &rootfs)
                .and_then(|()| lxc.create_missing(template, names))
                .map(|()| lxc)
                .map_err(|err| format!("{err:#}"))
        });
        if let Err(reason) = &lxc {
            eprintln!("  LXC: {reason}");
        }
        Ok(lxc)
    }

    /// Runs `measure` once per run on each side, alternating which side goes first
    /// so neither always finds the other's warm caches, each from a settled host. A
    /// side that fails stops there and keeps its reason.
    fn side_by_side<T>(
        &self,
        lxc: LxcSide,
        mut measure: impl FnMut(&dyn Manager) -> Result<T>,
    ) -> (Series<T>, Series<T>) {
        let mut sysc_series = Series::default();
        let mut lxc_series = match &lxc {
            Ok(_) => Series::default(),
            Err(reason) => Series::failed(reason.clone()),
        };
        for run in 0..self.runs {
            if interrupted() {
                break;
            }
            eprintln!("  run {}/{}", run + 1, self.runs);
            let sysc_first = run % 2 == 0;
            for sysc_turn in [sysc_first, !sysc_first] {
                settle();
                match (sysc_turn, &lxc) {
                    (true, _) => sysc_series.measure("sysc", || measure(&self.sysc)),
                    (false, Ok(lxc)) => lxc_series.measure("LXC", || measure(*lxc)),
                    (false, Err(_)) => {}
                }
            }
        }
        (sysc_series, lxc_series)
    }

    fn delete_everywhere(&self, lxc: Option<&Lxc>, names: &[&str]) -> Result<()> {
        let lxc_deleted = lxc.map_or(Ok(()), |lxc| lxc.delete_all(names));
        self.sysc.delete_all(names)?;
        lxc_deleted
    }
}

// ---------------------------------------------------------------------------------
// sysc, through a private syscd and the real CLI

struct Sysc {
    daemon: Daemon,
}

impl Sysc {
    /// `sysc ARGS` against our daemon, with the same time limit as every command here.
    fn cli(&self, args: &[&str]) -> Result<String> {
        run(Command::new(sysc_tests::binary("sysc"))
            .args(args)
            .env("SYSC_SOCKET", &self.daemon.socket))
    }

    fn json(&self, args: &[&str]) -> Result<Vec<Value>> {
        let text = self.cli(args)?;
        let value: Value = serde_json::from_str(&text).with_context(|| format!("parse `sysc {}`", args.join(" ")))?;
        value
            .as_array()
            .cloned()
            .ok_or_else(|| anyhow!("`sysc {}` gave no list", args.join(" ")))
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

    /// name → init PID of every running container.
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

    fn create_missing(&self, template: Template, names: &[&str]) -> Result<()> {
        let existing = self.names()?;
        for name in names.iter().filter(|name| !existing.iter().any(|e| e == *name)) {
            check_interrupted()?;
            self.cli(&["create", template.name(), name])?;
        }
        Ok(())
    }

    /// The root filesystem of the template's cached image, built first if need be
    /// (by creating and deleting a container, as a user would).
    fn image_rootfs(&self, template: Template) -> Result<PathBuf> {
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
        "sysc"
    }

    fn start(&self, name: &str) -> Result<()> {
        self.cli(&["start", name]).map(drop)
    }

    fn init_pid(&self, name: &str) -> Result<Option<i32>> {
        Ok(self.running()?.get(name).copied())
    }

    /// One `sysc list` for all of them.
    fn init_pids(&self, names: &[&str]) -> Result<Vec<i32>> {
        let running = self.running()?;
        names
            .iter()
            .map(|name| {
                running
                    .get(*name)
                    .copied()
                    .ok_or_else(|| anyhow!("{name} is not running"))
            })
            .collect()
    }

    fn stop(&self, name: &str) -> Result<()> {
        self.cli(&["stop", name, "--timeout", &STOP_TIMEOUT_SECS.to_string()])
            .map(drop)
    }

    // One container per command: `sysc stop`/`delete` with many names sends them
    // all at once, and this syscd then hangs (20 deletes or 50 stops at once never
    // return; see the bench's report). These steps are untimed, so it costs nothing.
    fn kill_all(&self, names: &[&str]) -> Result<()> {
        let running = self.running()?;
        for name in names.iter().filter(|name| running.contains_key(**name)) {
            self.cli(&["stop", "--force", name])?;
        }
        Ok(())
    }

    fn launch(&self, template: Template, name: &str) -> Result<()> {
        self.cli(&["launch", template.name(), name]).map(drop)
    }

    fn delete_all(&self, names: &[&str]) -> Result<()> {
        let existing = self.names()?;
        for name in names.iter().filter(|name| existing.iter().any(|e| e == *name)) {
            self.cli(&["delete", "--force", name])?;
        }
        Ok(())
    }

    fn monitor_marker(&self) -> &'static str {
        "sysc-monitor"
    }
}

// ---------------------------------------------------------------------------------
// LXC, privileged, with a private lxcpath on its own btrfs loop file

struct Lxc {
    /// Holds the loop file and the mount point; removed after the unmount.
    dir: tempfile::TempDir,
    lxcpath: PathBuf,
    mounted: bool,
    version: String,
    /// Every container this bench defined (full names), for the clean-up of
    /// whatever LXC leaves in the cgroup hierarchies.
    made: RefCell<Vec<String>>,
    /// Hierarchies that had LXC's shared `lxc.pivot` cgroup before the bench, whose
    /// lxc.pivot is therefore not ours to remove.
    pivots_before: Vec<PathBuf>,
}

impl Lxc {
    fn new() -> Result<Self> {
        let version = run(Command::new("lxc-start").arg("--version"))?.trim().to_string();
        let dir = tempfile::Builder::new().prefix("sysc-bench-lxc").tempdir_in("/tmp")?;
        let mut lxc = Self {
            lxcpath: dir.path().join("lxcpath"),
            dir,
            mounted: false,
            version,
            made: RefCell::new(Vec::new()),
            pivots_before: pivot_cgroups(),
        };
        lxc.mount_pool()?;
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

    fn full_name(name: &str) -> String {
        format!("{LXC_PREFIX}{name}")
    }

    fn image_name(template: Template) -> String {
        Self::full_name(&format!("{}-image", template.name()))
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

    /// A never-started container whose rootfs is a btrfs subvolume holding a plain
    /// copy of sysc's image: every LXC container of the template is a snapshot of it.
    fn import_image(&self, template: Template, image_rootfs: &Path) -> Result<()> {
        let full = Self::image_name(template);
        if self.exists(&full) {
            return Ok(());
        }
        eprintln!("  copying sysc's {} image for LXC", template.name());
        let rootfs = self.lxcpath.join(&full).join("rootfs");
        fs::create_dir_all(self.lxcpath.join(&full))?;
        self.remember(&full);
        run(Command::new("btrfs").args(["subvolume", "create"]).arg(&rootfs))?;
        run(Command::new("cp").arg("-a").arg(image_rootfs.join(".")).arg(&rootfs))?;
        personalize(&rootfs, &full)?;
        fs::write(self.config_path(&full), lxc_config(&full, &rootfs, template))?;
        Ok(())
    }

    fn create_missing(&self, template: Template, names: &[&str]) -> Result<()> {
        for name in names {
            let full = Self::full_name(name);
            if !self.exists(&full) {
                check_interrupted()?;
                self.snapshot_image(template, &full)?;
                // sysc gives every container its own machine-id; so do we, untimed.
                personalize(&self.lxcpath.join(&full).join("rootfs"), &full)?;
            }
        }
        Ok(())
    }

    /// `lxc-copy -s`: on btrfs a subvolume snapshot; it also renames the copy.
    fn snapshot_image(&self, template: Template, full: &str) -> Result<()> {
        self.remember(full);
        let mut copy = self.tool("lxc-copy", &Self::image_name(template));
        run(copy.args(["-N", full, "-s"]))?;
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
        "LXC"
    }

    fn start(&self, name: &str) -> Result<()> {
        let full = Self::full_name(name);
        let config = self.config_path(&full);
        run(self.tool("lxc-start", &full).arg("-d").arg("-f").arg(&config))
            .map(drop)
            .with_context(|| format!("its log ends:\n{}", self.log_tail(&full)))
    }

    fn init_pid(&self, name: &str) -> Result<Option<i32>> {
        let pid = run(self.tool("lxc-info", &Self::full_name(name)).args(["-p", "-H"]))?;
        Ok(pid.trim().parse().ok())
    }

    fn stop(&self, name: &str) -> Result<()> {
        let timeout = STOP_TIMEOUT_SECS.to_string();
        run(self.tool("lxc-stop", &Self::full_name(name)).args(["-t", &timeout])).map(drop)
    }

    fn kill_all(&self, names: &[&str]) -> Result<()> {
        for full in names.iter().map(|name| Self::full_name(name)) {
            if self.is_running(&full)? {
                run(self.tool("lxc-stop", &full).arg("-k"))?;
            }
        }
        Ok(())
    }

    fn launch(&self, template: Template, name: &str) -> Result<()> {
        self.snapshot_image(template, &Self::full_name(name))?;
        self.start(name)
    }

    fn delete_all(&self, names: &[&str]) -> Result<()> {
        self.kill_all(names)?;
        for full in names.iter().map(|name| Self::full_name(name)) {
            if self.exists(&full) {
                run(&mut self.tool("lxc-destroy", &full))?;
            }
        }
        Ok(())
    }

    fn monitor_marker(&self) -> &'static str {
        "[lxc monitor]"
    }
}

/// LXC's config for a container: the work sysc does, no network, privileged.
fn lxc_config(full: &str, rootfs: &Path, template: Template) -> String {
    format!(
        "# sysc-bench: privileged (no idmap), no network, the same init and halt signal as sysc\n\
         lxc.uts.name = {full}\n\
         lxc.rootfs.path = btrfs:{rootfs}\n\
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
fn personalize(rootfs: &Path, hostname: &str) -> Result<()> {
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

fn cgroup_hierarchies() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|entries| entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default()
}

fn pivot_cgroups() -> Vec<PathBuf> {
    cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("lxc.pivot"))
        .filter(|p| p.is_dir())
        .collect()
}

/// rmdir, children first (systemd in a container makes its own sub-cgroups). A
/// cgroup that still holds processes stays, and that is reported.
fn remove_cgroup_tree(path: &Path) {
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&entry.path());
        }
    }
    if let Err(err) = fs::remove_dir(path) {
        eprintln!("sysc-bench: cannot remove cgroup {}: {err}", path.display());
    }
}

// ---------------------------------------------------------------------------------
// Samples, series, the report

#[derive(Clone, Debug)]
struct Sample {
    value: f64,
    /// E.g. systemd's state when it counted as up.
    note: Option<String>,
}

impl Sample {
    fn plain(value: f64) -> Self {
        Self { value, note: None }
    }
}

/// One side's samples of one figure, in run order; or, once a run failed, why.
#[derive(Clone, Debug)]
struct Series<T = Sample> {
    samples: Vec<T>,
    failure: Option<String>,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Self {
            samples: Vec::new(),
            failure: None,
        }
    }
}

impl<T> Series<T> {
    fn failed(reason: String) -> Self {
        Self {
            samples: Vec::new(),
            failure: Some(reason),
        }
    }

    /// One more sample, unless this side has failed already.
    fn measure(&mut self, side: &str, sample: impl FnOnce() -> Result<T>) {
        if self.failure.is_some() {
            return;
        }
        match sample() {
            Ok(value) => self.samples.push(value),
            Err(err) => {
                eprintln!("  {side} failed: {err:#}");
                self.failure = Some(format!("run {}: {err:#}", self.samples.len() + 1));
            }
        }
    }
}

impl Series<(Sample, Sample)> {
    fn split(self) -> (Series, Series) {
        let (first, second) = self.samples.into_iter().unzip();
        let series = |samples| Series {
            samples,
            failure: self.failure.clone(),
        };
        (series(first), series(second))
    }
}

impl Series {
    fn median(&self) -> Option<f64> {
        median(&self.samples.iter().map(|s| s.value).collect::<Vec<_>>())
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Ms,
    KiB,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Self::Ms => format!("{value:.1} ms"),
            Self::KiB => format!("{value:.0} KiB"),
        }
    }

    fn bare(self, value: f64) -> String {
        match self {
            Self::Ms => format!("{value:.1}"),
            Self::KiB => format!("{value:.0}"),
        }
    }
}

struct Figure {
    label: String,
    unit: Unit,
    sysc: Series,
    reference_label: &'static str,
    reference: Series,
    /// Met when sysc ≤ target × reference; None: shown for comparison only.
    target: Option<f64>,
}

impl Figure {
    fn versus_lxc(label: &str, unit: Unit, sysc: Series, lxc: Series, target: Option<f64>) -> Self {
        Self {
            label: label.to_string(),
            unit,
            sysc,
            reference_label: "LXC",
            reference: lxc,
            target,
        }
    }

    fn ratio(&self) -> Option<f64> {
        Some(self.sysc.median()? / self.reference.median()?)
    }

    fn row(&self) -> Vec<String> {
        let value = |series: &Series| {
            series
                .median()
                .map_or_else(|| "failed".to_string(), |m| self.unit.format(m))
        };
        let ratio = self.ratio();
        let met = match (self.target, ratio) {
            (None, _) => "—".to_string(),
            (Some(_), None) => "n/a".to_string(),
            (Some(target), Some(ratio)) if ratio <= target => "yes".to_string(),
            (Some(_), Some(_)) => "NO".to_string(),
        };
        vec![
            self.label.clone(),
            value(&self.sysc),
            format!("{} {}", self.reference_label, value(&self.reference)),
            ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.2}")),
            self.target.map_or_else(|| "—".to_string(), |t| format!("≤ {t:.2}")),
            met,
        ]
    }
}

struct Report {
    header: Vec<String>,
    figures: Vec<Figure>,
    failures: Vec<String>,
}

impl Report {
    fn new(bench: &Bench) -> Self {
        let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let lxc = match &bench.lxc {
            Ok(lxc) => format!("LXC {}", lxc.version),
            Err(reason) => format!("LXC unavailable ({reason})"),
        };
        let header = vec![
            format!(
                "sysc-bench: medians of {} runs per scenario; kernel {}, {cpus} CPUs",
                bench.runs,
                kernel.trim()
            ),
            "sysc: its default, unprivileged (own user namespace, idmapped rootfs), btrfs loop-file pool".into(),
            format!(
                "{lxc}: PRIVILEGED (no idmap), own config, no network, btrfs loop-file lxcpath, \
                 rootfs = cp -a of sysc's image"
            ),
            format!(
                "Each run: sysc and LXC in turn (alternating who goes first), each timed step \
                 on a settled host (sync, then {} ms idle).",
                SETTLE_PAUSE.as_millis()
            ),
        ];
        Self {
            header,
            figures: Vec::new(),
            failures: Vec::new(),
        }
    }

    fn print(&self) {
        for line in &self.header {
            println!("{line}");
        }
        println!();
        let mut rows = vec![
            ["scenario", "sysc", "reference", "sysc/ref", "target", "met"]
                .map(String::from)
                .to_vec(),
        ];
        rows.extend(self.figures.iter().map(Figure::row));
        print_aligned(&rows);
        println!();
        println!("Target: sysc ≤ target × reference. \"—\": no target, shown for comparison.");
        println!();
        self.print_samples();
        self.print_failures();
    }

    fn print_samples(&self) {
        println!("Raw samples, in run order (ms or KiB).");
        println!("Starts show (start command + PID look-up + wait until ready) in ms; stops show");
        println!("(until the init is gone + until the stop command returns after that) in ms.");
        for figure in &self.figures {
            println!("  {}", figure.label);
            for (side, series) in [("sysc", &figure.sysc), (figure.reference_label, &figure.reference)] {
                let samples: Vec<String> = series
                    .samples
                    .iter()
                    .map(|s| match &s.note {
                        Some(note) => format!("{} ({note})", figure.unit.bare(s.value)),
                        None => figure.unit.bare(s.value),
                    })
                    .collect();
                println!("    {side:<13} {}", samples.join("  "));
            }
        }
    }

    fn print_failures(&self) {
        let mut lines: Vec<String> = self.failures.clone();
        for figure in &self.figures {
            for (side, series) in [("sysc", &figure.sysc), (figure.reference_label, &figure.reference)] {
                if let Some(reason) = &series.failure {
                    lines.push(format!("{}, {side}: {reason}", figure.label));
                }
            }
        }
        if !lines.is_empty() {
            println!();
            println!("Failures:");
            for line in lines {
                println!("  {line}");
            }
        }
    }
}

/// Left-aligned columns two spaces apart; widths in characters (→ and ≤ are one).
fn print_aligned(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.chars().count())))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[mid]),
        _ => Some((sorted[mid - 1] + sorted[mid]) / 2.0),
    }
}

fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------
// Host helpers

/// Runs a command to completion: its stdout, or an error with its stderr.
fn run(command: &mut Command) -> Result<String> {
    let output = output_within(command, COMMAND_TIMEOUT)?;
    ensure!(
        output.status.success(),
        "`{}` failed ({}): {}",
        describe(command),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The command's output; a command still running after `timeout` is killed, so that
/// a hang becomes a failure with a reason instead of a bench that never ends.
fn output_within(command: &mut Command, timeout: Duration) -> Result<Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run `{}`", describe(command)))?;
    // Opened before anything can reap the child, so it names this very process.
    let handle = Pidfd::open(child.id() as i32)?;
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(child.wait_with_output()));
    match receiver.recv_timeout(timeout) {
        Ok(output) => Ok(output?),
        Err(_) => {
            handle.kill();
            bail!("`{}` still running after {timeout:?}; killed it", describe(command))
        }
    }
}

/// The command line, shortened for messages.
fn describe(command: &Command) -> String {
    let words: Vec<String> = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|word| word.to_string_lossy().into_owned())
        .collect();
    let line = words.join(" ");
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn parent_pid(pid: i32) -> Result<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, fields)| fields.split_whitespace().nth(1))
        .and_then(|ppid| ppid.parse().ok())
        .ok_or_else(|| anyhow!("no parent in /proc/{pid}/stat"))
}

fn apparent_size_mib(path: &Path) -> Result<u64> {
    let du = run(Command::new("du").args(["-s", "--apparent-size", "-BM"]).arg(path))?;
    du.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|mib| mib.parse().ok())
        .ok_or_else(|| anyhow!("du of {} said {du:?}", path.display()))
}

/// A process handle that survives PID reuse.
struct Pidfd(OwnedFd);

impl Pidfd {
    fn open(pid: i32) -> Result<Self> {
        // SAFETY: pidfd_open(2) takes a PID and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        ensure!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
        // SAFETY: the descriptor was just made and nothing else owns it.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    fn kill(&self) {
        // SAFETY: pidfd_send_signal(2) with a pidfd we own, no siginfo, no flags.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
    }

    /// Whether the process exited within `timeout` (a pidfd polls readable then).
    fn wait_for_exit(&self, timeout: Duration) -> Result<bool> {
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::try_from(timeout)?).context("poll the init's pidfd")?;
        Ok(ready > 0)
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn note_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C and SIGTERM end the bench between steps, so the clean-up still runs.
fn catch_interrupts() -> Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(note_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.with_context(|| format!("catch {signal}"))?;
    }
    Ok(())
}

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

fn check_interrupted() -> Result<()> {
    ensure!(!interrupted(), "interrupted");
    Ok(())
}
