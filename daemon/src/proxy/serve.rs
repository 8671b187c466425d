//! The proxy's accept loop: every client accepted on the listen socket gets its own
//! connection to the connect address, and bytes are copied both ways until either side
//! closes. Outgoing sockets are created in whatever network namespace the calling thread
//! is in, which is how the helper reaches into a container.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

/// How long to stop accepting after an error like EMFILE, which would otherwise come
/// back at once, in a busy loop, until some connection closes.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Per direction and connection. On loopback, 32 KiB moved a single stream ~1.7x faster
/// than tokio's default 8 KiB; 64 KiB gained little more for twice the memory.
const COPY_BUFFER: usize = 32 * 1024;

/// Serves until `exit` completes. Connections still open then are dropped.
pub async fn serve(
    listener: std::net::TcpListener,
    connect: SocketAddr,
    exit: impl Future<Output = ()>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let mut exit = pin!(exit);
    // Owning the connections' tasks means returning drops them all, whoever runs us.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut exit => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let span = tracing::debug_span!("connection", %peer);
                    connections.spawn(forward(client, connect).instrument(span));
                }
                Err(e) if is_per_connection(&e) => {
                    tracing::debug!("accept: {e}");
                }
                Err(e) => {
                    tracing::warn!("accept on the listen socket: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = finished {
                    tracing::error!("connection task failed: {e}");
                }
            }
        }
    }
}

/// Errors about one client that went away before we took it, not about the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

async fn forward(mut client: TcpStream, connect: SocketAddr) {
    // On failure the client is dropped, so it sees its connection closed.
    let mut upstream = match TcpStream::connect(connect).await {
        Ok(upstream) => upstream,
        Err(e) => {
            tracing::warn!("connect to {connect}: {e}; closing the client's connection");
            return;
        }
    };
    // Interactive protocols (ssh, databases) would otherwise wait on Nagle at each hop.
    for stream in [&client, &upstream] {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("set TCP_NODELAY: {e}");
        }
    }
    match tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, COPY_BUFFER, COPY_BUFFER).await {
        Ok((sent, received)) => tracing::debug!(sent, received, "connection closed"),
        Err(e) => tracing::debug!("connection to {connect} ended: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::oneshot;

    use super::*;

    /// An echo server on 127.0.0.1; returns its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        address
    }

    /// A proxy to `connect` on a fresh 127.0.0.1 port; returns its address, the sender
    /// that makes it exit, and its task.
    fn start_proxy(connect: SocketAddr) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<io::Result<()>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, connect, async {
            let _ = stopped.await;
        }));
        (address, stop, task)
    }

    /// A port on 127.0.0.1 where nothing listens.
    fn closed_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    async fn read_to_eof(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
        let mut received = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
            .await
            .expect("the connection should close")?;
        Ok(received)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bytes_round_trip_on_many_connections_at_once() {
        let (proxy, stop, task) = start_proxy(echo_server().await);
        let mut clients = JoinSet::new();
        for i in 0..20u8 {
            clients.spawn(async move {
                let mut stream = TcpStream::connect(proxy).await.unwrap();
                // Larger than the socket buffers, so both directions must flow together.
                let payload: Vec<u8> = (0..4 << 20).map(|n: u32| (n as u8) ^ i).collect();
                let (mut read, mut write) = stream.split();
                let send = async {
                    write.write_all(&payload).await.unwrap();
                    write.shutdown().await.unwrap();
                };
                let mut received = Vec::new();
                let receive = read.read_to_end(&mut received);
                let ((), result) = tokio::join!(send, receive);
                result.unwrap();
                assert!(received == payload, "connection {i} got other bytes back");
            });
        }
        while let Some(result) = clients.join_next().await {
            result.unwrap();
        }
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_connect_closes_the_client() {
        let (proxy, stop, task) = start_proxy(closed_port());
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        let outcome = read_to_eof(&mut stream).await;
        assert!(
            matches!(&outcome, Ok(bytes) if bytes.is_empty())
                || matches!(&outcome, Err(e) if e.kind() == io::ErrorKind::ConnectionReset),
            "{outcome:?}"
        );
        // The proxy itself carries on.
        assert!(!task.is_finished());
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn exiting_drops_open_connections_and_the_listener() {
        let (proxy, stop, task) = start_proxy(echo_server().await);
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(b"ping").await.unwrap();
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"ping");

        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
        assert!(read_to_eof(&mut stream).await.map(|b| b.is_empty()).unwrap_or(true));
        assert!(TcpStream::connect(proxy).await.is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_client_half_close_reaches_the_server() {
        let (proxy, stop, task) = start_proxy(echo_server().await);
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(b"last words").await.unwrap();
        stream.shutdown().await.unwrap();
        // The echo server only stops (and closes its side) once it sees our EOF.
        assert_eq!(read_to_eof(&mut stream).await.unwrap(), b"last words");
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }
}
