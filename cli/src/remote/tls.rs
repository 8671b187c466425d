//! gRPC to a remote syscd over TLS: TCP, then rustls with this client's certificate, and
//! the server accepted only if its certificate is the one pinned by fingerprint. syscd's
//! certificates are self-signed, so there is no CA to ask; the fingerprint, from a token or
//! from the user's own eyes, is the whole of the server's identity.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, ring, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::Channel;

use super::identity::{Identity, fingerprint};

/// Long enough for a distant host, short enough that a dead one is reported, not waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which server certificate to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pin {
    /// Only the one with this fingerprint (lower-case hex).
    Fingerprint(String),
    /// Any: to learn a new server's fingerprint, which the caller then shows or records.
    Any,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("server at {address} presented certificate SHA256:{presented}, not the pinned SHA256:{pinned}")]
    Mismatch {
        address: String,
        presented: String,
        pinned: String,
    },
    #[error("{address} does not answer with TLS ({reason}); is it syscd's https address?")]
    NotTls { address: String, reason: String },
    #[error("TLS handshake with {address} failed: {reason}")]
    Handshake { address: String, reason: String },
    #[error("cannot set up TLS with the client certificate: {0}")]
    Config(String),
    #[error("gRPC over TLS to {address} failed: {reason}")]
    Http { address: String, reason: String },
}

/// A channel to a remote and the fingerprint of the certificate its server presented.
pub struct Connected {
    pub channel: Channel,
    pub fingerprint: String,
}

/// Connects eagerly, as the local socket does, so an unreachable or impostor server is
/// reported before any request.
pub async fn connect(address: &str, pin: Pin, identity: &Identity) -> Result<Connected, TlsError> {
    let verifier = Arc::new(PinningVerifier::new(pin.clone()));
    let config = Arc::new(client_config(verifier.clone(), identity)?);
    let target = address.to_string();
    let presented = verifier.presented.clone();
    let connector = tower::service_fn(move |_| {
        let (address, config, presented, pin) = (target.clone(), config.clone(), presented.clone(), pin.clone());
        async move { handshake(&address, config, &presented, &pin).await.map(TokioIo::new) }
    });
    let channel = crate::connect::endpoint()
        .connect_with_connector(connector)
        .await
        .map_err(|err| connect_error(address, &err))?;
    let fingerprint = verifier
        .presented
        .lock()
        .unwrap()
        .clone()
        .expect("a completed handshake saw a certificate");
    Ok(Connected { channel, fingerprint })
}

fn client_config(verifier: Arc<PinningVerifier>, identity: &Identity) -> Result<ClientConfig, TlsError> {
    let config_error = |err: rustls::Error| TlsError::Config(err.to_string());
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(config_error)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

async fn handshake(
    address: &str,
    config: Arc<ClientConfig>,
    presented: &Mutex<Option<String>>,
    pin: &Pin,
) -> Result<TlsStream<TcpStream>, TlsError> {
    let unreachable = |reason: String| TlsError::Unreachable {
        address: address.to_string(),
        reason,
    };
    let tcp = match timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(err)) => return Err(unreachable(crate::connect::os_message(&err))),
        Err(_) => return Err(unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
    };
    // gRPC's small request frames should not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let connecting = TlsConnector::from(config).connect(server_name(address), tcp);
    let err = match timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(stream)) => return Ok(stream),
        Ok(Err(err)) => err,
        Err(_) => {
            return Err(TlsError::NotTls {
                address: address.to_string(),
                reason: format!("no TLS handshake within {}s", CONNECT_TIMEOUT.as_secs()),
            });
        }
    };
    if let (Pin::Fingerprint(pinned), Some(seen)) = (pin, presented.lock().unwrap().clone())
        && *pinned != seen
    {
        return Err(TlsError::Mismatch {
            address: address.to_string(),
            presented: seen,
            pinned: pinned.clone(),
        });
    }
    Err(handshake_error(address, &err))
}

/// A server speaking plain HTTP/2 (or anything else) answers a ClientHello with bytes that
/// are no TLS record, or hangs up: say so, rather than rustls's words for it.
fn handshake_error(address: &str, err: &std::io::Error) -> TlsError {
    let rustls_error = err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let address = address.to_string();
    match rustls_error {
        Some(rustls::Error::InvalidMessage(_)) => TlsError::NotTls {
            address,
            reason: "its answer is not a TLS record".to_string(),
        },
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => TlsError::NotTls {
            address,
            reason: "it closed the connection".to_string(),
        },
        None if err.kind() == std::io::ErrorKind::ConnectionReset => TlsError::NotTls {
            address,
            reason: "it reset the connection".to_string(),
        },
        _ => TlsError::Handshake {
            address,
            reason: err.to_string(),
        },
    }
}

/// What tonic's error wraps: ours from the connector, else the HTTP/2 layer's complaint.
fn connect_error(address: &str, err: &tonic::transport::Error) -> TlsError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut reason = err.to_string();
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<TlsError>() {
            return tls.clone();
        }
        reason = cause.to_string();
        source = cause.source();
    }
    TlsError::Http {
        address: address.to_string(),
        reason,
    }
}

/// The certificate is checked by fingerprint, not name, but rustls wants one to send as
/// SNI; an address that is no valid name gets a placeholder.
fn server_name(address: &str) -> ServerName<'static> {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).unwrap_or_else(|_| ServerName::try_from("syscd").expect("a valid DNS name"))
}

/// Accepts the server's certificate if it is the pinned one, and remembers what it saw,
/// so a refusal can name both fingerprints.
#[derive(Debug)]
pub struct PinningVerifier {
    pin: Pin,
    presented: Arc<Mutex<Option<String>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinningVerifier {
    pub fn new(pin: Pin) -> Self {
        Self {
            pin,
            presented: Arc::default(),
            algorithms: ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = fingerprint(end_entity);
        *self.presented.lock().unwrap() = Some(seen.clone());
        match &self.pin {
            Pin::Fingerprint(pinned) if *pinned != seen => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    // The pinned certificate proves nothing unless the server shows it holds its key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A fingerprint as people paste it: "SHA256:AB:CD...", "abcd...", in any case. None
/// unless it is a whole SHA-256.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let text = text.trim();
    let hex = match text.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("sha256:") => &text[7..],
        _ => text,
    };
    let hex: String = hex
        .chars()
        .filter(|&c| c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

#[cfg(test)]
pub mod tests {
    use std::net::SocketAddr;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
    use rustls::{DistinguishedName, ServerConfig};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::remote::config::ConfigDir;

    pub struct ServerCert {
        pub der: CertificateDer<'static>,
        pub key: PrivateKeyDer<'static>,
        pub fingerprint: String,
    }

    pub fn server_cert() -> ServerCert {
        let made = rcgen::generate_simple_self_signed(vec!["syscd".to_string()]).unwrap();
        let der = made.cert.der().clone();
        ServerCert {
            fingerprint: fingerprint(&der),
            der,
            key: PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap(),
        }
    }

    /// syscd at the TLS level: any client certificate is welcome, but one is required.
    #[derive(Debug)]
    struct AnyClient(WebPkiSupportedAlgorithms);

    impl ClientCertVerifier for AnyClient {
        fn root_hint_subjects(&self) -> &[DistinguishedName] {
            &[]
        }

        fn verify_client_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _now: UnixTime,
        ) -> Result<ClientCertVerified, rustls::Error> {
            Ok(ClientCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }

    pub fn acceptor(cert: &ServerCert) -> TlsAcceptor {
        let provider = Arc::new(ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(Arc::new(AnyClient(algorithms)))
            .with_single_cert(vec![cert.der.clone()], cert.key.clone_key())
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    pub fn identity() -> (tempfile::TempDir, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity::load_or_create(&ConfigDir::new(dir.path().to_path_buf())).unwrap();
        (dir, identity)
    }

    /// Accepts one TLS connection and answers with the client certificate's fingerprint.
    async fn echo_client_fingerprint(cert: &ServerCert) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = acceptor(cert);
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let client = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
                tls.write_all(fingerprint(&client).as_bytes()).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        address
    }

    fn config_for(pin: Pin, identity: &Identity) -> (Arc<ClientConfig>, Arc<Mutex<Option<String>>>) {
        let verifier = Arc::new(PinningVerifier::new(pin));
        let presented = verifier.presented.clone();
        (Arc::new(client_config(verifier, identity).unwrap()), presented)
    }

    #[test]
    fn the_verifier_accepts_the_pinned_certificate_only() {
        let (right, wrong) = (server_cert(), server_cert());
        let name = ServerName::try_from("syscd").unwrap();
        let verify = |verifier: &PinningVerifier, cert: &ServerCert| {
            verifier.verify_server_cert(&cert.der, &[], &name, &[], UnixTime::now())
        };
        let pinned = PinningVerifier::new(Pin::Fingerprint(right.fingerprint.clone()));
        assert!(verify(&pinned, &right).is_ok());
        assert_eq!(
            verify(&pinned, &wrong).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        assert_eq!(
            pinned.presented.lock().unwrap().as_deref(),
            Some(wrong.fingerprint.as_str())
        );

        let any = PinningVerifier::new(Pin::Any);
        assert!(verify(&any, &wrong).is_ok());
        assert_eq!(
            any.presented.lock().unwrap().as_deref(),
            Some(wrong.fingerprint.as_str())
        );
    }

    #[tokio::test]
    async fn a_handshake_succeeds_with_the_pin_and_shows_the_client_certificate() {
        let cert = server_cert();
        let address = echo_client_fingerprint(&cert).await.to_string();
        let (_dir, identity) = identity();

        let pin = Pin::Fingerprint(cert.fingerprint.clone());
        let (config, presented) = config_for(pin.clone(), &identity);
        let mut stream = handshake(&address, config, &presented, &pin).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut seen_by_server = String::new();
        stream.read_to_string(&mut seen_by_server).await.unwrap();
        assert_eq!(seen_by_server, fingerprint(&identity.cert));
    }

    #[tokio::test]
    async fn another_certificate_is_refused_naming_both() {
        let cert = server_cert();
        let address = echo_client_fingerprint(&cert).await.to_string();
        let (_dir, identity) = identity();
        let pinned = "ab".repeat(32);
        let pin = Pin::Fingerprint(pinned.clone());
        let (config, presented) = config_for(pin.clone(), &identity);
        let err = handshake(&address, config, &presented, &pin).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "server at {address} presented certificate SHA256:{}, not the pinned SHA256:{pinned}",
                cert.fingerprint
            )
        );
    }

    #[tokio::test]
    async fn a_plaintext_server_or_none_is_named() {
        let (_dir, identity) = identity();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut tcp, _) = listener.accept().await.unwrap();
                // What an HTTP/2 server sends first: a SETTINGS frame.
                let _ = tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await;
                let _ = tcp.shutdown().await;
            }
        });
        let (config, presented) = config_for(Pin::Any, &identity);
        let err = handshake(&address, config, &presented, &Pin::Any).await.unwrap_err();
        assert!(matches!(err, TlsError::NotTls { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{address} does not answer with TLS")),
            "{err}"
        );

        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let (config, presented) = config_for(Pin::Any, &identity);
        let err = handshake(&closed, config, &presented, &Pin::Any).await.unwrap_err();
        assert_eq!(err.to_string(), format!("cannot reach {closed}: Connection refused"));
    }

    #[test]
    fn fingerprints_are_taken_as_people_paste_them() {
        let hex = "ab".repeat(32);
        assert_eq!(normalize_fingerprint(&hex).as_deref(), Some(hex.as_str()));
        assert_eq!(
            normalize_fingerprint(&format!("SHA256:{}", hex.to_uppercase())).as_deref(),
            Some(hex.as_str())
        );
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(normalize_fingerprint(&colons).as_deref(), Some(hex.as_str()));
        assert_eq!(normalize_fingerprint("abcd"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn server_names_come_from_the_address() {
        assert_eq!(
            server_name("host1.example:8443"),
            ServerName::try_from("host1.example").unwrap()
        );
        assert_eq!(server_name("10.0.0.2:8443"), ServerName::try_from("10.0.0.2").unwrap());
        assert_eq!(server_name("[fd00::2]:8443"), ServerName::try_from("fd00::2").unwrap());
        assert_eq!(server_name("not a name:1"), ServerName::try_from("syscd").unwrap());
    }
}
