//! Reaching syscd, over its unix socket or as a remote over TLS, and turning its statuses
//! into plain errors.

use std::error::Error as _;
use std::io;
use std::path::Path;

use anyhow::anyhow;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

use crate::remote::config::{ClientConfig, ConfigDir, Remote};
use crate::remote::identity::Identity;
use crate::remote::tls::{self, Pin};

/// The one place a remote's name becomes a channel: `local` is the unix socket, any other
/// name a TLS connection to the address config.yaml holds, its certificate pinned.
pub async fn connect_remote(
    socket: &Path,
    dir: Option<&ConfigDir>,
    config: &ClientConfig,
    remote: &str,
) -> anyhow::Result<Channel> {
    match config.lookup(remote)? {
        Remote::Local => connect(socket).await,
        Remote::Tls(entry) => {
            let dir = dir.ok_or(crate::remote::config::ConfigError::NoConfigDir)?;
            let identity = Identity::load_or_create(dir)?;
            // A hand-edited config.yaml may hold the fingerprint as people write it.
            let pinned = tls::normalize_fingerprint(&entry.fingerprint).unwrap_or_else(|| entry.fingerprint.clone());
            let pin = Pin::Fingerprint(pinned);
            Ok(tls::connect(&entry.address, pin, &identity).await?.channel)
        }
    }
}

/// Connects eagerly, so a missing or dead daemon is reported once, before any request.
pub async fn connect(socket: &Path) -> anyhow::Result<Channel> {
    let path = socket.to_path_buf();
    endpoint()
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .map_err(|err| unreachable_error(socket, &err))
}

/// What every channel shares, whatever carries it.
pub fn endpoint() -> Endpoint {
    // The URI is required by tonic but unused: the connector decides where to connect.
    // Large HTTP/2 windows: exec output streams megabytes, and the default 64 KiB
    // window would stall it on every window update.
    Endpoint::from_static("http://localhost")
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(8 << 20)
        // File data arrives in megabyte messages: in a few large frames, not 16 KiB ones.
        .max_frame_size(1 << 20)
}

fn unreachable_error(socket: &Path, err: &tonic::transport::Error) -> anyhow::Error {
    // tonic wraps the socket's io::Error a few levels deep; its text is what the user needs.
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io_err) = cause.downcast_ref::<io::Error>() {
            return anyhow!(describe_unreachable(socket, io_err));
        }
        source = cause.source();
    }
    anyhow!("cannot reach syscd at {}: {err}", socket.display())
}

fn describe_unreachable(socket: &Path, err: &io::Error) -> String {
    let hint = match err.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => " (is syscd running?)",
        io::ErrorKind::PermissionDenied => " (the socket is for root and group sysc only)",
        _ => "",
    };
    format!("cannot reach syscd at {}: {}{hint}", socket.display(), os_message(err))
}

/// The system's wording without Rust's " (os error N)" suffix.
pub fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once(" (os error ") {
        Some((message, _)) if err.raw_os_error().is_some() => message.to_string(),
        _ => text,
    }
}

/// The daemon's message as it sent it; the status code adds nothing a user can act on.
pub fn rpc_error(status: tonic::Status) -> anyhow::Error {
    if status.message().is_empty() {
        anyhow!("{}", status.code().description().to_lowercase())
    } else {
        anyhow!("{}", status.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_socket_reads_like_the_system() {
        // ENOENT on Linux.
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(
            describe_unreachable(Path::new("/var/lib/sysc/unix.socket"), &err),
            "cannot reach syscd at /var/lib/sysc/unix.socket: No such file or directory (is syscd running?)"
        );
    }

    #[tokio::test]
    async fn a_tls_remote_is_reached_with_its_certificate_pinned() {
        use crate::fake_daemon::{FakeDaemon, container};
        use crate::remote::config::RemoteEntry;
        use crate::remote::tls::tests::{acceptor, server_cert};

        let daemon = FakeDaemon::start(vec![container("web1", sysc_proto::v1::ContainerState::Running, &[])]).await;
        let cert = server_cert();
        let address = daemon.serve_tls(acceptor(&cert)).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("sysc"));
        let mut config = ClientConfig::default();
        let entry = RemoteEntry {
            address,
            fingerprint: cert.fingerprint.clone(),
        };
        config.add("h1", entry).unwrap();
        let no_socket = Path::new("/nonexistent/unix.socket");

        let channel = connect_remote(no_socket, Some(&dir), &config, "h1").await.unwrap();
        let containers = crate::list::fetch(channel).await.unwrap();
        assert_eq!(containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["web1"]);
        // The first use of a remote made the client's certificate.
        assert!(dir.file("client.crt").exists());

        let err = connect_remote(no_socket, Some(&dir), &config, "h9").await.unwrap_err();
        assert_eq!(err.to_string(), "remote h9 does not exist (see sysc remote list)");
        let err = connect_remote(no_socket, Some(&dir), &config, "local")
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot reach syscd at /nonexistent/unix.socket"),
            "{err}"
        );
    }

    #[test]
    fn status_message_is_kept_verbatim() {
        let err = rpc_error(tonic::Status::not_found("container \"web1\" not found"));
        assert_eq!(err.to_string(), "container \"web1\" not found");
        let err = rpc_error(tonic::Status::new(tonic::Code::Internal, ""));
        assert_eq!(err.to_string(), "internal error");
    }
}
