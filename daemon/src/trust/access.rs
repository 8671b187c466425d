//! The check on every call over TLS: the client certificate on the connection must be
//! in the trust store, asked anew per call, so a removed certificate is refused at its
//! next call even on a connection that stays open. Trust/Enrol is the one call an
//! untrusted client may make: it is how a client with a token becomes trusted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::pki_types::CertificateDer;
use tonic::Status;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::{TrustStore, fingerprint, short};

pub const ENROL_PATH: &str = "/sysc.v1.Trust/Enrol";

/// The certificate the client presented on this call's connection, when it came over TLS.
pub fn peer_certificate(extensions: &http::Extensions) -> Option<CertificateDer<'static>> {
    let info = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?;
    info.peer_certs()?.first().cloned()
}

#[derive(Clone)]
pub struct TlsAccessLayer {
    store: TrustStore,
}

impl TlsAccessLayer {
    pub fn new(store: TrustStore) -> Self {
        Self { store }
    }
}

impl<S> tower::Layer<S> for TlsAccessLayer {
    type Service = TlsAccess<S>;

    fn layer(&self, inner: S) -> TlsAccess<S> {
        TlsAccess {
            inner,
            store: self.store.clone(),
        }
    }
}

#[derive(Clone)]
pub struct TlsAccess<S> {
    inner: S,
    store: TrustStore,
}

impl<S> TlsAccess<S> {
    fn refusal<B>(&self, request: &http::Request<B>) -> Option<Status> {
        if request.uri().path() == ENROL_PATH {
            return None;
        }
        let Some(certificate) = peer_certificate(request.extensions()) else {
            return Some(Status::unauthenticated("no client certificate on this connection"));
        };
        let fingerprint = fingerprint(&certificate);
        if self.store.is_trusted(&fingerprint) {
            return None;
        }
        tracing::info!(certificate = %short(&fingerprint), path = request.uri().path(), "refused an untrusted call");
        Some(Status::permission_denied(format!(
            "certificate {} is not trusted by this server",
            short(&fingerprint)
        )))
    }
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for TlsAccess<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.refusal(&request) {
            None => Box::pin(self.inner.call(request)),
            Some(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}
