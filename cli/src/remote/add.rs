//! `sysc remote add NAME TOKEN|https://HOST[:PORT]`: the one verb that trusts a server for
//! the first time, so the one that must be careful about which server it reached.

use anyhow::{anyhow, bail};
use sysc_proto::token::EnrolToken;
use sysc_proto::v1::server_client::ServerClient;
use sysc_proto::v1::trust_client::TrustClient;
use sysc_proto::v1::{EnrolRequest, ServerInfoRequest};
use tonic::Code;

use super::config::{ClientConfig, ConfigDir, RemoteEntry};
use super::identity::{Identity, short};
use super::tls::{self, Pin, normalize_fingerprint};
use crate::connect::rpc_error;
use crate::format;

/// syscd's usual TLS port, as Incus's.
const DEFAULT_PORT: u16 = 8443;

#[derive(Debug, PartialEq, Eq)]
enum Source {
    Token(EnrolToken),
    /// host:port.
    Address(String),
}

pub async fn add(dir: &ConfigDir, name: &str, target: &str, accept_certificate: bool) -> anyhow::Result<()> {
    let mut config = dir.load()?;
    config.check_new(name)?;
    match parse_source(target).map_err(anyhow::Error::msg)? {
        Source::Token(token) => {
            if accept_certificate {
                bail!("--accept-certificate is for https://HOST addresses: a token names its server's certificate");
            }
            add_with_token(dir, &mut config, name, token).await
        }
        Source::Address(address) => add_with_address(dir, &mut config, name, &address, accept_certificate).await,
    }
}

/// A token is base64url, which holds neither ':' nor '.', and an address needs one of them.
fn parse_source(text: &str) -> Result<Source, String> {
    if let Some(rest) = text.strip_prefix("https://") {
        return parse_address(rest).map(Source::Address);
    }
    if let Some(rest) = text.strip_prefix("http://") {
        return Err(format!("syscd serves remotes over TLS only: use https://{rest}"));
    }
    if text.contains([':', '.']) {
        return parse_address(text).map(Source::Address);
    }
    EnrolToken::decode(text)
        .map(Source::Token)
        .map_err(|err| format!("{text:?} is neither a token nor https://HOST[:PORT] ({err})"))
}

/// host:port, the port defaulted; IPv6 in brackets, as in URLs.
fn parse_address(text: &str) -> Result<String, String> {
    let address = text.trim_end_matches('/');
    let bad = || format!("{text:?} is not HOST[:PORT]");
    if address.is_empty() || address.contains(['/', '@', '?', '#']) {
        return Err(bad());
    }
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':').ok_or_else(bad)?),
        };
        (format!("[{host}]"), port)
    } else if address.matches(':').count() > 1 {
        // An IPv6 address without brackets is all colons: it has no port.
        (format!("[{address}]"), None)
    } else {
        match address.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (address.to_string(), None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(bad());
    }
    match port {
        None => Ok(format!("{host}:{DEFAULT_PORT}")),
        Some(port) if port.parse::<u16>().is_ok_and(|port| port > 0) => Ok(format!("{host}:{port}")),
        Some(_) => Err(bad()),
    }
}

async fn add_with_token(
    dir: &ConfigDir,
    config: &mut ClientConfig,
    name: &str,
    token: EnrolToken,
) -> anyhow::Result<()> {
    check_expiry(&token, chrono::Utc::now().timestamp())?;
    let pinned = normalize_fingerprint(&token.fingerprint)
        .ok_or_else(|| anyhow!("the token's certificate fingerprint is not a SHA-256"))?;
    if token.addresses.is_empty() {
        bail!("the token names no address to reach its server at (is core.https_address set there?)");
    }
    let identity = Identity::load_or_create(dir)?;
    // The server may have several addresses and only some reach here: the first that
    // answers with the pinned certificate is the one kept.
    let mut failures = Vec::new();
    for address in &token.addresses {
        let connected = match tls::connect(address, Pin::Fingerprint(pinned.clone()), &identity).await {
            Ok(connected) => connected,
            Err(err) => {
                failures.push(err.to_string());
                continue;
            }
        };
        TrustClient::new(connected.channel)
            .enrol(EnrolRequest {
                secret: token.secret.clone(),
            })
            .await
            .map_err(|status| anyhow!("the server at {address} refused the token: {}", rpc_error(status)))?;
        return save(dir, config, name, address, &pinned);
    }
    bail!("cannot reach the server the token names: {}", failures.join("; "))
}

fn check_expiry(token: &EnrolToken, now: i64) -> anyhow::Result<()> {
    if token.expires_at > now {
        return Ok(());
    }
    let when = format::local_time(Some(&sysc_proto::Timestamp {
        seconds: token.expires_at,
        nanos: 0,
    }))
    .unwrap_or_else(|| token.expires_at.to_string());
    bail!("token expired at {when}: ask the server for a new one (sysc config trust add)")
}

async fn add_with_address(
    dir: &ConfigDir,
    config: &mut ClientConfig,
    name: &str,
    address: &str,
    accept_certificate: bool,
) -> anyhow::Result<()> {
    let identity = Identity::load_or_create(dir)?;
    let connected = tls::connect(address, Pin::Any, &identity).await?;
    let fingerprint = connected.fingerprint;
    format::print(&format!("Certificate fingerprint: SHA256:{fingerprint}\n"))?;
    if !accept_certificate {
        bail!(
            "pass --accept-certificate if SHA256:{fingerprint} is the server's (`sysc config show` there shows it), \
             or use a token (`sysc config trust add NAME` there)"
        );
    }
    save(dir, config, name, address, &fingerprint)?;
    // Whether it trusts us is the server's call; say what it takes if it does not yet.
    match ServerClient::new(connected.channel).info(ServerInfoRequest {}).await {
        Ok(_) => {}
        Err(status) if status.code() == Code::PermissionDenied => eprintln!(
            "The server does not trust this client yet. Copy {} to it and run there:\n  \
             sysc config trust add-certificate {}",
            identity.cert_path.display(),
            identity.cert_path.display()
        ),
        Err(status) => eprintln!("warning: the server at {address} answered: {}", rpc_error(status)),
    }
    Ok(())
}

fn save(
    dir: &ConfigDir,
    config: &mut ClientConfig,
    name: &str,
    address: &str,
    fingerprint: &str,
) -> anyhow::Result<()> {
    let entry = RemoteEntry {
        address: address.to_string(),
        fingerprint: fingerprint.to_string(),
    };
    config.add(name, entry)?;
    dir.save(config)?;
    format::print(&format!("Remote {name} added (SHA256:{})\n", short(fingerprint)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_daemon::FakeDaemon;
    use crate::remote::tls::tests::{acceptor, server_cert};

    fn token(addresses: &[&str], fingerprint: &str, expires_at: i64) -> EnrolToken {
        EnrolToken {
            name: "laptop".into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            fingerprint: fingerprint.into(),
            secret: "s3cret".into(),
            expires_at,
        }
    }

    #[test]
    fn the_second_argument_is_a_token_or_an_address() {
        let t = token(&["10.0.0.2:8443"], &"ab".repeat(32), 1);
        assert_eq!(parse_source(&t.encode()), Ok(Source::Token(t)));
        let address = |text: &str| {
            parse_source(text).map(|source| match source {
                Source::Address(address) => address,
                Source::Token(_) => panic!("{text} taken for a token"),
            })
        };
        assert_eq!(address("https://10.0.0.2:8443").unwrap(), "10.0.0.2:8443");
        assert_eq!(address("https://host1.lan/").unwrap(), "host1.lan:8443");
        assert_eq!(address("host1.lan:9443").unwrap(), "host1.lan:9443");
        assert_eq!(address("https://[fd00::2]:9443").unwrap(), "[fd00::2]:9443");
        assert_eq!(address("https://[fd00::2]").unwrap(), "[fd00::2]:8443");
        assert_eq!(address("fd00::2").unwrap(), "[fd00::2]:8443");
        for bad in [
            "https://",
            "https://h:0",
            "https://h:x",
            "https://h/path",
            "https://:8443",
            "https://[::1",
        ] {
            assert!(parse_source(bad).is_err(), "{bad}");
        }
        assert!(
            parse_source("http://h:8443")
                .unwrap_err()
                .contains("use https://h:8443")
        );
        assert!(
            parse_source("garbage!")
                .unwrap_err()
                .contains("is neither a token nor https://")
        );
    }

    #[test]
    fn an_expired_token_is_refused_before_any_connection() {
        let t = token(&["10.0.0.2:8443"], "", 1_000);
        assert!(check_expiry(&t, 999).is_ok());
        let err = check_expiry(&t, 1_000).unwrap_err().to_string();
        assert!(err.starts_with("token expired at 19"), "{err}");
    }

    #[tokio::test]
    async fn an_address_shows_the_fingerprint_and_needs_accepting() {
        let daemon = FakeDaemon::start(vec![]).await;
        let cert = server_cert();
        let address = daemon.serve_tls(acceptor(&cert)).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_path_buf());

        let err = add(&dir, "host1", &format!("https://{address}"), false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("pass --accept-certificate if SHA256:{} is", cert.fingerprint)),
            "{err}"
        );
        assert!(dir.load().unwrap().remotes.is_empty());

        add(&dir, "host1", &format!("https://{address}"), true).await.unwrap();
        let config = dir.load().unwrap();
        assert_eq!(
            config.remotes["host1"],
            RemoteEntry {
                address: address.clone(),
                fingerprint: cert.fingerprint.clone()
            }
        );
        let err = add(&dir, "host1", &format!("https://{address}"), true)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "remote host1 exists already");
    }

    #[tokio::test]
    async fn a_token_whose_server_has_another_certificate_is_refused() {
        let daemon = FakeDaemon::start(vec![]).await;
        let cert = server_cert();
        let address = daemon.serve_tls(acceptor(&cert)).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::new(tmp.path().to_path_buf());
        let pinned = "cd".repeat(32);
        let t = token(&[&address], &pinned, i64::MAX);
        let err = add(&dir, "host1", &t.encode(), false).await.unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "cannot reach the server the token names: server at {address} presented certificate \
                 SHA256:{}, not the pinned SHA256:{pinned}",
                cert.fingerprint
            )
        );
        assert!(dir.load().unwrap().remotes.is_empty());
    }
}
