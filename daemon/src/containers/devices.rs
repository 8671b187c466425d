//! Adding, changing and removing a container's devices (nic, proxy), Incus-style. Each
//! change is checked whole before anything happens; a proxy on a running container
//! starts (or stops) at once, and a proxy that cannot listen is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::network::{assign_macs, nic_devices};
use super::proxies;
use super::{ContainerView, Live, Manager};
use crate::db::{ContainerRecord, device_is};
use crate::error::{Error, Result};
use crate::network::nic::{self, Nic};

/// Device names end up in file names and config keys: 1 to 63 letters, digits, '-',
/// '_' and '.', not starting with '.'.
fn check_device_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid device name {name:?}: 1 to 63 letters, digits, '-', '_' and '.', not starting with '.'"
        )))
    }
}

impl Manager {
    pub async fn add_device(
        self: &Arc<Self>,
        name: &str,
        device: &str,
        config: BTreeMap<String, String>,
    ) -> Result<ContainerView> {
        check_device_name(device)?;
        let _guard = self.locks.lock(name).await;
        let mut record = self.record(name)?;
        if record.devices.contains_key(device) {
            return Err(Error::AlreadyExists(format!(
                "device {device} already exists on {name}"
            )));
        }
        record.devices.insert(device.to_string(), config.clone());
        self.check_device(&record, device)?;
        if device_is(&config, nic::TYPE) {
            let taken = self.macs_in_use()?;
            assign_macs(&record.devices, &mut record.config, &taken);
        }
        if device_is(&config, proxies::TYPE) && self.is_running(name).await {
            self.start_proxy(name, device, &config).await?;
        }
        self.save(&record).await?;
        tracing::info!(container = %name, device, "device added");
        self.lifecycle(
            "container-updated",
            name,
            &[("device", device), ("change", "device added")],
        );
        Ok(self.view_of(record).await)
    }

    pub async fn update_device(
        self: &Arc<Self>,
        name: &str,
        device: &str,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
    ) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let mut record = self.record(name)?;
        let old = device_of(&record, device)?.clone();
        let mut config = old.clone();
        for key in &unset {
            config.remove(key);
        }
        config.extend(set);
        if config.get("type") != old.get("type") {
            return Err(Error::InvalidArgument(format!(
                "device {device}: its type can't change; remove it and add a new one"
            )));
        }
        if config == old {
            return Ok(self.view_of(record).await);
        }
        record.devices.insert(device.to_string(), config.clone());
        self.check_device(&record, device)?;
        if device_is(&config, proxies::TYPE) && self.is_running(name).await {
            self.stop_proxy(name, device).await;
            if let Err(e) = self.start_proxy(name, device, &config).await {
                if let Err(again) = self.start_proxy(name, device, &old).await {
                    tracing::warn!(container = %name, device, "restarting the previous proxy: {again}");
                }
                return Err(e);
            }
        }
        self.save(&record).await?;
        tracing::info!(container = %name, device, "device changed");
        self.lifecycle(
            "container-updated",
            name,
            &[("device", device), ("change", "device changed")],
        );
        Ok(self.view_of(record).await)
    }

    pub async fn remove_device(self: &Arc<Self>, name: &str, device: &str) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let mut record = self.record(name)?;
        let config = device_of(&record, device)?.clone();
        if device_is(&config, proxies::TYPE) {
            self.stop_proxy(name, device).await;
        }
        if device_is(&config, nic::TYPE) {
            let key = nic::hwaddr_key(device);
            if let (Some(network), Some(mac)) = (config.get("network"), record.config.get(&key)) {
                self.forget_nic(name, device, network, mac).await;
            }
            record.config.remove(&key);
        }
        record.devices.remove(device);
        self.save(&record).await?;
        tracing::info!(container = %name, device, "device removed");
        self.lifecycle(
            "container-updated",
            name,
            &[("device", device), ("change", "device removed")],
        );
        Ok(self.view_of(record).await)
    }

    async fn is_running(&self, name: &str) -> bool {
        matches!(self.probe(name).await, Live::Running { .. })
    }

    /// Checks one device of `record` (already in place there) against its type's
    /// rules and against every other container.
    fn check_device(&self, record: &ContainerRecord, device: &str) -> Result<()> {
        let config = device_of(record, device)?;
        match config.get("type").map(String::as_str) {
            Some(nic::TYPE) => self.check_nic(record, device, config),
            Some(proxies::TYPE) => self.check_proxy(record, device, config),
            Some(other) => Err(Error::InvalidArgument(format!(
                "device {device}: unknown type {other:?} (nic or proxy)"
            ))),
            None => Err(Error::InvalidArgument(format!(
                "device {device}: type is required (nic or proxy)"
            ))),
        }
    }

    fn check_nic(&self, record: &ContainerRecord, device: &str, config: &BTreeMap<String, String>) -> Result<()> {
        let nic = Nic::parse(device, config)?;
        let settings = self.networks.settings(&nic.network)?;
        for (other, other_nic) in nic_devices(&record.devices).filter(|(d, _)| d.as_str() != device) {
            if other_nic.name == nic.name {
                return Err(Error::InvalidArgument(format!(
                    "nic device {device}: interface name {} is already used by device {other}",
                    nic.name
                )));
            }
        }
        let Some(address) = nic.address else {
            return Ok(());
        };
        settings.gateway.check_host(address)?;
        let mac = record.config.get(&nic::hwaddr_key(device)).map_or("", String::as_str);
        if let Some(holder) = self.networks.leased_to_another(&nic.network, address, mac) {
            return Err(Error::FailedPrecondition(format!(
                "nic device {device}: ipv4.address {address} is leased to {holder} now"
            )));
        }
        for container in self.db.containers()? {
            for (other, other_nic) in nic_devices(&container.devices) {
                let same = container.name == record.name && other == device;
                if !same && other_nic.network == nic.network && other_nic.address == Some(address) {
                    return Err(Error::FailedPrecondition(format!(
                        "nic device {device}: ipv4.address {address} is already given to device {other} of {}",
                        container.name
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_proxy(&self, record: &ContainerRecord, device: &str, config: &BTreeMap<String, String>) -> Result<()> {
        let (listen, _) = crate::proxy::validate_device(config)
            .map_err(|e| Error::InvalidArgument(format!("device {device}: {e}")))?;
        for container in self.db.containers()? {
            for (other, keys) in &container.devices {
                let same = container.name == record.name && other == device;
                let other_listen = keys
                    .get("listen")
                    .filter(|_| device_is(keys, proxies::TYPE))
                    .and_then(|l| l.parse::<crate::proxy::ProxyAddress>().ok());
                if !same && other_listen.as_ref() == Some(&listen) {
                    return Err(Error::FailedPrecondition(format!(
                        "proxy device {device}: {listen} is already the listen address of device {other} of {}",
                        container.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every MAC a container's nic has.
    pub(super) fn macs_in_use(&self) -> Result<Vec<String>> {
        Ok(self
            .db
            .containers()?
            .into_iter()
            .flat_map(|c| c.config.into_iter())
            .filter(|(key, _)| key.starts_with("volatile.") && key.ends_with(".hwaddr"))
            .map(|(_, mac)| mac)
            .collect())
    }
}

fn device_of<'a>(record: &'a ContainerRecord, device: &str) -> Result<&'a BTreeMap<String, String>> {
    record
        .devices
        .get(device)
        .ok_or_else(|| Error::NotFound(format!("device {device} not found on {}", record.name)))
}
