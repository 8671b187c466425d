//! The container runtime: namespaces, the root filesystem, /dev, the console and the
//! init. Called by the monitor process (`sysc-monitor`), never inside the daemon's
//! multi-threaded process: clone and setns need a single-threaded caller.

mod child;
mod devices;
mod error;
pub(crate) mod fdpass;
mod masks;
mod mountapi;
mod parent;
pub(crate) mod process;
pub mod signals;
pub mod spec;

pub use error::{Result, RuntimeError};
pub use parent::{Started, start};
pub use spec::{ContainerSpec, IdMap, NicPlug};
