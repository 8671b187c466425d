//! `sysc copy`: a new container from an existing one or from one of its snapshots.

use sysc_proto::v1::CopyRequest;
use sysc_proto::v1::containers_client::ContainersClient;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format;
use crate::snapshot;

/// The container to copy, and the snapshot of it to copy instead, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub container: String,
    pub snapshot: Option<String>,
}

/// `SRC` or `SRC/SNAP`.
pub fn parse_source(arg: &str) -> Result<Source, String> {
    let (container, snapshot) = snapshot::parse_target(arg, None)?;
    Ok(Source { container, snapshot })
}

pub struct CopyOptions {
    pub source: Source,
    pub name: String,
    pub instance_only: bool,
    /// None: the source's pool.
    pub pool: Option<String>,
    pub config: Vec<(String, String)>,
}

pub async fn copy(channel: Channel, options: CopyOptions) -> anyhow::Result<()> {
    let request = request(options);
    let from = match request.snapshot.as_str() {
        "" => request.source.clone(),
        snapshot => format!("{}/{snapshot}", request.source),
    };
    let container = ContainersClient::new(channel)
        .copy(request)
        .await
        .map_err(rpc_error)?
        .into_inner();
    format::print(&format!("Container {} copied from {from}\n", container.name))?;
    Ok(())
}

fn request(options: CopyOptions) -> CopyRequest {
    CopyRequest {
        source: options.source.container,
        snapshot: options.source.snapshot.unwrap_or_default(),
        name: options.name,
        instance_only: options.instance_only,
        pool: options.pool.unwrap_or_default(),
        // A repeated key keeps its last value, as with `create -c`.
        config: options.config.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_is_a_container_or_one_of_its_snapshots() {
        assert_eq!(
            parse_source("web1"),
            Ok(Source {
                container: "web1".into(),
                snapshot: None
            })
        );
        assert_eq!(
            parse_source("web1/snap0"),
            Ok(Source {
                container: "web1".into(),
                snapshot: Some("snap0".into())
            })
        );
        assert!(parse_source("web1/").is_err());
        assert!(parse_source("/snap0").is_err());
    }

    #[test]
    fn options_reach_the_request() {
        let request = request(CopyOptions {
            source: parse_source("web1/snap0").unwrap(),
            name: "web2".into(),
            instance_only: true,
            pool: Some("fast".into()),
            config: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        });
        assert_eq!((request.source.as_str(), request.snapshot.as_str()), ("web1", "snap0"));
        assert_eq!(request.name, "web2");
        assert!(request.instance_only);
        assert_eq!(request.pool, "fast");
        assert_eq!(request.config.get("a").map(String::as_str), Some("2"));
    }
}
