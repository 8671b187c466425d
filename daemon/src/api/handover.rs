//! A pulled file handed to a local client as an open descriptor, so it reads the file
//! itself at the speed of a local copy instead of through the stream. Only over the
//! daemon's unix socket, and only to the very process that made the call: the socket the
//! client names must be held by the caller's PID, as the kernel reports both.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, UnixAddr, connect, getsockopt, socket, sockopt::PeerCredentials,
};
use thiserror::Error;
use tonic::transport::server::UdsConnectInfo;

/// Abstract socket names are at most this long (sun_path less its leading NUL).
const MAX_NAME: usize = 107;

#[derive(Debug, Error)]
pub enum HandoverError {
    #[error("the descriptor socket name is empty or longer than {MAX_NAME} bytes")]
    BadName,
    #[error("reach the descriptor socket: {0}")]
    Connect(Errno),
    #[error("the descriptor socket is held by pid {held_by}, not by the caller (pid {caller})")]
    NotTheCaller { held_by: i32, caller: i32 },
    #[error("send the descriptor: {0}")]
    Send(Errno),
}

/// The caller's PID when the call came over the local unix socket.
pub fn local_caller(info: Option<&UdsConnectInfo>) -> Option<i32> {
    info.and_then(|info| info.peer_cred).and_then(|cred| cred.pid())
}

/// Sends `file` to the abstract socket `name` if the caller `pid` listens there.
pub fn hand_over(name: &[u8], caller: i32, file: BorrowedFd<'_>) -> Result<(), HandoverError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(HandoverError::BadName);
    }
    let address = UnixAddr::new_abstract(name).map_err(|_| HandoverError::BadName)?;
    // Non-blocking: a listener whose queue is full is refused at once rather than waited for.
    let sock: OwnedFd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(HandoverError::Connect)?;
    connect(sock.as_raw_fd(), &address).map_err(HandoverError::Connect)?;
    let held_by = getsockopt(&sock, PeerCredentials)
        .map_err(HandoverError::Connect)?
        .pid();
    if held_by != caller {
        return Err(HandoverError::NotTheCaller { held_by, caller });
    }
    crate::runtime::fdpass::send(sock.as_fd(), b"f", &[file.as_raw_fd()]).map_err(HandoverError::Send)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};

    use super::*;

    fn listener() -> (UnixListener, Vec<u8>) {
        let name = format!("sysc-handover-test-{}-{}", std::process::id(), rand::random::<u64>()).into_bytes();
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        (listener, name)
    }

    #[test]
    fn the_caller_gets_the_file_itself() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"contents").unwrap();
        let (listener, name) = listener();
        hand_over(&name, std::process::id() as i32, file.as_fd()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let (message, mut fds) = crate::runtime::fdpass::recv(conn.as_fd()).unwrap();
        assert_eq!(message, b"f");
        let mut received = std::fs::File::from(fds.remove(0));
        let mut contents = String::new();
        std::io::Seek::rewind(&mut received).unwrap();
        received.read_to_string(&mut contents).unwrap();
        assert_eq!(contents, "contents");
    }

    #[test]
    fn nobody_but_the_caller_gets_it() {
        let file = tempfile::tempfile().unwrap();
        let (listener, name) = listener();
        listener.set_nonblocking(true).unwrap();
        let err = hand_over(&name, 1, file.as_fd()).unwrap_err();
        assert!(matches!(err, HandoverError::NotTheCaller { caller: 1, .. }), "{err}");
        // Connected, checked, and dropped without a descriptor.
        let (conn, _) = listener.accept().unwrap();
        let (message, fds) = crate::runtime::fdpass::recv(conn.as_fd()).unwrap();
        assert!(message.is_empty() && fds.is_empty());
    }

    #[test]
    fn a_name_nobody_holds_or_a_bad_one_is_an_error() {
        let file = tempfile::tempfile().unwrap();
        let name = format!("sysc-handover-test-none-{}", rand::random::<u64>()).into_bytes();
        let err = hand_over(&name, std::process::id() as i32, file.as_fd()).unwrap_err();
        assert!(matches!(err, HandoverError::Connect(Errno::ECONNREFUSED)), "{err}");
        assert!(matches!(hand_over(b"", 1, file.as_fd()), Err(HandoverError::BadName)));
        assert!(matches!(
            hand_over(&[b'x'; 108], 1, file.as_fd()),
            Err(HandoverError::BadName)
        ));
    }
}
