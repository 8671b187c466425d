//! The gRPC services. Each file serves one area and only translates between the
//! generated types and the daemon's own (containers::Manager, images::Images).

mod console;
mod containers;
mod convert;
mod exec;
mod images;
mod server;
mod status;

pub use containers::ContainersService;
pub use images::ImagesService;
pub use server::ServerService;
