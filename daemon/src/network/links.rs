//! Links, addresses and routes through rtnetlink: the bridge, the veth pairs, the host's
//! routes a new subnet must not clash with.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::NetworkError;
use super::subnet::Gateway;

/// A link as the host has it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    /// "bridge", "veth", ...; None for a link without a kind (a physical device).
    pub kind: Option<String>,
    pub up: bool,
}

pub struct Netlink {
    handle: Handle,
}

fn failed(what: impl std::fmt::Display) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    move |e| NetworkError::Host(format!("{what}: {}", describe(&e)))
}

fn describe(error: &rtnetlink::Error) -> String {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().to_string(),
        other => other.to_string(),
    }
}

fn errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(message) => message.to_io().raw_os_error(),
        _ => None,
    }
}

impl Netlink {
    /// A netlink connection in the calling thread's network namespace, driven by a task
    /// on the current tokio runtime.
    pub fn connect() -> Result<Self, NetworkError> {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| NetworkError::Host(format!("open a netlink socket: {e}")))?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    pub async fn link(&self, name: &str) -> Result<Option<Link>, NetworkError> {
        let found = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await;
        match found {
            Ok(Some(message)) => Ok(Some(link_of(&message))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(failed(format!("look up link {name}"))(e)),
        }
    }

    pub async fn create_bridge(&self, name: &str) -> Result<u32, NetworkError> {
        self.handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
            .map_err(failed(format!("create bridge {name}")))?;
        self.link(name)
            .await?
            .map(|link| link.index)
            .ok_or_else(|| NetworkError::Host(format!("bridge {name} vanished right after its creation")))
    }

    pub async fn set_up(&self, index: u32, name: &str) -> Result<(), NetworkError> {
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(failed(format!("bring up {name}")))
    }

    /// Gives the link the gateway's address unless it has it already.
    pub async fn ensure_address(&self, index: u32, name: &str, gateway: &Gateway) -> Result<(), NetworkError> {
        let added = self
            .handle
            .address()
            .add(index, IpAddr::V4(gateway.address()), gateway.prefix_len())
            .execute()
            .await;
        match added {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            other => other.map_err(failed(format!("add {gateway} to {name}"))),
        }
    }

    /// Deletes a link (both ends, for a veth); false when there was none.
    pub async fn delete(&self, name: &str) -> Result<bool, NetworkError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(failed(format!("delete link {name}"))(e)),
        }
    }

    /// A veth pair: `host` up and in `bridge`, its peer made straight in the network
    /// namespace of `plug.pid` as `inside` (down, with the container's MAC). Made there,
    /// not moved there: moving a link between namespaces waits out an rcu_barrier(),
    /// tens of milliseconds on a small host.
    pub async fn create_veth_into(&self, plug: &VethPlug<'_>) -> Result<(), NetworkError> {
        let peer = LinkUnspec::new_with_name(plug.inside)
            .address(plug.mac.to_vec())
            .setns_by_pid(plug.pid)
            .build();
        let message = LinkVeth::new(plug.host, plug.inside)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(plug.bridge)
            .up()
            .build();
        self.handle.link().add(message).execute().await.map_err(failed(format!(
            "create veth pair {} (host) / {} (in the container)",
            plug.host, plug.inside
        )))
    }

    /// The destinations of the host's IPv4 routes, in every table.
    pub async fn routes(&self) -> Result<Vec<Ipv4Net>, NetworkError> {
        let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let messages: Vec<_> = self
            .handle
            .route()
            .get(request)
            .execute()
            .try_collect()
            .await
            .map_err(failed("list the host's routes"))?;
        Ok(messages
            .iter()
            .filter_map(|route| {
                let destination = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(address)) => Some(*address),
                    _ => None,
                })?;
                Ipv4Net::new(destination, route.header.destination_prefix_length).ok()
            })
            .collect())
    }
}

fn link_of(message: &LinkMessage) -> Link {
    let kind = message.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
            LinkInfo::Kind(kind) => Some(kind_name(kind)),
            _ => None,
        }),
        _ => None,
    });
    Link {
        index: message.header.index,
        kind,
        up: message.header.flags.contains(LinkFlags::Up),
    }
}

fn kind_name(kind: &InfoKind) -> String {
    match kind {
        InfoKind::Bridge => "bridge".into(),
        InfoKind::Veth => "veth".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// One veth pair for a starting container.
pub struct VethPlug<'a> {
    /// The host end's name, in the bridge.
    pub host: &'a str,
    /// The bridge's index.
    pub bridge: u32,
    /// Whose network namespace gets the peer.
    pub pid: u32,
    /// The peer's name there.
    pub inside: &'a str,
    pub mac: [u8; 6],
}

/// For the monitor, which has no runtime of its own: makes each veth pair, on a
/// single-threaded runtime that lives for this call.
pub fn create_veths_blocking(plugs: &[VethPlug<'_>]) -> Result<(), NetworkError> {
    if plugs.is_empty() {
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| NetworkError::Host(format!("start a netlink runtime: {e}")))?;
    runtime.block_on(async {
        let netlink = Netlink::connect()?;
        for plug in plugs {
            netlink.create_veth_into(plug).await?;
        }
        Ok(())
    })
}
