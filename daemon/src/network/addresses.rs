//! The IPv4 addresses a running container has, read inside its network namespace, so
//! `sysc list` shows what the container really uses (DHCP, static, or set by hand).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

/// "10.20.30.5 (eth0)" for each address on a link other than lo; empty when the
/// namespace can't be entered (the container just stopped).
pub async fn of_container(init_pid: i32) -> Vec<String> {
    let (send, receive) = tokio::sync::oneshot::channel();
    // A thread of its own: setns(2) moves only the calling thread, which then ends,
    // so no pooled thread is ever left in a container's namespace.
    let spawned = std::thread::Builder::new()
        .name("netns-addresses".into())
        .spawn(move || {
            let _ = send.send(read(init_pid).unwrap_or_default());
        });
    if spawned.is_err() {
        return Vec::new();
    }
    receive.await.unwrap_or_default()
}

fn read(init_pid: i32) -> Option<Vec<String>> {
    let netns: OwnedFd = std::fs::File::open(format!("/proc/{init_pid}/ns/net")).ok()?.into();
    nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
    let mut found: Vec<(String, Ipv4Addr)> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|ifa| ifa.interface_name != "lo")
        .filter_map(|ifa| {
            let address = ifa.address?;
            let v4 = address.as_sockaddr_in()?;
            Some((ifa.interface_name, v4.ip()))
        })
        .collect();
    found.sort();
    Some(
        found
            .into_iter()
            .map(|(interface, address)| format!("{address} ({interface})"))
            .collect(),
    )
}
