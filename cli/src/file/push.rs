//! `sysc file push`: local files, directories (as one tar stream) or stdin into a container.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use sysc_proto::v1::files_client::FilesClient;
use sysc_proto::v1::{PushFileEnd, PushFileHeader, PushFileRequest, PushFileResponse, push_file_request};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::chunks::{CHUNKS_AHEAD, ChunkWriter, send_all};
use super::{OwnerArgs, PushArgs, Target, base_name};
use crate::connect::{os_message, rpc_error};
use crate::progress::Transfer;

/// The SRC that means stdin.
const STDIN: &str = "-";

pub struct PushOptions {
    pub sources: Vec<OsString>,
    pub target: Target,
    pub recursive: bool,
    pub create_dirs: bool,
    pub owner: OwnerArgs,
}

impl PushOptions {
    pub fn new(sources: Vec<OsString>, target: Target, args: PushArgs) -> Self {
        Self {
            sources,
            target,
            recursive: args.recursive,
            create_dirs: args.create_dirs,
            owner: args.owner,
        }
    }
}

/// A source, checked before anything is sent.
enum Source {
    Stdin,
    File {
        path: PathBuf,
        file: File,
        size: u64,
        mode: u32,
    },
    Tree {
        path: PathBuf,
        dir: File,
    },
}

impl Source {
    fn show(&self) -> String {
        match self {
            Source::Stdin => "stdin".into(),
            Source::File { path, .. } | Source::Tree { path, .. } => path.display().to_string(),
        }
    }
}

pub async fn push(channel: Channel, options: PushOptions) -> anyhow::Result<()> {
    // Every source is opened first: a missing one, or a directory without -r, changes
    // nothing in the container.
    let sources = options
        .sources
        .iter()
        .map(|source| open_source(source, options.recursive))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut target = options.target.clone();
    if sources.len() > 1 && target.path.last() != Some(&b'/') {
        target.path.push(b'/'); // several sources go into a directory
    }
    for source in sources {
        let what = source.show();
        push_one(channel.clone(), source, &target, &options)
            .await
            .with_context(|| format!("push {what} to {}", target.show()))?;
    }
    Ok(())
}

fn open_source(source: &OsStr, recursive: bool) -> anyhow::Result<Source> {
    if source == STDIN {
        return Ok(Source::Stdin);
    }
    let path = PathBuf::from(source);
    let file = File::open(&path).map_err(|err| anyhow!("{}: {}", path.display(), os_message(&err)))?;
    let metadata = file
        .metadata()
        .map_err(|err| anyhow!("{}: {}", path.display(), os_message(&err)))?;
    if metadata.is_dir() {
        if !recursive {
            bail!(
                "{} is a directory (use -r to push it with its contents)",
                path.display()
            );
        }
        return Ok(Source::Tree { path, dir: file });
    }
    Ok(Source::File {
        path,
        size: if metadata.is_file() { metadata.len() } else { 0 },
        mode: metadata.permissions().mode() & 0o7777,
        file,
    })
}

async fn push_one(channel: Channel, source: Source, target: &Target, options: &PushOptions) -> anyhow::Result<()> {
    let owner = options.owner;
    let mut header = PushFileHeader {
        name: target.container.clone(),
        path: target.path.clone(),
        source_name: Vec::new(),
        tree: false,
        create_dirs: options.create_dirs,
        uid: owner.uid,
        gid: owner.gid,
        mode: owner.mode,
    };
    let progress = Arc::new(Transfer::new(format!("Pushing {}", source.show())));
    let (chunks, queued) = mpsc::channel(CHUNKS_AHEAD);
    let counted = progress.clone();
    let mut writer = ChunkWriter::new(chunks, Box::new(move |n| counted.advance(n as u64)));
    let (read_tx, read) = oneshot::channel::<io::Result<()>>();
    match source {
        Source::Stdin => {
            spawn_reader(read_tx, move || send_all(io::stdin(), &mut writer));
        }
        Source::File { path, file, size, mode } => {
            header.source_name = base_name(path.as_os_str().as_bytes()).to_vec();
            header.mode = owner.mode.or(Some(mode));
            progress.set_total(size);
            spawn_reader(read_tx, move || send_all(file, &mut writer));
        }
        Source::Tree { path, dir } => {
            let name = tree_name(&path);
            if name.is_empty() {
                bail!("{} has no name to give the directory in the container", path.display());
            }
            header.source_name = name.clone();
            header.tree = true;
            let write_options = sysc_filetree::WriteOptions {
                owner: Some((owner.uid.unwrap_or(0), owner.gid.unwrap_or(0))),
                file_mode: owner.mode,
            };
            spawn_reader(read_tx, move || {
                let (_, summary) = sysc_filetree::write_tree(
                    dir.as_fd(),
                    OsStr::from_bytes(&name),
                    &mut writer,
                    &write_options,
                    &mut |_| {},
                )
                .map_err(io::Error::other)?;
                super::warn_left_out(&summary.skipped);
                std::io::Write::flush(&mut writer)
            });
        }
    }
    send(channel, header, queued, read).await.map(drop)
}

/// The name a pushed directory gets: the one on the command line, like cp (a symlink to a
/// directory gives its own name, not its target's); `.` and `..` the directory's own.
fn tree_name(path: &Path) -> Vec<u8> {
    let given = base_name(path.as_os_str().as_bytes());
    if !given.is_empty() && given != b"." && given != b".." {
        return given.to_vec();
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    base_name(canonical.as_os_str().as_bytes()).to_vec()
}

/// Reads on a thread of its own (not spawn_blocking: a read of stdin that never returns
/// must not keep sysc from exiting) and reports how the reading ended.
fn spawn_reader(done: oneshot::Sender<io::Result<()>>, read: impl FnOnce() -> io::Result<()> + Send + 'static) {
    std::thread::spawn(move || {
        let _ = done.send(read());
    });
}

/// Streams the header, the data and, only if the whole input was read, `end`: a push
/// whose input failed is broken off, and the daemon keeps nothing of it.
pub(super) async fn send(
    channel: Channel,
    header: PushFileHeader,
    queued: mpsc::Receiver<Vec<u8>>,
    read: oneshot::Receiver<io::Result<()>>,
) -> anyhow::Result<PushFileResponse> {
    let (end_tx, end_rx) = oneshot::channel::<()>();
    let (failure_tx, failure_rx) = oneshot::channel::<anyhow::Error>();
    tokio::spawn(async move {
        match read.await {
            Ok(Ok(())) => {
                let _ = end_tx.send(());
            }
            Ok(Err(err)) => {
                let _ = failure_tx.send(anyhow!("read: {}", os_message(&err)));
            }
            Err(_) => {
                let _ = failure_tx.send(anyhow!("the reading thread vanished"));
            }
        }
    });
    let head = PushFileRequest {
        request: Some(push_file_request::Request::Header(header)),
    };
    let data = ReceiverStream::new(queued).map(|chunk| PushFileRequest {
        request: Some(push_file_request::Request::Data(chunk.into())),
    });
    // After the data: `end` if reading succeeded; otherwise the stream stays open until
    // the call is dropped, which the daemon sees as a push broken off.
    let end = tokio_stream::once(end_rx).then(|end_rx| async move {
        match end_rx.await {
            Ok(()) => PushFileRequest {
                request: Some(push_file_request::Request::End(PushFileEnd {})),
            },
            Err(_) => std::future::pending().await,
        }
    });
    let mut client = FilesClient::new(channel);
    let call = client.push(tokio_stream::once(head).chain(data).chain(end));
    tokio::pin!(call);
    tokio::select! {
        response = &mut call => match response {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(rpc_error(status)),
        },
        Ok(failure) = failure_rx => Err(failure),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pushed_tree_is_named_as_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(tree_name(&link), b"link");
        assert_eq!(tree_name(&dir.path().join("link/")), b"link");
        assert_eq!(tree_name(&real.join(".")), b"real");
        assert_eq!(
            tree_name(&real.join("..")),
            base_name(dir.path().canonicalize().unwrap().as_os_str().as_bytes())
        );
        assert_eq!(tree_name(Path::new("/")), b"");
    }
}
