//! The IPv4 addresses a running container has, read inside its network namespace, so
//! `sysc list` shows what the container really uses (DHCP, static, or set by hand).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

/// An IPv4 address on one of a container's interfaces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InterfaceAddress {
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix_length: u32,
}

/// Each address on a link other than lo, sorted by interface; empty when the namespace
/// can't be entered (the container just stopped).
pub async fn of_container(init_pid: i32) -> Vec<InterfaceAddress> {
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

fn read(init_pid: i32) -> Option<Vec<InterfaceAddress>> {
    let netns: OwnedFd = std::fs::File::open(format!("/proc/{init_pid}/ns/net")).ok()?.into();
    nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
    let mut found: Vec<InterfaceAddress> = nix::ifaddrs::getifaddrs()
        .ok()?
        .filter(|ifa| ifa.interface_name != "lo")
        .filter_map(|ifa| {
            let address = ifa.address?.as_sockaddr_in()?.ip();
            let netmask = ifa.netmask.and_then(|mask| mask.as_sockaddr_in().map(|m| m.ip()));
            Some(InterfaceAddress {
                interface: ifa.interface_name,
                address,
                prefix_length: netmask.map_or(32, |mask| u32::from(mask).count_ones()),
            })
        })
        .collect();
    found.sort();
    Some(found)
}
