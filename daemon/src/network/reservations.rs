//! Every nic gets its address reserved in dnsmasq's host files before its container
//! starts. dnsmasq with --no-ping does not remember what it has offered, so two clients
//! asking at the same moment can be offered the same free address; the loser is NAKed
//! and busybox's udhcpc waits 3 s before asking again. A reservation per MAC, picked
//! here under one lock, rules that out.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use super::NetworkError;
use super::dnsmasq::{self, HostEntry, Paths};
use super::subnet::Gateway;

/// What one nic asks for.
pub struct Request<'a> {
    /// Its host file's name.
    pub file: &'a str,
    pub mac: &'a str,
    pub hostname: &'a str,
    /// A static address (ipv4.address); None: the daemon picks one.
    pub address: Option<Ipv4Addr>,
    /// Static addresses of other nics on the network, started or not.
    pub statics: &'a [Ipv4Addr],
}

/// A network's host files as this daemon last wrote them. It is their only writer, so
/// the directory is read once, not at every start (a read of every container's file
/// made each start slower the more containers the network had).
#[derive(Debug, Default)]
pub struct HostFiles {
    lines: HashMap<String, String>,
}

impl HostFiles {
    pub fn load(paths: &Paths) -> Self {
        Self {
            lines: dnsmasq::read_hosts(paths).into_iter().collect(),
        }
    }

    fn entries(&self) -> impl Iterator<Item = (&str, HostEntry)> {
        self.lines
            .iter()
            .filter_map(|(file, line)| Some((file.as_str(), HostEntry::parse(line)?)))
    }

    /// Writes a host file; whether it changed.
    fn write(&mut self, paths: &Paths, file: &str, line: &str) -> Result<bool, NetworkError> {
        if self.lines.get(file).is_some_and(|old| old == line) {
            return Ok(false);
        }
        // Forgotten first: if the write fails, the next reservation reads the file again.
        self.lines.remove(file);
        dnsmasq::write_host(paths, file, line)?;
        self.lines.insert(file.to_string(), line.to_string());
        Ok(true)
    }

    /// Removes a host file; whether there was one.
    pub fn remove(&mut self, paths: &Paths, file: &str) -> bool {
        self.lines.remove(file);
        dnsmasq::remove_host(paths, file)
    }
}

/// Writes the nic's host file; its address. Blocking; the caller serializes calls per
/// network.
pub fn reserve(
    paths: &Paths,
    hosts: &mut HostFiles,
    gateway: &Gateway,
    request: &Request,
) -> Result<Ipv4Addr, NetworkError> {
    let address = match request.address {
        Some(address) => {
            if let Some(holder) = leased_to_another(paths, address, request.mac) {
                return Err(NetworkError::Conflict(format!(
                    "ipv4.address {address} of {} is leased to {holder} now",
                    request.hostname
                )));
            }
            address
        }
        None => pick(paths, hosts, gateway, request)?,
    };
    let line = dnsmasq::host_line(request.mac, address, request.hostname);
    if hosts.write(paths, request.file, &line)? {
        dnsmasq::reload(paths);
    }
    Ok(address)
}

/// Who holds `address` by a lease that has not run out, if not `mac`: a running
/// container's dynamic address (a stopped container's lease is released). dnsmasq would
/// not hand it to a second MAC, which would be left without an address.
pub fn leased_to_another(paths: &Paths, address: Ipv4Addr, mac: &str) -> Option<String> {
    let now = crate::time::now_ms() / 1000;
    dnsmasq::leases(paths)
        .into_iter()
        .find(|lease| {
            lease.address == address
                && !lease.mac.eq_ignore_ascii_case(mac)
                // 0: a lease that never ends.
                && (lease.expires_at == 0 || lease.expires_at > now)
        })
        .map(|lease| {
            if lease.hostname.is_empty() {
                lease.mac
            } else {
                lease.hostname
            }
        })
}

/// The nic's previous address if it is still free, else the first free one from a
/// place that depends on the MAC (so addresses stay put across restarts).
fn pick(paths: &Paths, hosts: &HostFiles, gateway: &Gateway, request: &Request) -> Result<Ipv4Addr, NetworkError> {
    let mut taken: HashSet<Ipv4Addr> = request.statics.iter().copied().collect();
    taken.insert(gateway.address());
    let mut previous = None;
    for (file, entry) in hosts.entries() {
        if file == request.file {
            previous = entry.address;
        } else if let Some(address) = entry.address {
            taken.insert(address);
        }
    }
    for lease in dnsmasq::leases(paths) {
        if lease.mac.eq_ignore_ascii_case(request.mac) {
            previous = previous.or(Some(lease.address));
        } else {
            taken.insert(lease.address);
        }
    }
    if let Some(previous) = previous.filter(|a| !taken.contains(a) && gateway.check_host(*a).is_ok()) {
        return Ok(previous);
    }
    let candidates: Vec<(u32, u32)> = gateway
        .dhcp_ranges()
        .into_iter()
        .map(|(start, end)| (u32::from(start), u32::from(end)))
        .collect();
    let total: u32 = candidates.iter().map(|(start, end)| end - start + 1).sum();
    let first = mac_number(request.mac) % total.max(1);
    (0..total)
        .map(|i| nth(&candidates, (first + i) % total))
        .find(|address| !taken.contains(address))
        .ok_or_else(|| {
            NetworkError::Conflict(format!(
                "network {} ({}) has no free address left for {}",
                paths.dir.file_name().unwrap_or_default().to_string_lossy(),
                gateway.subnet(),
                request.hostname
            ))
        })
}

fn nth(ranges: &[(u32, u32)], mut index: u32) -> Ipv4Addr {
    for (start, end) in ranges {
        let size = end - start + 1;
        if index < size {
            return Ipv4Addr::from(start + index);
        }
        index -= size;
    }
    unreachable!("index within the ranges' total")
}

/// The MAC's last three bytes as a number: the part that differs between nics.
fn mac_number(mac: &str) -> u32 {
    let bytes = super::nic::parse_mac(mac).unwrap_or_default();
    u32::from_be_bytes([0, bytes[3], bytes[4], bytes[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::new(dir.path(), dir.path(), "br0");
        std::fs::create_dir_all(paths.hosts_dir()).unwrap();
        (dir, paths)
    }

    /// A network's reservations as the daemon keeps them: host files read once.
    struct Network {
        paths: Paths,
        hosts: HostFiles,
        gateway: Gateway,
    }

    impl Network {
        fn new(paths: &Paths, gateway: &str) -> Self {
            Self {
                hosts: HostFiles::load(paths),
                paths: paths.clone(),
                gateway: Gateway::parse(gateway).unwrap(),
            }
        }

        fn reserve(&mut self, request: &Request) -> Result<Ipv4Addr, NetworkError> {
            reserve(&self.paths, &mut self.hosts, &self.gateway, request)
        }
    }

    fn request<'a>(file: &'a str, mac: &'a str, statics: &'a [Ipv4Addr]) -> Request<'a> {
        Request {
            file,
            mac,
            hostname: file,
            address: None,
            statics,
        }
    }

    #[test]
    fn nics_get_distinct_addresses_that_stay_put() {
        let (_dir, paths) = scratch();
        let mut net = Network::new(&paths, "10.9.0.1/24");
        // Two MACs that point at the same place: 5 and 258 in a range of 253.
        let a = net.reserve(&request("a.eth0", "10:66:6a:00:00:05", &[])).unwrap();
        let b = net.reserve(&request("b.eth0", "10:66:6a:00:01:02", &[])).unwrap();
        assert_ne!(a, b);
        assert_eq!(net.reserve(&request("a.eth0", "10:66:6a:00:00:05", &[])).unwrap(), a);
        let written = std::fs::read_to_string(paths.hosts_dir().join("b.eth0")).unwrap();
        assert_eq!(written, format!("10:66:6a:00:01:02,{b},b.eth0\n"));
    }

    #[test]
    fn host_files_of_an_earlier_run_count_and_a_removed_one_frees_its_address() {
        let (_dir, paths) = scratch();
        // A /30 has one address besides the gateway, held here by an earlier run's file.
        std::fs::write(paths.hosts_dir().join("old.eth0"), "10:66:6a:00:00:07,10.9.0.2,old\n").unwrap();
        let mut net = Network::new(&paths, "10.9.0.1/30");
        let a = request("a.eth0", "10:66:6a:00:00:00", &[]);
        assert!(net.reserve(&a).is_err());
        assert!(net.hosts.remove(&paths, "old.eth0"));
        assert!(!paths.hosts_dir().join("old.eth0").exists());
        assert_eq!(net.reserve(&a).unwrap(), Ipv4Addr::new(10, 9, 0, 2));
    }

    #[test]
    fn statics_leases_and_the_gateway_are_never_picked() {
        let (_dir, paths) = scratch();
        let mut net = Network::new(&paths, "10.9.0.1/30");
        // A /30 has two hosts: .1 is the gateway, .2 the only one left.
        assert_eq!(
            net.reserve(&request("a.eth0", "10:66:6a:00:00:00", &[])).unwrap(),
            Ipv4Addr::new(10, 9, 0, 2)
        );
        let full = net.reserve(&request("b.eth0", "10:66:6a:00:00:01", &[]));
        assert_eq!(
            full.unwrap_err().to_string(),
            "network br0 (10.9.0.0/30) has no free address left for b.eth0"
        );

        let (_dir, paths) = scratch();
        let mut net = Network::new(&paths, "10.9.0.1/29");
        std::fs::write(paths.leases(), "1 10:66:6a:99:99:99 10.9.0.2 x *\n").unwrap();
        let statics = [
            Ipv4Addr::new(10, 9, 0, 3),
            Ipv4Addr::new(10, 9, 0, 4),
            Ipv4Addr::new(10, 9, 0, 5),
        ];
        let picked = net.reserve(&request("a.eth0", "10:66:6a:00:00:00", &statics)).unwrap();
        assert_eq!(picked, Ipv4Addr::new(10, 9, 0, 6));
    }

    #[test]
    fn a_static_address_leased_to_another_mac_is_refused() {
        let (_dir, paths) = scratch();
        let mut net = Network::new(&paths, "10.9.0.1/24");
        let later = crate::time::now_ms() / 1000 + 3600;
        std::fs::write(
            paths.leases(),
            format!("{later} 10:66:6a:00:00:09 10.9.0.9 web1 *\n5 10:66:6a:00:00:08 10.9.0.8 gone *\n"),
        )
        .unwrap();
        let wanting = |address: [u8; 4], mac| Request {
            address: Some(Ipv4Addr::from(address)),
            ..request("b.eth0", mac, &[])
        };
        let err = net.reserve(&wanting([10, 9, 0, 9], "10:66:6a:00:00:01")).unwrap_err();
        assert_eq!(err.to_string(), "ipv4.address 10.9.0.9 of b.eth0 is leased to web1 now");
        // Its own lease, and one that ran out, are no obstacle.
        net.reserve(&wanting([10, 9, 0, 9], "10:66:6a:00:00:09")).unwrap();
        net.reserve(&wanting([10, 9, 0, 8], "10:66:6a:00:00:01")).unwrap();
    }
}
