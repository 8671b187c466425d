//! `sysc config trust`: which clients a daemon lets in over TLS, by certificate, and the
//! one-time tokens new clients enrol with.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use sysc_proto::v1::trust_client::TrustClient;
use sysc_proto::v1::{
    AddCertificateRequest, CreateTokenRequest, ListCertificatesRequest, ListTokensRequest, RemoveCertificateRequest,
    RevokeTokenRequest, Token, TrustedCertificate,
};
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format::{self, Layout, Listing, OutputFormat};
use crate::remote::identity::{fingerprint, short};

#[derive(Subcommand)]
pub enum TrustCommand {
    /// Make a one-time token a new client enrols with (`sysc remote add REMOTE TOKEN`)
    ///
    /// The token names the server's addresses and certificate, so the client knows it
    /// reached the right server; once used, the client's certificate is trusted as NAME.
    ///
    /// Examples:
    ///   sysc config trust add laptop
    ///   sysc config trust add host1:ci --expiry 2H
    #[command(verbatim_doc_comment)]
    Add {
        /// The name the client will be trusted as
        #[arg(value_name = "[REMOTE:]NAME")]
        name: String,
        /// How long the token stays valid, e.g. 30M, 2H, 1d [default: 1d]
        #[arg(long, value_name = "DURATION")]
        expiry: Option<String>,
    },
    /// Trust a client certificate (PEM), e.g. another machine's ~/.config/sysc/client.crt
    #[command(override_usage = "sysc config trust add-certificate [OPTIONS] [REMOTE:] <FILE>")]
    AddCertificate {
        /// The certificate file, or the remote when FILE follows
        #[arg(value_name = "FILE")]
        first: String,
        /// The certificate file after REMOTE:
        #[arg(value_name = "FILE", hide = true)]
        file: Option<PathBuf>,
        /// The name to trust it as [default: client- and its fingerprint's first 12 digits]
        #[arg(long)]
        name: Option<String>,
    },
    /// List the trusted client certificates
    #[command(visible_alias = "ls")]
    List {
        /// The server to ask [default: the default remote]
        #[arg(value_name = "REMOTE:")]
        remote: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Stop trusting a certificate, by name or fingerprint (at least 12 digits of it)
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(value_name = "[REMOTE:]NAME|FINGERPRINT")]
        target: String,
    },
    /// List the tokens not used yet
    ListTokens {
        /// The server to ask [default: the default remote]
        #[arg(value_name = "REMOTE:")]
        remote: Option<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Revoke a token nobody has used yet
    RevokeToken {
        #[arg(value_name = "[REMOTE:]NAME")]
        name: String,
    },
}

/// Remote prefixes are gone by now (see remote::route).
pub async fn run(channel: Channel, command: TrustCommand) -> anyhow::Result<()> {
    let mut client = TrustClient::new(channel);
    match command {
        TrustCommand::Add { name, expiry } => {
            let request = CreateTokenRequest {
                name,
                expiry: expiry.unwrap_or_default(),
            };
            let token = client.create_token(request).await.map_err(rpc_error)?.into_inner();
            format::print(&describe_token(&token))?;
        }
        TrustCommand::AddCertificate { first, file, name } => {
            let path = file.unwrap_or_else(|| PathBuf::from(first));
            let (certificate, fingerprint) = read_certificate(&path)?;
            let name = name.unwrap_or_else(|| format!("client-{}", short(&fingerprint)));
            let request = AddCertificateRequest { name, certificate };
            let added = client.add_certificate(request).await.map_err(rpc_error)?.into_inner();
            format::print(&format!(
                "Certificate SHA256:{} trusted as {}\n",
                short(&added.fingerprint),
                added.name
            ))?;
        }
        TrustCommand::List { format: output, .. } => {
            let mut certificates = client
                .list_certificates(ListCertificatesRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .certificates;
            certificates.sort_by(|a, b| a.name.cmp(&b.name));
            format::print(&format::render(&certificates, output)?)?;
        }
        TrustCommand::Remove { target } => {
            let request = RemoveCertificateRequest {
                name_or_fingerprint: target,
            };
            client.remove_certificate(request).await.map_err(rpc_error)?;
        }
        TrustCommand::ListTokens { format: output, .. } => {
            let mut tokens = client
                .list_tokens(ListTokensRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner()
                .tokens;
            tokens.sort_by(|a, b| a.name.cmp(&b.name));
            format::print(&format::render(&tokens, output)?)?;
        }
        TrustCommand::RevokeToken { name } => {
            client
                .revoke_token(RevokeTokenRequest { name })
                .await
                .map_err(rpc_error)?;
        }
    }
    Ok(())
}

/// The token alone on its last line, so `| tail -1` hands it to a script.
fn describe_token(token: &Token) -> String {
    let expires = format::local_time(token.expires_at.as_ref()).unwrap_or_else(|| "-".to_string());
    let addresses = match token.addresses.as_slice() {
        [] => "no address (set core.https_address on the server)".to_string(),
        addresses => addresses.join(", "),
    };
    format!(
        "Token for {} (server certificate SHA256:{}, valid until {expires}, reaching the server at {addresses}):\n{}\n",
        token.name,
        short(&token.fingerprint),
        token.token
    )
}

/// Read and checked here, so a wrong file is named as the file, not as what the daemon
/// made of it.
fn read_certificate(path: &Path) -> anyhow::Result<(String, String)> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| anyhow::anyhow!("{} holds no PEM certificate", path.display()))?;
    Ok((pem, fingerprint(&der)))
}

#[derive(Debug, Serialize)]
pub struct CertificateRecord {
    name: String,
    fingerprint: String,
    added_at: Option<String>,
    certificate: String,
}

impl Listing for TrustedCertificate {
    type Record = CertificateRecord;
    const HEADER: &'static [&'static str] = &["NAME", "FINGERPRINT", "ADDED"];

    fn record(&self) -> CertificateRecord {
        CertificateRecord {
            name: self.name.clone(),
            fingerprint: self.fingerprint.clone(),
            added_at: format::rfc3339(self.added_at.as_ref()),
            certificate: self.certificate.clone(),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        vec![
            self.name.clone(),
            format::fingerprint_cell(layout, &self.fingerprint),
            format::local_time(self.added_at.as_ref()).unwrap_or_else(|| layout.empty().to_string()),
        ]
    }
}

#[derive(Debug, Serialize)]
pub struct TokenRecord {
    name: String,
    addresses: Vec<String>,
    fingerprint: String,
    created_at: Option<String>,
    expires_at: Option<String>,
}

impl Listing for Token {
    type Record = TokenRecord;
    const HEADER: &'static [&'static str] = &["NAME", "ADDRESSES", "CREATED", "EXPIRES"];

    fn record(&self) -> TokenRecord {
        TokenRecord {
            name: self.name.clone(),
            addresses: self.addresses.clone(),
            fingerprint: self.fingerprint.clone(),
            created_at: format::rfc3339(self.created_at.as_ref()),
            expires_at: format::rfc3339(self.expires_at.as_ref()),
        }
    }

    fn cells(&self, layout: Layout) -> Vec<String> {
        let time = |ts| format::local_time(ts).unwrap_or_else(|| layout.empty().to_string());
        vec![
            self.name.clone(),
            self.addresses.join(", "),
            time(self.created_at.as_ref()),
            time(self.expires_at.as_ref()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use sysc_proto::Timestamp;

    use super::*;

    #[test]
    fn the_token_is_the_last_line_and_the_longest_word() {
        let token = Token {
            name: "laptop".into(),
            token: "eyJ".to_string() + &"x".repeat(200),
            addresses: vec!["10.0.0.2:8443".into(), "[fd00::2]:8443".into()],
            fingerprint: "0123456789abcdef".repeat(4),
            created_at: None,
            expires_at: Some(Timestamp {
                seconds: 1_900_000_000,
                nanos: 0,
            }),
        };
        let text = describe_token(&token);
        assert_eq!(text.lines().last(), Some(token.token.as_str()));
        assert!(text.contains("10.0.0.2:8443, [fd00::2]:8443"), "{text}");
        assert!(text.contains("SHA256:0123456789ab,"), "{text}");
        let longest = text.split_whitespace().max_by_key(|w| w.len()).unwrap();
        assert_eq!(longest, token.token);
    }

    #[test]
    fn certificates_list_with_short_fingerprints_in_tables_only() {
        let certificate = TrustedCertificate {
            name: "laptop".into(),
            fingerprint: "0123456789abcdef".repeat(4),
            certificate: "PEM".into(),
            added_at: Some(Timestamp {
                seconds: 1_714_564_800,
                nanos: 0,
            }),
        };
        let csv = format::render(std::slice::from_ref(&certificate), OutputFormat::Csv).unwrap();
        assert!(
            csv.starts_with("NAME,FINGERPRINT,ADDED\nlaptop,0123456789abcdef0123"),
            "{csv}"
        );
        assert_eq!(certificate.cells(Layout::Table)[1], "0123456789ab");
        let json = format::render(&[certificate], OutputFormat::Json).unwrap();
        assert!(json.contains("\"added_at\": \"2024-05-01T12:00:00Z\""), "{json}");
    }

    #[test]
    fn a_certificate_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let path = dir.path().join("client.crt");
        std::fs::write(&path, made.cert.pem()).unwrap();
        let (pem, fp) = read_certificate(&path).unwrap();
        assert_eq!(pem, made.cert.pem());
        assert_eq!(fp, fingerprint(made.cert.der()));

        std::fs::write(&path, "junk").unwrap();
        let err = read_certificate(&path).unwrap_err().to_string();
        assert!(err.ends_with("client.crt holds no PEM certificate"), "{err}");
        let err = read_certificate(&dir.path().join("none")).unwrap_err();
        assert!(format!("{err:#}").starts_with("cannot read "), "{err:#}");
    }
}
