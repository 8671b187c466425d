//! Networking with real bridges, veths, nftables and dnsmasq: DHCP addresses, names,
//! host ↔ container traffic, port forwarding, more networks, and what is left behind.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sysc_tests::{Daemon, wait_until};

/// The container's first IPv4 address as `sysc list` shows it, once it has one.
fn wait_for_address(d: &Daemon, name: &str) -> Ipv4Addr {
    let found = wait_until(Duration::from_secs(15), || {
        let c = d.container(name);
        c["ipv4"].as_array()?.first()?.as_str()?.parse::<Ipv4Addr>().ok()
    });
    found.unwrap_or_else(|| panic!("{name} got no IPv4 address:\n{}", d.log()))
}

fn network(d: &Daemon, name: &str) -> Value {
    let text = d.ok(&["network", "list", "--format", "json"]);
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("network {name} not listed: {text}"))
}

fn gateway(d: &Daemon, name: &str) -> (Ipv4Addr, u8) {
    let cidr = network(d, name)["ipv4_address"].as_str().unwrap().to_string();
    let (address, prefix) = cidr.split_once('/').unwrap();
    (address.parse().unwrap(), prefix.parse().unwrap())
}

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - prefix);
    u32::from(a) & mask == u32::from(b) & mask
}

/// An HTTP GET of / over a plain TCP connection; the response body.
fn http_get(address: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(5))
        .map_err(|e| format!("connect {address}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    Ok(response.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

/// Busybox httpd on port 80 serving `body`, started by the container's boot from now on.
fn serve_http(d: &Daemon, name: &str, body: &str) {
    d.ok(&["exec", name, "--", "mkdir", "-p", "/www"]);
    d.sysc_stdin(
        &["file", "push", "-", &format!("{name}/www/index.html")],
        Some(body.as_bytes()),
    );
    let rc_local = "#!/bin/sh\nhttpd -p 80 -h /www\n";
    let pushed = d.sysc_stdin(
        &[
            "file",
            "push",
            "--mode",
            "0755",
            "-",
            &format!("{name}/etc/init.d/rc.local"),
        ],
        Some(rc_local.as_bytes()),
    );
    assert!(pushed.success(), "{}", pushed.stderr);
    d.ok(&["exec", name, "--", "httpd", "-p", "80", "-h", "/www"]);
}

/// `sysc config device add CONTAINER DEVICE proxy LISTEN CONNECT` as arguments.
fn proxy_device<'a>(container: &'a str, device: &'a str, listen: &'a str, connect: &'a str) -> [&'a str; 8] {
    ["config", "device", "add", container, device, "proxy", listen, connect]
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bridge_ports(bridge: &str) -> usize {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn leases(d: &Daemon, network: &str) -> String {
    std::fs::read_to_string(d.root.join("networks").join(network).join("dnsmasq.leases")).unwrap_or_default()
}

#[test]
fn containers_get_addresses_names_and_reach_each_other_and_the_host() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "b1"]);
    let launched = std::time::Instant::now();
    let a1 = wait_for_address(&d, "b1");
    assert!(
        launched.elapsed() < Duration::from_secs(5),
        "DHCP took {:?}",
        launched.elapsed()
    );
    d.ok(&["launch", "busybox", "b2"]);
    let a2 = wait_for_address(&d, "b2");
    let (gw, prefix) = gateway(&d, &d.bridge);
    assert!(
        same_subnet(a1, gw, prefix) && same_subnet(a2, gw, prefix),
        "{a1} {a2} {gw}/{prefix}"
    );
    assert_ne!(a1, a2);
    let info = d.ok(&["info", "b1"]);
    assert!(info.contains(&a1.to_string()), "info shows the address: {info}");

    // Container → gateway, container → container by name.
    d.ok(&["exec", "b1", "--", "ping", "-c", "1", "-W", "3", &gw.to_string()]);
    let by_name = d.sysc(&["exec", "b1", "--", "ping", "-c", "1", "-W", "3", "b2.sysc"]);
    assert!(
        by_name.success(),
        "b2.sysc from b1: {}{}",
        by_name.stdout,
        by_name.stderr
    );
    assert!(by_name.stdout.contains(&a2.to_string()), "{}", by_name.stdout);
    let short = d.ok(&["exec", "b2", "--", "nslookup", "b1"]);
    assert!(
        short.contains(&a1.to_string()),
        "the search domain resolves b1: {short}"
    );

    // Host → container over TCP.
    serve_http(&d, "b2", "hello from b2\n");
    let body = wait_until(Duration::from_secs(5), || http_get(&format!("{a2}:80")).ok());
    assert_eq!(body.as_deref(), Some("hello from b2\n"));

    // Stopping takes the veth and the lease away; the other container keeps its own.
    let mac = d.container("b2")["config"]["volatile.eth0.hwaddr"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(leases(&d, &d.bridge).contains(&mac), "{}", leases(&d, &d.bridge));
    assert_eq!(bridge_ports(&d.bridge), 2);
    d.ok(&["stop", "b2"]);
    let released = wait_until(Duration::from_secs(5), || {
        (!leases(&d, &d.bridge).contains(&mac)).then_some(())
    });
    assert!(
        released.is_some(),
        "lease of {mac} still there: {}",
        leases(&d, &d.bridge)
    );
    wait_for_one_port(&d);
    assert!(d.container("b2")["ipv4"].as_array().unwrap().is_empty());

    // A restart gets an address again and keeps its MAC.
    d.ok(&["start", "b2"]);
    wait_for_address(&d, "b2");
    assert_eq!(d.container("b2")["config"]["volatile.eth0.hwaddr"], mac.as_str());
    d.ok(&["delete", "--force", "b2"]);
    wait_for_one_port(&d);
}

/// Only b1 left on the bridge. The host end of a stopped container's veth goes with its
/// network namespace, which the kernel tears down in the background after the init is gone.
fn wait_for_one_port(d: &Daemon) {
    let unplugged = wait_until(Duration::from_secs(10), || (bridge_ports(&d.bridge) == 1).then_some(()));
    assert!(unplugged.is_some(), "{} ports on the bridge", bridge_ports(&d.bridge));
}

#[test]
fn proxy_devices_forward_host_ports_and_come_back_after_a_restart() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "web1"]);
    serve_http(&d, "web1", "served through the proxy\n");
    let port = free_port();
    let listen = format!("listen=tcp:127.0.0.1:{port}");
    d.ok(&proxy_device("web1", "http", &listen, "connect=tcp:127.0.0.1:80"));
    let url = format!("127.0.0.1:{port}");
    let body = wait_until(Duration::from_secs(5), || http_get(&url).ok());
    assert_eq!(body.as_deref(), Some("served through the proxy\n"));

    d.ok(&["restart", "web1"]);
    let body = wait_until(Duration::from_secs(10), || http_get(&url).ok());
    assert_eq!(body.as_deref(), Some("served through the proxy\n"), "after a restart");

    // Stopping the container ends the forwarding; removing the device frees the port.
    d.ok(&["stop", "web1"]);
    assert!(wait_until(Duration::from_secs(5), || http_get(&url).err()).is_some());
    d.ok(&["start", "web1"]);
    assert!(wait_until(Duration::from_secs(10), || http_get(&url).ok()).is_some());
    d.ok(&["config", "device", "remove", "web1", "http"]);
    assert!(http_get(&url).is_err(), "the port is closed once the device is gone");
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
}

#[test]
fn bad_proxy_devices_are_refused_and_change_nothing() {
    let d = Daemon::start();
    d.ok(&["launch", "busybox", "p1"]);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("listen=tcp:127.0.0.1:{}", taken.local_addr().unwrap().port());
    let error = d.fails(&proxy_device("p1", "web", &busy, "connect=tcp:127.0.0.1:80"));
    assert!(error.to_lowercase().contains("address already in use"), "{error}");
    for (listen, connect, expected) in [
        ("listen=tcp:127.0.0.1", "connect=tcp:127.0.0.1:80", "listen"),
        ("listen=udp:127.0.0.1:9999", "connect=tcp:127.0.0.1:80", "tcp"),
        ("listen=tcp:127.0.0.1:9999", "connect=tcp:localhost:80", "connect"),
        ("listen=tcp:127.0.0.1:0", "connect=tcp:127.0.0.1:80", "port"),
    ] {
        let error = d.fails(&proxy_device("p1", "web", listen, connect));
        assert!(error.contains(expected), "{listen} {connect}: {error}");
    }
    let devices = d.container("p1");
    assert!(devices.get("devices").is_none() || devices["devices"].get("web").is_none());
    let listed = d.ok(&["config", "device", "list", "p1"]);
    assert!(!listed.contains("web"), "{listed}");
    let pid_files: Vec<_> = std::fs::read_dir(d.run_dir.join("p1"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("proxy-"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
        .collect();
    assert!(pid_files.is_empty(), "no proxy left running");

    // One listen address, one proxy, across containers.
    let port = free_port();
    let listen = format!("listen=tcp:127.0.0.1:{port}");
    d.ok(&proxy_device("p1", "web", &listen, "connect=tcp:127.0.0.1:80"));
    d.ok(&["create", "busybox", "p2"]);
    let error = d.fails(&proxy_device("p2", "web", &listen, "connect=tcp:127.0.0.1:80"));
    assert!(error.contains("already the listen address"), "{error}");
}

#[test]
fn more_networks_static_addresses_and_no_network() {
    let d = Daemon::start();
    let second = format!("{}b", d.bridge);
    let out = d.ok(&["network", "create", &second]);
    assert!(out.contains(&second), "{out}");
    let (gw2, prefix2) = gateway(&d, &second);
    let (gw1, prefix1) = gateway(&d, &d.bridge);
    assert!(
        !same_subnet(gw1, gw2, prefix1.min(prefix2)),
        "a free subnet: {gw1} {gw2}"
    );

    // A second nic on the second network, and a static address on the first.
    d.ok(&["create", "busybox", "two"]);
    d.ok(&[
        "config",
        "device",
        "add",
        "two",
        "eth1",
        "nic",
        &format!("network={second}"),
    ]);
    let wanted = Ipv4Addr::from(u32::from(gw1) + 77);
    d.ok(&[
        "config",
        "device",
        "set",
        "two",
        "eth0",
        &format!("ipv4.address={wanted}"),
    ]);
    d.ok(&["start", "two"]);
    let two = wait_until(Duration::from_secs(15), || {
        let c = d.container("two");
        (c["ipv4"].as_array()?.len() == 2).then_some(c)
    })
    .unwrap_or_else(|| panic!("two addresses: {}", d.container("two")));
    // Bare addresses for scripts, and each with its interface and prefix, by interface.
    let eth1: Ipv4Addr = two["ipv4"][1].as_str().unwrap().parse().unwrap();
    assert!(same_subnet(eth1, gw2, prefix2), "{two}");
    assert_eq!(two["ipv4"][0], wanted.to_string(), "{two}");
    assert_eq!(
        two["ipv4_addresses"],
        serde_json::json!([
            {"interface": "eth0", "address": wanted.to_string(), "prefix_length": prefix1},
            {"interface": "eth1", "address": eth1.to_string(), "prefix_length": prefix2},
        ]),
        "{two}"
    );
    let listed = d.ok(&["list", "--format", "csv", "--columns", "n4"]);
    assert!(
        listed.contains(&format!("two,{wanted} (eth0) {eth1} (eth1)\n")),
        "{listed}"
    );

    // A copy is another machine on the network: its own MAC. A restored snapshot
    // taken before a nic was added keeps the nic's MAC.
    d.ok(&["snapshot", "create", "two", "before"]);
    d.ok(&["copy", "two", "twin"]);
    let mac = |name: &str, nic: &str| {
        d.container(name)["config"][format!("volatile.{nic}.hwaddr")]
            .as_str()
            .map(str::to_string)
    };
    assert!(mac("twin", "eth0").is_some() && mac("twin", "eth0") != mac("two", "eth0"));
    d.ok(&["stop", "two"]);
    d.ok(&[
        "config",
        "device",
        "add",
        "two",
        "eth2",
        "nic",
        &format!("network={second}"),
    ]);
    let eth2 = mac("two", "eth2").expect("a MAC for the new nic");
    d.ok(&["snapshot", "restore", "two", "before"]);
    assert_eq!(mac("two", "eth2").as_deref(), Some(eth2.as_str()));
    d.ok(&["config", "device", "remove", "two", "eth2"]);
    assert_eq!(mac("two", "eth2"), None, "the MAC goes with its nic");
    d.ok(&["delete", "twin"]);

    // The same static address for another container is refused.
    d.ok(&["create", "busybox", "three"]);
    let error = d.fails(&[
        "config",
        "device",
        "set",
        "three",
        "eth0",
        &format!("ipv4.address={wanted}"),
    ]);
    assert!(error.contains("already given"), "{error}");
    let error = d.fails(&[
        "config",
        "device",
        "set",
        "three",
        "eth0",
        &format!("ipv4.address={gw1}"),
    ]);
    assert!(error.contains("gateway"), "{error}");
    // So is an address a running container holds by DHCP: dnsmasq would give it to one.
    d.ok(&["launch", "busybox", "four"]);
    let leased = wait_for_address(&d, "four");
    let error = d.fails(&[
        "config",
        "device",
        "set",
        "three",
        "eth0",
        &format!("ipv4.address={leased}"),
    ]);
    assert!(
        error.contains(&format!("ipv4.address {leased} is leased to four now")),
        "{error}"
    );
    d.ok(&["delete", "--force", "four"]);

    // A network in use can't go; once unused it goes with its table, bridge and dnsmasq.
    let dnsmasq = network(&d, &second)["dnsmasq_pid"].as_i64().unwrap();
    assert!(dnsmasq > 0);
    let error = d.fails(&["network", "delete", &second]);
    assert!(error.contains("in use by two"), "{error}");
    d.ok(&["delete", "--force", "two"]);
    d.ok(&["network", "delete", &second]);
    let gone = wait_until(Duration::from_secs(5), || {
        (!std::path::Path::new(&format!("/proc/{dnsmasq}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "dnsmasq is gone");
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{second}")).exists(),
        "bridge is gone"
    );
    let tables = Command::new("nft").args(["list", "tables"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&format!("sysc-{second}")));

    // No network at all.
    d.ok(&["launch", "busybox", "alone", "--network", "none"]);
    let only_lo = d.ok(&["exec", "alone", "--", "ls", "/sys/class/net"]);
    assert_eq!(only_lo.trim(), "lo");
    assert!(d.container("alone")["ipv4"].as_array().unwrap().is_empty());
}

#[test]
fn bad_networks_are_refused_and_leave_nothing_behind() {
    let d = Daemon::start();
    let name = format!("{}c", d.bridge);
    // A subnet the host routes already (its own uplink), and one another network has.
    let host_route = Command::new("ip")
        .args(["-4", "-o", "route", "show", "scope", "link"])
        .output()
        .unwrap();
    let host_route = String::from_utf8_lossy(&host_route.stdout);
    if let Some(subnet) = host_route.split_whitespace().next().filter(|s| s.contains('/')) {
        let (base, prefix) = subnet.split_once('/').unwrap();
        let inside = Ipv4Addr::from(u32::from(base.parse::<Ipv4Addr>().unwrap()) + 1);
        let error = d.fails(&["network", "create", &name, &format!("ipv4.address={inside}/{prefix}")]);
        assert!(error.contains("overlaps"), "{error}");
    }
    let (gw, prefix) = gateway(&d, &d.bridge);
    let clash = Ipv4Addr::from(u32::from(gw) + 1);
    let error = d.fails(&["network", "create", &name, &format!("ipv4.address={clash}/{prefix}")]);
    assert!(error.contains("overlaps"), "{error}");
    for (args, expected) in [
        (vec!["ipv4.address=10.1.2.0/24"], "ipv4.address"),
        (vec!["ipv4.address=224.5.5.1/24"], "is multicast address space"),
        (vec!["ipv4.nat=maybe"], "ipv4.nat"),
        (vec!["bogus.key=1"], "unknown network config key"),
    ] {
        let mut command = vec!["network", "create", name.as_str()];
        command.extend(args.iter().copied());
        let error = d.fails(&command);
        assert!(error.contains(expected), "{args:?}: {error}");
    }
    let error = d.fails(&["network", "create", "Bad Name"]);
    assert!(error.contains("invalid network name"), "{error}");

    // A link of that name that is not ours.
    let taken = format!("{}d", d.bridge);
    let peer = format!("{taken}p");
    let made = Command::new("ip")
        .args(["link", "add", &taken, "type", "veth", "peer", "name", &peer])
        .status()
        .unwrap();
    assert!(made.success());
    let error = d.fails(&["network", "create", &taken]);
    let _ = Command::new("ip").args(["link", "del", &taken]).status();
    assert!(error.contains("in use by another link"), "{error}");

    let listed = d.ok(&["network", "list", "--format", "json"]);
    let networks: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(networks.len(), 1, "only the default network: {listed}");
    assert!(!std::path::Path::new(&format!("/sys/class/net/{name}")).exists());
    let tables = Command::new("nft").args(["list", "tables"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&format!("sysc-{name}")));
    assert!(!d.root.join("networks").join(&name).exists());

    let error = d.fails(&["launch", "busybox", "x1", "--network", "nowhere"]);
    assert!(error.contains("network nowhere not found"), "{error}");
    assert!(d.sysc(&["info", "x1"]).code != 0, "no container was created");
    let error = d.fails(&["network", "delete", "nowhere"]);
    assert!(error.contains("not found"), "{error}");
    let default = d.bridge.clone();
    let error = d.fails(&["network", "delete", &default]);
    assert!(
        error.contains("is the daemon's default network and cannot be deleted"),
        "{error}"
    );
    assert!(std::path::Path::new(&format!("/sys/class/net/{default}")).exists());
}

#[test]
fn networking_survives_a_daemon_restart_and_dnsmasq_is_supervised() {
    let mut d = Daemon::start();
    d.ok(&["launch", "busybox", "keep"]);
    let address = wait_for_address(&d, "keep");
    let dnsmasq = network(&d, &d.bridge)["dnsmasq_pid"].as_i64().unwrap();
    d.stop();
    // With the daemon down the container keeps its lease and dnsmasq keeps serving.
    let lease_file = leases(&d, &d.bridge);
    assert!(lease_file.contains(&address.to_string()), "{lease_file}");
    let ping = Command::new("busybox")
        .args(["ping", "-c", "1", "-W", "3", &address.to_string()])
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "the host reaches the container without the daemon"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{dnsmasq}")).exists(),
        "dnsmasq keeps serving"
    );
    d.start_again();
    assert_eq!(
        network(&d, &d.bridge)["dnsmasq_pid"].as_i64().unwrap(),
        dnsmasq,
        "adopted, not restarted"
    );
    assert_eq!(wait_for_address(&d, "keep"), address);
    assert_eq!(
        bridge_ports(&d.bridge),
        1,
        "the bridge was reused with the container's veth in it"
    );

    // dnsmasq dying is noticed and repaired.
    // SAFETY: kill(2) of the dnsmasq this test's daemon started, by its PID.
    unsafe { libc::kill(dnsmasq as i32, libc::SIGKILL) };
    let again = wait_until(Duration::from_secs(10), || {
        let pid = network(&d, &d.bridge)["dnsmasq_pid"].as_i64()?;
        (pid > 0 && pid != dnsmasq).then_some(pid)
    });
    assert!(again.is_some(), "dnsmasq was not restarted:\n{}", d.log());
    d.ok(&["restart", "keep"]);
    wait_for_address(&d, "keep");
}
