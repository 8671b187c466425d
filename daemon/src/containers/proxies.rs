//! Proxy devices of running containers: one sysc-proxy per device, started after the
//! init, detached from the daemon (it keeps forwarding across daemon restarts) and
//! ending by itself with the container's init.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Manager;
use crate::db::{ContainerRecord, device_is};
use crate::error::{Error, Result};
use crate::pidfd;
use crate::proxy;

pub const TYPE: &str = "proxy";

fn proxy_devices(record: &ContainerRecord) -> impl Iterator<Item = (&String, &BTreeMap<String, String>)> {
    record.devices.iter().filter(|(_, config)| device_is(config, TYPE))
}

impl Manager {
    fn proxy_pid_file(&self, container: &str, device: &str) -> PathBuf {
        self.settings.monitor_dir(container).join(format!("proxy-{device}.pid"))
    }

    /// Starts every proxy device of a container whose init runs. All or nothing.
    pub(super) async fn start_proxies(&self, record: &ContainerRecord) -> Result<()> {
        let mut started = Vec::new();
        for (device, config) in proxy_devices(record) {
            if let Err(e) = self.start_proxy(&record.name, device, config).await {
                for device in started {
                    self.stop_proxy(&record.name, device).await;
                }
                return Err(e);
            }
            started.push(device);
        }
        Ok(())
    }

    pub(super) async fn start_proxy(
        &self,
        container: &str,
        device: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<()> {
        let (listen, connect) = proxy::validate_device(config).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let log = self.settings.monitor_dir(container).join(format!("proxy-{device}.log"));
        let pid = proxy::spawn(
            &self.settings.proxy_exe,
            container,
            device,
            &self.settings.monitor_socket(container),
            &listen,
            &connect,
            &log,
        )
        .await
        .map_err(|e| Error::FailedPrecondition(format!("proxy device {device} of {container}: {e}")))?;
        let pid_file = self.proxy_pid_file(container, device);
        crate::fsutil::write_atomic(&pid_file, format!("{pid}\n").as_bytes())
            .map_err(|e| Error::internal(format!("write {}", pid_file.display()), e))?;
        tracing::info!(container, device, pid, %listen, %connect, "proxy started");
        Ok(())
    }

    /// Ends a proxy device's process, if it runs.
    pub(super) async fn stop_proxy(&self, container: &str, device: &str) {
        let pid_file = self.proxy_pid_file(container, device);
        let Some(pid) = pidfd::read_pid_file(&pid_file) else {
            return;
        };
        let (name, dev) = (container.to_string(), device.to_string());
        if let Err(e) = tokio::task::spawn_blocking(move || proxy::stop(pid, &name, &dev)).await {
            tracing::warn!(container, device, "proxy task: {e}");
        }
        let _ = std::fs::remove_file(pid_file);
    }
}
