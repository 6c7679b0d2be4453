//! Network calls the supervisor performs for a jail whose address rule
//! cannot run as cgroup programs (no privilege to load them, or no unified
//! cgroup hierarchy): bind, connect, sendto, sendmsg and sendmmsg.
//!
//! The supervisor takes the jail's socket with pidfd_getfd. A socket that is
//! not IPv4 or IPv6 (a unix socket, say) is none of its business: its family
//! comes from the kernel, not from memory, so the call continues as made.
//! For the others it copies each argument out of the caller's memory once,
//! checks the call is still pending, applies [`Addresses`]'s rule to its copy
//! and makes the call itself; the caller gets the result. A second thread
//! changing the caller's memory meanwhile changes nothing.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::notify::{Notif, read_memory, respond, valid, write_memory};
use crate::rewrite::Addresses;
use crate::sys::raw;
use crate::syscalls::Sysno;

/// How a notification is answered.
pub enum Answer {
    /// With this result.
    Now(Result<i64, i32>),
    /// By letting the call run as made: only where nothing was decided from
    /// memory.
    Continue,
    /// By a thread of its own, for a call that may block (connect, send).
    Later,
}

/// Longest socket address copied.
const MAX_ADDR: usize = 128;
/// Most data one send copies; a datagram is at most 64 KiB.
const MAX_DATA: usize = 1 << 20;
/// Most iovecs and control bytes of one message.
const MAX_IOV: usize = 1024;
const MAX_CONTROL: usize = 4096;
/// Most messages of one sendmmsg (the kernel's UIO_MAXIOV).
const MAX_MMSG: usize = 1024;

/// The jail's socket and what it is.
struct Socket {
    fd: OwnedFd,
    ipv6: bool,
}

fn so_domain(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut domain: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes an int into domain.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_DOMAIN,
            (&mut domain as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(domain)
    }
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Decodes a socket address copied from memory.
pub fn decode(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match i32::from(family) {
        libc::AF_INET if b.len() >= 8 => Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])), port)),
        libc::AF_INET6 if b.len() >= 24 => {
            let ip: [u8; 16] = b[8..24].try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// Encodes a socket address for a socket of `ipv6`'s family: an IPv4
/// address on an IPv6 socket becomes mapped.
pub fn encode(addr: SocketAddr, ipv6: bool) -> Vec<u8> {
    match (addr, ipv6) {
        (SocketAddr::V4(a), false) => {
            let mut b = (libc::AF_INET as u16).to_ne_bytes().to_vec();
            b.extend(a.port().to_be_bytes());
            b.extend(a.ip().octets());
            b.extend([0; 8]);
            b
        }
        (a, _) => {
            let ip = match a.ip() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            let mut b = (libc::AF_INET6 as u16).to_ne_bytes().to_vec();
            b.extend(a.port().to_be_bytes());
            b.extend([0; 4]);
            b.extend(ip.octets());
            b.extend([0; 4]);
            b
        }
    }
}

fn local(fd: BorrowedFd<'_>) -> Option<SocketAddr> {
    let mut b = [0u8; MAX_ADDR];
    let mut len = MAX_ADDR as libc::socklen_t;
    // SAFETY: getsockname writes at most len bytes into b.
    if unsafe { libc::getsockname(fd.as_raw_fd(), b.as_mut_ptr().cast(), &mut len) } < 0 {
        return None;
    }
    decode(&b[..len as usize])
}

fn bind_raw(fd: BorrowedFd<'_>, addr: &[u8]) -> io::Result<()> {
    // SAFETY: addr holds a sockaddr of its length.
    let r = unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr().cast(), addr.len() as libc::socklen_t) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The supervisor's side of the jail's network calls.
pub struct NetCalls {
    addresses: Addresses,
}

impl NetCalls {
    /// For a jail with these addresses.
    pub fn new(addresses: Addresses) -> NetCalls {
        NetCalls { addresses }
    }

    /// Answers one notified network call.
    pub fn handle(&self, n: &Notif, listener: BorrowedFd<'_>, call: Option<Sysno>, compat: bool) -> Answer {
        match self.handle_inner(n, listener, call, compat) {
            Ok(a) => a,
            Err(e) => Answer::Now(Err(e)),
        }
    }

    fn handle_inner(
        &self,
        n: &Notif,
        listener: BorrowedFd<'_>,
        call: Option<Sysno>,
        compat: bool,
    ) -> Result<Answer, i32> {
        let pidfd = raw::pidfd_open(n.pid as i32).map_err(errno)?;
        valid(listener, n.id)?;
        let fd = raw::pidfd_getfd(pidfd.as_fd(), n.args[0] as i32).map_err(errno)?;
        let domain = so_domain(fd.as_fd()).map_err(errno)?;
        if domain != libc::AF_INET && domain != libc::AF_INET6 {
            // Decided by the socket's family, which the kernel holds.
            return Ok(Answer::Continue);
        }
        let sock = Socket {
            fd,
            ipv6: domain == libc::AF_INET6,
        };
        match call {
            Some(Sysno::bind) => Ok(Answer::Now(self.bind(n, listener, &sock))),
            Some(Sysno::connect) => self.connect(n, listener, sock),
            Some(Sysno::sendto) => self.sendto(n, listener, sock),
            Some(Sysno::sendmsg) => self.sendmsg(n, listener, sock, compat),
            Some(Sysno::sendmmsg) => self.sendmmsg(n, listener, sock, compat),
            _ => Err(libc::ENOSYS),
        }
    }

    /// Copies the socket address at `ptr` of `len` bytes, once.
    fn address(&self, n: &Notif, listener: BorrowedFd<'_>, ptr: u64, len: u64) -> Result<Option<SocketAddr>, i32> {
        let len = (len as usize).min(MAX_ADDR);
        let bytes = read_memory(n.pid, ptr, len).map_err(errno)?;
        valid(listener, n.id)?;
        Ok(decode(&bytes))
    }

    fn bind(&self, n: &Notif, listener: BorrowedFd<'_>, sock: &Socket) -> Result<i64, i32> {
        let addr = self
            .address(n, listener, n.args[1], n.args[2])?
            .ok_or(libc::EAFNOSUPPORT)?;
        let ip = self.addresses.bind_address(addr.ip()).ok_or(libc::EPERM)?;
        bind_raw(sock.fd.as_fd(), &encode(SocketAddr::new(ip, addr.port()), sock.ipv6)).map_err(errno)?;
        Ok(0)
    }

    /// The destination, rewritten, with the socket bound to the jail's
    /// address first if it is not bound yet.
    fn prepare(&self, sock: &Socket, dest: SocketAddr) -> Result<Vec<u8>, i32> {
        let ip = self.addresses.destination(dest.ip()).ok_or(libc::EPERM)?;
        let unbound = local(sock.fd.as_fd()).is_none_or(|l| l.ip().is_unspecified());
        if unbound {
            let source = self.addresses.source(ip).ok_or(libc::EPERM)?;
            // Fails harmlessly when the socket has a port already (a
            // listener's accepted peer, say): then its address is listed.
            let _ = bind_raw(sock.fd.as_fd(), &encode(SocketAddr::new(source, 0), sock.ipv6));
        }
        Ok(encode(SocketAddr::new(ip, dest.port()), sock.ipv6))
    }

    fn connect(&self, n: &Notif, listener: BorrowedFd<'_>, sock: Socket) -> Result<Answer, i32> {
        let dest = self.address(n, listener, n.args[1], n.args[2])?;
        let Some(dest) = dest else {
            // AF_UNSPEC dissolves a datagram socket's association: no address.
            let unspec = [0u8; 16];
            // SAFETY: a zeroed sockaddr of family AF_UNSPEC.
            let r = unsafe { libc::connect(sock.fd.as_raw_fd(), unspec.as_ptr().cast(), 16) };
            return Ok(Answer::Now(if r < 0 { Err(last()) } else { Ok(0) }));
        };
        let target = self.prepare(&sock, dest)?;
        // connect(2) may wait for a handshake: a thread answers when it ends.
        later(n.id, listener, move || {
            // SAFETY: target holds a sockaddr of its length.
            let r = unsafe {
                libc::connect(
                    sock.fd.as_raw_fd(),
                    target.as_ptr().cast(),
                    target.len() as libc::socklen_t,
                )
            };
            if r < 0 { Err(last()) } else { Ok(0) }
        })
    }

    fn sendto(&self, n: &Notif, listener: BorrowedFd<'_>, sock: Socket) -> Result<Answer, i32> {
        let len = n.args[2] as usize;
        if len > MAX_DATA {
            return Err(libc::EMSGSIZE);
        }
        let data = read_memory(n.pid, n.args[1], len).map_err(errno)?;
        let target = if n.args[4] == 0 {
            None
        } else {
            let dest = self
                .address(n, listener, n.args[4], n.args[5])?
                .ok_or(libc::EAFNOSUPPORT)?;
            Some(self.prepare(&sock, dest)?)
        };
        valid(listener, n.id)?;
        let flags = n.args[3] as i32;
        later(n.id, listener, move || {
            let (ptr, plen) = target
                .as_ref()
                .map_or((std::ptr::null(), 0), |t| (t.as_ptr(), t.len() as libc::socklen_t));
            // SAFETY: data and the target live through the call.
            let r = unsafe {
                libc::sendto(
                    sock.fd.as_raw_fd(),
                    data.as_ptr().cast(),
                    data.len(),
                    flags,
                    ptr.cast(),
                    plen,
                )
            };
            if r < 0 { Err(last()) } else { Ok(r as i64) }
        })
    }

    /// Copies one message: its address (rewritten), data and control (with
    /// source addresses of IP_PKTINFO and IPV6_PKTINFO held to the list).
    fn message(&self, n: &Notif, sock: &Socket, header: &[u8], layout: Layout) -> Result<Message, i32> {
        let field = |i: usize| layout.word(header, i);
        let (name_ptr, name_len, iov_ptr, iov_len, control_ptr, control_len) =
            (field(0), field(1), field(2), field(3), field(4), field(5));
        let name = if name_ptr == 0 {
            None
        } else {
            let bytes = read_memory(n.pid, name_ptr, (name_len as usize).min(MAX_ADDR)).map_err(errno)?;
            let dest = decode(&bytes).ok_or(libc::EAFNOSUPPORT)?;
            Some(self.prepare(sock, dest)?)
        };
        if iov_len as usize > MAX_IOV {
            return Err(libc::EMSGSIZE);
        }
        let iovs = read_memory(n.pid, iov_ptr, iov_len as usize * layout.iovec()).map_err(errno)?;
        let mut data = Vec::new();
        for i in 0..iov_len as usize {
            let base = layout.word(&iovs[i * layout.iovec()..], 0);
            let len = layout.word(&iovs[i * layout.iovec()..], 1) as usize;
            if data.len() + len > MAX_DATA {
                return Err(libc::EMSGSIZE);
            }
            data.extend(read_memory(n.pid, base, len).map_err(errno)?);
        }
        let control = if control_ptr == 0 || control_len == 0 {
            Vec::new()
        } else if control_len as usize > MAX_CONTROL {
            return Err(libc::ENOBUFS);
        } else {
            let raw = read_memory(n.pid, control_ptr, control_len as usize).map_err(errno)?;
            self.control(&raw, layout)?
        };
        Ok(Message { name, data, control })
    }

    /// Re-encodes control messages natively, holding PKTINFO source
    /// addresses to the list.
    fn control(&self, raw: &[u8], layout: Layout) -> Result<Vec<u8>, i32> {
        let head = layout.cmsghdr();
        let mut out = Vec::new();
        let mut off = 0;
        while off + head <= raw.len() {
            let len = layout.word(&raw[off..], 0) as usize;
            let level = i32::from_ne_bytes(raw[off + layout.ptr..off + layout.ptr + 4].try_into().expect("4"));
            let ty = i32::from_ne_bytes(raw[off + layout.ptr + 4..off + layout.ptr + 8].try_into().expect("4"));
            if len < head || off + len > raw.len() {
                return Err(libc::EINVAL);
            }
            let mut body = raw[off + head..off + len].to_vec();
            match (level, ty) {
                // struct in_pktinfo: ifindex, spec_dst, addr.
                (libc::IPPROTO_IP, libc::IP_PKTINFO) if body.len() >= 12 => {
                    let spec = Ipv4Addr::new(body[4], body[5], body[6], body[7]);
                    let kept = self.addresses.bind_address(IpAddr::V4(spec)).ok_or(libc::EPERM)?;
                    if let IpAddr::V4(k) = kept {
                        body[4..8].copy_from_slice(&k.octets());
                    }
                    body[0..4].copy_from_slice(&0i32.to_ne_bytes());
                }
                // struct in6_pktinfo: addr, ifindex.
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if body.len() >= 20 => {
                    let a: [u8; 16] = body[0..16].try_into().expect("16");
                    let a = Ipv6Addr::from(a);
                    if !a.is_unspecified() {
                        let kept = self.addresses.bind_address(IpAddr::V6(a)).ok_or(libc::EPERM)?;
                        if let IpAddr::V6(k) = kept {
                            body[0..16].copy_from_slice(&k.octets());
                        }
                    }
                    body[16..20].copy_from_slice(&0u32.to_ne_bytes());
                }
                _ => {}
            }
            // Native struct cmsghdr: size_t len, int level, int type.
            let native_len = std::mem::size_of::<libc::cmsghdr>() + body.len();
            out.extend((native_len as libc::size_t).to_ne_bytes());
            out.extend(level.to_ne_bytes());
            out.extend(ty.to_ne_bytes());
            out.extend(&body);
            out.resize(out.len().next_multiple_of(std::mem::size_of::<libc::size_t>()), 0);
            off += len.next_multiple_of(layout.ptr);
        }
        Ok(out)
    }

    fn sendmsg(&self, n: &Notif, listener: BorrowedFd<'_>, sock: Socket, compat: bool) -> Result<Answer, i32> {
        let layout = Layout::of(compat);
        let header = read_memory(n.pid, n.args[1], layout.msghdr()).map_err(errno)?;
        let msg = self.message(n, &sock, &header, layout)?;
        valid(listener, n.id)?;
        let flags = n.args[2] as i32;
        later(n.id, listener, move || msg.send(sock.fd.as_fd(), flags))
    }

    fn sendmmsg(&self, n: &Notif, listener: BorrowedFd<'_>, sock: Socket, compat: bool) -> Result<Answer, i32> {
        let layout = Layout::of(compat);
        let count = (n.args[2] as usize).min(MAX_MMSG);
        // struct mmsghdr: the msghdr, then unsigned msg_len (padded).
        let stride = layout.msghdr() + layout.ptr;
        let headers = read_memory(n.pid, n.args[1], count * stride).map_err(errno)?;
        let mut messages = Vec::new();
        for i in 0..count {
            messages.push(self.message(n, &sock, &headers[i * stride..], layout)?);
        }
        valid(listener, n.id)?;
        let (flags, pid, vec) = (n.args[3] as i32, n.pid, n.args[1]);
        let msg_len_at = layout.msghdr() as u64;
        later(n.id, listener, move || {
            let mut sent = 0;
            for (i, m) in messages.iter().enumerate() {
                match m.send(sock.fd.as_fd(), flags) {
                    Ok(len) => {
                        // Each message's msg_len, as the kernel writes it.
                        let at = vec + (i * stride) as u64 + msg_len_at;
                        let _ = write_memory(pid, at, &(len as u32).to_ne_bytes());
                        sent += 1;
                    }
                    Err(e) if sent == 0 => return Err(e),
                    Err(_) => break,
                }
            }
            Ok(sent)
        })
    }
}

/// One copied message, ready to send.
struct Message {
    name: Option<Vec<u8>>,
    data: Vec<u8>,
    control: Vec<u8>,
}

impl Message {
    fn send(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<i64, i32> {
        let mut iov = libc::iovec {
            iov_base: self.data.as_ptr() as *mut libc::c_void,
            iov_len: self.data.len(),
        };
        // SAFETY: msghdr is plain data; the fields set below point into self.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(name) = &self.name {
            m.msg_name = name.as_ptr() as *mut libc::c_void;
            m.msg_namelen = name.len() as libc::socklen_t;
        }
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        if !self.control.is_empty() {
            m.msg_control = self.control.as_ptr() as *mut libc::c_void;
            m.msg_controllen = self.control.len() as _;
        }
        // SAFETY: m points only into memory that outlives the call.
        let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &m, flags) };
        if r < 0 { Err(last()) } else { Ok(r as i64) }
    }
}

/// Sizes of the caller's structures: native or a 32-bit ABI's.
#[derive(Clone, Copy)]
struct Layout {
    /// Size of a pointer, size_t and the padding of the structures.
    ptr: usize,
}

impl Layout {
    fn of(compat: bool) -> Layout {
        Layout {
            ptr: if compat { 4 } else { std::mem::size_of::<usize>() },
        }
    }

    /// struct msghdr: name, namelen (int), iov, iovlen, control,
    /// controllen, flags; each in a pointer-sized slot.
    fn msghdr(self) -> usize {
        7 * self.ptr
    }

    fn iovec(self) -> usize {
        2 * self.ptr
    }

    fn cmsghdr(self) -> usize {
        self.ptr + 8
    }

    /// Field `i` of pointer-sized slots (namelen is an int: its slot's low
    /// half on little- and high half on big-endian hosts is read as a
    /// pointer-sized value, which holds for lengths under 2^31).
    fn word(self, b: &[u8], i: usize) -> u64 {
        let s = &b[i * self.ptr..(i + 1) * self.ptr];
        if self.ptr == 4 {
            u64::from(u32::from_ne_bytes(s.try_into().expect("4 bytes")))
        } else if i == 1 {
            // msg_namelen: an int followed by padding.
            u64::from(u32::from_ne_bytes(s[..4].try_into().expect("4 bytes")))
        } else {
            u64::from_ne_bytes(s.try_into().expect("8 bytes"))
        }
    }
}

fn last() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Calls in flight on threads; beyond the bound the jail is told EAGAIN, so
/// that it cannot exhaust the supervisor with connections that hang.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
const MAX_IN_FLIGHT: usize = 256;

/// Runs `work` on a thread that answers the notification when it ends.
fn later(
    id: u64,
    listener: BorrowedFd<'_>,
    work: impl FnOnce() -> Result<i64, i32> + Send + 'static,
) -> Result<Answer, i32> {
    if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        return Err(libc::EAGAIN);
    }
    let listener = match listener.try_clone_to_owned() {
        Ok(l) => l,
        Err(e) => {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            return Err(errno(e));
        }
    };
    std::thread::Builder::new()
        .name("sysjail-net".into())
        .spawn(move || {
            let answer = work();
            let _ = respond(listener.as_fd(), id, answer);
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        })
        .map_err(|e| {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            errno(e)
        })?;
    Ok(Answer::Later)
}
