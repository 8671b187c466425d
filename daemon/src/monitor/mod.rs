//! The per-container monitor (`sysc-monitor`): parent and reaper of the container's
//! init, holder of its console, server of a small control socket. It outlives syscd,
//! so the daemon can be restarted (or killed) without touching running containers.

mod console_log;
mod event_loop;
pub mod init_pidfd;
pub mod protocol;

pub use console_log::ConsoleLog;
pub use event_loop::run;
