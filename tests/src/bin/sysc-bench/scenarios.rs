//! The five scenarios: what each one prepares, measures on which sides, and which
//! figures (with their targets) it reports.

use std::collections::HashMap;

use anyhow::Result;

use crate::bench::Bench;
use crate::manager::Template;
use crate::measure::{boot_then_kill, boot_then_time_clean_stop, launch_then_delete, start_all_then_kill};
use crate::readiness::Readiness;
use crate::report::{Figure, Unit};
use crate::series::Series;
use crate::util::apparent_size_mib;

/// "Second launch must not grow with the image's size": debian may take at most this
/// many times as long as busybox. The brief names no figure; this one is ours.
const FLAT_LAUNCH_RATIO: f64 = 1.25;

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
    let privileged = bench.prepare_privileged(Template::Debian, &["web"]);
    let [sysc, privileged, lxc] = bench.side_by_side([bench.sysc(), privileged, lxc], |m| {
        boot_then_kill(m, "web", Readiness::SystemdSettled)
    });
    Ok(default_and_privileged(
        "debian start → systemd running/degraded",
        sysc,
        privileged,
        lxc,
        0.9,
    ))
}

/// Scenario 3: debian clean stop, from running to gone. Target: sysc ≤ 0.7 × LXC, for
/// sysc's default and for a privileged sysc container like LXC's.
pub fn debian_stop(bench: &Bench) -> Result<Vec<Figure>> {
    let lxc = bench.prepare(Template::Debian, &["web"])?;
    let privileged = bench.prepare_privileged(Template::Debian, &["web"]);
    let [sysc, privileged, lxc] =
        bench.side_by_side([bench.sysc(), privileged, lxc], |m| boot_then_time_clean_stop(m, "web"));
    Ok(default_and_privileged(
        "debian clean stop → init gone",
        sysc,
        privileged,
        lxc,
        0.7,
    ))
}

/// The row for sysc's default, then the same row for privileged sysc, both against the
/// same LXC samples: LXC runs privileged, so only the second compares like with like.
fn default_and_privileged(label: &str, sysc: Series, privileged: Series, lxc: Series, target: f64) -> Vec<Figure> {
    vec![
        Figure::versus_lxc(label, Unit::Ms, sysc, lxc.clone(), Some(target)),
        Figure::versus_lxc(
            &format!("{label} (sysc privileged)"),
            Unit::Ms,
            privileged,
            lxc,
            Some(target),
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
        reference_label: "sysc busybox",
        reference: sysc_by_template.remove(&Template::Busybox).unwrap_or_default(),
        target: Some(FLAT_LAUNCH_RATIO),
    });
    Ok(figures)
}
