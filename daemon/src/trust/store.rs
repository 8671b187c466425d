//! Trusted client certificates (by SHA-256 fingerprint) and pending enrolment tokens,
//! in the daemon's database. Callers flush the database after a change.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{Result, TrustError, fingerprint, short};
use crate::db::Db;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedCertificate {
    pub name: String,
    pub fingerprint: String,
    pub pem: String,
    pub added_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingToken {
    /// What the enrolled certificate will be called.
    pub name: String,
    /// SHA-256 of the secret: the secret itself is only ever in the token.
    pub secret_sha256: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Where the token told clients to connect.
    #[serde(default)]
    pub addresses: Vec<String>,
}

#[derive(Clone)]
pub struct TrustStore {
    /// By fingerprint.
    certificates: sled::Tree,
    /// By name.
    tokens: sled::Tree,
}

/// Names of certificates and tokens: 1 to 64 letters, digits, '.', '_', '-' and '@'.
fn check_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if valid {
        Ok(())
    } else {
        Err(TrustError::Invalid(format!(
            "name {name:?} is not 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> TrustError {
    TrustError::host(format!("database: corrupt {what} record"), e)
}

impl TrustStore {
    pub fn open(db: &Db) -> Result<Self> {
        let open = |name| {
            db.open_tree(name)
                .map_err(|e| TrustError::host(format!("open {name}"), e))
        };
        Ok(Self {
            certificates: open("trusted_certificates")?,
            tokens: open("enrolment_tokens")?,
        })
    }

    /// Asked on every call over TLS.
    pub fn is_trusted(&self, fingerprint: &str) -> bool {
        self.certificates.contains_key(fingerprint).unwrap_or(false)
    }

    /// Completes when the certificate is removed from the store. Made before the call's
    /// trust is checked, so no removal falls between the check and the watch.
    pub fn removal(&self, fingerprint: &str) -> impl Future<Output = ()> + Send + 'static {
        let mut events = self.certificates.watch_prefix(fingerprint.as_bytes());
        async move {
            while let Some(event) = (&mut events).await {
                if matches!(event, sled::Event::Remove { .. }) {
                    return;
                }
            }
            // The database is closing: the daemon is stopping, which ends the call anyway.
            std::future::pending().await
        }
    }

    pub fn certificates(&self) -> Result<Vec<TrustedCertificate>> {
        let mut all: Vec<TrustedCertificate> = self
            .certificates
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(|e| TrustError::host("read the trust store", e))?;
                serde_json::from_slice(&v).map_err(|e| corrupt("certificate", e))
            })
            .collect::<Result<_>>()?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    fn by_name(&self, name: &str) -> Result<Option<TrustedCertificate>> {
        Ok(self.certificates()?.into_iter().find(|c| c.name == name))
    }

    /// Trusts a certificate given as PEM.
    pub fn add_certificate(&self, name: &str, pem: &str) -> Result<TrustedCertificate> {
        check_name(name)?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| TrustError::Invalid(format!("the certificate is not a PEM certificate: {e}")))?;
        self.trust(name, &der)
    }

    fn trust(&self, name: &str, der: &CertificateDer<'_>) -> Result<TrustedCertificate> {
        let record = self.record_for(name, der)?;
        self.certificates
            .insert(
                record.fingerprint.as_bytes(),
                serde_json::to_vec(&record).expect("serializes"),
            )
            .map_err(|e| TrustError::host("write the trust store", e))?;
        Ok(record)
    }

    /// The record a certificate would get, refused if its name or itself is trusted.
    fn record_for(&self, name: &str, der: &CertificateDer<'_>) -> Result<TrustedCertificate> {
        let fingerprint = fingerprint(der);
        if let Some(existing) = self
            .certificates()
            .ok()
            .and_then(|all| all.into_iter().find(|c| c.fingerprint == fingerprint || c.name == name))
        {
            let what = if existing.fingerprint == fingerprint {
                format!(
                    "certificate {} is already trusted as {}",
                    short(&fingerprint),
                    existing.name
                )
            } else {
                format!("a certificate named {name} is already trusted")
            };
            return Err(TrustError::Conflict(what));
        }
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            base64_lines(der)
        );
        Ok(TrustedCertificate {
            name: name.to_string(),
            fingerprint,
            pem,
            added_at_ms: crate::time::now_ms(),
        })
    }

    /// By name, or by a fingerprint prefix of at least 12 hex digits that is unique.
    pub fn remove_certificate(&self, name_or_fingerprint: &str) -> Result<TrustedCertificate> {
        let all = self.certificates()?;
        let wanted = name_or_fingerprint.trim_start_matches("SHA256:").to_ascii_lowercase();
        let mut found: Vec<&TrustedCertificate> = all.iter().filter(|c| c.name == name_or_fingerprint).collect();
        if found.is_empty() && wanted.len() >= 12 {
            found = all.iter().filter(|c| c.fingerprint.starts_with(&wanted)).collect();
        }
        let record = match found.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(TrustError::NotFound(format!(
                    "no trusted certificate {name_or_fingerprint}"
                )));
            }
            _ => {
                return Err(TrustError::Invalid(format!(
                    "{name_or_fingerprint} matches more than one certificate; give more of the fingerprint"
                )));
            }
        };
        self.certificates
            .remove(record.fingerprint.as_bytes())
            .map_err(|e| TrustError::host("write the trust store", e))?;
        Ok(record)
    }

    /// A new token under `name`; returns it with its secret, which is not stored.
    pub fn create_token(&self, name: &str, valid_ms: i64, addresses: &[String]) -> Result<(PendingToken, String)> {
        check_name(name)?;
        self.prune_tokens()?;
        if self.by_name(name)?.is_some() {
            return Err(TrustError::Conflict(format!(
                "a certificate named {name} is already trusted"
            )));
        }
        if self.tokens.contains_key(name).unwrap_or(false) {
            return Err(TrustError::Conflict(format!(
                "a token named {name} is pending; revoke it first"
            )));
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let now = crate::time::now_ms();
        let token = PendingToken {
            name: name.to_string(),
            secret_sha256: hash(&secret),
            created_at_ms: now,
            expires_at_ms: now + valid_ms,
            addresses: addresses.to_vec(),
        };
        self.tokens
            .insert(name, serde_json::to_vec(&token).expect("serializes"))
            .map_err(|e| TrustError::host("write the token", e))?;
        Ok((token, secret))
    }

    /// Pending tokens, expired ones pruned first.
    pub fn tokens(&self) -> Result<Vec<PendingToken>> {
        self.prune_tokens()?;
        self.all_tokens()
    }

    fn all_tokens(&self) -> Result<Vec<PendingToken>> {
        self.tokens
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(|e| TrustError::host("read the tokens", e))?;
                serde_json::from_slice(&v).map_err(|e| corrupt("token", e))
            })
            .collect()
    }

    fn prune_tokens(&self) -> Result<()> {
        let now = crate::time::now_ms();
        for token in self.all_tokens()? {
            if token.expires_at_ms <= now {
                let _ = self.tokens.remove(token.name.as_bytes());
            }
        }
        Ok(())
    }

    pub fn revoke_token(&self, name: &str) -> Result<()> {
        match self.tokens.remove(name) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(TrustError::NotFound(format!("no pending token {name}"))),
            Err(e) => Err(TrustError::host("write the tokens", e)),
        }
    }

    /// Uses up the token whose secret this is and trusts `der` under its name, in one
    /// transaction: a token works once, however many clients race with it.
    pub fn enrol(&self, secret: &str, der: &CertificateDer<'_>) -> Result<TrustedCertificate> {
        let wanted = hash(secret);
        let unknown = || TrustError::Refused("the token is not valid (used, revoked or never issued)".into());
        let token = self
            .all_tokens()?
            .into_iter()
            .find(|t| t.secret_sha256 == wanted)
            .ok_or_else(unknown)?;
        if token.expires_at_ms <= crate::time::now_ms() {
            let _ = self.tokens.remove(token.name.as_bytes());
            return Err(TrustError::Refused(format!("the token for {} has expired", token.name)));
        }
        let record = self.record_for(&token.name, der)?;
        let value = serde_json::to_vec(&record).expect("serializes");
        (&self.tokens, &self.certificates)
            .transaction(|(tokens, certificates)| {
                if tokens.remove(token.name.as_bytes())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                certificates.insert(record.fingerprint.as_bytes(), value.as_slice())?;
                Ok(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(()) => unknown(),
                sled::transaction::TransactionError::Storage(e) => TrustError::host("write the trust store", e),
            })?;
        Ok(record)
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TrustStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db")).unwrap();
        (dir, TrustStore::open(&db).unwrap())
    }

    fn cert() -> (String, CertificateDer<'static>) {
        let made = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
        (made.cert.pem(), made.cert.der().clone())
    }

    #[test]
    fn a_token_enrols_once_and_its_certificate_is_trusted() {
        let (_dir, store) = store();
        let (_, der) = cert();
        let (token, secret) = store.create_token("laptop", 60_000, &[]).unwrap();
        assert_eq!(store.tokens().unwrap(), vec![token]);
        let trusted = store.enrol(&secret, &der).unwrap();
        assert_eq!(trusted.name, "laptop");
        assert!(store.is_trusted(&fingerprint(&der)));
        assert!(store.tokens().unwrap().is_empty());
        let (_, other) = cert();
        let err = store.enrol(&secret, &other).unwrap_err().to_string();
        assert!(err.contains("not valid (used, revoked or never issued)"), "{err}");
        assert!(!store.is_trusted(&fingerprint(&other)));
    }

    #[test]
    fn expired_and_revoked_tokens_are_refused() {
        let (_dir, store) = store();
        let (_, der) = cert();
        let (_, secret) = store.create_token("old", -1, &[]).unwrap();
        let err = store.enrol(&secret, &der).unwrap_err().to_string();
        assert!(err.contains("has expired"), "{err}");
        let (_, secret) = store.create_token("gone", 60_000, &[]).unwrap();
        store.revoke_token("gone").unwrap();
        assert!(store.enrol(&secret, &der).is_err());
        assert!(!store.is_trusted(&fingerprint(&der)));
        assert!(
            store
                .revoke_token("gone")
                .unwrap_err()
                .to_string()
                .contains("no pending token gone")
        );
    }

    #[test]
    fn certificates_are_added_listed_and_removed_by_name_or_fingerprint() {
        let (_dir, store) = store();
        let (pem, der) = cert();
        let added = store.add_certificate("ci", &pem).unwrap();
        assert_eq!(added.fingerprint, fingerprint(&der));
        assert!(
            store
                .add_certificate("again", &pem)
                .unwrap_err()
                .to_string()
                .contains("already trusted as ci")
        );
        let (pem2, _) = cert();
        assert!(
            store
                .add_certificate("ci", &pem2)
                .unwrap_err()
                .to_string()
                .contains("named ci")
        );
        assert!(store.add_certificate("x", "junk").is_err());
        assert!(store.add_certificate("bad name", &pem2).is_err());
        store.remove_certificate(&added.fingerprint[..12]).unwrap();
        assert!(!store.is_trusted(&added.fingerprint));
        assert!(store.remove_certificate("ci").is_err());
        let readded = store.add_certificate("ci", &added.pem).unwrap();
        assert_eq!(
            readded.fingerprint, added.fingerprint,
            "the stored PEM is the certificate"
        );
    }
}
