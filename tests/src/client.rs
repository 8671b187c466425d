//! A `sysc` user with its own ~/.config/sysc (certificate, remotes) and no local daemon:
//! another machine's command line.

use std::path::PathBuf;
use std::process::Command;

use crate::daemon::{Output, binary};

pub struct Client {
    pub dir: tempfile::TempDir,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("sysc")
    }

    pub fn certificate(&self) -> PathBuf {
        self.config_dir().join("client.crt")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(binary("sysc"));
        command
            .args(args)
            .env("SYSC_CONFIG_DIR", self.config_dir())
            .env("SYSC_SOCKET", self.dir.path().join("no-daemon.socket"));
        command
    }

    pub fn sysc(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().expect("run sysc");
        Output {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.sysc(args);
        assert!(out.success(), "sysc {args:?} failed: {}\n{}", out.stdout, out.stderr);
        out.stdout
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.sysc(args);
        assert!(!out.success(), "sysc {args:?} should have failed: {}", out.stdout);
        out.stderr
    }
}

/// The token in `config trust add`'s output: its longest word.
pub fn token_of(output: &str) -> String {
    output
        .split_whitespace()
        .max_by_key(|w| w.len())
        .expect("a token")
        .to_string()
}

/// A gRPC call without TLS to `endpoint` (host:port): what a plaintext client gets from
/// a TLS port. Ok only if it was answered.
pub fn plaintext_call(endpoint: &str) -> Result<(), String> {
    let timeout = std::time::Duration::from_secs(5);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))
            .unwrap()
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        sysc_proto::v1::server_client::ServerClient::new(channel)
            .info(sysc_proto::v1::ServerInfoRequest {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}
