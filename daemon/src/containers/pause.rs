//! pause and resume: the container's cgroup freezer.

use std::sync::Arc;

use super::{ContainerView, Live, Manager};
use crate::error::{Error, Result};

impl Manager {
    pub async fn pause(self: &Arc<Self>, name: &str) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let record = self.record(name)?;
        match self.probe(name).await {
            Live::Running { frozen: false, .. } => {}
            Live::Running { frozen: true, .. } => {
                return Err(Error::FailedPrecondition(format!("container {name} is already paused")));
            }
            _ => return Err(Error::FailedPrecondition(format!("container {name} is not running"))),
        }
        self.freezer(name, true).await?;
        tracing::info!(container = %name, "paused");
        self.lifecycle("container-paused", name, &[]);
        Ok(self.view_of(record).await)
    }

    pub async fn resume(self: &Arc<Self>, name: &str) -> Result<ContainerView> {
        let _guard = self.locks.lock(name).await;
        let record = self.record(name)?;
        if !matches!(self.probe(name).await, Live::Running { frozen: true, .. }) {
            return Err(Error::FailedPrecondition(format!("container {name} is not paused")));
        }
        self.freezer(name, false).await?;
        tracing::info!(container = %name, "resumed");
        self.lifecycle("container-resumed", name, &[]);
        Ok(self.view_of(record).await)
    }

    /// Freezes or thaws every process of the container.
    pub(super) async fn freezer(&self, name: &str, freeze: bool) -> Result<()> {
        let cgroup = self.settings.cgroup.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let driver = cgroup.driver();
            if freeze {
                driver.freeze(&name)
            } else {
                driver.thaw(&name)
            }
            .map_err(|e| Error::internal(format!("{} {name}", if freeze { "pause" } else { "resume" }), e))
        })
        .await
        .map_err(|e| Error::internal("freezer task", e))?
    }
}
