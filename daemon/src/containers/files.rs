//! Files inside a container, through the `sysc-file` helper (see crate::files): the
//! daemon picks the container's root, starts the helper, and moves the bytes.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;

use bytes::Bytes;
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::seqpacket::SeqPacket;
use super::{Live, Manager, helper_process};
use crate::error::{Error, Result};
use crate::files::protocol::{COMMIT, Fault, FileSpec, Info, MAX_MESSAGE_BYTES, Op, Reply, Root, TreeSummary};

pub use crate::files::protocol::{Kind, PushFile, PushTree};

/// Bytes per chunk read from a file or tar stream.
pub const CHUNK: usize = 1 << 20;

/// Chunks in flight between the reading thread and the client: what bounds the
/// daemon's memory whatever the file's size.
const CHUNKS_IN_FLIGHT: usize = 4;

/// One helper serving one request.
pub struct FileSession {
    container: String,
    control: SeqPacket,
    helper: Child,
}

/// What a pull delivers, with the status of what was asked for.
pub enum Pulled {
    /// A regular file, open for reading: `read_chunks` streams it.
    File { info: Info, file: OwnedFd },
    /// A directory's tar stream, and the session whose `finish` gives the summary after it.
    Tree {
        info: Info,
        data: mpsc::Receiver<std::io::Result<Vec<u8>>>,
        session: Box<FileSession>,
    },
}

/// A push under way: `write` the data, then `commit`. Dropping it abandons the push,
/// and the helper removes what it had written under a temporary name.
pub struct Push {
    session: FileSession,
    sink: Sink,
}

enum Sink {
    /// The temporary file, written from a thread fed through the channel.
    File {
        chunks: mpsc::Sender<Bytes>,
        writer: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Tree(ChildStdin),
}

impl Manager {
    /// Starts a helper for `op` on a running or stopped container.
    async fn file_session(&self, name: &str, op: Op, piped: bool) -> Result<FileSession> {
        let record = self.record(name)?;
        let root = match self.probe(name).await {
            Live::Running { .. } => Root::Running {
                monitor_socket: self.settings.monitor_socket(name),
                userns: record.idmap().is_some(),
            },
            Live::Stopped => Root::Stopped {
                rootfs: crate::storage::volume_rootfs(&self.volume_of(&record)?),
            },
            Live::Lost => {
                return Err(Error::FailedPrecondition(format!(
                    "container {name} has lost its monitor; stop it with --force first"
                )));
            }
        };
        if let (
            Some(idmap),
            Op::Push(PushFile { uid, gid, .. }) | Op::PushTree(PushTree { uid, gid, .. }) | Op::Mkdir { uid, gid, .. },
        ) = (record.idmap(), &op)
        {
            for (what, id) in [("uid", uid), ("gid", gid)] {
                if let Some(id) = id
                    && *id >= idmap.size
                {
                    return Err(Error::InvalidArgument(format!(
                        "{what} {id} is outside the container's id range 0-{}",
                        idmap.size - 1
                    )));
                }
            }
        }
        let spec = FileSpec {
            container: name.to_string(),
            root,
            op,
        };
        let encoded = serde_json::to_vec(&spec).map_err(|e| Error::internal("encode the file request", e))?;
        if encoded.len() > MAX_MESSAGE_BYTES {
            return Err(Error::InvalidArgument("path is too long".into()));
        }
        let pipe = || if piped { Stdio::piped() } else { Stdio::null() };
        let (helper, control) =
            helper_process::spawn(&self.settings.file_exe, [pipe(), pipe(), Stdio::inherit()], &encoded).await?;
        Ok(FileSession {
            container: name.to_string(),
            control,
            helper,
        })
    }

    /// A directory's entries (or a lone file), batch by batch.
    pub async fn list_files(&self, name: &str, path: Vec<u8>) -> Result<mpsc::Receiver<Result<Vec<Info>>>> {
        let mut session = self.file_session(name, Op::List { path }, false).await?;
        let first = session.reply().await?;
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        tokio::spawn(async move {
            let mut reply = Ok(first);
            loop {
                match reply {
                    Ok((Reply::Entries(entries), _)) => {
                        if tx.send(Ok(entries)).await.is_err() {
                            return;
                        }
                    }
                    Ok((Reply::Done { .. }, _)) => return,
                    Ok((other, _)) => {
                        let _ = tx.send(Err(session.unexpected(&other))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
                reply = session.reply().await;
            }
        });
        Ok(rx)
    }

    pub async fn pull_file(&self, name: &str, path: Vec<u8>, recursive: bool) -> Result<Pulled> {
        let mut session = self.file_session(name, Op::Pull { path, recursive }, true).await?;
        match session.reply().await? {
            (Reply::Opened(info), mut fds) if fds.len() == 1 => {
                let file = fds.remove(0);
                Ok(Pulled::File { info, file })
            }
            (Reply::Tree(info), _) => {
                let stdout = session.helper.stdout.take().expect("stdout is piped");
                let stdout = stdout
                    .into_owned_fd()
                    .map_err(|e| Error::internal("take the helper's output", e))?;
                // tokio made it nonblocking; it is read on a blocking thread.
                set_blocking(&stdout).map_err(|e| Error::internal("take the helper's output", e))?;
                Ok(Pulled::Tree {
                    info,
                    data: read_chunks(stdout),
                    session: Box::new(session),
                })
            }
            (other, _) => Err(session.unexpected(&other)),
        }
    }

    pub async fn push_file(&self, name: &str, request: PushFile) -> Result<Push> {
        let mut session = self.file_session(name, Op::Push(request), false).await?;
        match session.reply().await? {
            (Reply::Ready, mut fds) if fds.len() == 1 => {
                let file = std::fs::File::from(fds.remove(0));
                let (chunks, writer) = write_chunks(file);
                Ok(Push {
                    session,
                    sink: Sink::File { chunks, writer },
                })
            }
            (other, _) => Err(session.unexpected(&other)),
        }
    }

    pub async fn push_tree(&self, name: &str, request: PushTree) -> Result<Push> {
        let mut session = self.file_session(name, Op::PushTree(request), true).await?;
        match session.reply().await? {
            (Reply::Ready, _) => {
                let stdin = session.helper.stdin.take().expect("stdin is piped");
                Ok(Push {
                    session,
                    sink: Sink::Tree(stdin),
                })
            }
            (other, _) => Err(session.unexpected(&other)),
        }
    }

    pub async fn make_directory(
        &self,
        name: &str,
        path: Vec<u8>,
        parents: bool,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<Info> {
        let op = Op::Mkdir {
            path,
            parents,
            mode,
            uid,
            gid,
        };
        let mut session = self.file_session(name, op, false).await?;
        match session.reply().await? {
            (Reply::Done { info: Some(info), .. }, _) => Ok(info),
            (other, _) => Err(session.unexpected(&other)),
        }
    }

    pub async fn delete_file(&self, name: &str, path: Vec<u8>, recursive: bool) -> Result<()> {
        let mut session = self.file_session(name, Op::Delete { path, recursive }, false).await?;
        match session.reply().await? {
            (Reply::Done { .. }, _) => Ok(()),
            (other, _) => Err(session.unexpected(&other)),
        }
    }
}

impl FileSession {
    /// The helper's next reply; its errors as ours.
    async fn reply(&mut self) -> Result<(Reply, Vec<OwnedFd>)> {
        let (message, fds) = self
            .control
            .recv_up_to(MAX_MESSAGE_BYTES)
            .await
            .map_err(|e| Error::internal("read the file helper", e))?;
        if message.is_empty() {
            let status = self.helper.wait().await;
            return Err(Error::Internal(format!(
                "file helper for {} ended without an answer ({})",
                self.container,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            )));
        }
        let reply: Reply =
            serde_json::from_slice(&message).map_err(|e| Error::internal("parse the file helper's answer", e))?;
        if let Reply::Error { fault, message } = reply {
            let _ = self.helper.wait().await;
            return Err(match fault {
                Fault::NotFound => Error::NotFound(message),
                Fault::Exists => Error::AlreadyExists(message),
                Fault::Invalid => Error::InvalidArgument(message),
                Fault::State => Error::FailedPrecondition(message),
                Fault::Host => Error::Internal(format!("file request on {}: {message}", self.container)),
            });
        }
        Ok((reply, fds))
    }

    fn unexpected(&self, reply: &Reply) -> Error {
        Error::Internal(format!(
            "file helper for {} answered out of turn: {reply:?}",
            self.container
        ))
    }

    /// After a tree's stream: the helper's summary (or its error).
    pub async fn finish(mut self) -> Result<TreeSummary> {
        match self.reply().await? {
            (Reply::Done { summary, .. }, _) => {
                let _ = self.helper.wait().await;
                Ok(summary.unwrap_or_default())
            }
            (other, _) => Err(self.unexpected(&other)),
        }
    }
}

impl Push {
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let failed = match &mut self.sink {
            Sink::File { chunks, .. } => chunks.send(data).await.is_err(),
            Sink::Tree(stdin) => tokio::io::AsyncWriteExt::write_all(stdin, &data).await.is_err(),
        };
        if failed {
            // The writer or the helper gave up: its reason is the error to report.
            return Err(self.failure().await);
        }
        Ok(())
    }

    async fn failure(&mut self) -> Error {
        if let Sink::File { writer, .. } = &mut self.sink
            && let Ok(Err(e)) = writer.await
        {
            return Error::internal(format!("write the file pushed to {}", self.session.container), e);
        }
        match self.session.reply().await {
            Err(e) => e,
            Ok((other, _)) => self.session.unexpected(&other),
        }
    }

    /// The data is complete: the helper puts it in place.
    pub async fn commit(mut self) -> Result<(Option<Info>, Option<TreeSummary>)> {
        match self.sink {
            Sink::File { chunks, writer } => {
                drop(chunks);
                match writer.await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(Error::internal(
                            format!("write the file pushed to {}", self.session.container),
                            e,
                        ));
                    }
                    Err(e) => return Err(Error::internal("file writer", e)),
                }
            }
            Sink::Tree(stdin) => drop(stdin),
        }
        self.session
            .control
            .send(COMMIT, &[])
            .await
            .map_err(|e| Error::internal("commit the push", e))?;
        match self.session.reply().await? {
            (Reply::Done { info, summary }, _) => {
                let _ = self.session.helper.wait().await;
                Ok((info, summary))
            }
            (other, _) => Err(self.session.unexpected(&other)),
        }
    }
}

/// Reads a descriptor to its end on a blocking thread, in chunks, at most a few ahead.
pub fn read_chunks(fd: OwnedFd) -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::from(fd);
        loop {
            // Whole chunks (a pipe hands out at most its buffer per read), read into the
            // chunk's own spare capacity: nothing to zero, nothing to copy after.
            let mut chunk = Vec::with_capacity(CHUNK);
            match (&mut file).take(CHUNK as u64).read_to_end(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                return; // the client went away
            }
        }
    });
    rx
}

/// Writes chunks to a file on a blocking thread until the channel closes.
fn write_chunks(mut file: std::fs::File) -> (mpsc::Sender<Bytes>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || {
        while let Some(chunk) = rx.blocking_recv() {
            file.write_all(&chunk)?;
        }
        Ok(())
    });
    (tx, writer)
}

fn set_blocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).map(drop)
}
