//! The per-container monitor (`sysc-monitor`): parent and reaper of the container's
//! init, holder of its console, server of a small control socket. It outlives syscd,
//! so the daemon can be restarted (or killed) without touching running containers.

mod console_log;
mod event_loop;
pub mod init_pidfd;
pub mod launcher;
pub mod protocol;

pub use console_log::ConsoleLog;
pub use event_loop::run;

/// A line for the monitor's log (its stderr). That file lives on the container's pool,
/// which the container may fill: a failed write is dropped, where eprintln! would panic
/// and take the monitor, and with it the container's supervision, down.
pub fn log_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "sysc-monitor: {args}");
}
