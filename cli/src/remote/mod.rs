//! Remotes: other machines' syscd, reached over TLS and named on the command line as
//! `REMOTE:NAME`. `sysc remote` keeps the list in config.yaml; `local` is this machine's
//! daemon on its unix socket.

mod add;
pub mod config;
pub mod identity;
mod manage;
pub mod route;
pub mod target;
pub mod tls;

use std::path::Path;

use clap::Subcommand;

use crate::format::OutputFormat;
use config::ConfigDir;

#[derive(Subcommand)]
pub enum RemoteCommand {
    /// Add a remote: with a token from its server, or by its address
    ///
    /// With a token (from `sysc config trust add NAME` on the server), the server is checked
    /// against the certificate fingerprint in the token and trusts this client from then on.
    /// With https://HOST[:PORT] (port 8443 by default), the server's fingerprint is shown, and
    /// recorded only with --accept-certificate; the server must then be told to trust this
    /// client's certificate (`sysc config trust add-certificate`).
    ///
    /// Examples:
    ///   sysc remote add host1 eyJuYW1lIjoi...
    ///   sysc remote add host2 https://10.0.0.3:8443 --accept-certificate
    #[command(verbatim_doc_comment)]
    Add {
        /// Name for the remote, as in NAME:web1
        #[arg(value_name = "NAME")]
        name: String,
        /// An enrolment token, or https://HOST[:PORT]
        #[arg(value_name = "TOKEN|URL")]
        target: String,
        /// Record the certificate the server at URL presents without checking it
        #[arg(long)]
        accept_certificate: bool,
    },
    /// List the remotes; the default one is marked with *
    #[command(visible_alias = "ls")]
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Make a remote the default: the one used when a name has no REMOTE: in front
    Switch {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Rename a remote
    Rename {
        #[arg(value_name = "OLD")]
        name: String,
        #[arg(value_name = "NEW")]
        new_name: String,
    },
    /// Forget a remote (the server still trusts this client until told otherwise)
    #[command(visible_alias = "rm")]
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Print the name of the default remote
    GetDefault,
}

/// `sysc remote`: local files only, except `add`, which talks to the new remote.
pub async fn run(socket: &Path, command: RemoteCommand) -> anyhow::Result<()> {
    let dir = ConfigDir::from_environment()?;
    match command {
        RemoteCommand::Add {
            name,
            target,
            accept_certificate,
        } => add::add(&dir, &name, &target, accept_certificate).await,
        RemoteCommand::List { format } => manage::list(&dir, socket, format),
        RemoteCommand::Switch { name } => manage::switch(&dir, &name),
        RemoteCommand::Rename { name, new_name } => manage::rename(&dir, &name, &new_name),
        RemoteCommand::Remove { name } => manage::remove(&dir, &name),
        RemoteCommand::GetDefault => manage::get_default(&dir),
    }
}
