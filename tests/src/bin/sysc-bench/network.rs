//! DHCP on the bench daemon's default network: from `sysc start` until the container's
//! eth0 holds the IPv4 address dnsmasq leased it. busybox (udhcpc, started by rcS), debian
//! (systemd-networkd), and 20 busybox containers started at once. sysc only: the bench's
//! LXC has no network.
//!
//! "Has its address" is an IPv4 address on eth0 inside the container's network namespace,
//! read from a thread of the bench that enters it (setns, then getifaddrs): the very
//! reading behind `sysc list`'s IPV4 column, so it is seen at the moment `sysc list` would
//! first show it. It is polled every POLL_INTERVAL. Polling `sysc list` itself would cost a
//! CLI start, a gRPC call and the daemon's reading of every container per poll, tens of
//! ms of the 2 CPUs the containers boot on, and no finer steps than that; `nsenter … ip
//! addr` is a fork and two execs per poll; dnsmasq's lease file is written at its ACK,
//! before the client has put the address on the link. Once it is seen (untimed), `sysc
//! list --format json` must show the same address on eth0, and the 20 must have 20
//! different ones, or the run fails.
//!
//! The clock starts just before `sysc start NAME...` is spawned (one command: the CLI sends
//! the 20 starts at once) and runs through that command, the init PIDs' look-up (one `sysc
//! list`, as in the start scenarios) and the wait for the addresses. A container with no
//! address after ADDRESS_TIMEOUT fails its run, with how many got one. Between runs the
//! containers are killed, untimed; their leases end with the run (dhcp_release), so every
//! start asks dnsmasq afresh. dnsmasq runs with `--no-ping`: without it each offer waits
//! about 3 s for a ping to prove the address unused. With it, dnsmasq keeps no record of
//! the addresses it has offered and not yet leased, so when two containers whose MACs hash
//! to the same address ask at once both are offered it, the second's REQUEST is NAKed, and
//! busybox's udhcpc waits 3 s before it asks again: with 20 at once that happens in many
//! runs, and a sample's note counts the DHCPNAKs dnsmasq logged during it.

use std::collections::HashMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::sched::CloneFlags;

use crate::bench::Bench;
use crate::interrupt::check_interrupted;
use crate::manager::{Manager, Template};
use crate::measure::{measured_then, millis};
use crate::report::{Figure, Unit};
use crate::series::Sample;
use crate::sysc::Sysc;
use crate::util::{OnDrop, complain, output_within};

/// How often every container still without an address is looked at.
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How long after the init PIDs are known every container may take to get its address.
/// udhcpc's first round is three DISCOVERs 3 s apart.
const ADDRESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `sysc start` of all of them may run.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Containers started at once.
const AT_ONCE: usize = 20;
/// Lines of dnsmasq's log quoted when a container got no address.
const LOG_LINES: usize = 8;

/// Scenario 11: from `sysc start` until eth0 has its DHCP address, for busybox and debian
/// one at a time and for AT_ONCE busybox containers at once. Plain figures: no reference,
/// no target.
pub fn network(bench: &Bench) -> Result<Vec<Figure>> {
    let sysc = &bench.sysc;
    let many: Vec<String> = (0..AT_ONCE).map(|i| format!("dhcp{i:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let singles = [(Template::Busybox, "dhcp-b"), (Template::Debian, "dhcp-web")];
    let everyone: Vec<&str> = singles
        .iter()
        .map(|(_, name)| *name)
        .chain(many.iter().copied())
        .collect();
    let _clean_up = OnDrop(|| complain(sysc.delete_all(&everyone)));
    eprintln!(
        "  network {} (dnsmasq log: {})",
        sysc.network(),
        sysc.dnsmasq_log().display()
    );

    let mut figures = Vec::new();
    for (template, name) in singles {
        check_interrupted()?;
        eprintln!("  {}", template.name());
        sysc.create_missing(template, &[name])?;
        // A container left running would fail the start rather than be timed.
        sysc.kill_all(&[name])?;
        let [series] = bench.in_turn([Ok(sysc)], side, |sysc| start_until_addressed(sysc, &[name]));
        figures.push(Figure::alone(
            &format!("{}: start → eth0 has its DHCP address", template.name()),
            Unit::Ms,
            series,
        ));
    }

    check_interrupted()?;
    eprintln!("  {AT_ONCE} busybox at once");
    sysc.create_missing(Template::Busybox, &many)?;
    sysc.kill_all(&many)?;
    let [series] = bench.in_turn([Ok(sysc)], side, |sysc| start_until_addressed(sysc, &many));
    figures.push(Figure::alone(
        &format!("{AT_ONCE} busybox started at once → all {AT_ONCE} have an address"),
        Unit::Ms,
        series,
    ));
    Ok(figures)
}

fn side(sysc: &Sysc) -> &'static str {
    sysc.label()
}

/// One run, then (untimed, also after a failure) every container killed again.
fn start_until_addressed(sysc: &Sysc, names: &[&str]) -> Result<Sample> {
    let measured = time_addresses(sysc, names);
    measured_then(measured, || sysc.kill_all(names))
}

/// From just before `sysc start NAMES` is spawned until every one's eth0 has an IPv4
/// address; then, untimed, `sysc list` must show those addresses. The note: the address
/// (one container) or how many got one (several); start command + PID look-up + wait, in
/// ms; for several, how many had theirs at the first look and which was last; and the
/// DHCPNAKs dnsmasq logged meanwhile, if any.
fn time_addresses(sysc: &Sysc, names: &[&str]) -> Result<Sample> {
    let naks_before = sysc.dnsmasq_naks();
    let began = Instant::now();
    let output = output_within(&mut sysc.start_command(names), START_TIMEOUT)?;
    ensure!(
        output.status.success(),
        "`sysc start {}` failed ({}): {}",
        names.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    let started = began.elapsed();
    let pids = sysc.init_pids(names)?;
    let found = began.elapsed();

    // Each container's address, and when it was first seen.
    let mut seen: Vec<Option<(Duration, Ipv4Addr)>> = vec![None; names.len()];
    let mut first_look = true;
    let mut at_first_look = 0;
    loop {
        check_interrupted()?;
        for (index, &pid) in pids.iter().enumerate() {
            if seen[index].is_some() {
                continue;
            }
            if let Some(address) = eth0_ipv4(pid).with_context(|| format!("{}: eth0", names[index]))? {
                seen[index] = Some((began.elapsed(), address));
                at_first_look += usize::from(first_look);
            }
        }
        first_look = false;
        if seen.iter().all(Option::is_some) {
            break;
        }
        if began.elapsed().saturating_sub(found) > ADDRESS_TIMEOUT {
            let missing: Vec<&str> = names
                .iter()
                .zip(&seen)
                .filter(|(_, seen)| seen.is_none())
                .map(|(name, _)| *name)
                .collect();
            bail!(
                "after {ADDRESS_TIMEOUT:?}, {} of {} containers had an IPv4 address on eth0; none yet: {}. \
                 The end of dnsmasq's log:\n{}",
                names.len() - missing.len(),
                names.len(),
                missing.join(", "),
                sysc.dnsmasq_log_tail(LOG_LINES)
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let seen: Vec<(Duration, Ipv4Addr)> = seen.into_iter().flatten().collect();
    let (last, ready) = seen
        .iter()
        .enumerate()
        .map(|(index, (at, _))| (names[index], *at))
        .max_by_key(|(_, at)| *at)
        .ok_or_else(|| anyhow!("no containers"))?;
    let addresses: Vec<Ipv4Addr> = seen.iter().map(|(_, address)| *address).collect();

    check_listed(sysc, names, &addresses)?;
    let phases = format!(
        "{:.0}+{:.0}+{:.0}",
        millis(started),
        millis(found - started),
        millis(ready - found)
    );
    let mut note = match addresses.as_slice() {
        [address] => format!("{address}; {phases}"),
        _ => format!(
            "{n}/{n}; {phases}; {at_first_look} at the first look, last {last}",
            n = addresses.len()
        ),
    };
    let naks = sysc.dnsmasq_naks().saturating_sub(naks_before);
    if naks > 0 {
        note.push_str(&format!("; {naks} DHCPNAK"));
    }
    Ok(Sample {
        value: millis(ready),
        note: Some(note),
    })
}

/// `sysc list` shows each container's address on eth0, and no two share one.
fn check_listed(sysc: &Sysc, names: &[&str], addresses: &[Ipv4Addr]) -> Result<()> {
    let listed = sysc.ipv4()?;
    for (name, address) in names.iter().zip(addresses) {
        let shown = listed.get(*name).map(Vec::as_slice).unwrap_or_default();
        let expected = format!("{address} (eth0)");
        ensure!(
            shown.contains(&expected),
            "{name}: eth0 has {address}, but `sysc list` shows {shown:?}"
        );
    }
    let mut owners: HashMap<Ipv4Addr, &str> = HashMap::new();
    for (name, address) in names.iter().zip(addresses) {
        if let Some(other) = owners.insert(*address, name) {
            bail!("{other} and {name} both have {address}");
        }
    }
    Ok(())
}

/// The first IPv4 address on eth0 in the network namespace of the process `pid`, read
/// from a thread that enters it and then ends (setns moves only the calling thread). An
/// error if the process is gone (the container stopped) or shares the bench's own
/// namespace, whose addresses would prove nothing.
fn eth0_ipv4(pid: i32) -> Result<Option<Ipv4Addr>> {
    let netns = File::open(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("open the network namespace of init {pid} (has the container stopped?)"))?;
    let ours = std::fs::metadata("/proc/self/ns/net").context("the bench's own network namespace")?;
    let theirs = netns.metadata()?;
    ensure!(
        (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()),
        "init {pid} is in the host's network namespace"
    );
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET).context("setns")?;
                let eth0 = nix::ifaddrs::getifaddrs()
                    .context("getifaddrs")?
                    .filter(|ifa| ifa.interface_name == "eth0")
                    .find_map(|ifa| Some(ifa.address?.as_sockaddr_in()?.ip()));
                Ok(eth0)
            })
            .join()
            .map_err(|_| anyhow!("the thread reading init {pid}'s addresses panicked"))?
    })
}
