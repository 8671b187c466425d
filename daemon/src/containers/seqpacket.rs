//! An async SOCK_SEQPACKET socket carrying file descriptors, for the exec helper's
//! control channel (tokio has no seqpacket type).

use std::io;
use std::os::fd::{AsFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

use crate::runtime::fdpass;

/// Watches an owned descriptor with tokio's reactor.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the same descriptor,
    // until the AsyncFd is dropped.
    Ok(unsafe { AsyncFd::register(fd) }?)
}

pub struct SeqPacket {
    fd: AsyncFd<OwnedFd>,
}

impl SeqPacket {
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let flags = fcntl(&fd, FcntlArg::F_GETFL)?;
        fcntl(
            &fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )?;
        Ok(Self { fd: register(fd)? })
    }

    pub async fn send(&self, message: &[u8], fds: &[RawFd]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| fdpass::send(fd.get_ref().as_fd(), message, fds).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// The next message; empty when the peer closed its end.
    pub async fn recv(&self) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        self.recv_up_to(4096).await
    }

    /// Like `recv`, for messages of up to `capacity` bytes.
    pub async fn recv_up_to(&self, capacity: usize) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| fdpass::recv_up_to(fd.get_ref().as_fd(), capacity).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}
