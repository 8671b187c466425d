//! `sysc copy` and `sysc move`: a new container from an existing one or from one of its
//! snapshots, on the same remote or another one, and a container taken elsewhere.
//!
//! Within one remote a copy is the daemon's own (Containers.Copy) and a move a rename.
//! Between remotes the container is relayed through this client: Backups.Export on the
//! source daemon, each chunk handed on to Backups.Import on the target as it comes, so no
//! more than a few chunks are held here, however large the container. The archive is
//! uncompressed: relayed on one machine or a LAN, zstd costs both daemons more CPU time
//! than it saves in bytes, and the target checks every file's checksum all the same.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use sysc_proto::v1::backups_client::BackupsClient;
use sysc_proto::v1::containers_client::ContainersClient;
use sysc_proto::v1::files_client::FilesClient;
use sysc_proto::v1::{
    self as pb, Container, ContainerState, CopyRequest, DeleteRequest, ExportRequest, GetRequest, ImportHeader,
    ImportRequest, RenameRequest, StartRequest, StopRequest, UpdateConfigRequest, export_response, import_request,
    push_file_request,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::connect::rpc_error;
use crate::format;
use crate::interrupt::unless_interrupted;
use crate::progress::Transfer;
use crate::snapshot;

/// Chunks of the archive between the export and the import: all a relay holds in memory.
const CHUNKS_AHEAD: usize = 4;

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

/// A daemon, and the remote name it has on the command line.
pub struct Side {
    pub remote: String,
    pub channel: Channel,
}

impl Side {
    pub fn new(remote: String, channel: Channel) -> Self {
        Self { remote, channel }
    }

    fn show(&self, name: &str) -> String {
        format!("{}:{name}", self.remote)
    }
}

/// `sysc copy` within one remote.
pub async fn copy(channel: Channel, mut options: CopyOptions) -> anyhow::Result<()> {
    if options.name.is_empty() {
        options.name = options.source.container.clone();
    }
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

/// `sysc copy` from one remote to another: exported, relayed, imported. Like a copy
/// within a daemon, the new container gets its own MACs and id range (Import gives it the
/// target's), its name as hostname (Import renames) and a new machine-id (written here:
/// an import restoring a backup keeps it). A running source keeps running; it is exported
/// from a snapshot taken for the purpose.
pub async fn copy_across(from: Side, to: Side, mut options: CopyOptions) -> anyhow::Result<()> {
    let source = options.source.container.clone();
    if options.source.snapshot.is_some() {
        bail!("copying a snapshot to another remote is not supported (copy it within its remote first)");
    }
    if options.name.is_empty() {
        options.name = source.clone();
    }
    let name = options.name.clone();
    get(&from.channel, &source).await?;
    refuse_existing(&to, &name).await?;
    let message = format!("Copying {} to {}", from.show(&source), to.show(&name));
    let relayed = unless_interrupted(relay(
        from.channel.clone(),
        to.channel.clone(),
        export_request(&source, options.instance_only),
        ImportHeader {
            name: name.clone(),
            pool: options.pool.clone().unwrap_or_default(),
        },
        &Transfer::new(message),
    ))
    .await
    .with_context(|| format!("copy {} to {}", from.show(&source), to.show(&name)))?;
    if let Err(err) = make_new_machine(&to.channel, &relayed.name, &options.config).await {
        let undone = delete(&to.channel, &relayed.name, true).await;
        return Err(err.context(match undone {
            Ok(()) => format!("copy {} to {}", from.show(&source), to.show(&name)),
            Err(undo) => format!(
                "copy {} to {} (and deleting the copy failed too: {undo:#})",
                from.show(&source),
                to.show(&name)
            ),
        }));
    }
    format::print(&format!(
        "Container {} copied from {}\n",
        to.show(&relayed.name),
        from.show(&source)
    ))?;
    Ok(())
}

/// What makes an imported container another machine, and the config asked for.
async fn make_new_machine(target: &Channel, name: &str, config: &[(String, String)]) -> anyhow::Result<()> {
    let machine_id = format!("{}\n", hex_id());
    let header = pb::PushFileRequest {
        request: Some(push_file_request::Request::Header(pb::PushFileHeader {
            name: name.to_string(),
            path: b"/etc/machine-id".to_vec(),
            source_name: Vec::new(),
            tree: false,
            create_dirs: false,
            uid: Some(0),
            gid: Some(0),
            mode: Some(0o644),
        })),
    };
    let data = pb::PushFileRequest {
        request: Some(push_file_request::Request::Data(machine_id.into_bytes().into())),
    };
    let end = pb::PushFileRequest {
        request: Some(push_file_request::Request::End(pb::PushFileEnd {})),
    };
    FilesClient::new(target.clone())
        .push(tokio_stream::iter([header, data, end]))
        .await
        .map_err(rpc_error)
        .context("write a new /etc/machine-id")?;
    if !config.is_empty() {
        ContainersClient::new(target.clone())
            .update_config(UpdateConfigRequest {
                name: name.to_string(),
                // A repeated key keeps its last value, as with `create -c`.
                set: config.iter().cloned().collect(),
                unset: Vec::new(),
                replace: false,
                if_unchanged: None,
            })
            .await
            .map_err(rpc_error)?;
    }
    Ok(())
}

/// 128 random bits in hex, as systemd writes a machine-id.
fn hex_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    hex::encode(bytes)
}

pub struct MoveOptions {
    pub name: String,
    /// "": the same name.
    pub new_name: String,
    pub instance_only: bool,
}

/// `sysc move` within one remote: a rename, which needs the container stopped, so a
/// running one is stopped first and started again after.
pub async fn move_within(at: Side, options: MoveOptions) -> anyhow::Result<()> {
    let MoveOptions { name, new_name, .. } = options;
    if new_name.is_empty() || new_name == name {
        bail!("{} is already there: name another remote or a new name", at.show(&name));
    }
    let was_running = is_running(&get(&at.channel, &name).await?);
    let mut client = ContainersClient::new(at.channel.clone());
    if was_running {
        eprintln!("Stopping {} to rename it; it is started again after", at.show(&name));
        stop(&at.channel, &name).await?;
    }
    if let Err(err) = client
        .rename(RenameRequest {
            name: name.clone(),
            new_name: new_name.clone(),
        })
        .await
    {
        let err = rpc_error(err);
        if was_running {
            return Err(restarted(&at, &name, err).await);
        }
        return Err(err);
    }
    if was_running {
        start(&at.channel, &new_name)
            .await
            .with_context(|| format!("{name} was renamed to {new_name}, but starting it again failed"))?;
        format::print(&format!(
            "Container {name} renamed to {new_name} (stopped for the rename and started again)\n"
        ))?;
    } else {
        format::print(&format!("Container {name} renamed to {new_name}\n"))?;
    }
    Ok(())
}

/// `sysc move` from one remote to another. A running container is stopped cleanly,
/// copied across (with its snapshots unless --instance-only), started on the target, and
/// only then deleted from the source, snapshots and all. Until that delete, a failure
/// deletes what was made on the target and leaves the source as it was, started again if
/// it had been running. The moved container keeps its machine-id and hostname; its MACs
/// and id range are the target's.
pub async fn move_across(from: Side, to: Side, options: MoveOptions) -> anyhow::Result<()> {
    let name = options.name.clone();
    let new_name = match options.new_name.as_str() {
        "" => name.clone(),
        new_name => new_name.to_string(),
    };
    let what = format!("move {} to {}", from.show(&name), to.show(&new_name));
    let was_running = is_running(&get(&from.channel, &name).await.context(what.clone())?);
    refuse_existing(&to, &new_name).await.context(what.clone())?;
    if was_running {
        eprintln!("Stopping {} for the move", from.show(&name));
        stop(&from.channel, &name).await.context(what.clone())?;
    }
    let relayed = unless_interrupted(relay(
        from.channel.clone(),
        to.channel.clone(),
        export_request(&name, options.instance_only),
        ImportHeader {
            name: new_name.clone(),
            pool: String::new(),
        },
        &Transfer::new(format!("Moving {} to {}", from.show(&name), to.show(&new_name))),
    ))
    .await;
    let moved = match relayed {
        Ok(moved) => moved,
        // The target daemon has removed what it imported of a failed archive.
        Err(err) => return Err(left_as_it_was(&from, &name, was_running, err.context(what)).await),
    };
    if was_running && let Err(err) = start(&to.channel, &moved.name).await {
        let err = match delete(&to.channel, &moved.name, true).await {
            Ok(()) => err.context(format!("{what}: starting it on {} failed", to.remote)),
            Err(undo) => err.context(format!(
                "{what}: starting it on {} failed, and so did deleting it there ({undo:#})",
                to.remote
            )),
        };
        return Err(left_as_it_was(&from, &name, was_running, err).await);
    }
    delete(&from.channel, &name, false).await.with_context(|| {
        format!(
            "{what}: {} is complete, but deleting {} failed",
            to.show(&moved.name),
            from.show(&name)
        )
    })?;
    let started = if was_running { " and started" } else { "" };
    format::print(&format!(
        "Container {} moved to {}{started}\n",
        from.show(&name),
        to.show(&moved.name)
    ))?;
    Ok(())
}

/// `err`, after starting the source again if it had been running.
async fn left_as_it_was(from: &Side, name: &str, was_running: bool, err: anyhow::Error) -> anyhow::Error {
    if was_running {
        restarted(from, name, err).await
    } else {
        err.context(format!("{} is left as it was", from.show(name)))
    }
}

async fn restarted(at: &Side, name: &str, err: anyhow::Error) -> anyhow::Error {
    match start(&at.channel, name).await {
        Ok(()) => err.context(format!("{} is left as it was, running again", at.show(name))),
        Err(start) => err.context(format!(
            "{} is left stopped: starting it again failed ({start:#})",
            at.show(name)
        )),
    }
}

fn export_request(name: &str, instance_only: bool) -> ExportRequest {
    ExportRequest {
        name: name.to_string(),
        instance_only,
        compression: pb::Compression::None as i32,
    }
}

/// Streams the export of the source into an import on the target, chunk by chunk.
async fn relay(
    source: Channel,
    target: Channel,
    export: ExportRequest,
    header: ImportHeader,
    progress: &Transfer,
) -> anyhow::Result<Container> {
    let mut responses = BackupsClient::new(source)
        .export(export)
        .await
        .map_err(rpc_error)
        .context("export")?
        .into_inner();
    let (chunks, queued) = mpsc::channel::<Vec<u8>>(CHUNKS_AHEAD);
    let header = ImportRequest {
        request: Some(import_request::Request::Header(header)),
    };
    let data = ReceiverStream::new(queued).map(|chunk| ImportRequest {
        request: Some(import_request::Request::Data(chunk)),
    });
    let mut client = BackupsClient::new(target);
    let call = client.import(tokio_stream::once(header).chain(data));
    tokio::pin!(call);
    // Owns the sender: when it returns, for whatever reason, the import's stream ends.
    let pump = async move {
        let mut relayed = 0;
        while let Some(response) = responses.message().await.map_err(rpc_error)? {
            match response.response {
                Some(export_response::Response::Header(header)) => progress.set_total(header.total_bytes),
                Some(export_response::Response::Data(data)) => {
                    relayed += data.len();
                    // A send fails once the import is over; its answer says why.
                    if chunks.send(data).await.is_err() {
                        return Ok(());
                    }
                }
                Some(export_response::Response::Progress(archived)) => progress.set_position(archived),
                None => {}
            }
        }
        if relayed == 0 {
            bail!("the source ended the export stream without sending any data");
        }
        Ok(())
    };
    tokio::pin!(pump);
    tokio::select! {
        // The target answered before the archive ended: a refusal, most likely.
        imported = &mut call => Ok(imported.map_err(rpc_error)?.into_inner()),
        pumped = &mut pump => match pumped {
            Ok(()) => Ok(call.await.map_err(rpc_error)?.into_inner()),
            Err(err) => {
                // The archive the target has is cut short: it refuses it and removes what
                // it made of it. Waiting for that answer means nothing is left there.
                let _ = tokio::time::timeout(Duration::from_secs(60), call).await;
                Err(err.context("export"))
            }
        },
    }
}

async fn get(channel: &Channel, name: &str) -> anyhow::Result<Container> {
    Ok(ContainersClient::new(channel.clone())
        .get(GetRequest { name: name.to_string() })
        .await
        .map_err(rpc_error)?
        .into_inner())
}

/// Refuses a name taken on the target before anything is stopped or streamed.
async fn refuse_existing(to: &Side, name: &str) -> anyhow::Result<()> {
    match ContainersClient::new(to.channel.clone())
        .get(GetRequest { name: name.to_string() })
        .await
    {
        Ok(_) => Err(anyhow!("container {} already exists", to.show(name))),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
        Err(status) => Err(rpc_error(status)),
    }
}

/// A paused container counts as running: it stops cleanly, and comes back running.
fn is_running(container: &Container) -> bool {
    container.state() != ContainerState::Stopped
}

async fn stop(channel: &Channel, name: &str) -> anyhow::Result<()> {
    ContainersClient::new(channel.clone())
        .stop(StopRequest {
            name: name.to_string(),
            force: false,
            timeout_seconds: 0,
        })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

async fn start(channel: &Channel, name: &str) -> anyhow::Result<()> {
    ContainersClient::new(channel.clone())
        .start(StartRequest { name: name.to_string() })
        .await
        .map_err(rpc_error)?;
    Ok(())
}

/// `force`: kill it first if it runs (a half-made copy); without, a source someone has
/// started again meanwhile is refused.
async fn delete(channel: &Channel, name: &str, force: bool) -> anyhow::Result<()> {
    ContainersClient::new(channel.clone())
        .delete(DeleteRequest {
            name: name.to_string(),
            force,
        })
        .await
        .map_err(rpc_error)?;
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

    use crate::fake_daemon::{Call, FakeDaemon};
    use tonic::Status;

    fn export_message(response: export_response::Response) -> Result<pb::ExportResponse, Status> {
        Ok(pb::ExportResponse {
            response: Some(response),
        })
    }

    fn header(total_bytes: u64) -> Result<pb::ExportResponse, Status> {
        export_message(export_response::Response::Header(pb::ExportHeader {
            total_bytes,
            snapshots: 1,
        }))
    }

    fn data(bytes: &[u8]) -> Result<pb::ExportResponse, Status> {
        export_message(export_response::Response::Data(bytes.to_vec()))
    }

    async fn relayed(source: &FakeDaemon, target: &FakeDaemon) -> anyhow::Result<Container> {
        relay(
            source.channel.clone(),
            target.channel.clone(),
            export_request("web1", true),
            ImportHeader {
                name: "web2".into(),
                pool: "fast".into(),
            },
            &Transfer::new("test".into()),
        )
        .await
    }

    #[tokio::test]
    async fn a_relay_hands_the_export_to_the_import_as_it_comes() {
        let (source, target) = (FakeDaemon::start(Vec::new()).await, FakeDaemon::start(Vec::new()).await);
        let big: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 253) as u8).collect();
        source.script_export(vec![
            header(10),
            data(b"backup.yaml\n"),
            export_message(export_response::Response::Progress(5)),
            data(&big),
            data(b"end"),
        ]);
        let container = relayed(&source, &target).await.unwrap();
        assert_eq!(container.name, "web2");
        assert_eq!(
            source.calls(),
            [Call::Export(ExportRequest {
                name: "web1".into(),
                instance_only: true,
                compression: pb::Compression::None as i32,
            })]
        );
        let calls = target.calls();
        let [Call::Import { header, chunks, data }] = calls.as_slice() else {
            panic!("{calls:?}")
        };
        assert_eq!((header.name.as_str(), header.pool.as_str()), ("web2", "fast"));
        // Chunk by chunk, as exported.
        assert_eq!(chunks, &[12, big.len(), 3]);
        let mut expected = b"backup.yaml\n".to_vec();
        expected.extend(&big);
        expected.extend(b"end");
        assert!(*data == expected, "the target got other bytes than the source sent");
    }

    #[tokio::test]
    async fn a_relay_fails_with_its_export() {
        let (source, target) = (FakeDaemon::start(Vec::new()).await, FakeDaemon::start(Vec::new()).await);
        source.script_export(vec![
            header(10),
            data(b"half an archive"),
            Err(Status::internal("read rootfs/etc/passwd: Input/output error")),
        ]);
        let err = relayed(&source, &target).await.unwrap_err();
        assert_eq!(format!("{err:#}"), "export: read rootfs/etc/passwd: Input/output error");

        source.script_export(vec![header(10)]);
        let err = relayed(&source, &target).await.unwrap_err();
        assert!(format!("{err:#}").contains("without sending any data"), "{err:#}");

        source.script_export(vec![Err(Status::not_found("container web1 not found"))]);
        let err = relayed(&source, &target).await.unwrap_err();
        assert_eq!(format!("{err:#}"), "export: container web1 not found");
    }

    #[tokio::test]
    async fn a_snapshot_is_not_copied_to_another_remote() {
        let (source, target) = (FakeDaemon::start(Vec::new()).await, FakeDaemon::start(Vec::new()).await);
        let options = CopyOptions {
            source: parse_source("web1/snap0").unwrap(),
            name: String::new(),
            instance_only: false,
            pool: None,
            config: Vec::new(),
        };
        let err = copy_across(
            Side::new("h1".into(), source.channel.clone()),
            Side::new("h2".into(), target.channel.clone()),
            options,
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("copying a snapshot to another remote is not supported"),
            "{err}"
        );
        assert!(source.calls().is_empty() && target.calls().is_empty());
    }

    #[test]
    fn machine_ids_are_new_each_time() {
        let (a, b) = (hex_id(), hex_id());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
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
