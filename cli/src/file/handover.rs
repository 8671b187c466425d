//! A pulled file taken as an open descriptor from a local syscd, and read here at the
//! speed of a local copy (copy_file_range, sendfile or splice) instead of through the
//! stream. The offer is an abstract unix socket only this process listens on; syscd
//! hands the file over there only when the call came from this process over its own
//! unix socket. Anywhere else (a remote, another network namespace) it streams.

use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use anyhow::{anyhow, bail};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, getsockopt, recvmsg, sockopt::PeerCredentials};

use crate::connect::os_message;

/// Bytes copied between two progress updates.
const STEP: u64 = 64 << 20;

pub struct Offer {
    listener: UnixListener,
    name: Vec<u8>,
}

impl Offer {
    /// None when no socket can be made here; the file is then streamed.
    pub fn new() -> Option<Self> {
        let name = format!("sysc-pull-{}-{:016x}", std::process::id(), random()?).into_bytes();
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).ok()?).ok()?;
        // syscd connects before it answers, so the connection waits here by then.
        listener.set_nonblocking(true).ok()?;
        Some(Self { listener, name })
    }

    pub fn name(&self) -> Vec<u8> {
        self.name.clone()
    }

    /// The file syscd says it handed over.
    pub fn take(&self) -> anyhow::Result<File> {
        let (conn, _) = self.listener.accept().map_err(|err| match err.kind() {
            io::ErrorKind::WouldBlock => anyhow!("syscd said it handed the file over, but nothing came"),
            _ => anyhow!("take the file from syscd: {}", os_message(&err)),
        })?;
        // The name can be seen in /proc/net/unix: only root (syscd) is believed.
        let peer = getsockopt(&conn, PeerCredentials).map_err(|err| anyhow!("take the file from syscd: {err}"))?;
        if peer.uid() != 0 {
            bail!("a process of uid {} (not syscd) sent a file", peer.uid());
        }
        conn.set_nonblocking(false)
            .map_err(|err| anyhow!("take the file from syscd: {}", os_message(&err)))?;
        let file = File::from(receive_descriptor(conn.as_raw_fd())?);
        let meta = file
            .metadata()
            .map_err(|err| anyhow!("take the file from syscd: {}", os_message(&err)))?;
        if !meta.is_file() {
            bail!("syscd handed over something that is not a regular file");
        }
        Ok(file)
    }
}

/// A name nobody can guess keeps others from taking it first.
fn random() -> Option<u64> {
    let mut bytes = [0u8; 8];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .ok()?;
    Some(u64::from_ne_bytes(bytes))
}

fn receive_descriptor(sock: RawFd) -> anyhow::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let message = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(|err| anyhow!("take the file from syscd: {err}"))?;
    let cmsgs = message
        .cmsgs()
        .map_err(|err| anyhow!("take the file from syscd: {err}"))?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let [fd] = fds[..]
        {
            // SAFETY: SCM_RIGHTS gave this process a new descriptor nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    bail!("syscd sent no file")
}

/// All of `source` into `to`, `advance`d step by step.
pub fn copy<W: Write>(source: &File, to: &mut W, advance: impl Fn(u64)) -> io::Result<()> {
    loop {
        // std copies a File into a file or pipe in the kernel.
        let copied = io::copy(&mut source.take(STEP), to)?;
        if copied == 0 {
            return Ok(());
        }
        advance(copied);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use nix::sys::socket::{ControlMessage, sendmsg};

    use super::*;

    fn send(offer: &Offer, file: &File) {
        let conn = UnixStream::connect_addr(&SocketAddr::from_abstract_name(offer.name()).unwrap()).unwrap();
        let fds = [file.as_fd().as_raw_fd()];
        let iov = [io::IoSlice::new(b"f")];
        sendmsg::<()>(
            conn.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
    }

    #[test]
    fn takes_the_file_sent_and_copies_it_whole() {
        let offer = Offer::new().unwrap();
        let mut source = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        source.write_all(&data).unwrap();
        source.rewind().unwrap();
        send(&offer, &source);
        let taken = offer.take().unwrap();
        let mut copy_to = tempfile::tempfile().unwrap();
        let total = std::cell::Cell::new(0);
        copy(&taken, &mut copy_to, |n| total.set(total.get() + n)).unwrap();
        assert_eq!(total.get(), data.len() as u64);
        copy_to.rewind().unwrap();
        let mut copied = Vec::new();
        copy_to.read_to_end(&mut copied).unwrap();
        assert!(copied == data);
    }

    #[test]
    fn nothing_sent_is_an_error_not_a_wait() {
        let offer = Offer::new().unwrap();
        let err = offer.take().unwrap_err();
        assert_eq!(err.to_string(), "syscd said it handed the file over, but nothing came");
    }

    #[test]
    fn only_a_regular_file_is_taken() {
        let offer = Offer::new().unwrap();
        let dir = File::open("/").unwrap();
        send(&offer, &dir);
        let err = offer.take().unwrap_err();
        assert_eq!(
            err.to_string(),
            "syscd handed over something that is not a regular file"
        );
    }
}
