//! The sides of the comparison (sysc, privileged sysc, LXC) and the loop that measures
//! them in turn, run after run.

use anyhow::Result;

use crate::interrupt::interrupted;
use crate::lxc::{Backing, Ids, Lxc};
use crate::manager::{Manager, Template};
use crate::measure::{settle, start_ready};
use crate::readiness::Readiness;
use crate::series::Series;
use crate::sysc::Sysc;

/// One side of a scenario, ready; or why it cannot run.
pub type Side<'a> = std::result::Result<&'a dyn Manager, String>;

/// First host id of the one range every unprivileged LXC container of the bench runs
/// in (LXC's way: one range for all), well clear of the bench daemon's ranges.
pub const LXC_IDMAP_BASE: u32 = 100_000_000;

// Fields drop in declaration order: the syscd both sysc sides share (and with it their
// containers) goes before LXC's lxcpath.
pub struct Bench {
    pub sysc: Sysc,
    /// The same daemon and images as `sysc`, for privileged containers.
    sysc_privileged: Sysc,
    /// LXC as sysc runs by default: unprivileged, an idmapped rootfs.
    pub lxc: std::result::Result<Lxc, String>,
    /// LXC privileged, beside privileged sysc, and for the copies of the snapshot rows.
    pub lxc_privileged: std::result::Result<Lxc, String>,
    pub runs: usize,
    pub containers: usize,
}

impl Bench {
    pub fn new(runs: usize, containers: usize) -> Self {
        eprintln!("== starting a private syscd");
        let sysc = Sysc::start();
        let sysc_privileged = sysc.privileged();
        eprintln!("== making LXC's btrfs lxcpaths");
        let lxc_with = |ids| {
            let lxc = Lxc::new(Backing::Btrfs, sysc.network(), ids).map_err(|err| format!("LXC setup failed: {err:#}"));
            if let Err(reason) = &lxc {
                eprintln!("  {reason}");
            }
            lxc
        };
        let lxc = lxc_with(Ids::Mapped { base: LXC_IDMAP_BASE });
        let lxc_privileged = lxc_with(Ids::Host);
        Self {
            sysc,
            sysc_privileged,
            lxc,
            lxc_privileged,
            runs,
            containers,
        }
    }

    /// sysc's default side, which every scenario measures.
    pub fn sysc(&self) -> Side<'_> {
        Ok(&self.sysc)
    }

    /// Creates `names` from `template` on both sides, untimed: sysc's from its
    /// template, LXC's (unprivileged) as btrfs snapshots of a copy of sysc's image. A
    /// failure on the sysc side ends the scenario; on the LXC side it becomes that
    /// side's reason.
    pub fn prepare(&self, template: Template, names: &[&str]) -> Result<Side<'_>> {
        self.sysc.create_missing(template, names)?;
        self.prepare_lxc(&self.lxc, template, names)
    }

    /// `names` from `template` on LXC `lxc`, untimed, or why not.
    pub fn prepare_lxc<'a>(
        &self,
        lxc: &'a std::result::Result<Lxc, String>,
        template: Template,
        names: &[&str],
    ) -> Result<Side<'a>> {
        let rootfs = self.sysc.image_rootfs(template)?;
        let lxc = lxc.as_ref().map_err(String::clone).and_then(|lxc| {
            lxc.import_image(template, &rootfs)
                .and_then(|()| lxc.create_missing(template, names))
                .map(|()| lxc as &dyn Manager)
                .map_err(|err| format!("{err:#}"))
        });
        if let Err(reason) = &lxc {
            eprintln!("  LXC: {reason}");
        }
        Ok(lxc)
    }

    /// Creates `names` from `template` as privileged containers on both sides,
    /// untimed: (sysc, LXC). A failure becomes that side's reason: the default
    /// comparison still runs.
    pub fn prepare_privileged(&self, template: Template, names: &[&str]) -> Result<[Side<'_>; 2]> {
        let privileged = self
            .sysc_privileged
            .create_missing(template, names)
            .map(|()| &self.sysc_privileged as &dyn Manager)
            .map_err(|err| format!("{err:#}"));
        if let Err(reason) = &privileged {
            eprintln!("  sysc privileged: {reason}");
        }
        Ok([privileged, self.prepare_lxc(&self.lxc_privileged, template, names)?])
    }

    /// Runs `measure` once per run on each side, rotating which side goes first so
    /// none always finds another's warm caches and drift falls on all alike, each
    /// from a settled host. A side that fails stops there and keeps its reason.
    pub fn side_by_side<T, const N: usize>(
        &self,
        sides: [Side<'_>; N],
        measure: impl FnMut(&dyn Manager) -> Result<T>,
    ) -> [Series<T>; N] {
        self.in_turn(sides, |manager| manager.label(), measure)
    }

    /// `side_by_side` for sides that are not container managers (a snapshot command, a
    /// `cp` beside it); `label` names a side in messages.
    pub fn in_turn<S: Copy, T, const N: usize>(
        &self,
        sides: [std::result::Result<S, String>; N],
        label: impl Fn(S) -> &'static str,
        mut measure: impl FnMut(S) -> Result<T>,
    ) -> [Series<T>; N] {
        let mut series = sides.each_ref().map(|side| match side {
            Ok(_) => Series::default(),
            Err(reason) => Series::failed(reason.clone()),
        });
        for run in 0..self.runs {
            if interrupted() {
                break;
            }
            eprintln!("  run {}/{}", run + 1, self.runs);
            for turn in 0..N {
                let index = (run + turn) % N;
                settle();
                if let Ok(side) = sides[index] {
                    series[index].measure(label(side), || measure(side));
                }
            }
        }
        series
    }

    /// `side_by_side` on a container that runs all along: `name` is started on every side
    /// (untimed, until an exec works) and `set_up` run in it before the first run, and
    /// it is killed after the last. A side whose start or set-up fails keeps that as its
    /// reason.
    pub fn side_by_side_running<T, const N: usize>(
        &self,
        sides: [Side<'_>; N],
        template: Template,
        name: &str,
        set_up: impl Fn(&dyn Manager) -> Result<()>,
        measure: impl FnMut(&dyn Manager) -> Result<T>,
    ) -> [Series<T>; N] {
        eprintln!("  starting {name} on every side");
        let running = sides.each_ref().map(|side| {
            let manager = side.clone()?;
            start_ready(manager, name, Readiness::ExecWorks(template))
                .and_then(|()| set_up(manager))
                .map(|()| manager)
                .map_err(|err| {
                    let reason = format!("start {name} and set it up: {err:#}");
                    eprintln!("  {}: {reason}", manager.label());
                    reason
                })
        });
        let series = self.side_by_side(running, measure);
        // Also where the start or the set-up failed half-way.
        for manager in sides.into_iter().flatten() {
            if let Err(err) = manager.kill(name) {
                // Not a measurement: the final clean-up gets another go at it.
                eprintln!("  {}: kill {name}: {err:#}", manager.label());
            }
        }
        series
    }

    pub fn delete_everywhere(&self, lxc: Option<&dyn Manager>, names: &[&str]) -> Result<()> {
        let lxc_deleted = lxc.map_or(Ok(()), |lxc| lxc.delete_all(names));
        self.sysc.delete_all(names)?;
        lxc_deleted
    }
}
