//! Proxy devices, Incus's port forwarding: connections accepted on an address of the host
//! are forwarded to an address inside a container, by one `sysc-proxy` helper per device
//! (see `helper`). The daemon validates a device's configuration here, starts its helper
//! with `spawn` once the container runs, and ends it with `stop`.

mod address;
mod device;
mod error;
pub mod helper;
mod launch;
mod serve;
mod shutdown;
mod stop;

pub use address::{AddressError, Protocol, ProxyAddress};
pub use device::validate_device;
pub use error::ProxyError;
pub use launch::spawn;
pub use stop::stop;
