//! One measurement, the same code for every manager: what is timed, from where to
//! where, and the untimed clean-up after it.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};

use crate::interrupt::check_interrupted;
use crate::manager::{Manager, STOP_TIMEOUT_SECS, Template};
use crate::pidfd::Pidfd;
use crate::readiness::{Readiness, poll_until};
use crate::series::{Sample, median};
use crate::util::{COMMAND_TIMEOUT, parent_pid, run, run_counted};

/// Quiet time before each measurement, after a `sync`.
pub const SETTLE_PAUSE: Duration = Duration::from_millis(200);

/// How often the manager is asked whether it has seen a halted init go.
const COLLECTED_POLL: Duration = Duration::from_millis(20);

/// Longest one `exec NAME -- true` may take before the sample fails.
const EXEC_TIMEOUT: Duration = Duration::from_secs(10);

pub fn boot_then_kill(m: &dyn Manager, name: &str, readiness: Readiness) -> Result<Sample> {
    let booted = boot(m, name, readiness).map(|b| b.sample);
    measured_then(booted, || m.kill(name))
}

pub fn boot_then_time_clean_stop(m: &dyn Manager, name: &str) -> Result<Sample> {
    let stopped = boot(m, name, Readiness::SystemdSettled).and_then(|booted| time_clean_stop(m, name, booted.pid));
    measured_then(stopped, || m.kill(name))
}

/// The guest's own halt with no manager in the way: the template's halt signal sent
/// straight to the init with kill(2), until the init is gone. Then (untimed) until the
/// manager has seen it go, so the next start finds it stopped.
pub fn boot_then_time_halt_alone(m: &dyn Manager, name: &str, template: Template) -> Result<Sample> {
    let halted = boot(m, name, Readiness::SystemdSettled).and_then(|booted| {
        let init = Pidfd::open(booted.pid)?;
        let budget = Duration::from_secs(STOP_TIMEOUT_SECS.into());
        let began = Instant::now();
        init.signal(template.halt_signo())?;
        ensure!(
            init.wait_for_exit(budget)?,
            "{} {name}: init {} still running {budget:?} after its halt signal",
            m.label(),
            booted.pid
        );
        let gone = began.elapsed();
        poll_until(&format!("{} {name}: stopped", m.label()), COLLECTED_POLL, || {
            Ok(m.init_pid(name)?.is_none().then_some(()))
        })?;
        Ok(Sample::plain(millis(gone)))
    });
    measured_then(halted, || m.kill(name))
}

/// The total of the sequential starts, then (untimed) the median monitor PSS.
pub fn start_all_then_kill(m: &dyn Manager, names: &[&str]) -> Result<(Sample, Sample)> {
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

pub fn launch_then_delete(m: &dyn Manager, template: Template, name: &str) -> Result<Sample> {
    let began = Instant::now();
    let launched = m
        .launch(template, name)
        .map(|()| Sample::plain(millis(began.elapsed())));
    measured_then(launched, || m.delete_all(&[name]))
}

/// Starts the container and waits until `readiness` holds: the untimed set-up of the
/// measurements on a running container.
pub fn start_ready(m: &dyn Manager, name: &str, readiness: Readiness) -> Result<()> {
    boot(m, name, readiness).map(drop)
}

/// One run's exec round trip: `warm_up` untimed calls of `exec NAME -- true`, then
/// `calls` timed ones back to back, each from its spawn to its exit. The sample is their
/// median, noted with the fastest and the slowest.
pub fn exec_round_trips(m: &dyn Manager, name: &str, warm_up: usize, calls: usize) -> Result<Sample> {
    round_trips(|| m.exec(name, &["true"]), warm_up, calls, EXEC_TIMEOUT)
}

/// `warm_up` untimed runs of `command`, then `calls` timed ones back to back, each a fresh
/// process from its spawn to its exit (at most `timeout`). The sample is their median,
/// noted with the fastest and the slowest.
pub fn round_trips(command: impl Fn() -> Command, warm_up: usize, calls: usize, timeout: Duration) -> Result<Sample> {
    let mut times = Vec::with_capacity(calls);
    for call in 0..warm_up + calls {
        check_interrupted()?;
        let done = run_counted(&mut command(), timeout)?;
        if call >= warm_up {
            times.push(millis(done.elapsed));
        }
    }
    let median = median(&times).ok_or_else(|| anyhow!("no timed calls"))?;
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    let slowest = times.iter().copied().fold(0.0, f64::max);
    Ok(Sample {
        value: median,
        note: Some(format!("{fastest:.1}–{slowest:.1}")),
    })
}

/// One run's stdout throughput: `reads` times `exec NAME -- cat PATH`, a file of `bytes`
/// bytes, read to the end (counted, not kept), each timed from spawn to exit as a user
/// would time it. The sample is the median rate in MB/s (10^6 bytes a second), noted
/// with every read's.
pub fn exec_cat_throughput(m: &dyn Manager, name: &str, path: &str, bytes: u64, reads: usize) -> Result<Sample> {
    let mut rates = Vec::with_capacity(reads);
    for _ in 0..reads {
        check_interrupted()?;
        let done = run_counted(&mut m.exec(name, &["cat", path]), COMMAND_TIMEOUT)?;
        ensure!(
            done.stdout_bytes == bytes,
            "{} {name}: `cat {path}` gave {} bytes, not {bytes}",
            m.label(),
            done.stdout_bytes
        );
        rates.push(bytes as f64 / done.elapsed.as_secs_f64() / 1e6);
    }
    let median = median(&rates).ok_or_else(|| anyhow!("no reads"))?;
    let each: Vec<String> = rates.iter().map(|rate| format!("{rate:.0}")).collect();
    Ok(Sample {
        value: median,
        note: Some(each.join("/")),
    })
}

/// Lets the previous measurement's write-back (a killed container's files, a deleted
/// subvolume) finish before the next one, so no sample pays for its predecessor.
pub fn settle() {
    let _ = run(&mut Command::new("sync"));
    std::thread::sleep(SETTLE_PAUSE);
}

/// Untimed clean-up after a measurement, done whether or not the measurement
/// worked; the measurement's own error wins.
pub fn measured_then<T>(measured: Result<T>, clean_up: impl FnOnce() -> Result<()>) -> Result<T> {
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
/// that look-up is part of the time on every side.
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

pub fn millis(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
