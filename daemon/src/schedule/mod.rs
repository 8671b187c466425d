//! Scheduled snapshots: when they are taken (`snapshots.schedule`), how long they are kept
//! (`snapshots.expiry`) and what they are called (`snapshots.pattern`), in Incus's syntax so
//! that configurations carry over. Pure logic: no I/O, no clock reads.

mod alias;
mod cron;
mod expiry;
mod fields;
mod pattern;
#[cfg(test)]
mod testzone;

pub use cron::Schedule;
pub use expiry::Expiry;
pub use pattern::{next_name, validate_pattern, validate_snapshot_name};

/// What was wrong with a schedule, expiry, pattern or name a user gave. Each message quotes
/// the input, since it usually ends up in front of the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{spec:?} is not a cron schedule: {reason}")]
    Cron { spec: String, reason: String },
    #[error("{text:?} is not an expiry: {reason}")]
    Expiry { text: String, reason: String },
    #[error("snapshot pattern {pattern:?} {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("invalid snapshot name {name:?}: {reason}")]
    Name { name: String, reason: String },
}
