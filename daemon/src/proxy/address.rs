//! The `listen` and `connect` addresses of a proxy device: `tcp:ADDRESS:PORT`, where
//! ADDRESS is an IPv4 address or a bracketed IPv6 one. Incus also takes udp:, unix:,
//! hostnames and port ranges; those are refused by name so users know why.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Tcp => f.write_str("tcp"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyAddress {
    pub protocol: Protocol,
    pub addr: SocketAddr,
}

/// Why an address was refused. The value itself is named by whoever shows this (see
/// `ProxyError::Address`, or clap for the helper's arguments).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("expected tcp:ADDRESS:PORT")]
    Malformed,
    #[error("only tcp is supported for now, not {0}")]
    UnsupportedProtocol(String),
    #[error("\"{0}\" is not an IPv4 address or a bracketed IPv6 address (hostnames are not supported)")]
    NotAnIp(String),
    #[error("IPv6 address {0} must be in brackets, as in tcp:[{0}]:PORT")]
    UnbracketedIpv6(Ipv6Addr),
    #[error("port ranges and lists are not supported (\"{0}\")")]
    PortRange(String),
    #[error("port \"{0}\" is not a number from 1 to 65535")]
    BadPort(String),
}

impl FromStr for ProxyAddress {
    type Err = AddressError;

    fn from_str(value: &str) -> Result<Self, AddressError> {
        let (protocol, rest) = value.split_once(':').ok_or(AddressError::Malformed)?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" | "unix" => return Err(AddressError::UnsupportedProtocol(protocol.to_string())),
            _ => return Err(AddressError::Malformed),
        };
        let (host, port) = split_host_port(rest).ok_or(AddressError::Malformed)?;
        if host.is_empty() || port.is_empty() {
            return Err(AddressError::Malformed);
        }
        Ok(ProxyAddress {
            protocol,
            addr: SocketAddr::new(parse_ip(host)?, parse_port(port)?),
        })
    }
}

/// `[IPV6]:PORT` or `IPV4:PORT`; the host keeps its brackets.
fn split_host_port(rest: &str) -> Option<(&str, &str)> {
    if rest.starts_with('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        return Some((&rest[..=end], port));
    }
    rest.rsplit_once(':')
}

fn parse_ip(host: &str) -> Result<IpAddr, AddressError> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| AddressError::NotAnIp(host.to_string()));
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(IpAddr::V4(ip)),
        Ok(IpAddr::V6(ip)) => Err(AddressError::UnbracketedIpv6(ip)),
        Err(_) => Err(AddressError::NotAnIp(host.to_string())),
    }
}

fn parse_port(port: &str) -> Result<u16, AddressError> {
    if port.contains(['-', ',']) {
        return Err(AddressError::PortRange(port.to_string()));
    }
    // u16::from_str takes a leading '+'; a port is digits only.
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::BadPort(port.to_string()));
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(AddressError::BadPort(port.to_string())),
        Ok(n) => Ok(n),
    }
}

impl fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr already brackets IPv6 and, with no scope id, writes nothing else.
        write!(f, "{}:{}", self.protocol, self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<ProxyAddress, AddressError> {
        value.parse()
    }

    fn error(value: &str) -> String {
        parse(value).unwrap_err().to_string()
    }

    #[test]
    fn parses_ipv4() {
        let address = parse("tcp:0.0.0.0:8080").unwrap();
        assert_eq!(address.protocol, Protocol::Tcp);
        assert_eq!(address.addr, "0.0.0.0:8080".parse().unwrap());
    }

    #[test]
    fn parses_bracketed_ipv6() {
        assert_eq!(parse("tcp:[::1]:80").unwrap().addr, "[::1]:80".parse().unwrap());
        assert_eq!(parse("tcp:[::]:65535").unwrap().addr, "[::]:65535".parse().unwrap());
    }

    #[test]
    fn displays_the_canonical_form() {
        for value in [
            "tcp:0.0.0.0:8080",
            "tcp:127.0.0.1:1",
            "tcp:[::1]:80",
            "tcp:[fd00::1:2]:443",
        ] {
            assert_eq!(parse(value).unwrap().to_string(), value);
        }
        assert_eq!(parse("tcp:[0:0::0:1]:80").unwrap().to_string(), "tcp:[::1]:80");
    }

    #[test]
    fn display_round_trips() {
        for value in ["tcp:10.1.2.3:22", "tcp:[2001:db8::5]:8443", "tcp:[::ffff:1.2.3.4]:9"] {
            let address = parse(value).unwrap();
            assert_eq!(parse(&address.to_string()).unwrap(), address);
        }
    }

    #[test]
    fn refuses_other_protocols() {
        assert_eq!(error("udp:0.0.0.0:53"), "only tcp is supported for now, not udp");
        assert_eq!(error("unix:/run/app.sock"), "only tcp is supported for now, not unix");
    }

    #[test]
    fn refuses_missing_parts() {
        for value in [
            "",
            "tcp",
            "tcp:",
            "tcp:1.2.3.4",
            "tcp:1.2.3.4:",
            "tcp::80",
            "1.2.3.4:80",
            "TCP:1.2.3.4:80",
            "tcp:[::1]",
            "tcp:[::1]:",
            "tcp:[::1]80",
            "tcp:[::1:80",
        ] {
            assert_eq!(error(value), "expected tcp:ADDRESS:PORT", "{value:?}");
        }
    }

    #[test]
    fn refuses_hostnames_and_junk_addresses() {
        assert_eq!(
            error("tcp:localhost:80"),
            "\"localhost\" is not an IPv4 address or a bracketed IPv6 address (hostnames are not supported)"
        );
        assert!(error("tcp:1.2.3:80").starts_with("\"1.2.3\" is not an IPv4 address"));
        assert!(error("tcp:[1.2.3.4]:80").starts_with("\"[1.2.3.4]\" is not an IPv4 address"));
        assert!(error("tcp:[]:80").starts_with("\"[]\" is not"));
        assert!(error("tcp:[fe80::1%eth0]:80").starts_with("\"[fe80::1%eth0]\" is not"));
        assert!(error("tcp: 1.2.3.4:80").starts_with("\" 1.2.3.4\" is not"));
    }

    #[test]
    fn refuses_unbracketed_ipv6() {
        assert_eq!(
            error("tcp:::1:80"),
            "IPv6 address ::1 must be in brackets, as in tcp:[::1]:PORT"
        );
    }

    #[test]
    fn refuses_port_ranges_and_lists() {
        assert_eq!(
            error("tcp:0.0.0.0:80-90"),
            "port ranges and lists are not supported (\"80-90\")"
        );
        assert_eq!(
            error("tcp:0.0.0.0:80,443"),
            "port ranges and lists are not supported (\"80,443\")"
        );
    }

    #[test]
    fn refuses_bad_ports() {
        for port in ["0", "65536", "99999999999", "http", "+80", " 80", "8O"] {
            assert_eq!(
                error(&format!("tcp:1.2.3.4:{port}")),
                format!("port \"{port}\" is not a number from 1 to 65535")
            );
        }
        assert_eq!(parse("tcp:1.2.3.4:065535").unwrap().addr.port(), 65535);
    }
}
