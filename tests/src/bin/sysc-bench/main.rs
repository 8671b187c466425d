//! sysc-bench: sysc beside LXC on this host, both doing the same work on the same root
//! filesystems in the same run. Prints a table of medians, each sysc figure with its
//! target ratio to the reference (LXC unless the row says otherwise), then every raw
//! sample.
//!
//! sysc runs as it does by default: unprivileged (its own user namespace, idmapped
//! rootfs) on a btrfs loop-file pool, through a private syscd, each container on its
//! default network. LXC does the same work from config files written here: unprivileged
//! (an idmapped rootfs too), eth0 a veth on that same bridge (DHCP from the same
//! dnsmasq), a private lxcpath on its own btrfs loop file, booting `cp -a` copies of
//! sysc's own image root filesystems. The debian start and stop and the exec figures are
//! also measured with both sides privileged, in the same runs. The stop scenario also
//! times the guest's halt alone (the halt signal sent straight to the init), the floor
//! under any manager's stop. Snapshots and exports copy a running debian container's rootfs filled to 200 MB
//! and 2 GB (snapshots.rs): on btrfs and on a dir pool, beside LXC on the same kind of
//! storage and `cp -a --reflink=auto` or `tar` of the same tree. `sysc file push` and
//! `pull` carry a 1 GiB file and a tree of 10,000 small files to and from a running
//! busybox container, beside `cp` and `tar | tar` of the same data, with syscd's peak RSS
//! before and after (files.rs). `network` times DHCP on the bench daemon's own default
//! network, from `sysc start` until eth0 has its address: busybox, debian, and 20 busybox
//! containers started at once (network.rs; sysc only, no reference). `remote` times `sysc
//! list` and `sysc exec c -- true` over TLS beside the unix socket, each call a fresh CLI
//! process, and `sysc copy` of a 200 MB busybox between two private daemons beside `sysc
//! export` (remote.rs; sysc only). Everything made here (daemons, containers, cgroups,
//! mounts, loop devices, scratch files, TLS listeners and trusted certificates, and the
//! daemons' networks: dnsmasq, nftables table and bridge, after the containers and the
//! daemon) is removed on the way out, also after a failure or Ctrl-C.
//!
//! Build and run: `scripts/bench [--runs N] [--only SCENARIO]`. With
//! SYSC_TEST_TEMPLATE_CACHE pointing at a debootstrap cache the debian image builds in
//! seconds.

mod bench;
mod files;
mod fill;
mod interrupt;
mod lxc;
mod manager;
mod measure;
mod memory;
mod network;
mod pidfd;
mod readiness;
mod remote;
mod report;
mod scenarios;
mod series;
mod snapshots;
mod sysc;
mod util;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, ValueEnum};

use crate::bench::Bench;
use crate::interrupt::{catch_interrupts, interrupted};
use crate::report::{Figure, Report};

#[derive(Parser)]
#[command(
    name = "sysc-bench",
    about = "sysc beside LXC on this host: start, stop, density, second-launch, exec, snapshot, export and \
             file transfer timings, DHCP on sysc's network, and calls and copies over TLS",
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
    /// busybox: round trip of `exec b -- true` (sysc exec, lxc-attach), a median of many calls
    Exec,
    /// busybox: stdout throughput of `exec b -- cat` of a 100 MB file
    ExecThroughput,
    /// debian, running, 200 MB and 2 GB rootfs: `snapshot create` on btrfs and on a dir pool
    Snapshot,
    /// debian, running, 2 GB rootfs: `export` throughput, uncompressed and zstd
    Export,
    /// busybox, running: `file push`/`pull` of a 1 GiB file and of 10,000 small files beside
    /// `cp` and `tar | tar`, and syscd's peak RSS
    Files,
    /// sysc only: from `sysc start` until eth0 has its DHCP address, busybox and debian, and
    /// 20 busybox containers started at once
    Network,
    /// sysc only: `sysc list` and `sysc exec c -- true` over TLS (remote `r:`) beside the unix
    /// socket, each call a fresh CLI process; `sysc copy` of a stopped busybox with a 200 MB
    /// rootfs between two daemons beside `sysc export` of it
    Remote,
}

impl Scenario {
    fn run(self, bench: &Bench) -> Result<Vec<Figure>> {
        match self {
            Self::BusyboxStart => scenarios::busybox_start(bench),
            Self::DebianStart => scenarios::debian_start(bench),
            Self::DebianStop => scenarios::debian_stop(bench),
            Self::BusyboxMany => scenarios::busybox_many(bench),
            Self::SecondLaunch => scenarios::second_launch(bench),
            Self::Exec => scenarios::exec(bench),
            Self::ExecThroughput => scenarios::exec_throughput(bench),
            Self::Snapshot => snapshots::snapshot(bench),
            Self::Export => snapshots::export(bench),
            Self::Files => files::files(bench),
            Self::Network => network::network(bench),
            Self::Remote => remote::remote(bench),
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
