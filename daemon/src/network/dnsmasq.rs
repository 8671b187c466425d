//! The dnsmasq behind each network: DHCP and DNS on the bridge, names for containers
//! from per-container host files, leases in the network's directory. It runs detached
//! from the daemon (it must keep serving running containers while the daemon restarts)
//! and is found again through its pid file.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::NetworkError;
use super::subnet::Gateway;
use crate::pidfd;

/// How long a lease lasts; clients renew at half of it.
const LEASE_TIME: &str = "1h";

/// Where one network's dnsmasq keeps its state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<root>/networks/<name>`
    pub dir: PathBuf,
    /// `<run dir>/networks/<name>.pid`
    pub pid_file: PathBuf,
}

impl Paths {
    pub fn new(root: &Path, run_dir: &Path, network: &str) -> Self {
        Self {
            dir: root.join("networks").join(network),
            pid_file: run_dir.join("networks").join(format!("{network}.pid")),
        }
    }

    /// One file per container nic: `MAC[,IP],NAME`.
    pub fn hosts_dir(&self) -> PathBuf {
        self.dir.join("dnsmasq.hosts")
    }

    pub fn leases(&self) -> PathBuf {
        self.dir.join("dnsmasq.leases")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("dnsmasq.log")
    }

    pub fn prepare(&self) -> Result<(), NetworkError> {
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |e: std::io::Error| NetworkError::Host(format!("create {what}: {e}"))
        };
        for dir in [
            self.hosts_dir(),
            self.pid_file.parent().map(Path::to_path_buf).unwrap_or_default(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        // dnsmasq reads the host files after dropping root.
        for (dir, mode) in [(self.dir.parent(), 0o711), (Some(self.dir.as_path()), 0o711)] {
            if let Some(dir) = dir {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).map_err(io(dir))?;
            }
        }
        let hosts = self.hosts_dir();
        std::fs::set_permissions(&hosts, std::fs::Permissions::from_mode(0o755)).map_err(io(&hosts))
    }
}

/// dnsmasq's command line for a network. Nothing comes from /etc/dnsmasq.conf or the
/// host's /etc/hosts; upstream DNS is the host's resolv.conf.
pub fn args(network: &str, gateway: &Gateway, domain: &str, paths: &Paths, user: &str) -> Vec<String> {
    let mut args = vec![
        "--conf-file=/dev/null".to_string(),
        "--no-hosts".into(),
        "--strict-order".into(),
        "--bind-interfaces".into(),
        "--except-interface=lo".into(),
        format!("--interface={network}"),
        format!("--listen-address={}", gateway.address()),
        // Without this, each offer waits ~3 s for a ping to find the address unused.
        "--no-ping".into(),
        "--dhcp-rapid-commit".into(),
        "--dhcp-no-override".into(),
        "--dhcp-authoritative".into(),
        format!("--dhcp-leasefile={}", paths.leases().display()),
        format!("--dhcp-hostsdir={}", paths.hosts_dir().display()),
        format!("--pid-file={}", paths.pid_file.display()),
        format!("--log-facility={}", paths.log().display()),
        "--log-dhcp".into(),
        format!("--user={user}"),
        format!("--domain={domain}"),
        format!("--local=/{domain}/"),
        format!("--interface-name=_gateway.{domain},{network}"),
    ];
    let netmask = ipnet::Ipv4Net::new(gateway.address(), gateway.prefix_len())
        .map(|net| net.netmask())
        .unwrap_or(Ipv4Addr::BROADCAST);
    for (start, end) in gateway.dhcp_ranges() {
        args.push(format!("--dhcp-range={start},{end},{netmask},{LEASE_TIME}"));
    }
    args
}

/// The unprivileged user dnsmasq runs as: its own where the package made one.
pub fn user() -> &'static str {
    if nix::unistd::User::from_name("dnsmasq").ok().flatten().is_some() {
        "dnsmasq"
    } else {
        "nobody"
    }
}

/// Whether a command line is the dnsmasq of the network whose pid file is `pid_file`.
fn is_ours(args: &[String], pid_file: &Path) -> bool {
    let flag = format!("--pid-file={}", pid_file.display());
    args.first().is_some_and(|exe| exe.ends_with("dnsmasq")) && args.contains(&flag)
}

/// The running dnsmasq of the network, if any.
pub fn running(paths: &Paths) -> Option<(u32, OwnedFd)> {
    let pid = pidfd::read_pid_file(&paths.pid_file)?;
    let fd = pidfd::open_checked(pid, |args| is_ours(args, &paths.pid_file))?;
    Some((pid, fd))
}

/// The running dnsmasq of the network if it runs with exactly `args`.
pub fn running_as(paths: &Paths, args: &[String]) -> Option<OwnedFd> {
    let pid = pidfd::read_pid_file(&paths.pid_file)?;
    pidfd::open_checked(pid, |current| {
        is_ours(current, &paths.pid_file) && current.get(1..) == Some(args)
    })
}

/// Starts dnsmasq; returns once it serves (it forks into the background after binding
/// its sockets, so a port or interface problem is reported here).
pub fn start(args: &[String], paths: &Paths) -> Result<(u32, OwnedFd), NetworkError> {
    let _ = std::fs::remove_file(&paths.pid_file);
    let output = Command::new("dnsmasq")
        .args(args)
        .output()
        .map_err(|e| NetworkError::Host(format!("run dnsmasq: {e} (apt-get install dnsmasq-base)")))?;
    if !output.status.success() {
        return Err(NetworkError::Host(format!(
            "dnsmasq failed to start ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    running(paths).ok_or_else(|| {
        NetworkError::Host(format!(
            "dnsmasq started but left no live process behind {}",
            paths.pid_file.display()
        ))
    })
}

pub fn stop(paths: &Paths) {
    if let Some((_, fd)) = running(paths) {
        pidfd::terminate(&fd, Duration::from_secs(5));
    }
    let _ = std::fs::remove_file(&paths.pid_file);
}

/// Makes dnsmasq read the host files again: it notices new and changed files by itself,
/// but a removed or shortened entry stays until SIGHUP.
pub fn reload(paths: &Paths) {
    if let Some((_, fd)) = running(paths) {
        pidfd::signal(&fd, libc::SIGHUP);
    }
}

/// A host entry: the address and name dnsmasq gives a MAC.
pub fn host_line(mac: &str, address: Ipv4Addr, name: &str) -> String {
    format!("{mac},{address},{name}\n")
}

/// Writes a host file.
pub fn write_host(paths: &Paths, file: &str, line: &str) -> Result<(), NetworkError> {
    let path = paths.hosts_dir().join(file);
    crate::fsutil::write_atomic(&path, line.as_bytes())
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)))
        .map_err(|e| NetworkError::Host(format!("write {}: {e}", path.display())))
}

/// A host file's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub mac: String,
    pub address: Option<Ipv4Addr>,
}

impl HostEntry {
    /// From a host file's `MAC[,IP],NAME`.
    pub fn parse(line: &str) -> Option<Self> {
        let mut fields = line.trim().split(',');
        let mac = fields.next()?.to_string();
        let address = fields.next().and_then(|f| f.parse().ok());
        Some(Self { mac, address })
    }
}

/// Every host file with its contents.
pub fn read_hosts(paths: &Paths) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(paths.hosts_dir()) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|entry| {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            Some((entry.file_name().to_string_lossy().into_owned(), text))
        })
        .collect()
}

/// Removes a host file; whether there was one.
pub fn remove_host(paths: &Paths, file: &str) -> bool {
    std::fs::remove_file(paths.hosts_dir().join(file)).is_ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub expires_at: i64,
    pub mac: String,
    pub address: Ipv4Addr,
    pub hostname: String,
}

/// dnsmasq's lease file: `EXPIRY MAC IP HOSTNAME CLIENT-ID` per line.
pub fn leases(paths: &Paths) -> Vec<Lease> {
    std::fs::read_to_string(paths.leases())
        .unwrap_or_default()
        .lines()
        .filter_map(parse_lease)
        .collect()
}

fn parse_lease(line: &str) -> Option<Lease> {
    let mut fields = line.split_whitespace();
    let expires_at = fields.next()?.parse().ok()?;
    let mac = fields.next()?.to_string();
    let address = fields.next()?.parse().ok()?;
    let hostname = fields.next().filter(|h| *h != "*").unwrap_or_default().to_string();
    Some(Lease {
        expires_at,
        mac,
        address,
        hostname,
    })
}

/// Ends the leases of a MAC, so its address is free again (dhcp_release, from
/// dnsmasq-utils, sends the DHCPRELEASE a client would). Without dhcp_release the
/// lease simply runs out.
pub fn release(network: &str, paths: &Paths, mac: &str) {
    for lease in leases(paths).iter().filter(|l| l.mac.eq_ignore_ascii_case(mac)) {
        let released = Command::new("dhcp_release")
            .args([network, &lease.address.to_string(), mac])
            .status();
        match released {
            Ok(status) if status.success() => {}
            Ok(status) => tracing::warn!(network, mac, "dhcp_release of {} failed: {status}", lease.address),
            Err(e) => tracing::warn!(network, mac, "releasing {}: dhcp_release: {e}", lease.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_serve_the_bridge_only_with_every_state_file_in_the_network_dir() {
        let paths = Paths::new(Path::new("/r"), Path::new("/run/s"), "br7");
        let gateway = Gateway::parse("10.7.0.1/24").unwrap();
        let args = args("br7", &gateway, "sysc", &paths, "nobody");
        for expected in [
            "--interface=br7",
            "--listen-address=10.7.0.1",
            "--no-ping",
            "--dhcp-range=10.7.0.2,10.7.0.254,255.255.255.0,1h",
            "--dhcp-leasefile=/r/networks/br7/dnsmasq.leases",
            "--dhcp-hostsdir=/r/networks/br7/dnsmasq.hosts",
            "--pid-file=/run/s/networks/br7.pid",
            "--local=/sysc/",
            "--conf-file=/dev/null",
        ] {
            assert!(args.iter().any(|a| a == expected), "{expected} missing from {args:?}");
        }
        let command_line: Vec<String> = std::iter::once("/usr/sbin/dnsmasq".to_string()).chain(args).collect();
        assert!(is_ours(&command_line, &paths.pid_file));
        assert!(!is_ours(&command_line, Path::new("/run/s/networks/other.pid")));
    }

    #[test]
    fn leases_parse_and_skip_junk() {
        let lease = parse_lease("1700000000 10:66:6a:01:02:03 10.7.0.23 web1 ff:aa").unwrap();
        assert_eq!(lease.address, Ipv4Addr::new(10, 7, 0, 23));
        assert_eq!(lease.hostname, "web1");
        assert_eq!(
            parse_lease("1700000000 10:66:6a:01:02:03 10.7.0.23 * *")
                .unwrap()
                .hostname,
            ""
        );
        assert!(parse_lease("duid 00:01").is_none());
    }

    #[test]
    fn host_lines_give_a_mac_its_address_and_name() {
        assert_eq!(
            host_line("10:66:6a:00:00:01", Ipv4Addr::new(10, 7, 0, 9), "web1"),
            "10:66:6a:00:00:01,10.7.0.9,web1\n"
        );
    }
}
