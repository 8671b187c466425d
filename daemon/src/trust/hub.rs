//! The server's network-facing state in one place: its identity, the trust store, the
//! TLS listener, and the server keys that configure it (core.https_address).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use super::listener::{TlsListener, parse_address};
use super::{Result, ServerIdentity, TrustError, TrustStore};
use crate::db::Db;

pub const HTTPS_ADDRESS: &str = "core.https_address";
/// Server keys: (name, what it does).
pub const SERVER_KEYS: [(&str, &str); 1] = [(
    HTTPS_ADDRESS,
    "Address of the TLS listener for remote clients: :8443 (every address), 10.0.0.2:8443, or empty for none",
)];

pub struct TrustHub {
    pub store: TrustStore,
    pub identity: Arc<ServerIdentity>,
    config: sled::Tree,
    db: Db,
    listener: OnceLock<TlsListener>,
}

impl TrustHub {
    pub fn open(db: &Db, root: &Path) -> Result<Self> {
        Ok(Self {
            store: TrustStore::open(db)?,
            identity: Arc::new(ServerIdentity::load_or_create(root)?),
            config: db
                .open_tree("server_config")
                .map_err(|e| TrustError::host("open server_config", e))?,
            db: db.clone(),
            listener: OnceLock::new(),
        })
    }

    /// Once, at start-up: the listener serves routes that themselves hold this hub.
    pub fn attach(&self, listener: TlsListener) {
        let _ = self.listener.set(listener);
    }

    pub fn listening_on(&self) -> Option<SocketAddr> {
        self.listener.get().and_then(TlsListener::listening_on)
    }

    pub fn config(&self) -> Result<BTreeMap<String, String>> {
        self.config
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| TrustError::host("read server_config", e))?;
                Ok((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ))
            })
            .collect()
    }

    /// Starts what the stored keys ask for; `https_address` (the daemon's flag) replaces
    /// the stored address first, and must work. A stored address that cannot be bound
    /// (its port taken meanwhile) leaves the daemon serving its local socket, and says so.
    pub async fn start(&self, https_address: Option<String>) -> Result<()> {
        if let Some(address) = https_address {
            let mut set = BTreeMap::new();
            set.insert(HTTPS_ADDRESS.to_string(), address);
            self.update(set, Vec::new()).await?;
            return Ok(());
        }
        let stored = self.config()?.get(HTTPS_ADDRESS).map(|a| parse_address(a)).transpose();
        if let Err(e) = async { self.listener().apply(stored?).await }.await {
            tracing::error!("not listening on the network: {e}");
        }
        Ok(())
    }

    /// Sets and unsets server keys, all or nothing: a listener that cannot bind leaves
    /// the keys as they were.
    pub async fn update(&self, set: BTreeMap<String, String>, unset: Vec<String>) -> Result<BTreeMap<String, String>> {
        let mut config = self.config()?;
        for key in unset.iter().chain(set.keys()) {
            if !SERVER_KEYS.iter().any(|(name, _)| name == key) {
                return Err(TrustError::Invalid(format!("unknown server config key {key}")));
            }
        }
        for key in &unset {
            config.remove(key);
        }
        for (key, value) in set {
            if value.trim().is_empty() {
                config.remove(&key);
            } else {
                config.insert(key, value.trim().to_string());
            }
        }
        let address = config.get(HTTPS_ADDRESS).map(|a| parse_address(a)).transpose()?;
        self.listener().apply(address).await?;
        self.config
            .clear()
            .map_err(|e| TrustError::host("write server_config", e))?;
        for (key, value) in &config {
            self.config
                .insert(key.as_bytes(), value.as_bytes())
                .map_err(|e| TrustError::host("write server_config", e))?;
        }
        self.flush().await?;
        Ok(config)
    }

    /// Where a token tells clients to connect: the listener's address, or for one bound
    /// to every address, each of the host's addresses (loopback last).
    pub fn token_addresses(&self) -> Result<Vec<String>> {
        let Some(bound) = self.listening_on() else {
            return Err(TrustError::Refused(format!(
                "{HTTPS_ADDRESS} is not set: this server does not listen on the network"
            )));
        };
        if !bound.ip().is_unspecified() {
            return Ok(vec![bound.to_string()]);
        }
        let mut addresses: Vec<std::net::IpAddr> = nix::ifaddrs::getifaddrs()
            .map_err(|e| TrustError::host("list the host's addresses", e))?
            .filter_map(|ifaddr| {
                let address = ifaddr.address?;
                if let Some(v4) = address.as_sockaddr_in() {
                    return Some(std::net::IpAddr::V4(v4.ip()));
                }
                let v6 = address.as_sockaddr_in6()?.ip();
                // Link-local addresses need a scope a token cannot carry.
                (v6.segments()[0] & 0xffc0 != 0xfe80).then_some(std::net::IpAddr::V6(v6))
            })
            .collect();
        addresses.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
        addresses.dedup();
        Ok(addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, bound.port()).to_string())
            .collect())
    }

    pub async fn flush(&self) -> Result<()> {
        self.db
            .flush()
            .await
            .map_err(|e| TrustError::host("flush the database", e))
    }

    fn listener(&self) -> &TlsListener {
        self.listener.get().expect("the listener is attached at start-up")
    }
}
