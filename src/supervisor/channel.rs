//! Messages over a SOCK_SEQPACKET unix socket: one JSON value per packet, with
//! descriptors attached as SCM_RIGHTS.
//!
//! The supervisor talks to the jail's init and to clients (`exec`, `down`)
//! this way. Whatever arrives from the jail is parsed as data and checked: the
//! jail may have taken over its init.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest message: a spawn request with a large environment fits.
pub const MAX_MESSAGE: usize = 192 * 1024;
const MAX_FDS: usize = 8;

/// One end of a message channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    /// Wraps a connected SOCK_SEQPACKET socket.
    pub fn new(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = socket::socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// The socket.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sends a message with descriptors.
    pub fn send<T: Serialize>(&self, message: &T, fds: &[RawFd]) -> io::Result<()> {
        let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
        if bytes.len() > MAX_MESSAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too large"));
        }
        if fds.is_empty() {
            // send(2), which names no address: a jail's filter lets it
            // through by its registers, where sendmsg(2) may be notified.
            socket::send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)?;
            return Ok(());
        }
        let iov = [IoSlice::new(&bytes)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        socket::sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
        Ok(())
    }

    /// Receives a message; `Ok(None)` when the other end closed.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<Option<(T, Vec<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
        let (len, fds, truncated) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let msg = loop {
                match socket::recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            let mut fds = Vec::new();
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(list) = c {
                    // SAFETY: SCM_RIGHTS descriptors are new in this process and ours.
                    fds.extend(list.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
            (
                msg.bytes,
                fds,
                msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC),
            )
        };
        if len == 0 && fds.is_empty() {
            return Ok(None);
        }
        if truncated {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "message truncated"));
        }
        let value = serde_json::from_slice(&buf[..len]).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(Some((value, fds)))
    }
}
