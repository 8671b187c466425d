//! The scenarios: what each one prepares, measures on which sides, and which
//! figures (with their targets) it reports.

use std::collections::HashMap;

use anyhow::Result;

use crate::bench::Bench;
use crate::manager::Template;
use crate::measure::{
    boot_then_kill, boot_then_time_clean_stop, boot_then_time_halt_alone, exec_cat_throughput, exec_round_trips,
    launch_then_delete, start_all_then_kill,
};
use crate::readiness::Readiness;
use crate::report::{Figure, Reference, Unit};
use crate::series::Series;
use crate::util::{apparent_size_mib, run};

/// "Second launch must not grow with the image's size": debian may take at most this
/// many times as long as busybox. The brief names no figure; this one is ours.
const FLAT_LAUNCH_RATIO: f64 = 1.25;

/// Untimed `exec NAME -- true` calls before each run's timed ones.
const EXEC_WARM_UP: usize = 5;
/// Timed calls per run; the run's sample is their median.
const EXEC_CALLS: usize = 50;
/// sysc's own target for an exec round trip, whatever LXC does.
const EXEC_TARGET_MS: f64 = 10.0;
/// The file that `exec NAME -- cat` streams out, and its size.
const BIG_FILE: &str = "/tmp/big";
const BIG_FILE_BYTES: u64 = 100_000_000;
/// Timed reads of it per run; the run's sample is their median.
const BIG_FILE_READS: usize = 5;

/// Scenario 1: busybox start until an exec would succeed. Target: sysc ≤ LXC.
pub fn busybox_start(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Busybox, &["b"])?;
    let readiness = Readiness::ExecWorks(Template::Busybox);
    let [sysc, lxc] = bench.side_by_side([bench.sysc(), lxc], |m| boot_then_kill(m, "b", readiness));
    Ok(vec![Figure::versus_lxc(
        "busybox start → exec works",
        Unit::Ms,
        sysc,
        lxc,
        Some(1.0),
    )])
}

/// Scenario 2: debian start until systemd says running or degraded. Target: sysc ≤ 0.9 × LXC,
/// for sysc's default and for a privileged sysc container like LXC's.
pub fn debian_start(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Debian, &["web"])?;
    let [privileged, lxc_privileged] = bench.prepare_privileged(Template::Debian, &["web"])?;
    let [sysc, privileged, lxc, lxc_privileged] = bench
        .side_by_side([bench.sysc(), privileged, lxc, lxc_privileged], |m| {
            boot_then_kill(m, "web", Readiness::SystemdSettled)
        });
    Ok(default_and_privileged(
        "debian start → systemd running/degraded",
        Unit::Ms,
        [sysc, lxc],
        [privileged, lxc_privileged],
        Some(0.9),
    ))
}

/// Scenario 3: debian clean stop, from running to gone. Target: sysc ≤ 0.7 × LXC,
/// unprivileged and privileged. Beside it, with no target, the guest's halt alone: the
/// halt signal sent by the bench straight to the init (no manager's command), until the
/// init is gone; no manager's stop can be quicker than that.
pub fn debian_stop(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Debian, &["web"])?;
    let [privileged, lxc_privileged] = bench.prepare_privileged(Template::Debian, &["web"])?;
    let sides = [bench.sysc(), privileged, lxc, lxc_privileged];
    let [sysc, privileged, lxc, lxc_privileged] =
        bench.side_by_side(sides.clone(), |m| boot_then_time_clean_stop(m, "web"));
    eprintln!("  the guest's halt alone");
    let [sysc_alone, privileged_alone, lxc_alone, lxc_privileged_alone] =
        bench.side_by_side(sides, |m| boot_then_time_halt_alone(m, "web", Template::Debian));
    let mut figures = default_and_privileged(
        "debian clean stop → init gone",
        Unit::Ms,
        [sysc, lxc],
        [privileged, lxc_privileged],
        Some(0.7),
    );
    figures.extend(default_and_privileged(
        "debian halt alone (`kill -RTMIN+3 INIT` → init gone)",
        Unit::Ms,
        [sysc_alone, lxc_alone],
        [privileged_alone, lxc_privileged_alone],
        None,
    ));
    Ok(figures)
}

/// The row for sysc's default against unprivileged LXC, then the row for privileged
/// sysc against privileged LXC: each pair [sysc, LXC].
fn default_and_privileged(
    label: &str,
    unit: Unit,
    [sysc, lxc]: [Series; 2],
    [privileged, lxc_privileged]: [Series; 2],
    target: Option<f64>,
) -> Vec<Figure> {
    vec![
        Figure::versus_lxc(label, unit, sysc, lxc, target),
        Figure::versus_lxc(
            &format!("{label}, both privileged"),
            unit,
            privileged,
            lxc_privileged,
            target,
        ),
    ]
}

/// Scenario 4: N busybox containers started one after another (total), and the PSS of each
/// running container's monitor (median). Targets: sysc ≤ LXC for both.
pub fn busybox_many(bench: &Bench) -> Result<Vec<Figure>> {
    let names: Vec<String> = (0..bench.containers).map(|i| format!("m{i:03}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let lxc_side = bench.prepare(Template::Busybox, &names)?;
    let [sysc, lxc] = bench.side_by_side([bench.sysc(), lxc_side.clone()], |m| start_all_then_kill(m, &names));
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
pub fn second_launch(bench: &Bench) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut sysc_by_template = HashMap::new();
    for template in [Template::Debian, Template::Busybox] {
        let lxc = bench.prepare(template, &[])?;
        let size = apparent_size_mib(&bench.sysc.image_rootfs(template)?)?;
        eprintln!("  {}", template.name());
        let mut launches = 0;
        let [sysc, lxc] = bench.side_by_side([bench.sysc(), lxc], |m| {
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
        reference: Reference::Measured {
            label: "sysc busybox".into(),
            series: sysc_by_template.remove(&Template::Busybox).unwrap_or_default(),
        },
        target: Some(FLAT_LAUNCH_RATIO),
    });
    Ok(figures)
}

/// Scenario 6: the round trip of `exec b -- true` into a running busybox container, from
/// spawn to exit as a user would time it; each run's sample is the median of EXEC_CALLS
/// calls. The target is absolute: sysc's default ≤ EXEC_TARGET_MS; LXC is shown
/// beside it.
pub fn exec(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Busybox, &["b"])?;
    let [privileged, lxc_privileged] = bench.prepare_privileged(Template::Busybox, &["b"])?;
    let [sysc, privileged, lxc, lxc_privileged] = bench.side_by_side_running(
        [bench.sysc(), privileged, lxc, lxc_privileged],
        Template::Busybox,
        "b",
        |_| Ok(()),
        |m| exec_round_trips(m, "b", EXEC_WARM_UP, EXEC_CALLS),
    );
    let label = "exec round trip (`true`)";
    let mut figures = default_and_privileged(label, Unit::Ms, [sysc.clone(), lxc], [privileged, lxc_privileged], None);
    figures.push(Figure::versus_constant(
        &format!("{label}, absolute"),
        Unit::Ms,
        sysc,
        EXEC_TARGET_MS,
    ));
    Ok(figures)
}

/// Scenario 7: stdout throughput of `exec b -- cat /tmp/big`, BIG_FILE_BYTES of random
/// data written in the container beforehand (untimed), read to the end by the bench and
/// counted. No target: sysc relays the output (command → daemon → gRPC → CLI), where
/// lxc-attach hands the command the caller's own stdout; shown for comparison.
pub fn exec_throughput(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Busybox, &["b"])?;
    let [privileged, lxc_privileged] = bench.prepare_privileged(Template::Busybox, &["b"])?;
    let fill = format!("head -c {BIG_FILE_BYTES} /dev/urandom > {BIG_FILE}");
    let [sysc, privileged, lxc, lxc_privileged] = bench.side_by_side_running(
        [bench.sysc(), privileged, lxc, lxc_privileged],
        Template::Busybox,
        "b",
        |m| run(&mut m.exec("b", &["sh", "-c", &fill])).map(drop),
        |m| exec_cat_throughput(m, "b", BIG_FILE, BIG_FILE_BYTES, BIG_FILE_READS),
    );
    Ok(default_and_privileged(
        &format!("exec stdout throughput (`cat` {} MB)", BIG_FILE_BYTES / 1_000_000),
        Unit::MBps,
        [sysc, lxc],
        [privileged, lxc_privileged],
        None,
    ))
}
