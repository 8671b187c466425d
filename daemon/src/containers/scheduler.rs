//! The snapshot scheduler: takes the snapshots each container's schedules call for and
//! prunes expired ones. Each schedule's last run is stored, so a daemon that was down
//! when a run was due takes it (once) when it comes back.

use std::sync::Arc;
use std::time::Duration;

use super::snapshots::{Origin, ScheduleConfig, config_expiry, schedules};
use super::{Live, Manager};
use crate::db::{ContainerRecord, RecordStatus, SnapshotStatus};
use crate::error::Result;
use crate::schedule::Schedule;

/// Cron's resolution is a minute; a few seconds of lag is what this costs.
const TICK: Duration = Duration::from_secs(5);

impl Manager {
    pub fn run_scheduler(self: &Arc<Self>) {
        let manager = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = manager.prune_expired().await {
                    tracing::warn!("pruning expired snapshots: {e}");
                }
                if let Err(e) = manager.take_due_snapshots().await {
                    tracing::warn!("scheduled snapshots: {e}");
                }
                tokio::time::sleep(TICK).await;
            }
        });
    }

    async fn prune_expired(self: &Arc<Self>) -> Result<()> {
        let now = crate::time::now_ms();
        let expired = self
            .db
            .all_snapshots()?
            .into_iter()
            .filter(|s| s.status == SnapshotStatus::Ready && s.expires_at_ms.is_some_and(|at| at <= now));
        for snapshot in expired {
            match self.snapshot_delete(&snapshot.container, &snapshot.name).await {
                Ok(()) => {
                    tracing::info!(container = %snapshot.container, snapshot = %snapshot.name, "expired snapshot pruned")
                }
                Err(e) => tracing::warn!(container = %snapshot.container, snapshot = %snapshot.name, "pruning: {e}"),
            }
        }
        Ok(())
    }

    async fn take_due_snapshots(self: &Arc<Self>) -> Result<()> {
        for record in self.db.containers()? {
            if record.status != RecordStatus::Ready {
                continue;
            }
            for schedule in schedules(&record.config) {
                if let Err(e) = self.run_if_due(&record, &schedule).await {
                    tracing::warn!(container = %record.name, schedule = %schedule.name, "scheduled snapshot: {e}");
                }
            }
        }
        Ok(())
    }

    async fn run_if_due(self: &Arc<Self>, record: &ContainerRecord, config: &ScheduleConfig) -> Result<()> {
        let name = &record.name;
        let schedule = match Schedule::parse(&config.spec, name) {
            Ok(schedule) => schedule,
            Err(e) => {
                tracing::warn!(container = %name, schedule = %config.name, "{e}");
                return Ok(());
            }
        };
        let now = crate::time::now_ms();
        let Some(last) = self.db.schedule_run(name, &config.name)? else {
            // A schedule counts from when it is first seen, not from the epoch.
            self.db.put_schedule_run(name, &config.name, now)?;
            return self.db.flush().await;
        };
        if schedule.next_after(last).is_none_or(|next| next > now) {
            return Ok(());
        }
        let guard = self.locks.lock(name).await;
        let Ok(record) = self.record(name) else { return Ok(()) };
        let running = matches!(self.probe(name).await, Live::Running { .. });
        let taken = if running || config.when_stopped {
            let origin = Origin {
                schedule: config.name.clone(),
                pattern: config.pattern.clone(),
                expiry: config_expiry(&record.config, &config.expiry_key)?,
            };
            self.take_snapshot_locked(&record, "", origin).await.map(drop)
        } else {
            tracing::debug!(container = %name, schedule = %config.name, "stopped; scheduled snapshot skipped");
            Ok(())
        };
        drop(guard);
        // Recorded after the attempt, failed or not: a crash in between repeats the run
        // rather than losing it, and a failing run is not retried every tick.
        self.db.put_schedule_run(name, &config.name, crate::time::now_ms())?;
        self.db.flush().await?;
        taken
    }
}
