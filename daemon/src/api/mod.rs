//! The gRPC services. Each file serves one area and only translates between the
//! generated types and the daemon's own (containers::Manager, images::Images).

mod backups;
mod console;
mod containers;
mod convert;
mod events;
mod exec;
mod files;
mod handover;
mod images;
mod networks;
mod operations;
pub mod peer_access;
mod server;
mod snapshots;
mod status;
mod stopping;
mod storage;
mod trust;

pub use backups::BackupsService;
pub use containers::ContainersService;
pub use events::EventsService;
pub use files::FilesService;
pub use images::ImagesService;
pub use networks::NetworksService;
pub use operations::OperationsService;
pub use peer_access::PeerAccess;
pub use server::ServerService;
pub use snapshots::SnapshotsService;
pub use storage::StorageService;
pub use trust::TrustService;

/// Runs a change to its end even if the client goes away meanwhile: tonic drops a
/// handler's future when its call is cancelled, and a change dropped halfway (a
/// snapshot with its container frozen) must not be.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
) -> Result<T, tonic::Status> {
    match tokio::spawn(work).await {
        Ok(result) => result.map_err(tonic::Status::from),
        Err(e) => Err(tonic::Status::internal(format!("task failed: {e}"))),
    }
}
