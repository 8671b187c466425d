//! `sysc file pull`: files and directories (as one tar stream) out of a container.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use sysc_proto::v1::files_client::FilesClient;
use sysc_proto::v1::{FileInfo, FileType, PullFileRequest, PullFileResponse, TreeSummary, pull_file_response};
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::Channel;

use super::Target;
use super::chunks::{CHUNKS_AHEAD, ChunkReader};
use super::handover::{self, Offer};
use crate::connect::{os_message, rpc_error};
use crate::interrupt::unless_interrupted;
use crate::landing::{Landing, landing};
use crate::partial::Partial;
use crate::progress::Transfer;

/// The DEST that means stdout.
const STDOUT: &str = "-";

pub struct PullOptions {
    pub sources: Vec<Target>,
    pub dest: OsString,
    pub recursive: bool,
    pub create_dirs: bool,
}

pub async fn pull(channel: Channel, options: PullOptions) -> anyhow::Result<()> {
    let to_stdout = options.dest == STDOUT;
    if to_stdout && options.sources.len() > 1 {
        bail!("only one SOURCE can be pulled to stdout");
    }
    let dest = PathBuf::from(&options.dest);
    if options.sources.len() > 1 || dest.as_os_str().as_bytes().ends_with(b"/") {
        // DEST is a directory; with -p it may be made.
        if options.create_dirs && !to_stdout {
            std::fs::create_dir_all(&dest).map_err(|err| anyhow!("create {}: {}", dest.display(), os_message(&err)))?;
        }
        if !dest.is_dir() {
            bail!("{} is not a directory", dest.display());
        }
    }
    unless_interrupted(async {
        for source in &options.sources {
            pull_one(channel.clone(), source, &dest, to_stdout, &options)
                .await
                .with_context(|| format!("pull {}", source.show()))?;
        }
        Ok(())
    })
    .await
}

/// How the content of a pull comes.
pub(super) enum Body {
    /// Data messages (and, after a tree, its summary).
    Stream(Box<Streaming<PullFileResponse>>),
    /// The file itself, handed over by a local syscd.
    Handed(File),
}

/// Starts a pull; the header says what comes. With an `offer` a local syscd may hand
/// a regular file over instead of streaming it.
pub(super) async fn open(
    channel: Channel,
    source: &Target,
    recursive: bool,
    offer: Option<&Offer>,
) -> anyhow::Result<(FileInfo, Body)> {
    let mut responses = FilesClient::new(channel)
        .pull(PullFileRequest {
            name: source.container.clone(),
            path: source.path.clone(),
            recursive,
            descriptor_socket: offer.map(Offer::name).unwrap_or_default(),
        })
        .await
        .map_err(rpc_error)?
        .into_inner();
    match responses.message().await.map_err(rpc_error)? {
        Some(PullFileResponse {
            response: Some(pull_file_response::Response::Header(header)),
            handed_over,
        }) => match offer.filter(|_| handed_over) {
            Some(offer) => Ok((header, Body::Handed(offer.take()?))),
            None => Ok((header, Body::Stream(Box::new(responses)))),
        },
        _ => bail!("syscd sent no header"),
    }
}

async fn pull_one(
    channel: Channel,
    source: &Target,
    dest: &Path,
    to_stdout: bool,
    options: &PullOptions,
) -> anyhow::Result<()> {
    let offer = Offer::new();
    let (header, body) = open(channel, source, options.recursive, offer.as_ref()).await?;
    let is_tree = header.r#type == FileType::Directory as i32;
    let name = PathBuf::from(OsStr::from_bytes(&header.name));
    let progress = Transfer::new(format!("Pulling {}", source.show()));
    if !is_tree {
        progress.set_total(header.size);
    }
    if to_stdout {
        if is_tree && io::stdout().is_terminal() {
            bail!("refusing to write a tar stream to a terminal; redirect stdout");
        }
        let mut stdout = io::stdout().lock();
        let summary = match body {
            Body::Stream(responses) => receive(*responses, &progress, |data| stdout.write_all(data)).await?,
            Body::Handed(file) => {
                handover::copy(&file, &mut stdout, |n| progress.advance(n))
                    .map_err(|err| anyhow!("write stdout: {}", os_message(&err)))?;
                None
            }
        };
        stdout
            .flush()
            .map_err(|err| anyhow!("write stdout: {}", os_message(&err)))?;
        report_skipped(summary);
        return Ok(());
    }
    // Like cp: into DEST when it is a directory, else as DEST.
    let local = if dest.is_dir() {
        dest.join(&name)
    } else {
        dest.to_path_buf()
    };
    if options.create_dirs
        && let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|err| anyhow!("create {}: {}", parent.display(), os_message(&err)))?;
    }
    match body {
        Body::Stream(responses) if is_tree => receive_tree(*responses, &local, &progress).await,
        Body::Handed(_) if is_tree => bail!("syscd handed over a directory"),
        body => receive_file(body, &header, &local, &progress).await,
    }
}

/// Writes each data message with `write`; returns the summary that ends a tree.
pub(super) async fn receive(
    mut responses: Streaming<PullFileResponse>,
    progress: &Transfer,
    mut write: impl FnMut(&[u8]) -> io::Result<()>,
) -> anyhow::Result<Option<TreeSummary>> {
    let mut summary = None;
    while let Some(response) = responses.message().await.map_err(rpc_error)? {
        match response.response {
            Some(pull_file_response::Response::Data(data)) => {
                write(&data).map_err(|err| anyhow!("write: {}", os_message(&err)))?;
                progress.advance(data.len() as u64);
            }
            Some(pull_file_response::Response::Summary(s)) => summary = Some(s),
            Some(pull_file_response::Response::Header(_)) | None => {}
        }
    }
    Ok(summary)
}

async fn receive_file(body: Body, header: &FileInfo, local: &Path, progress: &Transfer) -> anyhow::Result<()> {
    let (mut partial, target) = match landing(local)? {
        Landing::Replace(target) => (Some(Partial::beside(&target, ".sysc-pull-")?), target),
        Landing::Into(target) => (None, target),
    };
    let file = match &mut partial {
        Some(partial) => Some(
            partial
                .file()
                .try_clone()
                .map_err(|err| anyhow!("{}", os_message(&err)))?,
        ),
        None => None,
    };
    // Written on a thread of its own, so the disk and the connection work at once. That
    // thread opens a FIFO itself: the open waits for a reader.
    let opened = target.clone();
    let open = move || match file {
        Some(file) => Ok(file),
        None => File::options().write(true).open(&opened),
    };
    let (received, written) = match body {
        Body::Stream(responses) => {
            let (chunks, mut queued) = mpsc::channel::<Result<Bytes, String>>(CHUNKS_AHEAD);
            let writer = tokio::task::spawn_blocking(move || {
                let mut file = open()?;
                while let Some(chunk) = queued.blocking_recv() {
                    file.write_all(&chunk.map_err(io::Error::other)?)?;
                }
                io::Result::Ok(())
            });
            (forward(*responses, progress, chunks).await, writer.await)
        }
        Body::Handed(source) => {
            let advance = progress.advancer();
            let copier = tokio::task::spawn_blocking(move || handover::copy(&source, &mut open()?, advance));
            (Ok(None), copier.await)
        }
    };

    let written = written.map_err(|err| anyhow!("writing thread: {err}"))?;
    // A broken stream is the cause of whatever the writer then said.
    received?;
    written.map_err(|err| anyhow!("write {}: {}", target.display(), os_message(&err)))?;
    let Some(mut partial) = partial else {
        return Ok(());
    };
    // Like cp: the permission bits and the sticky one, never set-id ones, which would let
    // a container plant a set-id program on the host.
    partial
        .file()
        .set_permissions(std::fs::Permissions::from_mode(header.mode & 0o1777))
        .map_err(|err| anyhow!("chmod {}: {}", target.display(), os_message(&err)))?;
    partial
        .persist(&target)
        .map_err(|err| anyhow!("put {} in place: {}", target.display(), os_message(&err)))?;
    Ok(())
}

/// Extracted into `local` (made if missing) as it arrives, on a blocking thread.
async fn receive_tree(responses: Streaming<PullFileResponse>, local: &Path, progress: &Transfer) -> anyhow::Result<()> {
    match std::fs::create_dir(local) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && local.is_dir() => {}
        Err(err) => bail!("create {}: {}", local.display(), os_message(&err)),
    }
    let dir = File::open(local).map_err(|err| anyhow!("open {}: {}", local.display(), os_message(&err)))?;
    let (chunks, queued) = mpsc::channel(CHUNKS_AHEAD);
    let shown = local.display().to_string();
    let extract = tokio::task::spawn_blocking(move || {
        let options = sysc_filetree::ExtractOptions {
            // Like tar: owners are kept only by root, who alone can give files away.
            owners: nix::unistd::geteuid().is_root(),
            set_id: false,
        };
        sysc_filetree::extract(dir.as_fd(), ChunkReader::new(queued), &options, &mut |_| {})
            .map_err(|err| anyhow!("extract into {shown}: {err}"))
    });
    let received = forward(responses, progress, chunks).await;
    let extracted = extract.await.map_err(|err| anyhow!("extraction thread: {err}"))?;
    // A broken stream is the cause of whatever the extraction then said.
    let summary = received?;
    extracted?;
    report_skipped(summary);
    Ok(())
}

/// Hands each data message to a thread through `chunks`, until the stream ends or the
/// thread stops taking them (its own error says why). A broken stream reaches the thread
/// as an error chunk, so it does not take a cut stream for a whole one.
async fn forward(
    mut responses: Streaming<PullFileResponse>,
    progress: &Transfer,
    chunks: mpsc::Sender<Result<Bytes, String>>,
) -> anyhow::Result<Option<TreeSummary>> {
    let mut summary = None;
    loop {
        let response = match responses.message().await {
            Ok(Some(response)) => response,
            Ok(None) => return Ok(summary),
            Err(status) => {
                let err = rpc_error(status);
                let _ = chunks.send(Err(err.to_string())).await;
                return Err(err);
            }
        };
        match response.response {
            Some(pull_file_response::Response::Data(data)) => {
                progress.advance(data.len() as u64);
                if chunks.send(Ok(data)).await.is_err() {
                    return Ok(summary);
                }
            }
            Some(pull_file_response::Response::Summary(s)) => summary = Some(s),
            Some(pull_file_response::Response::Header(_)) | None => {}
        }
    }
}

fn report_skipped(summary: Option<TreeSummary>) {
    if let Some(summary) = summary {
        let names: Vec<String> = summary
            .skipped
            .iter()
            .map(|path| String::from_utf8_lossy(path).into_owned())
            .collect();
        super::warn_left_out(&names);
    }
}
