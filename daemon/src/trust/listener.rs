//! The TLS listener (core.https_address): bound, rebound and stopped as the key
//! changes, serving the same API as the local socket to clients with trusted
//! certificates.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tonic::service::Routes;

use super::access::TlsAccessLayer;
use super::verifier::AnyClientCertificate;
use super::{Result, ServerIdentity, TrustError, TrustStore};

/// The port when an address names none, as Incus's.
pub const DEFAULT_PORT: u16 = 8443;
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// "host:port", ":port" (every address), "host" or "[v6]" (port 8443).
pub fn parse_address(text: &str) -> Result<SocketAddr> {
    let bad = || {
        TrustError::Invalid(format!(
            "core.https_address: {text:?} is not an address like :8443 or 10.0.0.2:8443"
        ))
    };
    let text = text.trim();
    if let Some(port) = text.strip_prefix(':') {
        let port = port.parse().map_err(|_| bad())?;
        return Ok(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let host = text.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, DEFAULT_PORT))
        .map_err(|_| bad())
}

struct Running {
    address: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Open connections end with the listener: a changed address takes effect at once.
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub struct TlsListener {
    identity: Arc<ServerIdentity>,
    store: TrustStore,
    routes: Routes,
    running: Mutex<Option<Running>>,
}

impl TlsListener {
    pub fn new(identity: Arc<ServerIdentity>, store: TrustStore, routes: Routes) -> Self {
        Self {
            identity,
            store,
            routes,
            running: Mutex::new(None),
        }
    }

    pub fn listening_on(&self) -> Option<SocketAddr> {
        self.running.lock().expect("not poisoned").as_ref().map(|r| r.address)
    }

    /// Listens on `address` (None: not at all). A failure leaves the old listener.
    pub async fn apply(&self, address: Option<SocketAddr>) -> Result<()> {
        let previous = self.listening_on();
        if previous == address {
            return Ok(());
        }
        // The old socket goes first: the new address may well overlap it.
        let old = self.running.lock().expect("not poisoned").take();
        drop(old);
        let Some(address) = address else {
            tracing::info!("stopped listening on the network");
            return Ok(());
        };
        match self.start(address).await {
            Ok(running) => {
                tracing::info!(%address, "listening with TLS");
                *self.running.lock().expect("not poisoned") = Some(running);
                Ok(())
            }
            Err(e) => {
                if let Some(previous) = previous
                    && let Ok(running) = self.start(previous).await
                {
                    *self.running.lock().expect("not poisoned") = Some(running);
                }
                Err(e)
            }
        }
    }

    async fn start(&self, address: SocketAddr) -> Result<Running> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| TrustError::Invalid(format!("core.https_address: cannot listen on {address}: {e}")))?;
        let address = listener.local_addr().unwrap_or(address);
        let acceptor = TlsAcceptor::from(Arc::new(self.tls_config()?));
        let (connections, incoming) = mpsc::channel(64);
        let accept = tokio::spawn(accept_loop(listener, acceptor, connections));
        let server = super::super::server::api_server()
            .layer(TlsAccessLayer::new(self.store.clone()))
            .add_routes(self.routes.clone())
            .serve_with_incoming(tokio_stream::wrappers::ReceiverStream::new(incoming));
        let serve = tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::warn!("the TLS listener stopped: {e}");
            }
        });
        Ok(Running {
            address,
            tasks: vec![accept, serve],
        })
    }

    fn tls_config(&self) -> Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyClientCertificate {
            provider: provider.clone(),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TrustError::host("set up TLS", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.identity.certificate.clone()], self.identity.key())
            .map_err(|e| TrustError::host("load the server certificate", e))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(config)
    }
}

type Connection = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Handshakes run apart from accepting, so a slow or silent client holds up nobody.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    connections: mpsc::Sender<std::io::Result<Connection>>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("accept on the TLS listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // gRPC calls are small writes waiting on an answer: Nagle's algorithm would hold
        // each for a delayed ACK (about 40 ms a call).
        let _ = stream.set_nodelay(true);
        let (acceptor, connections) = (acceptor.clone(), connections.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = connections.send(Ok(tls)).await;
                }
                Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_incus_writes_them() {
        assert_eq!(parse_address(":8443").unwrap().to_string(), "[::]:8443");
        assert_eq!(parse_address("10.0.0.2:9000").unwrap().to_string(), "10.0.0.2:9000");
        assert_eq!(parse_address("10.0.0.2").unwrap().to_string(), "10.0.0.2:8443");
        assert_eq!(parse_address("[::1]").unwrap().to_string(), "[::1]:8443");
        assert!(parse_address("example.org:8443").is_err());
        assert!(parse_address(":port").is_err());
    }
}
