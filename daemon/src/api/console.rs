//! The Console stream: bytes typed by the client go to the container's console, what
//! the console shows comes back, until either side ends.

use std::sync::Arc;

use sysc_proto::v1 as pb;
use sysc_proto::v1::console_request::Request as In;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use super::stopping::{Session, until_stopping};
use crate::containers::Manager;

pub type ConsoleStream = Session<pb::ConsoleResponse>;

pub async fn serve(manager: Arc<Manager>, mut input: Streaming<pb::ConsoleRequest>) -> Result<ConsoleStream, Status> {
    let bus = manager.events.bus.clone();
    let Some(pb::ConsoleRequest {
        request: Some(In::Attach(attach)),
    }) = input.message().await?
    else {
        return Err(Status::invalid_argument("the first console message must be attach"));
    };
    let name = attach.name;
    let size = attach
        .window
        .as_ref()
        .filter(|w| w.rows > 0 && w.cols > 0)
        .map(|w| convert::window_size(Some(w)));
    let connection = manager.console(&name, size).await?;
    let (mut reader, mut writer) = (connection.reader, connection.writer);
    let (tx, rx) = mpsc::channel(16);

    let typing = tokio::spawn(async move {
        while let Ok(Some(message)) = input.message().await {
            match message.request {
                Some(In::Input(bytes)) => {
                    if writer.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(In::Resize(size)) => {
                    let _ = manager.console_resize(&name, convert::window_size(Some(&size))).await;
                }
                Some(In::Attach(_)) | None => {}
            }
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            tokio::select! {
                read = reader.read(&mut buf) => match read {
                    // The monitor is gone: the container stopped.
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let output = pb::ConsoleResponse { output: buf[..n].to_vec() };
                        if tx.send(Ok(output)).await.is_err() {
                            break;
                        }
                    }
                },
                _ = tx.closed() => break,
            }
        }
        typing.abort();
    });
    Ok(until_stopping(ReceiverStream::new(rx), &bus))
}
