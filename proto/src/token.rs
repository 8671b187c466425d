//! The enrolment token `sysc config trust add` prints and `sysc remote add` takes: what
//! a client needs to find the server, check it is the right one, and be trusted once.
//! Base64 (URL alphabet, no padding) of a small JSON object, as Incus encodes its own.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolToken {
    /// The name the client's certificate is trusted under.
    pub name: String,
    /// host:port of the server's TLS listener, best first.
    pub addresses: Vec<String>,
    /// The server certificate's `certificate_fingerprint`.
    pub fingerprint: String,
    pub secret: String,
    /// Seconds since the epoch.
    pub expires_at: i64,
}

/// SHA-256 of a certificate's DER, lower-case hex: how servers and clients pin each other.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(der))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid base64")]
    Base64,
    #[error("the token does not hold an enrolment token: {0}")]
    Json(String),
}

impl EnrolToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a token serializes"))
    }

    pub fn decode(text: &str) -> Result<Self, TokenError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| TokenError::Base64)?;
        serde_json::from_slice(&bytes).map_err(|e| TokenError::Json(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_survives_the_round_trip_and_garbage_is_refused() {
        let token = EnrolToken {
            name: "laptop".into(),
            addresses: vec!["10.0.0.2:8443".into()],
            fingerprint: "ab".repeat(32),
            secret: "s3cret".into(),
            expires_at: 1_800_000_000,
        };
        assert_eq!(EnrolToken::decode(&token.encode()).unwrap(), token);
        assert!(matches!(EnrolToken::decode("not a token!"), Err(TokenError::Base64)));
        assert!(matches!(EnrolToken::decode("e30"), Err(TokenError::Json(_))));
    }
}
