//! `sysc version`: the client's version always, the daemon's when it answers.

use sysc_proto::v1::ServerInfoRequest;
use sysc_proto::v1::server_client::ServerClient;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format;

pub async fn show(daemon: anyhow::Result<Channel>) -> anyhow::Result<()> {
    format::print(&format!("client: {}\n", env!("CARGO_PKG_VERSION")))?;
    match daemon {
        Ok(channel) => {
            let info = ServerClient::new(channel)
                .info(ServerInfoRequest {})
                .await
                .map_err(rpc_error)?
                .into_inner();
            format::print(&format!("server: {}\n", info.version))?;
        }
        // Asking for the client's version is a fine thing to do without a daemon.
        Err(err) => eprintln!("warning: {err:#}"),
    }
    Ok(())
}
