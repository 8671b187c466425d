//! Daemon start-up: state, storage, recovery, then the API on the local socket.

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use nix::unistd::Gid;
use sysc_proto::v1::backups_server::BackupsServer;
use sysc_proto::v1::containers_server::ContainersServer;
use sysc_proto::v1::events_server::EventsServer;
use sysc_proto::v1::files_server::FilesServer;
use sysc_proto::v1::images_server::ImagesServer;
use sysc_proto::v1::networks_server::NetworksServer;
use sysc_proto::v1::operations_server::OperationsServer;
use sysc_proto::v1::server_server::ServerServer;
use sysc_proto::v1::snapshots_server::SnapshotsServer;
use sysc_proto::v1::storage_server::StorageServer;
use sysc_proto::v1::trust_server::TrustServer;
use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::Routes;

use crate::api::{
    BackupsService, ContainersService, EventsService, FilesService, ImagesService, NetworksService, OperationsService,
    PeerAccess, ServerService, SnapshotsService, StorageService, TrustService, peer_access,
};
use crate::containers::Manager;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::images::Images;
use crate::network::{DefaultNetwork, Networks};
use crate::settings::Settings;
use crate::storage::{DriverChoice, Pools};
use crate::trust::TrustHub;
use crate::trust::listener::TlsListener;

/// HTTP/2 flow-control window per stream and per connection.
const STREAM_WINDOW: u32 = 8 << 20;

/// The largest HTTP/2 frame the daemon accepts (the protocol's default is 16 KiB).
const MAX_FRAME: u32 = 1 << 20;

/// Bytes a client connection may have queued towards the client.
const SEND_BUFFER: usize = 4 << 20;

/// The longest name a unix socket path may have (sun_path is 108 bytes with its NUL).
const SOCKET_PATH_MAX: usize = 107;

/// How long a stopping daemon lets calls in progress (a create, a file transfer) finish
/// before it ends them; an interrupted change is finished or undone at the next start.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

pub struct StorageOptions {
    pub driver: DriverChoice,
    pub size_bytes: u64,
}

/// Runs the daemon until `shutdown` completes. Running containers are left running.
pub async fn run(
    settings: Settings,
    storage_options: StorageOptions,
    default_network: Option<DefaultNetwork>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    prepare_dirs(&settings)?;
    let db = Db::open(&settings.db_dir())?;
    let (pools, created) = Pools::open(&settings.root, &db, storage_options.driver, storage_options.size_bytes)?;
    if let Some(created) = created {
        tracing::info!("{created}");
    }
    let images = Images::new(
        db.clone(),
        pools.clone(),
        settings.templates_dir.clone(),
        settings.template_cache.clone(),
    );
    let networks = Networks::new(&settings.root, &settings.run_dir, db.clone());
    networks.start(default_network).await?;
    let settings = Arc::new(settings);
    let manager = Manager::new(settings.clone(), db.clone(), pools, images, networks);
    crate::events::forward_logs(&manager.events.bus);
    manager.recover().await?;

    let trust = Arc::new(TrustHub::open(&db, &settings.root).map_err(|e| Error::Internal(e.to_string()))?);
    let access = PeerAccess::from_host();
    let listener = listen(&settings.socket, access.group()).await?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ContainersServer<ContainersService>>().await;
    health.set_serving::<ImagesServer<ImagesService>>().await;
    health.set_serving::<ServerServer<ServerService>>().await;
    health.set_serving::<SnapshotsServer<SnapshotsService>>().await;
    health.set_serving::<BackupsServer<BackupsService>>().await;
    health.set_serving::<StorageServer<StorageService>>().await;
    health.set_serving::<FilesServer<FilesService>>().await;
    health.set_serving::<NetworksServer<NetworksService>>().await;
    health.set_serving::<TrustServer<TrustService>>().await;
    health.set_serving::<EventsServer<EventsService>>().await;
    health.set_serving::<OperationsServer<OperationsService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(sysc_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::internal("build the reflection service", e))?;

    let routes = Routes::new(health_service)
        .add_service(reflection)
        .add_service(ContainersServer::new(ContainersService::new(manager.clone())))
        .add_service(ImagesServer::new(ImagesService::new(manager.clone())))
        .add_service(ServerServer::new(ServerService::new(manager.clone(), trust.clone())))
        .add_service(SnapshotsServer::new(SnapshotsService::new(manager.clone())))
        .add_service(BackupsServer::new(BackupsService::new(manager.clone())))
        .add_service(StorageServer::new(StorageService::new(manager.clone())))
        .add_service(FilesServer::new(FilesService::new(manager.clone())))
        .add_service(NetworksServer::new(NetworksService::new(manager.clone())))
        .add_service(TrustServer::new(TrustService::new(trust.clone())))
        .add_service(EventsServer::new(EventsService::new(manager.clone())))
        .add_service(OperationsServer::new(OperationsService::new(manager.clone())));
    trust.attach(TlsListener::new(
        trust.identity.clone(),
        trust.store.clone(),
        routes.clone(),
    ));
    trust
        .start(settings.https_address.clone())
        .await
        .map_err(|e| Error::FailedPrecondition(e.to_string()))?;

    tracing::info!(socket = %settings.socket.display(), root = %settings.root.display(), "serving");
    manager.autostart();
    manager.run_scheduler();
    // Event, exec and console streams never end by themselves: closing the bus ends them,
    // or the graceful shutdown would wait on them.
    let events = manager.events.bus.clone();
    let stopping = events.closing();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("stopping: calls in progress have {} s to finish", STOP_GRACE.as_secs());
        events.close();
    };
    let serving = api_server()
        // Every service, health and reflection included, answers only root and group sysc.
        .layer(tonic::service::InterceptorLayer::new(access))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(listener).map(|s| s.inspect(large_send_buffer)),
            shutdown,
        );
    let served = tokio::select! {
        served = serving => served,
        () = async { stopping.await; tokio::time::sleep(STOP_GRACE).await } => {
            tracing::warn!("calls still in progress after {} s are cut off", STOP_GRACE.as_secs());
            Ok(())
        }
    };
    let _ = std::fs::remove_file(&settings.socket);
    db.flush().await?;
    served.map_err(|e| Error::internal("serve the API", e))?;
    tracing::info!("stopped; running containers keep running");
    Ok(())
}

/// The API's transport settings, the same on the local socket and over TLS.
pub(crate) fn api_server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        // Exec and file transfers stream megabytes: HTTP/2's default 64 KiB windows would
        // stall them on a window update every 64 KiB.
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(STREAM_WINDOW)
        // Megabyte messages in a few large frames rather than 64 of 16 KiB each.
        .max_frame_size(MAX_FRAME)
}

fn prepare_dirs(settings: &Settings) -> Result<()> {
    // The database, the pools' backing files and the monitors' sockets are root's alone.
    let private = [
        settings.db_dir(),
        settings.root.join("disks"),
        settings.root.join("storage-pools"),
        settings.run_dir.join("networks"),
    ];
    let dirs = [(&settings.root, 0o711), (&settings.run_dir, 0o700)]
        .into_iter()
        .chain(private.iter().map(|dir| (dir, 0o700)));
    for (dir, mode) in dirs {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("create {}", dir.display()), e))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::internal(format!("chmod {}", dir.display()), e))?;
    }
    // A monitor's socket is <run dir>/<name>/monitor.sock, with names up to 63 bytes.
    let longest = settings.monitor_socket(&"x".repeat(63));
    if longest.as_os_str().len() > SOCKET_PATH_MAX || settings.socket.as_os_str().len() > SOCKET_PATH_MAX {
        return Err(Error::InvalidArgument(format!(
            "run directory {} or socket {} is too long for unix socket paths",
            settings.run_dir.display(),
            settings.socket.display()
        )));
    }
    Ok(())
}

/// File data and exec output leave in megabyte messages; with the default send buffer
/// (about 200 KiB) each one takes several wake-ups of the client to get through.
fn large_send_buffer(stream: &tokio::net::UnixStream) {
    use nix::sys::socket::{setsockopt, sockopt};
    if let Err(e) = setsockopt(stream, sockopt::SndBufForce, &SEND_BUFFER) {
        tracing::debug!(error = %e, "cannot enlarge a client connection's send buffer");
    }
}

/// Binds the API socket: root and `group` (0660) where the host has that group, else root
/// only (0600). A socket someone still answers on means another daemon: refuse rather
/// than steal it.
async fn listen(socket: &Path, group: Option<Gid>) -> Result<UnixListener> {
    if socket.exists() {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Err(Error::FailedPrecondition(format!(
                "another syscd is serving {}",
                socket.display()
            )));
        }
        let _ = std::fs::remove_file(socket);
    }
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::internal(format!("create {}", parent.display()), e))?;
    }
    let listener =
        UnixListener::bind(socket).map_err(|e| Error::internal(format!("listen on {}", socket.display()), e))?;
    // Until the chmod the umask decides the mode; PeerAccess refuses strangers meanwhile.
    let mode = match group {
        Some(gid) => {
            nix::unistd::chown(socket, None, Some(gid)).map_err(|e| {
                Error::internal(format!("chown {} to group {}", socket.display(), peer_access::GROUP), e)
            })?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::internal(format!("chmod {}", socket.display()), e))?;
    Ok(listener)
}
