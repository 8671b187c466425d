//! The client's certificate and key (client.crt, client.key): what it presents to every
//! remote, and what a server's trust store pins. Made on first use of a remote feature.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{ConfigDir, write_atomically};

pub const CERT_FILE: &str = "client.crt";
const KEY_FILE: &str = "client.key";
const LOCK_FILE: &str = ".client.lock";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot make the client certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} holds no {what} in PEM", .path.display())]
    Pem { path: PathBuf, what: &'static str },
    #[error("{} exists but {} does not; move it away to have a new pair made", .present.display(), .missing.display())]
    HalfPair { present: PathBuf, missing: PathBuf },
}

pub struct Identity {
    /// PEM, as servers are given it (`sysc config trust add-certificate`).
    pub cert_path: PathBuf,
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The pair in `dir`, made there first if there is none.
    pub fn load_or_create(dir: &ConfigDir) -> Result<Self, IdentityError> {
        if let Some(identity) = Self::load(dir)? {
            return Ok(identity);
        }
        // Two clients starting at once must not each write half of a pair: one makes it
        // under the lock, the other then finds it.
        let _lock = lock(dir)?;
        if let Some(identity) = Self::load(dir)? {
            return Ok(identity);
        }
        generate(dir)?;
        Self::load(dir)?.ok_or_else(|| IdentityError::Read {
            path: dir.file(CERT_FILE),
            source: io::ErrorKind::NotFound.into(),
        })
    }

    /// None while neither file exists.
    fn load(dir: &ConfigDir) -> Result<Option<Self>, IdentityError> {
        let cert_path = dir.file(CERT_FILE);
        let key_path = dir.file(KEY_FILE);
        let (cert_pem, key_pem) = match (read(&cert_path)?, read(&key_path)?) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(IdentityError::HalfPair {
                    present: cert_path,
                    missing: key_path,
                });
            }
            (None, Some(_)) => {
                return Err(IdentityError::HalfPair {
                    present: key_path,
                    missing: cert_path,
                });
            }
        };
        let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|_| IdentityError::Pem {
            path: cert_path.clone(),
            what: "certificate",
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| IdentityError::Pem {
            path: key_path,
            what: "private key",
        })?;
        Ok(Some(Self { cert_path, cert, key }))
    }
}

pub use sysc_proto::token::certificate_fingerprint as fingerprint;

/// The first 12 hex digits, as lists show a fingerprint.
pub fn short(fingerprint: &str) -> &str {
    fingerprint.get(..12).unwrap_or(fingerprint)
}

fn read(path: &PathBuf) -> Result<Option<String>, IdentityError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.clone(),
            source,
        }),
    }
}

fn lock(dir: &ConfigDir) -> Result<Flock<File>, IdentityError> {
    let path = dir.file(LOCK_FILE);
    let write_error = |source| IdentityError::Write {
        path: path.clone(),
        source,
    };
    dir.create().map_err(write_error)?;
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(write_error)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| write_error(errno.into()))
}

/// The key is written (0600) before the certificate, so a certificate on disk always has
/// its key beside it.
fn generate(dir: &ConfigDir) -> Result<(), IdentityError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["sysc-client".to_string()])?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("sysc client {}", whoami()));
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key)?;
    for (file, data, mode) in [(KEY_FILE, key.serialize_pem(), 0o600), (CERT_FILE, cert.pem(), 0o644)] {
        let path = dir.file(file);
        write_atomically(dir, &path, data.as_bytes(), mode).map_err(|source| IdentityError::Write { path, source })?;
    }
    Ok(())
}

/// user@host, so a server's trust list shows whose certificate an entry is.
fn whoami() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| nix::unistd::getuid().to_string());
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default();
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_pair_is_made_once_private_and_stable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().join("cfg"));
        let made = Identity::load_or_create(&dir).unwrap();
        let mode = |name: &str| fs::metadata(dir.file(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode(KEY_FILE), 0o600);
        assert_eq!(mode(CERT_FILE), 0o644);
        let pem = fs::read_to_string(dir.file(CERT_FILE)).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_eq!(made.cert_path, dir.file(CERT_FILE));

        let loaded = Identity::load_or_create(&dir).unwrap();
        assert_eq!(fingerprint(&loaded.cert), fingerprint(&made.cert));
        assert_eq!(fingerprint(&loaded.cert).len(), 64);
        assert_eq!(loaded.key.secret_der(), made.key.secret_der());

        let other = tempfile::tempdir().unwrap();
        let other = Identity::load_or_create(&ConfigDir::new(other.path().to_path_buf())).unwrap();
        assert_ne!(fingerprint(&other.cert), fingerprint(&made.cert));
    }

    #[test]
    fn half_a_pair_is_refused_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_path_buf());
        Identity::load_or_create(&dir).unwrap();
        fs::remove_file(dir.file(KEY_FILE)).unwrap();
        let err = Identity::load_or_create(&dir).err().unwrap();
        assert!(matches!(err, IdentityError::HalfPair { .. }), "{err}");
        assert!(dir.file(CERT_FILE).exists());

        fs::write(dir.file(KEY_FILE), "junk").unwrap();
        let err = Identity::load_or_create(&dir).err().unwrap().to_string();
        assert!(err.ends_with("client.key holds no private key in PEM"), "{err}");
    }

    #[test]
    fn fingerprints_are_sha256_hex() {
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(short("e3b0c44298fc1c149afbf4c8996fb924"), "e3b0c44298fc");
        assert_eq!(short("abc"), "abc");
    }
}
