//! The server's certificate: generated on first start, kept under the root directory.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Result, TrustError, fingerprint};

pub struct ServerIdentity {
    pub certificate_pem: String,
    pub certificate: CertificateDer<'static>,
    key_pem: String,
    pub fingerprint: String,
}

impl ServerIdentity {
    /// Loads `dir`/server.crt and server.key, making them first if there are none.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let (cert_path, key_path) = (dir.join("server.crt"), dir.join("server.key"));
        if !cert_path.exists() || !key_path.exists() {
            let host = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "sysc".into());
            let made = rcgen::generate_simple_self_signed(vec![host, "localhost".into()])
                .map_err(|e| TrustError::host("generate the server certificate", e))?;
            write_private(&key_path, &made.signing_key.serialize_pem())?;
            std::fs::write(&cert_path, made.cert.pem())
                .map_err(|e| TrustError::host(format!("write {}", cert_path.display()), e))?;
            tracing::info!(certificate = %cert_path.display(), "generated the server certificate");
        }
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|e| TrustError::host(format!("read {}", path.display()), e))
        };
        let certificate_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
            .map_err(|e| TrustError::host(format!("parse {}", cert_path.display()), e))?;
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TrustError::host(format!("parse {}", key_path.display()), e))?;
        Ok(Self {
            fingerprint: fingerprint(&certificate),
            certificate_pem,
            certificate,
            key_pem,
        })
    }

    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("checked when loaded")
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    let failed = |e: std::io::Error| TrustError::host(format!("write {}", path.display()), e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(failed)?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn made_once_then_loaded_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let first = ServerIdentity::load_or_create(dir.path()).unwrap();
        let again = ServerIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        assert_eq!(first.fingerprint.len(), 64);
        let key = std::fs::metadata(dir.path().join("server.key")).unwrap();
        assert_eq!(key.mode() & 0o777, 0o600);
        again.key();
    }
}
