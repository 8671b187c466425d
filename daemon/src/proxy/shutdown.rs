//! When the proxy stops: its container's init exits (its pidfd turns readable), or
//! someone (normally the daemon) sends SIGTERM or SIGINT.

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{Signal, SignalKind, signal};

pub struct Shutdown {
    init: AsyncFd<OwnedFd>,
    terminate: Signal,
    interrupt: Signal,
}

impl Shutdown {
    /// Must run inside the runtime. Done before reporting ready, so that a SIGTERM sent
    /// right after the report already ends the proxy cleanly.
    pub fn watch(init_pidfd: OwnedFd) -> io::Result<Self> {
        // SAFETY: an OwnedFd is one open descriptor for as long as it lives.
        let init = unsafe { AsyncFd::register_with_interest(init_pidfd, Interest::READABLE) }?;
        Ok(Shutdown {
            init,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    pub async fn wait(mut self) {
        tokio::select! {
            ready = self.init.readable() => match ready {
                Ok(_) => tracing::info!("the container's init exited; stopping"),
                Err(e) => tracing::error!("watch the container's init: {e}; stopping"),
            },
            _ = self.terminate.recv() => tracing::info!("SIGTERM; stopping"),
            _ = self.interrupt.recv() => tracing::info!("SIGINT; stopping"),
        }
    }
}
