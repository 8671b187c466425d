//! The check on every call over TLS: the client certificate on the connection must be
//! in the trust store, asked anew per call, so a removed certificate is refused at its
//! next call even on a connection that stays open; a call still streaming (an exec, a
//! console, events) when its certificate is removed is ended. Trust/Enrol is the one call
//! an untrusted client may make: it is how a client with a token becomes trusted.

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

/// What the check says about a call.
enum Verdict {
    /// Enrol, which needs no trust.
    Open,
    /// A trusted certificate's call: it lasts until this completes (the certificate's removal).
    Trusted(String, Pin<Box<dyn Future<Output = ()> + Send>>),
    Refused(Status),
}

impl<S> TlsAccess<S> {
    fn verdict<B>(&self, request: &http::Request<B>) -> Verdict {
        if request.uri().path() == ENROL_PATH {
            return Verdict::Open;
        }
        let Some(certificate) = peer_certificate(request.extensions()) else {
            return Verdict::Refused(Status::unauthenticated("no client certificate on this connection"));
        };
        let fingerprint = fingerprint(&certificate);
        let removal = Box::pin(self.store.removal(&fingerprint));
        if self.store.is_trusted(&fingerprint) {
            return Verdict::Trusted(fingerprint, removal);
        }
        tracing::info!(certificate = %short(&fingerprint), path = request.uri().path(), "refused an untrusted call");
        Verdict::Refused(Status::permission_denied(format!(
            "certificate {} is not trusted by this server",
            short(&fingerprint)
        )))
    }
}

/// A response that ends, with a status saying why, when its certificate is removed.
struct UntilRemoved {
    inner: tonic::body::Body,
    fingerprint: String,
    removal: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl http_body::Body for UntilRemoved {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if this.removal.as_mut().poll(cx).is_ready() {
            this.ended = true;
            tracing::info!(certificate = %short(&this.fingerprint), "ended a call: its certificate was removed");
            let status = Status::permission_denied(format!(
                "certificate {} was removed from the server's trust store",
                short(&this.fingerprint)
            ));
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(
                status
                    .add_header(&mut trailers)
                    .map(|()| http_body::Frame::trailers(trailers)),
            ));
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
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
        match self.verdict(&request) {
            Verdict::Open => Box::pin(self.inner.call(request)),
            Verdict::Trusted(fingerprint, removal) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let response = response.await?;
                    Ok(response.map(|inner| {
                        tonic::body::Body::new(UntilRemoved {
                            inner,
                            fingerprint,
                            removal,
                            ended: false,
                        })
                    }))
                })
            }
            Verdict::Refused(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}
