//! Messages with file descriptors attached, between the monitor and the container's
//! setup process (a SOCK_SEQPACKET pair, so each message arrives whole).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

pub fn send(sock: BorrowedFd<'_>, message: &[u8], fds: &[RawFd]) -> nix::Result<()> {
    let iov = [IoSlice::new(message)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None).map(drop)
}

/// One message and the descriptors that came with it; an empty message means the
/// peer closed its end (for the setup process: it exec'd its init).
pub fn recv(sock: BorrowedFd<'_>) -> nix::Result<(Vec<u8>, Vec<OwnedFd>)> {
    recv_up_to(sock, 4096)
}

/// Like `recv`, for messages of up to `capacity` bytes (longer ones are an error).
pub fn recv_up_to(sock: BorrowedFd<'_>, capacity: usize) -> nix::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; capacity];
    let (len, fds) = recv_into(sock, &mut buf)?;
    buf.truncate(len);
    Ok((buf, fds))
}

/// Like `recv`, into `buf`: the message's length and the descriptors that came with it.
pub fn recv_into(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: SCM_RIGHTS hands us new descriptors that nothing else owns.
            fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
        }
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(nix::errno::Errno::EMSGSIZE);
    }
    Ok((msg.bytes, fds))
}
