//! sysc.v1.Files

use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::files_server::Files;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status, Streaming};

use super::handover::{hand_over, local_caller};
use crate::containers::Manager;
use crate::containers::files::{Kind, Pulled, PushFile, PushTree, read_chunks};
use crate::files::protocol::{Info, TreeSummary};

pub struct FilesService {
    manager: Arc<Manager>,
}

impl FilesService {
    pub fn new(manager: Arc<Manager>) -> Self {
        Self { manager }
    }
}

type ListStream = Pin<Box<dyn Stream<Item = Result<pb::ListFilesResponse, Status>> + Send>>;
type PullStream = Pin<Box<dyn Stream<Item = Result<pb::PullFileResponse, Status>> + Send>>;

fn file_info(info: Info) -> pb::FileInfo {
    let kind = match info.kind {
        Kind::File => pb::FileType::Regular,
        Kind::Directory => pb::FileType::Directory,
        Kind::Symlink => pb::FileType::Symlink,
        Kind::Fifo => pb::FileType::Fifo,
        Kind::Socket => pb::FileType::Socket,
        Kind::CharDevice => pb::FileType::CharDevice,
        Kind::BlockDevice => pb::FileType::BlockDevice,
    };
    pb::FileInfo {
        name: info.name,
        r#type: kind as i32,
        mode: info.mode,
        uid: info.uid,
        gid: info.gid,
        size: info.size,
        mtime: info.mtime,
        link_target: info.link_target,
    }
}

fn tree_summary(summary: TreeSummary) -> pb::TreeSummary {
    pb::TreeSummary {
        files: summary.files,
        directories: summary.dirs,
        symlinks: summary.symlinks,
        bytes: summary.bytes,
        skipped: summary.skipped,
    }
}

fn pulled_message(response: pb::pull_file_response::Response) -> pb::PullFileResponse {
    pb::PullFileResponse {
        response: Some(response),
        handed_over: false,
    }
}

fn pulled_data(
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> impl Stream<Item = Result<pb::PullFileResponse, Status>> {
    ReceiverStream::new(chunks).map(|chunk| match chunk {
        Ok(data) => Ok(pulled_message(pb::pull_file_response::Response::Data(data.into()))),
        Err(e) => Err(Status::internal(format!("read the pulled file: {e}"))),
    })
}

#[tonic::async_trait]
impl Files for FilesService {
    type ListStream = ListStream;
    type PullStream = PullStream;

    async fn list(&self, request: Request<pb::ListFilesRequest>) -> Result<Response<Self::ListStream>, Status> {
        let request = request.into_inner();
        let batches = self.manager.list_files(&request.name, request.path).await?;
        let stream = ReceiverStream::new(batches).map(|batch| match batch {
            Ok(entries) => Ok(pb::ListFilesResponse {
                entries: entries.into_iter().map(file_info).collect(),
            }),
            Err(e) => Err(Status::from(e)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn pull(&self, request: Request<pb::PullFileRequest>) -> Result<Response<Self::PullStream>, Status> {
        let caller = local_caller(request.extensions().get::<UdsConnectInfo>());
        let request = request.into_inner();
        let pulled = self
            .manager
            .pull_file(&request.name, request.path, request.recursive)
            .await?;
        let header = |info, handed_over| pb::PullFileResponse {
            handed_over,
            ..pulled_message(pb::pull_file_response::Response::Header(file_info(info)))
        };
        let stream: PullStream = match pulled {
            Pulled::File { info, file } => {
                let offered = caller.filter(|_| !request.descriptor_socket.is_empty());
                if let Some(caller) = offered {
                    match hand_over(&request.descriptor_socket, caller, file.as_fd()) {
                        Ok(()) => return Ok(Response::new(Box::pin(tokio_stream::once(Ok(header(info, true)))))),
                        // Not the end of the pull: the client takes the stream instead.
                        Err(e) => tracing::debug!(container = %request.name, "file streamed, not handed over: {e}"),
                    }
                }
                Box::pin(tokio_stream::once(Ok(header(info, false))).chain(pulled_data(read_chunks(file))))
            }
            Pulled::Tree { info, data, session } => {
                // After the tree's stream: the helper's summary, or its error.
                let summary = futures::stream::once(async move {
                    match session.finish().await {
                        Ok(summary) => Ok(pulled_message(pb::pull_file_response::Response::Summary(tree_summary(
                            summary,
                        )))),
                        Err(e) => Err(Status::from(e)),
                    }
                });
                Box::pin(
                    tokio_stream::once(Ok(header(info, false)))
                        .chain(pulled_data(data))
                        .chain(summary),
                )
            }
        };
        Ok(Response::new(stream))
    }

    async fn push(
        &self,
        request: Request<Streaming<pb::PushFileRequest>>,
    ) -> Result<Response<pb::PushFileResponse>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::PushFileRequest {
                request: Some(pb::push_file_request::Request::Header(header)),
            }) => header,
            _ => return Err(Status::invalid_argument("push: the first message must be the header")),
        };
        let mut push = if header.tree {
            let request = PushTree {
                path: header.path,
                name: header.source_name,
                create_dirs: header.create_dirs,
                uid: header.uid,
                gid: header.gid,
            };
            self.manager.push_tree(&header.name, request).await?
        } else {
            let request = PushFile {
                path: header.path,
                name: header.source_name,
                create_dirs: header.create_dirs,
                uid: header.uid,
                gid: header.gid,
                mode: header.mode,
            };
            self.manager.push_file(&header.name, request).await?
        };
        // Without `end` (the client died, or broke off) the push is dropped, and with it
        // whatever was written under a temporary name.
        loop {
            match stream.message().await? {
                Some(pb::PushFileRequest {
                    request: Some(pb::push_file_request::Request::Data(data)),
                }) => push.write(data).await?,
                Some(pb::PushFileRequest {
                    request: Some(pb::push_file_request::Request::End(_)),
                }) => break,
                Some(_) => return Err(Status::invalid_argument("push: a second header")),
                None => return Err(Status::cancelled("push: the stream ended before its end message")),
            }
        }
        let (info, summary) = push.commit().await?;
        Ok(Response::new(pb::PushFileResponse {
            file: info.map(file_info),
            summary: summary.map(tree_summary),
        }))
    }

    async fn mkdir(&self, request: Request<pb::MkdirRequest>) -> Result<Response<pb::FileInfo>, Status> {
        let r = request.into_inner();
        let info = self
            .manager
            .make_directory(&r.name, r.path, r.parents, r.mode, r.uid, r.gid)
            .await?;
        Ok(Response::new(file_info(info)))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteFileRequest>,
    ) -> Result<Response<pb::DeleteFileResponse>, Status> {
        let r = request.into_inner();
        self.manager.delete_file(&r.name, r.path, r.recursive).await?;
        Ok(Response::new(pb::DeleteFileResponse {}))
    }
}
