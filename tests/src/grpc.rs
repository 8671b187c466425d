//! A gRPC channel to a test daemon's socket, for tests that call the API directly.

use std::path::Path;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

pub async fn channel(socket: &Path) -> Channel {
    let socket = socket.to_path_buf();
    // The URI is required by tonic but unused: every connection goes to the socket.
    Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?)) }
        }))
        .await
        .unwrap()
}
