//! Changing a container's configuration: validated as a whole, applied live where the
//! key allows, all or nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::limits::{Host, resolve};
use super::{ContainerView, Live, Manager};
use crate::cgroup::Limits;
use crate::error::{Error, Result};
use crate::keys::{self, VOLATILE_PREFIX};

impl Manager {
    pub async fn update_config(
        self: &Arc<Self>,
        name: &str,
        set: BTreeMap<String, String>,
        unset: Vec<String>,
        replace: bool,
        if_unchanged: Option<BTreeMap<String, String>>,
    ) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let mut record = self.record(name)?;
        let old = record.config.clone();
        if let Some(read) = if_unchanged
            && user_keys(&read) != user_keys(&old)
        {
            return Err(Error::Aborted(format!(
                "the configuration of container {name} changed since it was read"
            )));
        }
        let mut config = old.clone();
        if replace {
            config.retain(|key, _| key.starts_with(VOLATILE_PREFIX));
        }
        for key in &unset {
            keys::check_name(key)?;
            config.remove(key);
        }
        for (key, value) in &set {
            let value = keys::validate(key, value)?;
            config.insert(key.clone(), value);
        }
        for key in keys::KEYS.iter().filter(|k| k.create_only) {
            if config.get(key.name) != old.get(key.name) {
                return Err(Error::InvalidArgument(format!(
                    "config key {} can only be set when the container is created",
                    key.name
                )));
            }
        }
        let host = self.host()?;
        let limits = resolve(name, &config, &host)?;
        super::security::policy(&config)?;
        if config == old {
            return Ok(self.view_of(record).await);
        }
        if matches!(self.probe(name).await, Live::Running { .. }) {
            let previous = resolve(name, &old, &host).unwrap_or_default();
            self.apply_limits(name, &limits, &previous).await?;
        }
        record.config = config;
        self.save(&record).await?;
        tracing::info!(container = %name, "configuration changed");
        self.lifecycle("container-updated", name, &[]);
        Ok(self.view_of(record).await)
    }

    /// What the host offers containers right now.
    pub fn host(&self) -> Result<Host> {
        Host::read(&*self.settings.cgroup.driver())
    }

    /// Sets a running container's limits; if that fails halfway, puts the previous ones
    /// back. A memory limit below what the container uses is refused up front rather
    /// than left to the kernel (v1 answers EBUSY after reclaiming what it can, v2 would
    /// OOM-kill inside the container).
    async fn apply_limits(&self, name: &str, limits: &Limits, previous: &Limits) -> Result<()> {
        let driver = self.settings.cgroup.clone();
        let (name, limits, previous) = (name.to_string(), limits.clone(), previous.clone());
        tokio::task::spawn_blocking(move || {
            let driver = driver.driver();
            if let Some(memory) = limits.memory
                && Some(memory) != previous.memory
                && let Ok(usage) = driver.usage(&name)
                && usage.memory_in_use() > memory
            {
                return Err(Error::InvalidArgument(format!(
                    "config key limits.memory: {} is below what {name} uses now ({}); free memory in the container first",
                    human(memory),
                    human(usage.memory_in_use())
                )));
            }
            driver.apply(&name, &limits).map_err(|e| {
                let _ = driver.apply(&name, &previous);
                Error::InvalidArgument(format!("apply the limits of {name}: {e}"))
            })
        })
        .await
        .map_err(|e| Error::internal("limits task", e))?
    }
}

/// The keys a user sets; volatile.* ones are the daemon's and change under it at will.
fn user_keys(config: &BTreeMap<String, String>) -> BTreeMap<&String, &String> {
    config
        .iter()
        .filter(|(key, _)| !key.starts_with(VOLATILE_PREFIX))
        .collect()
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1}{}", UNITS[unit])
}
