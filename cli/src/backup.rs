//! `sysc export` and `sysc import`: a container, with its snapshots, as one tarball and back.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::ValueEnum;
use sysc_proto::v1::backups_client::BackupsClient;
use sysc_proto::v1::{
    self as pb, Container, ExportRequest, ImportHeader, ImportRequest, export_response, import_request,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::connect::{os_message, rpc_error};
use crate::format;
use crate::interrupt::unless_interrupted;
use crate::landing::{Landing, landing};
use crate::partial::{Partial, directory_of};
use crate::progress::Transfer;

/// The FILE that means stdout for export and stdin for import.
const STANDARD_STREAM: &str = "-";

/// Size of the data messages of an import.
const CHUNK_BYTES: u64 = 1 << 20;

/// Chunks read ahead of the connection. With the HTTP/2 window, this is all an import holds
/// in memory, however large the archive.
const CHUNKS_AHEAD: usize = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    Zstd,
    None,
}

pub struct ExportOptions {
    pub name: String,
    /// "-" for stdout.
    pub file: PathBuf,
    pub instance_only: bool,
    pub compression: Compression,
}

pub async fn export(channel: Channel, options: ExportOptions) -> anyhow::Result<()> {
    let context = format!("export {}", options.name);
    export_to(channel, options).await.context(context)
}

async fn export_to(channel: Channel, options: ExportOptions) -> anyhow::Result<()> {
    let to_stdout = options.file.as_os_str() == STANDARD_STREAM;
    if to_stdout && io::stdout().is_terminal() {
        bail!("refusing to write the archive to a terminal; name a file or redirect stdout");
    }
    // Opened before the daemon starts archiving, so an unwritable directory costs nothing.
    let mut out = if to_stdout {
        Output::Stdout
    } else {
        match landing(&options.file)? {
            Landing::Replace(target) => Output::Partial {
                file: partial_file(&target)?,
                target,
            },
            Landing::Into(path) => {
                let file = File::options()
                    .write(true)
                    .open(&path)
                    .map_err(|err| anyhow!("open {}: {}", path.display(), os_message(&err)))?;
                if file.is_terminal() {
                    bail!("refusing to write the archive to a terminal; name a file or redirect stdout");
                }
                Output::Into(file)
            }
        }
    };

    let request = ExportRequest {
        name: options.name.clone(),
        instance_only: options.instance_only,
        compression: match options.compression {
            Compression::Zstd => pb::Compression::Zstd,
            Compression::None => pb::Compression::None,
        } as i32,
    };
    let progress = Transfer::new(format!("Exporting {}", options.name));
    let shown = options.file.display().to_string();
    unless_interrupted(async {
        match &mut out {
            Output::Stdout => receive(channel, request, &mut io::stdout(), "stdout", &progress).await,
            Output::Partial { file, .. } => receive(channel, request, file.file(), &shown, &progress).await,
            Output::Into(file) => receive(channel, request, file, &shown, &progress).await,
        }
    })
    .await?;
    match out {
        Output::Partial { file, target } => complete(file, &target),
        Output::Stdout | Output::Into(_) => Ok(()),
    }
}

/// Where an export's archive goes.
enum Output {
    Stdout,
    /// A file becoming `target` when complete.
    Partial {
        file: Partial,
        target: PathBuf,
    },
    /// A device or FIFO named on the command line, written into.
    Into(File),
}

/// A file beside `path` that becomes `path` only once it holds the whole archive: nameless
/// where the file system allows (nothing is left if sysc is killed), else a hidden name
/// that starts with a dot and ends in a random part, removed when dropped.
fn partial_file(path: &Path) -> anyhow::Result<Partial> {
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} does not name a file", path.display()))?;
    Partial::beside(path, &format!(".{}.partial.", name.to_string_lossy()))
}

/// Durable before it is visible under its name: after a crash, FILE is whole or absent.
fn complete(mut partial: Partial, path: &Path) -> anyhow::Result<()> {
    partial
        .file()
        .sync_all()
        .map_err(|err| anyhow!("sync {}: {}", path.display(), os_message(&err)))?;
    partial
        .persist(path)
        .map_err(|err| anyhow!("put {} in place: {}", path.display(), os_message(&err)))?;
    // The rename reaches the disk with the directory. Some filesystems cannot sync a
    // directory; the file itself is whole and synced, which is no reason to fail then.
    if let Ok(dir) = File::open(directory_of(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Asks for the archive and writes its data to `out` (named `target` in errors) until the
/// stream ends.
async fn receive(
    channel: Channel,
    request: ExportRequest,
    out: &mut impl Write,
    target: &str,
    progress: &Transfer,
) -> anyhow::Result<()> {
    let mut responses = BackupsClient::new(channel)
        .export(request)
        .await
        .map_err(rpc_error)?
        .into_inner();
    let mut written = 0;
    while let Some(response) = responses.message().await.map_err(rpc_error)? {
        match response.response {
            Some(export_response::Response::Header(header)) => progress.set_total(header.total_bytes),
            Some(export_response::Response::Data(data)) => {
                out.write_all(&data).map_err(|err| write_error(target, &err))?;
                written += data.len();
            }
            Some(export_response::Response::Progress(archived)) => progress.set_position(archived),
            // A message kind added to the API after this client was built.
            None => {}
        }
    }
    // No archive is empty: a daemon that ends the stream at once has failed, and a cron job
    // must not keep an empty file as its backup.
    if written == 0 {
        bail!("syscd ended the export stream without sending any data");
    }
    out.flush().map_err(|err| write_error(target, &err))
}

/// Made from the text alone: an io::Error would let main take EPIPE for a reader that had
/// all it wanted (`sysc list | head`), and a cut-off archive is a failure.
fn write_error(target: &str, err: &io::Error) -> anyhow::Error {
    anyhow!("write {target}: {}", os_message(err))
}

pub struct ImportOptions {
    /// "-" for stdin.
    pub file: PathBuf,
    /// None: the name in the archive.
    pub name: Option<String>,
    /// None: the default pool.
    pub pool: Option<String>,
}

pub async fn import(channel: Channel, options: ImportOptions) -> anyhow::Result<()> {
    let container = send(channel, options).await?;
    format::print(&format!("Container {} imported\n", container.name))?;
    Ok(())
}

async fn send(channel: Channel, options: ImportOptions) -> anyhow::Result<Container> {
    let from_stdin = options.file.as_os_str() == STANDARD_STREAM;
    let source = if from_stdin {
        "stdin".to_string()
    } else {
        options.file.display().to_string()
    };
    send_from(channel, options, from_stdin, &source)
        .await
        .with_context(|| format!("import {source}"))
}

async fn send_from(
    channel: Channel,
    options: ImportOptions,
    from_stdin: bool,
    source: &str,
) -> anyhow::Result<Container> {
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if from_stdin {
        if io::stdin().is_terminal() {
            bail!("refusing to read the archive from a terminal; name a file or redirect stdin");
        }
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(&options.file).map_err(|err| anyhow!("open: {}", os_message(&err)))?;
        let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = Arc::new(Transfer::new(format!("Importing {source}")));
    progress.set_total(size.unwrap_or(0));

    let (chunks, queued) = mpsc::channel(CHUNKS_AHEAD);
    let (read_tx, read) = oneshot::channel();
    // A thread of its own rather than spawn_blocking: a read of stdin that never returns
    // must not keep the runtime (and so sysc) from exiting once the daemon has answered.
    std::thread::spawn(move || {
        let result = read_chunks(input, &chunks);
        // The sender comes back with the result: dropped here, it would end the request
        // stream as if the archive were complete, even after a failed read.
        let _ = read_tx.send((result, chunks));
    });

    let header = ImportRequest {
        request: Some(import_request::Request::Header(ImportHeader {
            name: options.name.unwrap_or_default(),
            pool: options.pool.unwrap_or_default(),
        })),
    };
    let sent = progress.clone();
    let data = ReceiverStream::new(queued).map(move |chunk: Vec<u8>| {
        sent.advance(chunk.len() as u64);
        ImportRequest {
            request: Some(import_request::Request::Data(chunk)),
        }
    });
    let mut client = BackupsClient::new(channel);
    let call = client.import(tokio_stream::once(header).chain(data));
    tokio::pin!(call);
    let response = tokio::select! {
        // The daemon has answered before the input ended: a refusal, most likely.
        response = &mut call => response,
        read = read => {
            let (result, chunks) = read.map_err(|_| anyhow!("the thread reading the input vanished"))?;
            // On a failed read, sysc exits with the stream still open (nothing is awaited
            // before it does): the daemon sees the import broken off, not ended.
            result?;
            drop(chunks);
            call.await
        }
    };
    Ok(response.map_err(rpc_error)?.into_inner())
}

/// Hands `input` to the request stream in chunks, to its end or until the call is over.
fn read_chunks(mut input: impl Read, chunks: &mpsc::Sender<Vec<u8>>) -> anyhow::Result<()> {
    loop {
        let mut chunk = Vec::new();
        let read = (&mut input)
            .take(CHUNK_BYTES)
            .read_to_end(&mut chunk)
            .map_err(|err| anyhow!("read: {}", os_message(&err)))?;
        // A send fails when the call is over; its result says why.
        if read == 0 || chunks.blocking_send(chunk).is_err() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_daemon::{Call, FakeDaemon};
    use crate::partial::entries;
    use sysc_proto::v1::ExportResponse;
    use tonic::Status;

    fn header(total_bytes: u64) -> Result<ExportResponse, Status> {
        Ok(ExportResponse {
            response: Some(export_response::Response::Header(pb::ExportHeader {
                total_bytes,
                snapshots: 0,
            })),
        })
    }

    fn data(bytes: &[u8]) -> Result<ExportResponse, Status> {
        Ok(ExportResponse {
            response: Some(export_response::Response::Data(bytes.to_vec())),
        })
    }

    fn progress(archived: u64) -> Result<ExportResponse, Status> {
        Ok(ExportResponse {
            response: Some(export_response::Response::Progress(archived)),
        })
    }

    fn export_options(file: PathBuf) -> ExportOptions {
        ExportOptions {
            name: "web1".into(),
            file,
            instance_only: true,
            compression: Compression::None,
        }
    }

    #[tokio::test]
    async fn export_writes_exactly_the_streamed_bytes() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        daemon.script_export(vec![
            header(10),
            data(b"backup.yaml\n"),
            progress(5),
            data(&[0; 70_000]),
            progress(10),
            data(b"end"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web1.tar");
        // An older archive of the same name is replaced whole.
        std::fs::write(&file, "old").unwrap();
        export(daemon.channel.clone(), export_options(file.clone()))
            .await
            .unwrap();

        let mut expected = b"backup.yaml\n".to_vec();
        expected.extend([0; 70_000]);
        expected.extend(b"end");
        assert!(
            std::fs::read(&file).unwrap() == expected,
            "the file differs from the stream"
        );
        assert_eq!(entries(dir.path()), ["web1.tar"]);
        assert_eq!(
            daemon.calls(),
            [Call::Export(ExportRequest {
                name: "web1".into(),
                instance_only: true,
                compression: pb::Compression::None as i32,
            })]
        );
    }

    #[tokio::test]
    async fn export_that_fails_midway_leaves_nothing_behind() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        daemon.script_export(vec![
            header(10),
            data(b"half an archive"),
            Err(Status::internal("read rootfs/etc/passwd: Input/output error")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web1.tar.zst");
        let err = export(daemon.channel.clone(), export_options(file.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "export web1: read rootfs/etc/passwd: Input/output error"
        );
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));

        // Nor does a stream that ends before any data, or a daemon that refuses outright.
        daemon.script_export(vec![header(10)]);
        let err = export(daemon.channel.clone(), export_options(file.clone()))
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("without sending any data"), "{err:#}");
        daemon.script_export(vec![Err(Status::not_found("container web1 not found"))]);
        let err = export(daemon.channel.clone(), export_options(file)).await.unwrap_err();
        assert_eq!(format!("{err:#}"), "export web1: container web1 not found");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[tokio::test]
    async fn an_interrupted_export_removes_its_partial_file() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        daemon.script_stalled_export(vec![header(10), data(b"the first part")]);
        let dir = tempfile::tempdir().unwrap();
        let exporting = tokio::spawn(export(
            daemon.channel.clone(),
            export_options(dir.path().join("web1.tar")),
        ));
        // The signal handler is in place before the request reaches the fake; the pause lets
        // the data reach the partial file.
        while daemon.calls().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Being written, the file has no name yet (O_TMPFILE).
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
        let err = exporting.await.unwrap().unwrap_err();
        assert_eq!(format!("{err:#}"), "export web1: interrupted");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[tokio::test]
    async fn export_into_a_missing_directory_asks_nothing_of_the_daemon() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = export(daemon.channel.clone(), export_options(missing.join("web1.tar")))
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "export web1: create a file in {}: No such file or directory",
                missing.display()
            )
        );
        assert!(daemon.calls().is_empty());
    }

    #[test]
    fn a_full_disk_is_named_as_the_system_names_it() {
        // ENOSPC on Linux.
        let err = write_error("/backups/web1.tar.zst", &io::Error::from_raw_os_error(28));
        assert_eq!(err.to_string(), "write /backups/web1.tar.zst: No space left on device");
        assert!(
            err.downcast_ref::<io::Error>().is_none(),
            "main would take it for a closed pipe"
        );
    }

    #[tokio::test]
    async fn import_streams_the_file_in_chunks_after_the_header() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web1.tar.zst");
        let archive: Vec<u8> = (0..2_621_440_u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&file, &archive).unwrap();

        let container = send(
            daemon.channel.clone(),
            ImportOptions {
                file: file.clone(),
                name: Some("web9".into()),
                pool: Some("fast".into()),
            },
        )
        .await
        .unwrap();
        assert_eq!(container.name, "web9");
        let calls = daemon.calls();
        let [Call::Import { header, chunks, data }] = calls.as_slice() else {
            panic!("{} calls", calls.len())
        };
        assert_eq!((header.name.as_str(), header.pool.as_str()), ("web9", "fast"));
        assert_eq!(chunks, &[1 << 20, 1 << 20, 1 << 19]);
        assert!(*data == archive, "the daemon got other bytes than the file's");
    }

    #[tokio::test]
    async fn import_failures_name_the_file() {
        let daemon = FakeDaemon::start(Vec::new()).await;
        let dir = tempfile::tempdir().unwrap();
        let options = |file: PathBuf| ImportOptions {
            file,
            name: None,
            pool: None,
        };
        let missing = dir.path().join("missing.tar");
        let err = send(daemon.channel.clone(), options(missing.clone()))
            .await
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("import {}: open: No such file or directory", missing.display())
        );

        // The fake refuses an archive that is empty, as syscd refuses a truncated one.
        let empty = dir.path().join("empty.tar");
        std::fs::write(&empty, "").unwrap();
        let err = send(daemon.channel.clone(), options(empty.clone())).await.unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("import {}: the archive is truncated", empty.display())
        );
    }
}
