//! Managed networks: a bridge per network with NAT (an nftables table sysc owns) and
//! DHCP + DNS from a dnsmasq the daemon starts and supervises. Containers join through
//! veth pairs (see containers/network.rs). Bridges, tables and dnsmasq outlive the
//! daemon, so running containers keep their network while it restarts; the next start
//! adopts what is there and recreates what is missing.

pub mod addresses;
pub mod config;
pub mod dnsmasq;
pub mod firewall;
pub mod links;
pub mod nic;
mod reservations;
pub mod subnet;
mod supervisor;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::db::{Db, NetworkRecord, RecordStatus};
use crate::error::{Error, Result};
pub use config::Settings;
use links::Netlink;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with the state of things: no address left on the network.
    #[error("{0}")]
    Conflict(String),
    /// The host failed us (netlink, nft, dnsmasq).
    #[error("{0}")]
    Host(String),
}

impl From<NetworkError> for Error {
    fn from(e: NetworkError) -> Self {
        match e {
            NetworkError::Invalid(m) => Error::InvalidArgument(m),
            NetworkError::Conflict(m) => Error::FailedPrecondition(m),
            NetworkError::Host(m) => Error::Internal(m),
        }
    }
}

/// The network the daemon makes on its first start (from its flags).
#[derive(Debug, Clone)]
pub struct DefaultNetwork {
    pub name: String,
    /// "auto" or the gateway with its prefix.
    pub address: String,
}

/// Set once the first start made (or tried to make) the default network, so a user
/// who deletes it does not get it back at the next start.
const DEFAULT_MADE: &str = "default-network-made";

pub struct Networks {
    root: PathBuf,
    run_dir: PathBuf,
    db: Db,
    default_name: std::sync::Mutex<Option<String>>,
    /// Serializes creating and deleting networks.
    changes: tokio::sync::Mutex<()>,
    supervisors: std::sync::Mutex<HashMap<String, supervisor::Supervisor>>,
    /// Each network's host files, read at its first reservation. The lock serializes
    /// picking addresses, so two nics never get the same one.
    reservations: tokio::sync::Mutex<HashMap<String, reservations::HostFiles>>,
}

/// A network as clients see it.
#[derive(Debug, Clone)]
pub struct NetworkView {
    pub record: NetworkRecord,
    pub settings: Option<Settings>,
    pub up: bool,
    pub dnsmasq_pid: Option<u32>,
    pub leases: Vec<dnsmasq::Lease>,
    pub is_default: bool,
}

async fn blocking<T: Send + 'static>(
    task: impl FnOnce() -> std::result::Result<T, NetworkError> + Send + 'static,
) -> std::result::Result<T, NetworkError> {
    tokio::task::spawn_blocking(task)
        .await
        .map_err(|e| NetworkError::Host(format!("network task: {e}")))?
}

impl Networks {
    pub fn new(root: &Path, run_dir: &Path, db: Db) -> Arc<Self> {
        Arc::new(Self {
            root: root.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            db,
            default_name: std::sync::Mutex::new(None),
            changes: tokio::sync::Mutex::new(()),
            supervisors: std::sync::Mutex::new(HashMap::new()),
            reservations: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    pub fn paths(&self, name: &str) -> dnsmasq::Paths {
        dnsmasq::Paths::new(&self.root, &self.run_dir, name)
    }

    /// Start-up: finishes or undoes changes a crash interrupted, brings every network
    /// up (adopting the bridge, table and dnsmasq a previous run left), and makes the
    /// default network on the first start. A network that fails to come up is logged;
    /// containers on it then fail to start with the reason.
    pub async fn start(self: &Arc<Self>, default: Option<DefaultNetwork>) -> Result<()> {
        *self.default_name.lock().expect("default name lock") = default.as_ref().map(|d| d.name.clone());
        for record in self.db.networks()? {
            if record.status != RecordStatus::Ready {
                tracing::info!(network = %record.name, "undoing an interrupted network change");
                self.tear_down(&record.name).await;
                self.db.remove_network(&record.name)?;
                continue;
            }
            if let Err(e) = self.bring_up(&record).await {
                tracing::error!(network = %record.name, "network is not available: {e}");
            }
        }
        self.db.flush().await?;
        if let Some(default) = default
            && !self.db.flag(DEFAULT_MADE)?
        {
            if self.db.network(&default.name)?.is_none() {
                let config = BTreeMap::from([(config::IPV4_ADDRESS.to_string(), default.address.clone())]);
                match self.create(&default.name, config).await {
                    Ok(record) => tracing::info!(
                        network = %record.name,
                        "created the default network ({})",
                        record.config.get(config::IPV4_ADDRESS).map(String::as_str).unwrap_or_default()
                    ),
                    Err(e) => {
                        tracing::error!(network = %default.name, "could not create the default network: {e}");
                        return Ok(());
                    }
                }
            }
            self.db.set_flag(DEFAULT_MADE)?;
            self.db.flush().await?;
        }
        Ok(())
    }

    pub fn default_name(&self) -> Option<String> {
        self.default_name.lock().expect("default name lock").clone()
    }

    /// A network that exists and is complete.
    pub fn get(&self, name: &str) -> Result<NetworkRecord> {
        match self.db.network(name)? {
            Some(record) if record.status == RecordStatus::Ready => Ok(record),
            Some(_) => Err(Error::FailedPrecondition(format!(
                "network {name} is being created or deleted"
            ))),
            None => Err(Error::NotFound(format!("network {name} not found"))),
        }
    }

    pub fn settings(&self, name: &str) -> Result<Settings> {
        Ok(Settings::from_config(&self.get(name)?.config)?)
    }

    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        Ok(self
            .db
            .networks()?
            .into_iter()
            .filter(|r| r.status == RecordStatus::Ready)
            .collect())
    }

    pub async fn view(&self, record: NetworkRecord) -> NetworkView {
        let link = match Netlink::connect() {
            Ok(netlink) => netlink.link(&record.name).await.ok().flatten(),
            Err(_) => None,
        };
        let paths = self.paths(&record.name);
        NetworkView {
            settings: Settings::from_config(&record.config).ok(),
            up: link.is_some_and(|l| l.up),
            dnsmasq_pid: dnsmasq::running(&paths).map(|(pid, _)| pid),
            leases: dnsmasq::leases(&paths),
            is_default: self.default_name().as_deref() == Some(record.name.as_str()),
            record,
        }
    }

    pub async fn create(self: &Arc<Self>, name: &str, mut config: BTreeMap<String, String>) -> Result<NetworkRecord> {
        config::check_name(name)?;
        config::check_requested(&config)?;
        let _guard = self.changes.lock().await;
        if self.db.network(name)?.is_some() {
            return Err(Error::AlreadyExists(format!("network {name} already exists")));
        }
        let netlink = Netlink::connect()?;
        if netlink.link(name).await?.is_some() {
            return Err(Error::FailedPrecondition(format!(
                "bridge name {name} is in use by another link on the host"
            )));
        }
        let mut taken = netlink.routes().await?;
        taken.extend(self.subnets()?);
        let requested = config.get(config::IPV4_ADDRESS).cloned().unwrap_or_default();
        let gateway = if config::is_auto(&requested) {
            subnet::pick_free(&taken, rand::random)?
        } else {
            let gateway = subnet::Gateway::parse(&requested)?;
            if let Some(route) = subnet::clash(gateway.subnet(), &taken) {
                return Err(Error::InvalidArgument(format!(
                    "ipv4.address {gateway}: subnet {} overlaps {route}, already routed on the host",
                    gateway.subnet()
                )));
            }
            gateway
        };
        config.insert(config::IPV4_ADDRESS.into(), gateway.to_string());
        let mut record = NetworkRecord {
            name: name.to_string(),
            status: RecordStatus::Creating,
            config,
        };
        self.db.put_network(&record)?;
        self.db.flush().await?;
        if let Err(e) = self.bring_up(&record).await {
            self.tear_down(name).await;
            self.db.remove_network(name)?;
            self.db.flush().await?;
            return Err(e);
        }
        record.status = RecordStatus::Ready;
        self.db.put_network(&record)?;
        self.db.flush().await?;
        tracing::info!(network = %name, address = %gateway, "network created");
        Ok(record)
    }

    /// Deletes a network no container uses (`users`: the containers that do).
    pub async fn delete(&self, name: &str, users: &[String]) -> Result<()> {
        let _guard = self.changes.lock().await;
        let mut record = self.get(name)?;
        // New containers get a nic on it; without it they would silently get none (and
        // the next start of syscd would make it again).
        if self.default_name().as_deref() == Some(name) {
            return Err(Error::FailedPrecondition(format!(
                "network {name} is the daemon's default network and cannot be deleted \
                 (start syscd with --network none to have none)"
            )));
        }
        if !users.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "network {name} is in use by {}; remove their nic devices or delete them first",
                users.join(", ")
            )));
        }
        record.status = RecordStatus::Deleting;
        self.db.put_network(&record)?;
        self.db.flush().await?;
        self.tear_down(name).await;
        self.reservations.lock().await.remove(name);
        self.db.remove_network(name)?;
        self.db.flush().await?;
        tracing::info!(network = %name, "network deleted");
        Ok(())
    }

    /// The subnets of every network on record, up or not.
    fn subnets(&self) -> Result<Vec<Ipv4Net>> {
        Ok(self
            .db
            .networks()?
            .iter()
            .filter_map(|r| Settings::from_config(&r.config).ok())
            .map(|s| s.gateway.subnet())
            .collect())
    }

    async fn bring_up(self: &Arc<Self>, record: &NetworkRecord) -> Result<()> {
        let name = record.name.clone();
        let settings = Settings::from_config(&record.config)?;
        let netlink = Netlink::connect()?;
        let index = match netlink.link(&name).await? {
            Some(link) if link.kind.as_deref() == Some("bridge") => link.index,
            Some(_) => {
                return Err(Error::FailedPrecondition(format!(
                    "link {name} exists on the host and is not a bridge"
                )));
            }
            None => netlink.create_bridge(&name).await?,
        };
        netlink.ensure_address(index, &name, &settings.gateway).await?;
        netlink.set_up(index, &name).await?;
        let paths = self.paths(&name);
        let args = dnsmasq::args(&name, &settings.gateway, &settings.domain, &paths, dnsmasq::user());
        let (network, subnet, nat) = (name.clone(), settings.gateway.subnet(), settings.nat);
        let supervised = {
            let (paths, args) = (paths.clone(), args.clone());
            blocking(move || {
                enable_forwarding()?;
                firewall::apply(&network, subnet, nat)?;
                paths.prepare()?;
                adopt_or_start(&args, &paths)
            })
            .await?
        };
        self.supervise(&name, args, paths, supervised).await;
        Ok(())
    }

    async fn supervise(&self, name: &str, args: Vec<String>, paths: dnsmasq::Paths, pidfd: std::os::fd::OwnedFd) {
        let previous = self.supervisors.lock().expect("supervisors lock").insert(
            name.to_string(),
            supervisor::Supervisor::spawn(name, args, paths, pidfd),
        );
        if let Some(previous) = previous {
            previous.stop().await;
        }
    }

    /// Removes whatever a network has on the host: dnsmasq, table, bridge, files.
    async fn tear_down(&self, name: &str) {
        let supervisor = self.supervisors.lock().expect("supervisors lock").remove(name);
        if let Some(supervisor) = supervisor {
            supervisor.stop().await;
        }
        let paths = self.paths(name);
        let network = name.to_string();
        let removed = blocking(move || {
            dnsmasq::stop(&paths);
            let _ = std::fs::remove_dir_all(&paths.dir);
            firewall::remove(&network)
        })
        .await;
        if let Err(e) = removed {
            tracing::warn!(network = %name, "removing the nftables table: {e}");
        }
        match Netlink::connect() {
            Ok(netlink) => {
                if let Err(e) = netlink.delete(name).await {
                    tracing::warn!(network = %name, "deleting the bridge: {e}");
                }
            }
            Err(e) => tracing::warn!(network = %name, "deleting the bridge: {e}"),
        }
    }

    /// The index of `network`'s bridge, for a veth the container's monitor makes on it.
    pub async fn bridge_index(&self, network: &str) -> Result<u32> {
        let netlink = Netlink::connect()?;
        let bridge = netlink
            .link(network)
            .await?
            .filter(|link| link.kind.as_deref() == Some("bridge"))
            .ok_or_else(|| {
                Error::FailedPrecondition(format!(
                    "network {network} is not available: its bridge is missing (see the daemon's log)"
                ))
            })?;
        Ok(bridge.index)
    }

    /// Deletes a veth pair by its host end, if a failed start left one.
    pub async fn unplug(&self, host: &str) {
        if let Ok(netlink) = Netlink::connect()
            && let Err(e) = netlink.delete(host).await
        {
            tracing::warn!(link = %host, "deleting a veth pair: {e}");
        }
    }

    /// Makes dnsmasq give `mac` its name and an address: `address`, or one reserved here
    /// (see reservations.rs). `file` names the entry; `statics` are the other nics' static
    /// addresses on the network.
    pub async fn register_host(
        &self,
        network: &str,
        file: &str,
        mac: &str,
        hostname: &str,
        address: Option<std::net::Ipv4Addr>,
        statics: Vec<std::net::Ipv4Addr>,
    ) -> Result<std::net::Ipv4Addr> {
        let gateway = self.settings(network)?.gateway;
        let (file, mac, hostname) = (file.to_string(), mac.to_string(), hostname.to_string());
        let reserved = self
            .with_host_files(network, move |paths, hosts| {
                let hosts = hosts.get_or_insert_with(|| reservations::HostFiles::load(paths));
                let request = reservations::Request {
                    file: &file,
                    mac: &mac,
                    hostname: &hostname,
                    address,
                    statics: &statics,
                };
                reservations::reserve(paths, hosts, &gateway, &request)
            })
            .await??;
        Ok(reserved)
    }

    /// Runs `task` (blocking) on `network`'s host files as kept here (None until a
    /// reservation has read them), under the lock that serializes reservations.
    async fn with_host_files<T: Send + 'static>(
        &self,
        network: &str,
        task: impl FnOnce(&dnsmasq::Paths, &mut Option<reservations::HostFiles>) -> T + Send + 'static,
    ) -> std::result::Result<T, NetworkError> {
        let paths = self.paths(network);
        let mut books = self.reservations.lock().await;
        let mut hosts = books.remove(network);
        let (hosts, done) = blocking(move || {
            let done = task(&paths, &mut hosts);
            Ok((hosts, done))
        })
        .await?;
        if let Some(hosts) = hosts {
            books.insert(network.to_string(), hosts);
        }
        Ok(done)
    }

    /// Who holds `address` on `network` by a lease now, if not `mac`.
    pub fn leased_to_another(&self, network: &str, address: std::net::Ipv4Addr, mac: &str) -> Option<String> {
        reservations::leased_to_another(&self.paths(network), address, mac)
    }

    /// Forgets a host entry and ends the MAC's leases.
    pub async fn forget_host(&self, network: &str, file: &str, mac: &str) {
        let (name, file, mac) = (network.to_string(), file.to_string(), mac.to_string());
        let _ = self
            .with_host_files(network, move |paths, hosts| {
                // A network whose host files are not read yet stays unread.
                let removed = match hosts {
                    Some(hosts) => hosts.remove(paths, &file),
                    None => dnsmasq::remove_host(paths, &file),
                };
                if removed {
                    dnsmasq::reload(paths);
                }
                dnsmasq::release(&name, paths, &mac);
            })
            .await;
    }

    /// Ends the leases of a MAC whose container stopped.
    pub async fn release(&self, network: &str, mac: &str) {
        let paths = self.paths(network);
        let (network, mac) = (network.to_string(), mac.to_string());
        let _ = blocking(move || {
            dnsmasq::release(&network, &paths, &mac);
            Ok(())
        })
        .await;
    }
}

/// Keeps a dnsmasq that runs with exactly these arguments; else starts a fresh one.
fn adopt_or_start(args: &[String], paths: &dnsmasq::Paths) -> std::result::Result<std::os::fd::OwnedFd, NetworkError> {
    if let Some(fd) = dnsmasq::running_as(paths, args) {
        return Ok(fd);
    }
    // One of ours with other arguments (the network's settings changed), if any.
    dnsmasq::stop(paths);
    dnsmasq::start(args, paths).map(|(_, fd)| fd)
}

/// Containers reach the outside through the host's routing.
fn enable_forwarding() -> std::result::Result<(), NetworkError> {
    const FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
    let current = std::fs::read_to_string(FORWARD).unwrap_or_default();
    if current.trim() != "1" {
        std::fs::write(FORWARD, "1").map_err(|e| NetworkError::Host(format!("enable IPv4 forwarding: {e}")))?;
        tracing::info!("enabled IPv4 forwarding (net.ipv4.ip_forward=1)");
    }
    Ok(())
}

/// For tests and tools that clean up after a daemon that is gone: removes a network's
/// dnsmasq, table and bridge. Blocking.
pub fn tear_down_blocking(root: &Path, run_dir: &Path, name: &str) {
    let paths = dnsmasq::Paths::new(root, run_dir, name);
    dnsmasq::stop(&paths);
    let _ = firewall::remove(name);
    // A thread of its own: the caller may itself be inside a tokio runtime.
    let name = name.to_string();
    let deleted = std::thread::spawn(move || {
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_io().build() {
            runtime.block_on(async {
                if let Ok(netlink) = Netlink::connect() {
                    let _ = netlink.delete(&name).await;
                }
            });
        }
    });
    let _ = deleted.join();
}
