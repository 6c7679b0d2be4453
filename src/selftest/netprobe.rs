//! The probe's network checks: where a socket ends up bound, what address a
//! peer sees, and the bind race. Arguments are socket addresses
//! (`192.0.2.10:80`, `[2001:db8::10]:80`), extra parameters after a `/`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::probe::Outcome;

fn failed(e: std::io::Error) -> Outcome {
    Outcome {
        ret: -1,
        errno: e.raw_os_error().unwrap_or(libc::EIO),
        addr: None,
    }
}

fn seen(addr: SocketAddr) -> Outcome {
    Outcome {
        ret: 0,
        errno: 0,
        addr: Some(addr.to_string()),
    }
}

/// `ADDR[/N]`: the address and an optional number.
fn parse(arg: &str) -> Option<(SocketAddr, u64)> {
    let (addr, n) = match arg.split_once('/') {
        Some((a, n)) => (a, n.parse().ok()?),
        None => (arg, 0),
    };
    Some((addr.parse().ok()?, n))
}

/// Runs one network check, or None for a name it does not know.
pub fn check(name: &str, arg: Option<&str>) -> Option<Outcome> {
    Some(match name {
        // tcp-listen=ADDR[/HOLD_MS]: bind, listen, say where; hold it open.
        "tcp-listen" => {
            let (addr, hold) = parse(arg?)?;
            match TcpListener::bind(addr).and_then(|l| l.local_addr().map(|a| (l, a))) {
                Ok((listener, local)) => {
                    // Peers that connect meanwhile get a greeting naming them.
                    serve_for(&listener, Duration::from_millis(hold));
                    seen(local)
                }
                Err(e) => failed(e),
            }
        }
        // tcp-connect=ADDR: connect, say from where; reads the greeting.
        "tcp-connect" => {
            let (addr, _) = parse(arg?)?;
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(mut s) => {
                    let local = s.local_addr();
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut greeting = String::new();
                    let _ = s.read_to_string(&mut greeting);
                    match local {
                        Ok(l) => seen(l),
                        Err(e) => failed(e),
                    }
                }
                Err(e) => failed(e),
            }
        }
        // bind=ADDR: where a TCP socket bound to ADDR ends up.
        "bind" => {
            use std::os::fd::AsRawFd;
            let (addr, _) = parse(arg?)?;
            let (ss, len) = raw(addr);
            match socket(&addr, libc::SOCK_STREAM) {
                // SAFETY: ss holds a sockaddr of len bytes.
                Ok(s) if unsafe { libc::bind(s.as_raw_fd(), &ss as *const _ as *const libc::sockaddr, len) } == 0 => {
                    match local(s.as_raw_fd()) {
                        Ok(a) => seen(a),
                        Err(e) => failed(e),
                    }
                }
                Ok(_) => failed(std::io::Error::last_os_error()),
                Err(e) => failed(e),
            }
        }
        // udp-send=ADDR: a datagram from a socket never bound.
        "udp-send" => {
            let (addr, _) = parse(arg?)?;
            udp_send(addr)
        }
        // udp-sendmsg=ADDR, udp-sendmmsg=ADDR: the same through sendmsg(2),
        // and two datagrams through sendmmsg(2).
        "udp-sendmsg" => udp_sendmsg(parse(arg?)?.0, 1),
        "udp-sendmmsg" => udp_sendmsg(parse(arg?)?.0, 2),
        // bind-race=LISTED/UNLISTED/N
        "bind-race" => {
            let mut parts = arg?.split('/');
            let listed: IpAddr = parts.next()?.parse().ok()?;
            let unlisted: IpAddr = parts.next()?.parse().ok()?;
            let n: u32 = parts.next()?.parse().ok()?;
            bind_race(listed, unlisted, n)
        }
        _ => return None,
    })
}

/// Accepts peers until `hold` has passed, greeting each with its address.
pub(super) fn serve_for(listener: &TcpListener, hold: Duration) {
    let start = Instant::now();
    let _ = listener.set_nonblocking(true);
    while start.elapsed() < hold {
        match listener.accept() {
            Ok((mut s, peer)) => {
                let _ = s.write_all(peer.to_string().as_bytes());
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The server checks, `tcp-accept=ADDR/TIMEOUT_MS` and
/// `udp-recv=ADDR/TIMEOUT_MS` (where the first peer or datagram comes from).
/// Their sockets are all bound before any check runs, so a client that sends
/// while an earlier server check still waits is queued, not refused.
pub struct Servers(HashMap<String, std::io::Result<Server>>);

enum Server {
    Tcp(TcpListener, Duration),
    Udp(UdpSocket, Duration),
}

impl Servers {
    /// Binds the sockets of the server checks among `checks`.
    pub fn bind(checks: &[String]) -> Servers {
        let mut bound = HashMap::new();
        for c in checks {
            let server = match c.split_once('=') {
                Some(("tcp-accept", arg)) => parse(arg)
                    .map(|(addr, ms)| TcpListener::bind(addr).map(|l| Server::Tcp(l, Duration::from_millis(ms)))),
                Some(("udp-recv", arg)) => parse(arg)
                    .map(|(addr, ms)| UdpSocket::bind(addr).map(|s| Server::Udp(s, Duration::from_millis(ms)))),
                _ => None,
            };
            if let Some(server) = server {
                bound.insert(c.clone(), server);
            }
        }
        Servers(bound)
    }

    /// Runs the server check `c`, or None when `c` is not one.
    pub fn serve(&mut self, c: &str) -> Option<Outcome> {
        Some(match self.0.remove(c)? {
            Ok(Server::Tcp(listener, timeout)) => tcp_accept(&listener, timeout),
            Ok(Server::Udp(socket, timeout)) => {
                let _ = socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
                let mut buf = [0u8; 64];
                match socket.recv_from(&mut buf) {
                    Ok((_, from)) => seen(from),
                    Err(e) => failed(e),
                }
            }
            Err(e) => failed(e),
        })
    }
}

fn tcp_accept(listener: &TcpListener, timeout: Duration) -> Outcome {
    let _ = listener.set_nonblocking(true);
    let start = Instant::now();
    while start.elapsed() < timeout {
        match listener.accept() {
            Ok((_, peer)) => return seen(peer),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    failed(std::io::Error::from_raw_os_error(libc::ETIMEDOUT))
}

/// A `struct sockaddr_in` or `sockaddr_in6` for `addr`.
fn raw(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; every form fits in it.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_in6 is plain data.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// The address a socket is bound to.
fn local(fd: libc::c_int) -> std::io::Result<SocketAddr> {
    // SAFETY: getsockname fills at most len bytes of ss.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above.
    if unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in.
            let sin = unsafe { *(&ss as *const _ as *const libc::sockaddr_in) };
            Ok(SocketAddr::new(
                IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6.
            let sin6 = unsafe { *(&ss as *const _ as *const libc::sockaddr_in6) };
            Ok(SocketAddr::new(
                IpAddr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
            ))
        }
        f => Err(std::io::Error::other(format!("address family {f}"))),
    }
}

fn socket(addr: &SocketAddr, ty: libc::c_int) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: socket(2); owned below.
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

fn udp_send(addr: SocketAddr) -> Outcome {
    use std::os::fd::AsRawFd;
    let s = match socket(&addr, libc::SOCK_DGRAM) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let (ss, len) = raw(addr);
    let msg = b"probe";
    // SAFETY: sendto with a buffer and an address we own.
    let r = unsafe {
        libc::sendto(
            s.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r < 0 {
        return failed(std::io::Error::last_os_error());
    }
    match local(s.as_raw_fd()) {
        Ok(a) => seen(a),
        Err(e) => failed(e),
    }
}

fn udp_sendmsg(addr: SocketAddr, count: usize) -> Outcome {
    use std::os::fd::AsRawFd;
    let s = match socket(&addr, libc::SOCK_DGRAM) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let (mut ss, len) = raw(addr);
    let mut payload = *b"probe";
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; its pointers point at locals that
    // outlive the calls below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut ss as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    let r = if count == 1 {
        // SAFETY: as above.
        unsafe { libc::sendmsg(s.as_raw_fd(), &msg, 0) as i64 }
    } else {
        let mut vec: Vec<libc::mmsghdr> = (0..count)
            .map(|_| libc::mmsghdr {
                msg_hdr: msg,
                msg_len: 0,
            })
            .collect();
        // SAFETY: as above, count messages.
        let r = unsafe { libc::sendmmsg(s.as_raw_fd(), vec.as_mut_ptr(), count as u32, 0) };
        if r >= 0 && vec.iter().take(r as usize).any(|m| m.msg_len as usize != payload.len()) {
            return failed(std::io::Error::from_raw_os_error(libc::EBADMSG));
        }
        r as i64
    };
    if r < 0 {
        return failed(std::io::Error::last_os_error());
    }
    match local(s.as_raw_fd()) {
        Ok(a) => Outcome {
            ret: r,
            errno: 0,
            addr: Some(a.to_string()),
        },
        Err(e) => failed(e),
    }
}

/// The race that ended the old sysjail, on bind(2): one thread flips the
/// address in a sockaddr between a listed and an unlisted one while this
/// thread binds `n` fresh TCP sockets to it (port 0). Returns how many
/// binds succeeded and, as the address, every distinct address the sockets
/// ended up on, comma-separated.
fn bind_race(listed: IpAddr, unlisted: IpAddr, n: u32) -> Outcome {
    use std::os::fd::AsRawFd;
    let (a, b) = (raw(SocketAddr::new(listed, 0)), raw(SocketAddr::new(unlisted, 0)));
    if a.1 != b.1 {
        return failed(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    let words = |ss: &libc::sockaddr_storage| -> [u32; 7] {
        // SAFETY: sockaddr_storage is at least 28 bytes of plain data.
        let bytes: &[u8] = unsafe { std::slice::from_raw_parts(ss as *const _ as *const u8, 28) };
        std::array::from_fn(|i| u32::from_ne_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
    };
    let (wa, wb) = (words(&a.0), words(&b.0));
    // The sockaddr the binds read, laid out word by word; only the words
    // that differ between the two addresses flip.
    let shared: Vec<AtomicU32> = wa.iter().map(|&w| AtomicU32::new(w)).collect();
    let stop = AtomicBool::new(false);
    let mut seen_at = std::collections::BTreeSet::new();
    let mut ok = 0i64;
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut flip = false;
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                let src = if flip { &wb } else { &wa };
                for (w, v) in shared.iter().zip(src) {
                    w.store(*v, Ordering::Relaxed);
                }
                flip = !flip;
                std::hint::spin_loop();
            }
        });
        for _ in 0..n {
            if start.elapsed() > Duration::from_secs(15) {
                break;
            }
            let Ok(sock) = socket(&SocketAddr::new(listed, 0), libc::SOCK_STREAM) else {
                break;
            };
            // SAFETY: bind reads a.1 bytes of the shared words, which live
            // until the scope ends.
            let r = unsafe { libc::bind(sock.as_raw_fd(), shared.as_ptr() as *const libc::sockaddr, a.1) };
            if r == 0 {
                ok += 1;
                if let Ok(l) = local(sock.as_raw_fd()) {
                    seen_at.insert(l.ip().to_string());
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    Outcome {
        ret: ok,
        errno: 0,
        addr: Some(seen_at.into_iter().collect::<Vec<_>>().join(",")),
    }
}
