//! Figures (one table row each) and the report: the header, the table of medians, the
//! raw samples and the failures.

use std::fs;

use crate::bench::Bench;
use crate::measure::SETTLE_PAUSE;
use crate::series::Series;

#[derive(Clone, Copy)]
pub enum Unit {
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

pub struct Figure {
    pub label: String,
    pub unit: Unit,
    pub sysc: Series,
    pub reference_label: &'static str,
    pub reference: Series,
    /// Met when sysc ≤ target × reference; None: shown for comparison only.
    pub target: Option<f64>,
}

impl Figure {
    pub fn versus_lxc(label: &str, unit: Unit, sysc: Series, lxc: Series, target: Option<f64>) -> Self {
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
            "sysc privileged (rows so marked): security.privileged=true (no user namespace, no idmap), \
             same daemon, same image"
                .into(),
            format!(
                "{lxc}: PRIVILEGED (no idmap), own config, no network, btrfs loop-file lxcpath, \
                 rootfs = cp -a of sysc's image"
            ),
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
