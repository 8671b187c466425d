//! Ctrl+C and SIGTERM as an error the command can clean up after, for work that would
//! otherwise leave something half done behind (a partial file, a half-copied container).

use anyhow::bail;
use tokio::signal::unix::{SignalKind, signal};

/// Runs `work` unless Ctrl+C or SIGTERM comes first. Then `work` is dropped, and with it
/// what it held (a partial file is removed, streams end as a failure the other side
/// undoes), and the command fails instead of dying halfway through.
pub async fn unless_interrupted<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        done = work => done,
        _ = interrupt.recv() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}
