//! Several daemons as separate hosts on this machine: each in a network namespace of
//! its own, joined to the test by a veth on a bridge in the host's namespace, listening
//! with TLS on its own address.

use std::process::Command;

use crate::daemon::{Daemon, DaemonOptions};

/// The TLS port every fleet host listens on (each has its own address).
pub const PORT: u16 = 8443;

pub struct FleetHost {
    pub daemon: Daemon,
    /// Its address, reachable from the test's (the host's) network namespace.
    pub address: String,
}

impl FleetHost {
    /// host:port of its TLS listener.
    pub fn endpoint(&self) -> String {
        format!("{}:{PORT}", self.address)
    }
}

pub struct Fleet {
    pub hosts: Vec<FleetHost>,
    bridge: String,
    namespaces: Vec<String>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Fleet {
    /// `count` hosts in 100.64.N.0/24 (N from this test process), the test at .254.
    pub fn new(count: usize) -> Self {
        static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 10_000);
        let subnet = (std::process::id() * 7 + n) % 250;
        let mut fleet = Self {
            hosts: Vec::new(),
            bridge: format!("sfb{tag}"),
            namespaces: Vec::new(),
        };
        ip(&["link", "add", &fleet.bridge, "type", "bridge"]);
        ip(&["addr", "add", &format!("100.64.{subnet}.254/24"), "dev", &fleet.bridge]);
        ip(&["link", "set", &fleet.bridge, "up"]);
        for i in 0..count {
            let netns = format!("sysc-fleet{tag}h{i}");
            ip(&["netns", "add", &netns]);
            fleet.namespaces.push(netns.clone());
            let outside = format!("sfv{tag}h{i}");
            ip(&[
                "link", "add", &outside, "type", "veth", "peer", "name", "fleet0", "netns", &netns,
            ]);
            ip(&["link", "set", &outside, "master", &fleet.bridge, "up"]);
            let address = format!("100.64.{subnet}.{}", i + 1);
            let inside = |args: &[&str]| {
                let mut full = vec!["-n", netns.as_str()];
                full.extend_from_slice(args);
                ip(&full);
            };
            inside(&["addr", "add", &format!("{address}/24"), "dev", "fleet0"]);
            inside(&["link", "set", "fleet0", "up"]);
            inside(&["link", "set", "lo", "up"]);
            let daemon = Daemon::start_with(DaemonOptions {
                netns: Some(netns.clone()),
                ..Default::default()
            });
            daemon.ok(&["config", "set", "core.https_address", &format!("{address}:{PORT}")]);
            fleet.hosts.push(FleetHost { daemon, address });
        }
        fleet
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The daemons first (containers, dnsmasq, mounts, cgroups); their bridges and
        // nftables tables go with their namespaces.
        self.hosts.clear();
        for netns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", netns]).status();
        }
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
    }
}
