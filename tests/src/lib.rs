//! The integration-test harness: a real syscd per test, with its own root, run
//! directory, socket, cgroup parent and id range, driven through the real `sysc`
//! binary; and a Drop guard that leaves the machine as it found it, also when the
//! test failed.

mod client;
mod daemon;
mod fleet;
mod grpc;
mod host;
mod pty;
mod scratch;

pub use client::{Client, plaintext_call, token_of};
pub use daemon::{Daemon, DaemonOptions, Output, binary};
pub use fleet::{Fleet, FleetHost};
pub use grpc::channel;
pub use host::{in_container, in_own_network_namespace, is_mounted, proc_status_field, wait_until};
pub use pty::Terminal;
pub use scratch::{LoopBtrfs, Tmpfs};
