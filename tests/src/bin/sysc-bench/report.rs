//! Figures (one table row each) and the report: the header, the table of medians, the
//! raw samples and the failures.

use std::fs;

use crate::bench::Bench;
use crate::measure::SETTLE_PAUSE;
use crate::network::POLL_INTERVAL;
use crate::series::Series;

#[derive(Clone, Copy)]
pub enum Unit {
    Ms,
    KiB,
    /// Memory too large to read in KiB at a glance: a daemon's, a CLI's resident set.
    MiB,
    /// Throughput: 10^6 bytes a second.
    MBps,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Self::Ms => format!("{value:.1} ms"),
            Self::KiB => format!("{value:.0} KiB"),
            Self::MiB => format!("{value:.1} MiB"),
            Self::MBps => format!("{value:.0} MB/s"),
        }
    }

    fn bare(self, value: f64) -> String {
        match self {
            Self::Ms | Self::MiB => format!("{value:.1}"),
            Self::KiB | Self::MBps => format!("{value:.0}"),
        }
    }

    /// Times and memory: the less, the better. Throughput is the other way round.
    fn lower_is_better(self) -> bool {
        !matches!(self, Self::MBps)
    }
}

/// What a figure's sysc median is held against.
pub enum Reference {
    /// Another side's samples from the same runs: LXC's, or sysc's own elsewhere.
    Measured { label: String, series: Series },
    /// A fixed figure in the row's unit: an absolute target.
    Constant(f64),
    /// Nothing: a plain sysc figure, with nothing to compare it with on this host.
    Alone,
}

impl Reference {
    fn median(&self) -> Option<f64> {
        match self {
            Self::Measured { series, .. } => series.median(),
            Self::Constant(value) => Some(*value),
            Self::Alone => None,
        }
    }

    /// The side's name and samples, unless it is a constant.
    fn measured(&self) -> Option<(&str, &Series)> {
        match self {
            Self::Measured { label, series } => Some((label.as_str(), series)),
            Self::Constant(_) | Self::Alone => None,
        }
    }
}

pub struct Figure {
    pub label: String,
    pub unit: Unit,
    pub sysc: Series,
    pub reference: Reference,
    /// Met when sysc ≤ target × reference, or ≥ for a unit where more is better (MB/s);
    /// None: shown for comparison only.
    pub target: Option<f64>,
}

impl Figure {
    pub fn versus_lxc(label: &str, unit: Unit, sysc: Series, lxc: Series, target: Option<f64>) -> Self {
        Self {
            label: label.to_string(),
            unit,
            sysc,
            reference: Reference::Measured {
                label: "LXC".into(),
                series: lxc,
            },
            target,
        }
    }

    /// sysc against another measured side, named `reference` in the table.
    pub fn versus(label: &str, unit: Unit, sysc: Series, reference: &str, series: Series, target: Option<f64>) -> Self {
        Self {
            label: label.to_string(),
            unit,
            sysc,
            reference: Reference::Measured {
                label: reference.to_string(),
                series,
            },
            target,
        }
    }

    /// sysc's median against a fixed figure (in `unit`) that it must meet by itself.
    pub fn versus_constant(label: &str, unit: Unit, sysc: Series, limit: f64) -> Self {
        Self {
            label: label.to_string(),
            unit,
            sysc,
            reference: Reference::Constant(limit),
            target: Some(1.0),
        }
    }

    /// sysc's figure by itself: no reference, no ratio, no target.
    pub fn alone(label: &str, unit: Unit, sysc: Series) -> Self {
        Self {
            label: label.to_string(),
            unit,
            sysc,
            reference: Reference::Alone,
            target: None,
        }
    }

    fn ratio(&self) -> Option<f64> {
        Some(self.sysc.median()? / self.reference.median()?)
    }

    /// "≤" or "≥": which side of target × reference meets it.
    fn comparison(&self) -> &'static str {
        if self.unit.lower_is_better() { "≤" } else { "≥" }
    }

    fn meets(&self, ratio: f64, target: f64) -> bool {
        if self.unit.lower_is_better() {
            ratio <= target
        } else {
            ratio >= target
        }
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
            (Some(target), Some(ratio)) if self.meets(ratio, target) => "yes".to_string(),
            (Some(_), Some(_)) => "NO".to_string(),
        };
        let reference = match &self.reference {
            Reference::Measured { label, series } => format!("{label} {}", value(series)),
            Reference::Constant(limit) => format!("target {}", self.unit.format(*limit)),
            Reference::Alone => "—".to_string(),
        };
        vec![
            self.label.clone(),
            value(&self.sysc),
            reference,
            ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.2}")),
            self.target
                .map_or_else(|| "—".to_string(), |t| format!("{} {t:.2}", self.comparison())),
            met,
        ]
    }

    /// sysc's side and, unless it is a constant, the reference's.
    fn sides(&self) -> Vec<(&str, &Series)> {
        std::iter::once(("sysc", &self.sysc))
            .chain(self.reference.measured())
            .collect()
    }
}

pub struct Report {
    header: Vec<String>,
    pub figures: Vec<Figure>,
    pub failures: Vec<String>,
}

impl Report {
    pub fn new(bench: &Bench) -> Self {
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
            "rows marked \"both privileged\": sysc with security.privileged=true (no user namespace, no idmap), \
             same daemon, same image, beside privileged LXC"
                .into(),
            format!(
                "{lxc}: own config, btrfs loop-file lxcpath, rootfs = cp -a of sysc's image (each container a \
                 btrfs snapshot of it); unprivileged like sysc's default (lxc.idmap 0 → {base}, 65536 ids, shared \
                 by all, rootfs an idmapped mount: `lxc.rootfs.options = idmap=container`, LXC's dir driver) \
                 unless privileged; eth0 a veth on sysc's default network {network} (a fixed MAC per container), \
                 as every sysc container has, so both get DHCP from the same dnsmasq",
                base = crate::bench::LXC_IDMAP_BASE,
                network = bench.sysc.network()
            ),
            "exec: `sysc exec NAME -- CMD` beside `lxc-attach -n NAME -P LXCPATH -- CMD`, each timed \
             from spawn to exit, stdin /dev/null, stdout and stderr pipes (no terminal)"
                .into(),
            "snapshot: `sysc snapshot create` (freezes the container for the copy) of a running debian; LXC's \
             rows are `lxc-copy -a -K -M` into its snaps/ (`-s` on btrfs), since lxc-snapshot refuses a running \
             container; rootfs N MB = debian's own files + files of random bytes in mixed sizes, N MB in all \
             (du --apparent-size), warm in the page cache for every side"
                .into(),
            "export: `sysc export NAME FILE --instance-only` (archive synced before it returns) beside `tar` \
             of the same rootfs then `sync FILE`; MB/s = rootfs bytes / wall time"
                .into(),
            "files: `sysc file push`/`pull` (`-r` for the tree) with a running busybox on the btrfs pool, beside \
             `cp`, `cp -a` and `tar -cf - | tar -xf -` of the same random data, read (untimed) just before each \
             copy so it is warm in the page cache; no side syncs; each copy compared with its source (untimed) \
             before it counts; peak RSS: syscd's VmHWM (reset before the first transfer), a command's ru_maxrss"
                .into(),
            format!(
                "network: sysc only, on the bench daemon's own default network {network} (bridge, nftables table \
                 `ip sysc-{network}`, dnsmasq --no-ping); from the spawn of `sysc start NAME...` until eth0 of each \
                 container has an IPv4 address, read in its network namespace as `sysc list` reads it, polled every \
                 {} ms",
                POLL_INTERVAL.as_millis(),
                network = bench.sysc.network()
            ),
            "remote: sysc only; `sysc list` and `sysc exec c -- true` over TLS (remote `r:`, the bench daemon \
             listening on a loopback port, a client enrolled by token) beside the same calls over the unix socket, \
             each call a fresh CLI process timed from spawn to exit (start + connection + call); `sysc copy r:big \
             r2:big --instance-only` to a second private syscd (relayed through the CLI, uncompressed) beside \
             `sysc export --compression none` of the same stopped busybox to a file; MB/s = rootfs bytes / wall time"
                .into(),
            format!(
                "Each run: every side in turn (rotating who goes first), each timed step \
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

    pub fn print(&self) {
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
        println!(
            "Target: sysc ≤ target × reference; sysc ≥ target × reference where more is better (MB/s). \
             \"—\": no target, shown for comparison."
        );
        println!();
        self.print_samples();
        self.print_failures();
    }

    fn print_samples(&self) {
        println!("Raw samples, in run order (ms, KiB, MiB or MB/s).");
        println!("Starts show (start command + PID look-up + wait until ready) in ms; stops show");
        println!("(until the init is gone + until the stop command returns after that) in ms.");
        println!("Exec round trips: each run's median call (fastest–slowest call); throughput: each");
        println!("run's median read (every read's MB/s). Exports: each run's MB/s (the archive's size).");
        println!("Files: each run's MB/s or ms (the command's peak RSS in MiB); syscd: one reading each.");
        println!("Network: (the address, or how many got one; start command + PID look-up + wait for the");
        println!("address, in ms; with several, how many had theirs at the first look and which was last;");
        println!("DHCPNAKs that dnsmasq logged meanwhile, if any).");
        println!("Remote: round trips as exec's; copies and exports each run's MB/s.");
        // Long reference names ("cp, ext4 → btrfs pool") would push their samples out of line.
        let width = self
            .figures
            .iter()
            .flat_map(Figure::sides)
            .map(|(side, _)| side.chars().count())
            .fold(20, usize::max);
        for figure in &self.figures {
            println!("  {}", figure.label);
            for (side, series) in figure.sides() {
                let samples: Vec<String> = series
                    .samples
                    .iter()
                    .map(|s| match &s.note {
                        Some(note) => format!("{} ({note})", figure.unit.bare(s.value)),
                        None => figure.unit.bare(s.value),
                    })
                    .collect();
                println!("    {side:<width$} {}", samples.join("  "));
            }
        }
    }

    fn print_failures(&self) {
        let mut lines: Vec<String> = self.failures.clone();
        for figure in &self.figures {
            for (side, series) in figure.sides() {
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
