//! A network's IPv4 side: the gateway address with its prefix, picking a free one, and
//! the addresses it hands out.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::NetworkError;

/// Where an automatic subnet is picked from: 10.0.0.0/8, as Incus does.
const AUTO_POOL: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), 8) {
    Ok(net) => net,
    Err(_) => panic!("10.0.0.0/8 is a valid network"),
};

/// The bridge's own address with the subnet's prefix, e.g. 10.20.30.1/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gateway(Ipv4Net);

impl Gateway {
    /// Parses `ipv4.address`: an address inside its subnet that is neither the
    /// subnet's own address nor its broadcast, prefix /8 to /30.
    pub fn parse(value: &str) -> Result<Self, NetworkError> {
        let bad = |why: &str| NetworkError::Invalid(format!("ipv4.address {value:?}: {why}"));
        let net: Ipv4Net = value
            .parse()
            .map_err(|_| bad("expected an address with its prefix, e.g. 10.20.30.1/24"))?;
        if !(8..=30).contains(&net.prefix_len()) {
            return Err(bad("the prefix must be between /8 and /30"));
        }
        if net.addr() == net.network() || net.addr() == net.broadcast() {
            return Err(bad("the gateway must be a host address of the subnet, e.g. its .1"));
        }
        // Addresses a bridge cannot have, or that are not the host's to give out.
        let subnet = net.trunc();
        let special = [
            ("0.0.0.0/8", "\"this network\""),
            ("127.0.0.0/8", "loopback"),
            ("169.254.0.0/16", "link-local"),
            ("224.0.0.0/4", "multicast"),
            ("240.0.0.0/4", "reserved"),
        ];
        for (range, what) in special {
            let range: Ipv4Net = range.parse().expect("a valid range");
            if range.contains(&subnet) || subnet.contains(&range) {
                return Err(bad(&format!("{range} is {what} address space")));
            }
        }
        Ok(Self(net))
    }

    pub fn address(&self) -> Ipv4Addr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.0.trunc()
    }

    /// The address ranges DHCP hands out: every host address but the gateway's.
    pub fn dhcp_ranges(&self) -> Vec<(Ipv4Addr, Ipv4Addr)> {
        let first = u32::from(self.0.network()) + 1;
        let last = u32::from(self.0.broadcast()) - 1;
        let gateway = u32::from(self.0.addr());
        [(first, gateway.saturating_sub(1)), (gateway + 1, last)]
            .into_iter()
            .filter(|(start, end)| start <= end)
            .map(|(start, end)| (Ipv4Addr::from(start), Ipv4Addr::from(end)))
            .collect()
    }

    /// Checks a static address for a container on this network.
    pub fn check_host(&self, address: Ipv4Addr) -> Result<(), NetworkError> {
        let subnet = self.subnet();
        if !subnet.contains(&address) || address == subnet.network() || address == subnet.broadcast() {
            return Err(NetworkError::Invalid(format!(
                "ipv4.address {address}: not a host address of the network's subnet {subnet}"
            )));
        }
        if address == self.address() {
            return Err(NetworkError::Invalid(format!(
                "ipv4.address {address}: that is the network's gateway"
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The first route (destination network) that `subnet` overlaps, if any. Default
/// routes don't count: every subnet "overlaps" them.
pub fn clash(subnet: Ipv4Net, routes: &[Ipv4Net]) -> Option<Ipv4Net> {
    routes
        .iter()
        .filter(|route| route.prefix_len() > 0)
        .find(|route| route.contains(&subnet.network()) || subnet.contains(&route.network()))
        .copied()
}

/// A random /24 in 10.0.0.0/8 that clashes with none of `routes`, its gateway at .1.
pub fn pick_free(routes: &[Ipv4Net], mut random: impl FnMut() -> u32) -> Result<Gateway, NetworkError> {
    let slots = 1u32 << (24 - AUTO_POOL.prefix_len());
    let start = random() % slots;
    (0..slots)
        .map(|i| (start + i) % slots)
        .map(|slot| {
            let network = u32::from(AUTO_POOL.network()) + (slot << 8);
            Ipv4Net::new(Ipv4Addr::from(network + 1), 24).expect("a /24 is valid")
        })
        .find(|net| clash(net.trunc(), routes).is_none())
        .map(Gateway)
        .ok_or_else(|| NetworkError::Invalid("no free /24 left in 10.0.0.0/8 for a new network".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn gateway_must_be_a_host_address_with_a_sane_prefix() {
        assert_eq!(Gateway::parse("10.20.30.1/24").unwrap().to_string(), "10.20.30.1/24");
        for bad in [
            "10.20.30.0/24",
            "10.20.30.255/24",
            "10.20.30.1",
            "10.20.30.1/31",
            "10.0.0.1/7",
            "x",
            "224.0.0.1/24",
            "239.1.1.1/16",
            "127.0.1.1/24",
            "169.254.3.1/24",
            "0.1.2.3/24",
            "250.0.0.1/24",
        ] {
            let error = Gateway::parse(bad).unwrap_err().to_string();
            assert!(error.contains("ipv4.address"), "{bad}: {error}");
        }
    }

    #[test]
    fn dhcp_ranges_skip_the_gateway() {
        let ranges = Gateway::parse("10.0.5.1/24").unwrap().dhcp_ranges();
        assert_eq!(ranges, vec![(Ipv4Addr::new(10, 0, 5, 2), Ipv4Addr::new(10, 0, 5, 254))]);
        let ranges = Gateway::parse("10.0.5.100/24").unwrap().dhcp_ranges();
        assert_eq!(
            ranges,
            vec![
                (Ipv4Addr::new(10, 0, 5, 1), Ipv4Addr::new(10, 0, 5, 99)),
                (Ipv4Addr::new(10, 0, 5, 101), Ipv4Addr::new(10, 0, 5, 254)),
            ]
        );
    }

    #[test]
    fn static_hosts_are_checked_against_the_subnet() {
        let gateway = Gateway::parse("10.0.5.1/24").unwrap();
        gateway.check_host(Ipv4Addr::new(10, 0, 5, 50)).unwrap();
        for bad in [[10, 0, 5, 1], [10, 0, 5, 0], [10, 0, 5, 255], [10, 0, 6, 7]] {
            assert!(gateway.check_host(Ipv4Addr::from(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn clashes_ignore_default_routes_and_catch_both_directions() {
        let routes = [net("0.0.0.0/0"), net("10.1.0.0/16"), net("192.168.7.0/24")];
        assert_eq!(clash(net("10.1.2.0/24"), &routes), Some(net("10.1.0.0/16")));
        assert_eq!(clash(net("192.168.0.0/16"), &routes), Some(net("192.168.7.0/24")));
        assert_eq!(clash(net("10.2.0.0/24"), &routes), None);
    }

    #[test]
    fn picks_a_free_slash_24() {
        let routes = [net("10.0.0.0/9")];
        let picked = pick_free(&routes, || 0).unwrap();
        assert_eq!(picked.to_string(), "10.128.0.1/24");
        assert!(clash(picked.subnet(), &routes).is_none());
        let everything = [net("10.0.0.0/8")];
        assert!(pick_free(&everything, || 7).is_err());
    }
}
