//! start, stop, restart.

use std::sync::Arc;
use std::time::Duration;

use super::monitor_client::MonitorClient;
use super::{ContainerView, Live, Manager};
use crate::db::ContainerRecord;
use crate::error::{Error, Result};
use crate::locks::Guard;
use crate::monitor::protocol::{ExitRecord, Request, Response};
use crate::runtime::{ContainerSpec, signals};

pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long processes may take to die after SIGKILL before we call it a failure.
const KILL_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeout a client asked for; 0 means the default.
pub fn stop_timeout(seconds: u32) -> Duration {
    if seconds == 0 {
        DEFAULT_STOP_TIMEOUT
    } else {
        Duration::from_secs(u64::from(seconds))
    }
}

const INIT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Manager {
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let record = self.record(name)?;
        let live = self.start_locked(&record).await?;
        Ok(self.started_view(record, live))
    }

    /// Starts a container; the caller holds its lock. The container as its monitor
    /// reported it.
    pub(super) async fn start_locked(self: &Arc<Self>, record: &ContainerRecord) -> Result<Live> {
        let name = &record.name;
        match self.probe(name).await {
            Live::Running { .. } => {
                return Err(Error::FailedPrecondition(format!(
                    "container {name} is already running"
                )));
            }
            Live::Lost => {
                self.clean_up_lost(record).await?;
            }
            Live::Stopped => {}
        }
        self.collect_exit(name).await?;
        let run_dir = self.settings.monitor_dir(name);
        std::fs::create_dir_all(&run_dir).map_err(|e| Error::internal(format!("create {}", run_dir.display()), e))?;
        let volume = self.volume_of(record)?;
        let limits = super::limits::resolve(name, &record.config, &self.host()?)?;
        let nics = self.plug_nics(record).await?;
        let spec = ContainerSpec {
            name: name.clone(),
            hostname: name.clone(),
            rootfs: crate::storage::volume_rootfs(&volume),
            init: record.image.init.clone(),
            env: vec![
                "container=sysc".into(),
                format!("PATH={INIT_PATH}"),
                "TERM=linux".into(),
            ],
            idmap: record.idmap(),
            cgroup: self.settings.cgroup.clone(),
            limits,
            run_dir,
            console_log: volume.join("console.log"),
            nics,
            security: super::security::policy(&record.config)?,
        };
        let live = match self.launcher.start_monitor(&spec, &volume.join("monitor.log")).await {
            Ok(live) => live,
            Err(e) => {
                self.unplug_nics(&spec.nics).await;
                return Err(Error::Internal(format!("start {name}: {e}")));
            }
        };
        if let Live::Running { pid, .. } = live {
            tracing::info!(container = %name, pid, "started");
        }
        self.watch(name);
        if let Err(e) = self.start_proxies(record).await {
            tracing::warn!(container = %name, "stopping again: {e}");
            self.stop_locked(record, true, Duration::ZERO).await?;
            return Err(e);
        }
        self.lifecycle("container-started", name, &[]);
        Ok(live)
    }

    pub async fn stop(self: &Arc<Self>, name: &str, force: bool, timeout: Duration) -> Result<ContainerView> {
        let (_guard, killed) = self.lock_forcing(name, force).await?;
        let record = self.record(name)?;
        self.stop_after_forcing(&record, killed, force, timeout).await?;
        Ok(self.view_of(record).await)
    }

    /// stop_locked, where the kill of lock_forcing (`killed`) may already have ended the
    /// container: then it is collected (if whoever held the lock has not) rather than
    /// reported as not running.
    pub(super) async fn stop_after_forcing(
        &self,
        record: &ContainerRecord,
        killed: bool,
        force: bool,
        timeout: Duration,
    ) -> Result<()> {
        match self.stop_locked(record, force, timeout).await {
            Ok(_) => Ok(()),
            Err(Error::FailedPrecondition(_)) if killed => self.collect_exit(&record.name).await.map(drop),
            Err(e) => Err(e),
        }
    }

    /// The container's lock for a stop or delete. With `force`, if another operation holds
    /// it (a clean stop waiting out its timeout, say), SIGKILL goes to the container first,
    /// so `--force` does not wait behind it; that operation sees the init exit. Returns
    /// whether that kill reached a running container.
    pub(super) async fn lock_forcing(&self, name: &str, force: bool) -> Result<(Guard, bool)> {
        if let Some(guard) = self.locks.try_lock(name) {
            return Ok((guard, false));
        }
        let mut killed = false;
        if force {
            self.record(name)?;
            let client = MonitorClient::new(self.settings.monitor_socket(name));
            killed = matches!(client.request(&Request::Kill).await, Ok(Response::Ok));
        }
        Ok((self.locks.lock(name).await, killed))
    }

    pub async fn restart(self: &Arc<Self>, name: &str, force: bool, timeout: Duration) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let record = self.record(name)?;
        self.stop_locked(&record, force, timeout).await?;
        let live = self.start_locked(&record).await?;
        Ok(self.started_view(record, live))
    }

    /// Stops a running container: its init's halt signal, then SIGKILL to everything
    /// once `timeout` has passed (at once with `force`). The caller holds its lock.
    pub(super) async fn stop_locked(
        &self,
        record: &ContainerRecord,
        force: bool,
        timeout: Duration,
    ) -> Result<ExitRecord> {
        let name = &record.name;
        match self.probe(name).await {
            Live::Lost => return self.clean_up_lost(record).await,
            // A paused init can't act on its halt signal.
            Live::Running { frozen: true, .. } => self.freezer(name, false).await?,
            _ => {}
        }
        let client = MonitorClient::new(self.settings.monitor_socket(name));
        let Ok(mut waiter) = client.waiter().await else {
            return Err(Error::FailedPrecondition(format!("container {name} is not running")));
        };
        if !force {
            let signal = signals::parse(&record.image.halt_signal).unwrap_or(libc::SIGPWR);
            match client.request(&Request::Signal { signal }).await {
                Ok(Response::Ok) => {
                    if let Ok(Ok(_)) = tokio::time::timeout(timeout, waiter.exited()).await {
                        return self.finish_stop(name).await;
                    }
                    tracing::info!(container = %name, "no clean shutdown within {timeout:?}; killing");
                }
                other => tracing::warn!(container = %name, "halt signal not delivered ({other:?}); killing"),
            }
        }
        let _ = client.request(&Request::Kill).await;
        match tokio::time::timeout(KILL_TIMEOUT, waiter.exited()).await {
            Ok(_) => self.finish_stop(name).await,
            Err(_) => Err(Error::Internal(format!("container {name} did not stop after SIGKILL"))),
        }
    }

    async fn finish_stop(&self, name: &str) -> Result<ExitRecord> {
        let exit = self.collect_exit(name).await?;
        tracing::info!(container = %name, "stopped");
        let exit = exit.ok_or_else(|| Error::Internal(format!("container {name} stopped without an exit record")))?;
        self.lifecycle(
            "container-stopped",
            name,
            &[("reason", "requested"), ("exit", &exit.describe())],
        );
        Ok(exit)
    }

    /// A monitor that vanished leaves its container unsupervised: kill whatever is
    /// left in its cgroups and record the run as ended.
    pub(super) async fn clean_up_lost(&self, record: &ContainerRecord) -> Result<ExitRecord> {
        let name = record.name.clone();
        tracing::warn!(container = %name, "monitor is gone; killing what is left of the container");
        let cgroup = self.settings.cgroup.clone();
        let cgroup_name = name.clone();
        tokio::task::spawn_blocking(move || cgroup.driver().remove(&cgroup_name))
            .await
            .map_err(|e| Error::internal("cgroup task", e))?
            .map_err(|e| Error::internal(format!("clean up {name}"), e))?;
        let _ = std::fs::remove_file(self.settings.monitor_socket(&name));
        let exit = ExitRecord {
            code: None,
            signal: Some(libc::SIGKILL),
            at_ms: crate::time::now_ms(),
        };
        let mut record = record.clone();
        record.last_exit = Some(exit.clone());
        self.save(&record).await?;
        self.lifecycle(
            "container-stopped",
            &name,
            &[("reason", "lost"), ("exit", &exit.describe())],
        );
        Ok(exit)
    }
}
