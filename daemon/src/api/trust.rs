//! sysc.v1.Trust: the trust store and enrolment tokens.

use std::sync::Arc;

use sysc_proto::token::EnrolToken;
use sysc_proto::v1 as pb;
use sysc_proto::v1::trust_server::Trust;
use tonic::{Request, Response, Status};

use crate::trust::store::{PendingToken, TrustedCertificate};
use crate::trust::{TrustError, TrustHub, access, short};

/// A token is good for a day unless asked otherwise.
const DEFAULT_TOKEN_LIFETIME_MS: i64 = 24 * 3600 * 1000;

pub struct TrustService {
    hub: Arc<TrustHub>,
}

impl TrustService {
    pub fn new(hub: Arc<TrustHub>) -> Self {
        Self { hub }
    }

    async fn flush(&self) -> Result<(), Status> {
        self.hub
            .flush()
            .await
            .map_err(|e| Status::internal(format!("flush the database: {e}")))
    }
}

impl From<TrustError> for Status {
    fn from(error: TrustError) -> Self {
        let message = error.to_string();
        match error {
            TrustError::Invalid(_) => Status::invalid_argument(message),
            TrustError::NotFound(_) => Status::not_found(message),
            TrustError::Conflict(_) => Status::already_exists(message),
            TrustError::Refused(_) => Status::permission_denied(message),
            TrustError::Host { .. } => {
                tracing::error!("{message}");
                Status::internal(message)
            }
        }
    }
}

fn timestamp(ms: i64) -> Option<sysc_proto::Timestamp> {
    Some(sysc_proto::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    })
}

fn certificate(record: TrustedCertificate) -> pb::TrustedCertificate {
    pb::TrustedCertificate {
        name: record.name,
        fingerprint: record.fingerprint,
        certificate: record.pem,
        added_at: timestamp(record.added_at_ms),
    }
}

fn token(record: &PendingToken, fingerprint: &str) -> pb::Token {
    pb::Token {
        name: record.name.clone(),
        token: String::new(),
        addresses: record.addresses.clone(),
        fingerprint: fingerprint.to_string(),
        created_at: timestamp(record.created_at_ms),
        expires_at: timestamp(record.expires_at_ms),
    }
}

#[tonic::async_trait]
impl Trust for TrustService {
    async fn add_certificate(
        &self,
        request: Request<pb::AddCertificateRequest>,
    ) -> Result<Response<pb::TrustedCertificate>, Status> {
        let request = request.into_inner();
        let added = self.hub.store.add_certificate(&request.name, &request.certificate)?;
        self.flush().await?;
        tracing::info!(name = %added.name, certificate = %short(&added.fingerprint), "trusted a certificate");
        Ok(Response::new(certificate(added)))
    }

    async fn list_certificates(
        &self,
        _request: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesResponse>, Status> {
        let certificates = self.hub.store.certificates()?.into_iter().map(certificate).collect();
        Ok(Response::new(pb::ListCertificatesResponse { certificates }))
    }

    async fn remove_certificate(
        &self,
        request: Request<pb::RemoveCertificateRequest>,
    ) -> Result<Response<pb::RemoveCertificateResponse>, Status> {
        let removed = self
            .hub
            .store
            .remove_certificate(&request.into_inner().name_or_fingerprint)?;
        self.flush().await?;
        tracing::info!(name = %removed.name, certificate = %short(&removed.fingerprint), "no longer trusted");
        Ok(Response::new(pb::RemoveCertificateResponse {}))
    }

    async fn create_token(&self, request: Request<pb::CreateTokenRequest>) -> Result<Response<pb::Token>, Status> {
        let request = request.into_inner();
        let lifetime = if request.expiry.trim().is_empty() {
            DEFAULT_TOKEN_LIFETIME_MS
        } else {
            let expiry = crate::schedule::Expiry::parse(request.expiry.trim())
                .map_err(|e| Status::invalid_argument(format!("expiry {}: {e}", request.expiry)))?;
            let now = crate::time::now_ms();
            expiry.expires_at(now) - now
        };
        let addresses = self.hub.token_addresses()?;
        let (pending, secret) = self.hub.store.create_token(&request.name, lifetime, &addresses)?;
        self.flush().await?;
        let fingerprint = self.hub.identity.fingerprint.clone();
        let encoded = EnrolToken {
            name: pending.name.clone(),
            addresses: addresses.clone(),
            fingerprint: fingerprint.clone(),
            secret,
            expires_at: pending.expires_at_ms / 1000,
        }
        .encode();
        tracing::info!(name = %pending.name, "issued an enrolment token");
        Ok(Response::new(pb::Token {
            token: encoded,
            ..token(&pending, &fingerprint)
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let fingerprint = &self.hub.identity.fingerprint;
        let tokens = self.hub.store.tokens()?.iter().map(|t| token(t, fingerprint)).collect();
        Ok(Response::new(pb::ListTokensResponse { tokens }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        self.hub.store.revoke_token(&request.into_inner().name)?;
        self.flush().await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn enrol(&self, request: Request<pb::EnrolRequest>) -> Result<Response<pb::TrustedCertificate>, Status> {
        let Some(presented) = access::peer_certificate(request.extensions()) else {
            return Err(Status::failed_precondition(
                "enrolment is over TLS only, with the client certificate to trust",
            ));
        };
        let enrolled = self.hub.store.enrol(&request.into_inner().secret, &presented)?;
        self.flush().await?;
        tracing::info!(name = %enrolled.name, certificate = %short(&enrolled.fingerprint), "enrolled a client");
        Ok(Response::new(certificate(enrolled)))
    }
}
