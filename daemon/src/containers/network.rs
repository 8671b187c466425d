//! A container's side of networking: its nics become veth pairs on their networks'
//! bridges at each start, dnsmasq knows each nic's MAC by the container's name, and a
//! run that ends gives its leases back.

use std::collections::BTreeMap;

use super::Manager;
use crate::db::{ContainerRecord, Devices, device_is};
use crate::error::{Error, Result};
use crate::network::nic::{self, Nic};
use crate::runtime::NicPlug;

/// A nic of a container with everything a start needs.
pub(super) struct NicPlan {
    pub device: String,
    pub nic: Nic,
    pub mac: String,
}

/// The dnsmasq host file of one nic of one container.
fn host_file(container: &str, device: &str) -> String {
    format!("{container}.{device}")
}

/// The nic devices whose keys parse, sorted by device name.
pub(super) fn nic_devices(devices: &Devices) -> impl Iterator<Item = (&String, Nic)> {
    devices
        .iter()
        .filter(|(_, keys)| device_is(keys, nic::TYPE))
        .filter_map(|(device, keys)| Some((device, Nic::parse(device, keys).ok()?)))
}

/// The nic devices of a container, sorted by device name, with their MACs.
pub(super) fn nics(record: &ContainerRecord) -> Result<Vec<NicPlan>> {
    record
        .devices
        .iter()
        .filter(|(_, keys)| device_is(keys, nic::TYPE))
        .map(|(device, config)| {
            let nic = Nic::parse(device, config)?;
            let mac = record
                .config
                .get(&nic::hwaddr_key(device))
                .cloned()
                .ok_or_else(|| Error::Internal(format!("nic device {device} of {} has no MAC", record.name)))?;
            Ok(NicPlan {
                device: device.clone(),
                nic,
                mac,
            })
        })
        .collect()
}

impl Manager {
    /// The veth pair of every nic, for the monitor to make, registering the container's
    /// name with each network's dnsmasq.
    pub(super) async fn plug_nics(&self, record: &ContainerRecord) -> Result<Vec<NicPlug>> {
        let mut plugs = Vec::new();
        for plan in nics(record)? {
            plugs.push(self.plug_nic(record, &plan).await?);
        }
        Ok(plugs)
    }

    async fn plug_nic(&self, record: &ContainerRecord, plan: &NicPlan) -> Result<NicPlug> {
        let network = &plan.nic.network;
        self.networks.get(network).map_err(|e| match e {
            Error::NotFound(_) => Error::FailedPrecondition(format!(
                "nic device {} of {}: network {network} not found",
                plan.device, record.name
            )),
            other => other,
        })?;
        let statics = self
            .static_addresses(network)?
            .into_iter()
            .filter(|a| Some(*a) != plan.nic.address)
            .collect();
        self.networks
            .register_host(
                network,
                &host_file(&record.name, &plan.device),
                &plan.mac,
                &record.name,
                plan.nic.address,
                statics,
            )
            .await?;
        Ok(NicPlug {
            host: nic::veth_name(),
            bridge: self.networks.bridge_index(network).await?,
            name: plan.nic.name.clone(),
            mac: nic::parse_mac(&plan.mac)?,
        })
    }

    /// Removes whatever veth pairs a failed start left.
    pub(super) async fn unplug_nics(&self, plugged: &[NicPlug]) {
        for pair in plugged {
            self.networks.unplug(&pair.host).await;
        }
    }

    /// Ends the leases of a container whose run ended (its veths went with its network
    /// namespace).
    pub(super) async fn release_leases(&self, record: &ContainerRecord) {
        for plan in nics(record).unwrap_or_default() {
            self.networks.release(&plan.nic.network, &plan.mac).await;
        }
    }

    /// Forgets a nic on its network: host entry and leases.
    pub(super) async fn forget_nic(&self, container: &str, device: &str, network: &str, mac: &str) {
        self.networks
            .forget_host(network, &host_file(container, device), mac)
            .await;
    }

    /// An imported container's devices: a nic on a network this daemon does not have
    /// moves to the default network (or goes, without one), so the container boots.
    pub(super) fn devices_for_import(&self, devices: &Devices) -> Devices {
        let default = self.networks.default_name().filter(|d| self.networks.get(d).is_ok());
        let mut devices = devices.clone();
        devices.retain(|device, keys| {
            let Some(network) = keys.get("network").filter(|_| device_is(keys, nic::TYPE)) else {
                return true;
            };
            if self.networks.get(network).is_ok() {
                return true;
            }
            match &default {
                Some(default) => {
                    tracing::info!(device, "imported nic: network {network} is not here; using {default}");
                    keys.insert("network".into(), default.clone());
                    keys.remove("ipv4.address");
                    true
                }
                None => false,
            }
        });
        devices
    }

    /// The containers with a nic on `network`.
    pub fn network_users(&self, network: &str) -> Result<Vec<String>> {
        Ok(self
            .db
            .containers()?
            .into_iter()
            .filter(|c| nic_devices(&c.devices).any(|(_, nic)| nic.network == network))
            .map(|c| c.name)
            .collect())
    }

    /// The static addresses nics have on `network`.
    pub fn static_addresses(&self, network: &str) -> Result<Vec<std::net::Ipv4Addr>> {
        Ok(self
            .db
            .containers()?
            .iter()
            .flat_map(|c| nic_devices(&c.devices).map(|(_, nic)| nic).collect::<Vec<_>>())
            .filter(|nic| nic.network == network)
            .filter_map(|nic| nic.address)
            .collect())
    }

    /// Deletes a network no container has a nic on.
    pub async fn delete_network(&self, network: &str) -> Result<()> {
        let _claim = self.claim.lock().await;
        let users = self.network_users(network)?;
        self.networks.delete(network, &users).await
    }

    /// Forgets every nic of a container that is going away or changing its name.
    pub(super) async fn forget_nics(&self, record: &ContainerRecord) {
        for plan in nics(record).unwrap_or_default() {
            self.forget_nic(&record.name, &plan.device, &plan.nic.network, &plan.mac)
                .await;
        }
    }
}

/// The nic every new container gets unless told otherwise: eth0 on `network`.
pub(super) fn default_nic(network: &str) -> Devices {
    BTreeMap::from([(
        "eth0".to_string(),
        BTreeMap::from([
            ("type".to_string(), nic::TYPE.to_string()),
            ("network".to_string(), network.to_string()),
        ]),
    )])
}

/// Gives every nic without a MAC a fresh one, unique among `taken`.
pub(super) fn assign_macs(devices: &Devices, config: &mut BTreeMap<String, String>, taken: &[String]) {
    for (device, keys) in devices {
        if !device_is(keys, nic::TYPE) {
            continue;
        }
        let key = nic::hwaddr_key(device);
        if config.contains_key(&key) {
            continue;
        }
        let mac = std::iter::repeat_with(nic::random_mac)
            .find(|mac| !taken.contains(mac) && !config.values().any(|v| v == mac))
            .expect("an endless iterator finds one");
        config.insert(key, mac);
    }
}
