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
            tcp_listen(addr, Duration::from_millis(hold))
        }
        // tcp-connect=ADDR: connect, say from where; reads the greeting.
        "tcp-connect" => tcp_connect(parse(arg?)?.0),
        // bind=ADDR: where a TCP socket bound to ADDR ends up.
        "bind" => bind_tcp(parse(arg?)?.0),
        // udp-send=ADDR: a datagram from a socket never bound.
        "udp-send" => {
            let (addr, _) = parse(arg?)?;
            udp_send(addr)
        }
        // udp-sendmsg=ADDR, udp-sendmmsg=ADDR: the same through sendmsg(2),
        // and two datagrams through sendmmsg(2).
        "udp-sendmsg" => udp_sendmsg(parse(arg?)?.0, 1),
        "udp-sendmmsg" => udp_sendmsg(parse(arg?)?.0, 2),
        // udp-autobind=PEER/WAIT_MS: an unbound UDP socket sends PEER one
        // datagram (the kernel binds it on the way), then for WAIT_MS says
        // to which local addresses datagrams arrived.
        "udp-autobind" => {
            let (peer, ms) = parse(arg?)?;
            udp_autobind(peer, Duration::from_millis(ms))
        }
        // udp-pktinfo=SRC/DEST, i386-udp-pktinfo=SRC/DEST: a datagram from a
        // socket never bound, its source chosen with IP_PKTINFO; says the
        // socket's address after the send.
        "udp-pktinfo" | "i386-udp-pktinfo" => {
            let (src, dest) = arg?.split_once('/')?;
            let (std::net::IpAddr::V4(src), SocketAddr::V4(dest)) = (src.parse().ok()?, dest.parse().ok()?) else {
                return None;
            };
            udp_pktinfo(src, dest, name.starts_with("i386"))
        }
        // i386-udp-autobind=PEER/WAIT_MS, socketcall-udp-autobind=...: the
        // same, the socket made and the datagram sent through i386's
        // direct calls or its socketcall(2) (IPv4 only).
        "i386-udp-autobind" | "socketcall-udp-autobind" => {
            let (peer, ms) = parse(arg?)?;
            let SocketAddr::V4(peer) = peer else { return None };
            udp_autobind_i386(peer, Duration::from_millis(ms), name.starts_with("socketcall"))
        }
        // ping=SRC:ID/DEST/WAIT_MS: a ping socket bound to SRC (port: the
        // echo identifier; 0.0.0.0:0 leaves it unbound) sends DEST an echo
        // request, then counts the replies of WAIT_MS.
        // i386-ping=...: the same, socket, bind and send through i386's calls.
        "ping" | "i386-ping" => {
            let mut parts = arg?.split('/');
            let src: SocketAddr = parts.next()?.parse().ok()?;
            let dest: IpAddr = parts.next()?.parse().ok()?;
            let ms: u64 = parts.next()?.parse().ok()?;
            ping(src, dest, Duration::from_millis(ms), name == "i386-ping")
        }
        // icmp-reply=DEST:ID,.../MS: for MS, echo replies with identifier ID
        // to each DEST through a raw socket (root, outside a jail), as if
        // each had sent a request.
        "icmp-reply" => {
            let (list, ms) = arg?.split_once('/')?;
            let to: Vec<SocketAddr> = list.split(',').map(|a| a.parse().ok()).collect::<Option<_>>()?;
            icmp_replies(&to, Duration::from_millis(ms.parse().ok()?))
        }
        // tcp-fastopen=ADDR: sendto(MSG_FASTOPEN) on an unbound TCP socket,
        // which connects on the way; says from where.
        "tcp-fastopen" => tcp_fastopen(parse(arg?)?.0),
        // bind-race=LISTED/UNLISTED/N
        "bind-race" => {
            let mut parts = arg?.split('/');
            let listed: IpAddr = parts.next()?.parse().ok()?;
            let unlisted: IpAddr = parts.next()?.parse().ok()?;
            let n: u32 = parts.next()?.parse().ok()?;
            bind_race(listed, unlisted, n)
        }
        // udp-loop=ADDR/N (for bench/): N datagrams through a socket
        // connected to one bound at ADDR; ret is nanoseconds per datagram
        // sent and received.
        "udp-loop" => {
            let (addr, n) = parse(arg?)?;
            udp_loop(addr, n.max(1))
        }
        // listen-dup2-race=N and send-dup2-race=DEST/N: one thread swaps the
        // descriptor the calls name between sockets (dup2) while this one
        // calls listen(2), or sendto(2) to DEST, N times. Says how many calls
        // succeeded and every address a socket listened or sent from.
        "listen-dup2-race" => dup2_race(None, arg?.parse().ok()?),
        "send-dup2-race" => {
            let (dest, n) = arg?.split_once('/')?;
            dup2_race(Some(dest.parse().ok()?), n.parse().ok()?)
        }
        _ => return None,
    })
}

/// Binds and listens on `addr`, says where, and holds the listener open for
/// `hold`: peers that connect meanwhile get a greeting naming them.
fn tcp_listen(addr: SocketAddr, hold: Duration) -> Outcome {
    match TcpListener::bind(addr).and_then(|l| l.local_addr().map(|a| (l, a))) {
        Ok((listener, local)) => {
            serve_for(&listener, hold);
            seen(local)
        }
        Err(e) => failed(e),
    }
}

/// Connects to `addr`, reads the greeting, and says from where.
fn tcp_connect(addr: SocketAddr) -> Outcome {
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

/// Where a TCP socket bound to `addr` ends up.
fn bind_tcp(addr: SocketAddr) -> Outcome {
    use std::os::fd::AsRawFd;
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
    /// `udp-reflect=ADDR/TIMEOUT_MS/IP,...`: waits for a datagram, then
    /// sends one to its source port at each IP, from fresh sockets.
    Reflect(UdpSocket, Duration, Vec<IpAddr>),
    /// `udp-sources=ADDR/FOR_MS`: the source addresses of every datagram
    /// that arrives within FOR_MS, until none came for a second.
    Sources(UdpSocket, Duration),
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
                Some(("udp-sources", arg)) => parse(arg)
                    .map(|(addr, ms)| UdpSocket::bind(addr).map(|s| Server::Sources(s, Duration::from_millis(ms)))),
                Some(("udp-reflect", arg)) => arg.rsplit_once('/').and_then(|(first, targets)| {
                    let targets: Vec<IpAddr> = targets.split(',').map(|t| t.parse().ok()).collect::<Option<_>>()?;
                    parse(first).map(|(addr, ms)| {
                        UdpSocket::bind(addr).map(|s| Server::Reflect(s, Duration::from_millis(ms), targets))
                    })
                }),
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
            Ok(Server::Reflect(socket, timeout, targets)) => reflect(&socket, timeout, &targets),
            Ok(Server::Sources(socket, window)) => {
                let start = Instant::now();
                let (mut count, mut from) = (0, std::collections::BTreeSet::new());
                let mut buf = [0u8; 64];
                while let Some(left) = window.checked_sub(start.elapsed()) {
                    // Done once the datagrams stop coming for a second.
                    let wait = if count > 0 {
                        left.min(Duration::from_secs(1))
                    } else {
                        left
                    };
                    let _ = socket.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
                    match socket.recv_from(&mut buf) {
                        Ok((_, peer)) => {
                            count += 1;
                            from.insert(peer.ip().to_string());
                        }
                        Err(_) => break,
                    }
                }
                Outcome {
                    ret: count,
                    errno: 0,
                    addr: Some(from.into_iter().collect::<Vec<_>>().join(",")),
                }
            }
            Err(e) => failed(e),
        })
    }
}

/// The server half of `udp-reflect`: where the first datagram came from;
/// ret, how many of the datagrams to `targets` were sent.
fn reflect(socket: &UdpSocket, timeout: Duration, targets: &[IpAddr]) -> Outcome {
    let _ = socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    let mut buf = [0u8; 64];
    let from = match socket.recv_from(&mut buf) {
        Ok((_, from)) => from,
        Err(e) => return failed(e),
    };
    let mut sent = 0;
    for ip in targets {
        let unbound: SocketAddr = match ip {
            IpAddr::V4(_) => "0.0.0.0:0".parse().expect("static"),
            IpAddr::V6(_) => "[::]:0".parse().expect("static"),
        };
        let to = SocketAddr::new(*ip, from.port());
        if UdpSocket::bind(unbound)
            .and_then(|s| s.send_to(ip.to_string().as_bytes(), to))
            .is_ok()
        {
            sent += 1;
        }
    }
    Outcome {
        ret: sent,
        errno: 0,
        addr: Some(from.to_string()),
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

fn udp_loop(addr: SocketAddr, n: u64) -> Outcome {
    let run = || -> std::io::Result<i64> {
        let server = UdpSocket::bind(addr)?;
        let client = UdpSocket::bind(SocketAddr::new(addr.ip(), 0))?;
        client.connect(server.local_addr()?)?;
        let mut buf = [0u8; 64];
        let start = Instant::now();
        for _ in 0..n {
            client.send(b"loop")?;
            server.recv(&mut buf)?;
        }
        Ok((start.elapsed().as_nanos() / u128::from(n)) as i64)
    };
    match run() {
        Ok(ns) => Outcome {
            ret: ns,
            errno: 0,
            addr: None,
        },
        Err(e) => failed(e),
    }
}

/// The race the supervisor must not lose: a decision made on descriptor N
/// holds only if the kernel never looks N up again. One thread swaps N,
/// with dup2(2), between never-bound TCP (or, with `dest`, UDP) sockets and
/// a unix socket, while this thread calls listen(N) or sendto(N, dest) `n`
/// times (bounded to 15 s). Every socket that ended up listening, or that
/// sent, says where it is bound; the caller checks none is unlisted.
fn dup2_race(dest: Option<SocketAddr>, n: u32) -> Outcome {
    use std::os::fd::OwnedFd;
    let ty = if dest.is_some() {
        libc::SOCK_DGRAM
    } else {
        libc::SOCK_STREAM
    };
    let family = dest.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let pool: Vec<OwnedFd> = (0..8).filter_map(|_| socket(&family, ty).ok()).collect();
    // SAFETY: socket(2) with integer arguments; owned below.
    let unix = unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) };
    if pool.len() < 8 || unix < 0 {
        return failed(std::io::Error::last_os_error());
    }
    // The descriptor the calls name, first a copy of the unix socket.
    // SAFETY: dup(2) of our own descriptor.
    let target = unsafe { libc::dup(unix) };
    let to = raw(dest.unwrap_or(family));
    let ok = race_dup2(target, unix, &pool, dest.map(|_| &to), n);
    let at = used_addresses(&pool);
    // SAFETY: closing our own descriptors.
    unsafe {
        libc::close(target);
        libc::close(unix);
    }
    Outcome {
        ret: ok,
        errno: 0,
        addr: Some(at.into_iter().collect::<Vec<_>>().join(",")),
    }
}

/// Calls listen(target), or sendto(target, dest), `n` times and on until
/// a tenth of that (200 at most) succeeded: the swapping thread may be slow
/// to start, or to be scheduled, so that nearly every call meets the unix
/// socket. 15 s at most, while a thread swaps `target` between `unix` and
/// the sockets of `pool`. Returns how many calls succeeded.
fn race_dup2(
    target: libc::c_int,
    unix: libc::c_int,
    pool: &[std::os::fd::OwnedFd],
    dest: Option<&(libc::sockaddr_storage, libc::socklen_t)>,
    n: u32,
) -> i64 {
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let mut ok = 0i64;
    let enough = i64::from(n / 10).clamp(1, 200);
    std::thread::scope(|s| {
        s.spawn(|| swap_dup2(target, unix, pool, &stop, start));
        for i in 0.. {
            if start.elapsed() > Duration::from_secs(15) || (i >= n && ok >= enough) {
                break;
            }
            if listen_or_send(target, dest) >= 0 {
                ok += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    ok
}

/// Until `stop` (or 20 s after `start`): dup2(2) onto `target` the unix
/// socket and each socket of `pool` in turn.
fn swap_dup2(target: libc::c_int, unix: libc::c_int, pool: &[std::os::fd::OwnedFd], stop: &AtomicBool, start: Instant) {
    use std::os::fd::AsRawFd;
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
        let from = if i.is_multiple_of(2) {
            unix
        } else {
            pool[(i / 2) % pool.len()].as_raw_fd()
        };
        // SAFETY: dup2 between descriptors this process owns.
        unsafe { libc::dup2(from, target) };
        i += 1;
    }
}

/// listen(fd), or with `dest` a datagram sendto(fd, dest); the call's return.
fn listen_or_send(fd: libc::c_int, dest: Option<&(libc::sockaddr_storage, libc::socklen_t)>) -> isize {
    // SAFETY: listen or sendto on a descriptor we own, with a buffer and an
    // address that outlive the call.
    unsafe {
        match dest {
            None => libc::listen(fd, 1) as isize,
            Some((ss, len)) => libc::sendto(
                fd,
                b"race".as_ptr().cast(),
                4,
                libc::MSG_DONTWAIT,
                ss as *const _ as *const libc::sockaddr,
                *len,
            ),
        }
    }
}

/// The addresses of the sockets of `pool` that listen or are bound (a
/// datagram sent binds its socket).
fn used_addresses(pool: &[std::os::fd::OwnedFd]) -> std::collections::BTreeSet<String> {
    use std::os::fd::AsRawFd;
    let mut at = std::collections::BTreeSet::new();
    for sock in pool {
        let fd = sock.as_raw_fd();
        let mut on: libc::c_int = 0;
        let mut olen = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes an int.
        unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_ACCEPTCONN,
                (&mut on as *mut libc::c_int).cast(),
                &mut olen,
            )
        };
        if let Ok(l) = local(fd)
            && (on != 0 || l.port() != 0)
        {
            at.insert(l.ip().to_string());
        }
    }
    at
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

fn setsockopt_int(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> std::io::Result<()> {
    // SAFETY: an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_timeout(fd: libc::c_int, name: libc::c_int, d: Duration) {
    let tv = libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(d.subsec_micros().max(1)),
    };
    // SAFETY: a timeval option of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

/// Receives one datagram; returns the local address it was sent to (from
/// IP_PKTINFO or IPV6_PKTINFO, which names IPv4 as mapped addresses).
fn recv_to(fd: libc::c_int) -> std::io::Result<IpAddr> {
    let mut buf = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; its pointers point at locals that
    // outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: as above.
    if unsafe { libc::recvmsg(fd, &mut msg, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // cmsgs; CMSG_* walk them within those bounds.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const libc::in_pktinfo);
                    return Ok(IpAddr::from(info.ipi_addr.s_addr.to_ne_bytes()));
                }
                (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                    let info = std::ptr::read_unaligned(data as *const libc::in6_pktinfo);
                    return Ok(IpAddr::from(info.ipi6_addr.s6_addr));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::ENOMSG))
}

fn udp_autobind(peer: SocketAddr, wait: Duration) -> Outcome {
    use std::os::fd::AsRawFd;
    let s = match socket(&peer, libc::SOCK_DGRAM) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let fd = s.as_raw_fd();
    let info = match peer {
        SocketAddr::V4(_) => setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1),
        SocketAddr::V6(_) => setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1),
    };
    if let Err(e) = info {
        return failed(e);
    }
    let (ss, len) = raw(peer);
    // SAFETY: sendto with a buffer and an address we own.
    let r = unsafe {
        libc::sendto(
            fd,
            b"probe".as_ptr().cast(),
            5,
            0,
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r < 0 {
        return failed(std::io::Error::last_os_error());
    }
    collect(fd, wait)
}

/// The datagrams that arrive on `fd` within `wait`: how many, and the
/// local addresses they arrived at.
fn collect(fd: libc::c_int, wait: Duration) -> Outcome {
    let start = Instant::now();
    let mut arrived = std::collections::BTreeSet::new();
    let mut count = 0;
    while let Some(left) = wait.checked_sub(start.elapsed()) {
        set_timeout(fd, libc::SO_RCVTIMEO, left);
        match recv_to(fd) {
            Ok(ip) => {
                count += 1;
                arrived.insert(ip.to_string());
            }
            Err(_) => break,
        }
    }
    Outcome {
        ret: count,
        errno: 0,
        addr: Some(arrived.into_iter().collect::<Vec<_>>().join(",")),
    }
}

/// sendmsg(2) of one datagram to `dest` with an IP_PKTINFO message naming
/// `src` as its source, natively or through i386's sendmsg, whose
/// structures have 32-bit pointers and lengths.
fn udp_pktinfo(src: std::net::Ipv4Addr, dest: std::net::SocketAddrV4, i386: bool) -> Outcome {
    use std::os::fd::AsRawFd;
    let s = match socket(&SocketAddr::V4(dest), libc::SOCK_DGRAM) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let fd = s.as_raw_fd();
    let mut sin = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    sin.extend(dest.port().to_be_bytes());
    sin.extend(dest.ip().octets());
    sin.extend([0; 8]);
    // struct in_pktinfo: ifindex, spec_dst (the source), addr.
    let mut info = 0i32.to_ne_bytes().to_vec();
    info.extend(src.octets());
    info.extend([0; 4]);
    let r = if i386 {
        sendmsg_pktinfo_i386(fd, &sin, &info)
    } else {
        sendmsg_pktinfo(fd, sin, &info)
    };
    if r.ret < 0 {
        return r;
    }
    match local(fd) {
        Ok(a) => seen(a),
        Err(e) => failed(e),
    }
}

/// A cmsghdr's level and type for IP_PKTINFO.
fn push_pktinfo_level_type(v: &mut Vec<u8>) {
    v.extend(libc::IPPROTO_IP.to_ne_bytes());
    v.extend(libc::IP_PKTINFO.to_ne_bytes());
}

/// i386's sendmsg(2) on `fd` of a datagram to `sin` with the in_pktinfo
/// `info`, its structures in low memory.
fn sendmsg_pktinfo_i386(fd: libc::c_int, sin: &[u8], info: &[u8]) -> Outcome {
    use super::probe::{int80, low_buffer};
    // struct cmsghdr of i386: u32 len, int level, int type, then data.
    let mut cmsg = (12u32 + 12).to_ne_bytes().to_vec();
    push_pktinfo_level_type(&mut cmsg);
    cmsg.extend(info);
    let data = low_buffer(b"probe");
    let iov: Vec<u8> = [data, 5].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let (name, iov, control) = (low_buffer(sin), low_buffer(&iov), low_buffer(&cmsg));
    let msg: Vec<u8> = [name, 16, iov, 1, control, cmsg.len() as u32, 0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    int80(370, [fd as u32, low_buffer(&msg), 0, 0, 0, 0])
}

/// sendmsg(2) on `fd` of a datagram to `sin` with the in_pktinfo `info`.
fn sendmsg_pktinfo(fd: libc::c_int, mut sin: Vec<u8>, info: &[u8]) -> Outcome {
    let head = std::mem::size_of::<libc::cmsghdr>();
    let mut cmsg = ((head + 12) as libc::size_t).to_ne_bytes().to_vec();
    push_pktinfo_level_type(&mut cmsg);
    cmsg.extend(info);
    cmsg.resize(cmsg.len().next_multiple_of(8), 0);
    let mut payload = *b"probe";
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: msghdr is plain data; its pointers point at locals that
    // outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = sin.as_mut_ptr().cast();
    msg.msg_namelen = sin.len() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len() as _;
    // SAFETY: as above.
    let r = unsafe { libc::sendmsg(fd, &msg, 0) };
    if r < 0 {
        failed(std::io::Error::last_os_error())
    } else {
        Outcome {
            ret: r as i64,
            errno: 0,
            addr: None,
        }
    }
}

/// [`udp_autobind`] through the i386 ABI: socket(2) and sendto(2) by
/// `int 0x80`, directly or through socketcall(2), whose arguments are in
/// memory; the answers are collected natively.
fn udp_autobind_i386(peer: std::net::SocketAddrV4, wait: Duration, socketcall: bool) -> Outcome {
    use super::probe::{int80, low_buffer};
    use std::os::fd::FromRawFd;
    let words = |w: &[u32]| low_buffer(&w.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>());
    let (af_inet, dgram) = (libc::AF_INET as u32, libc::SOCK_DGRAM as u32);
    let made = if socketcall {
        int80(102, [1, words(&[af_inet, dgram, 0]), 0, 0, 0, 0])
    } else {
        int80(359, [af_inet, dgram, 0, 0, 0, 0])
    };
    if made.ret < 0 {
        return made;
    }
    // SAFETY: the descriptor socket(2) just returned, ours alone.
    let s = unsafe { std::os::fd::OwnedFd::from_raw_fd(made.ret as i32) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
    if let Err(e) = setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1) {
        return failed(e);
    }
    let mut sin = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    sin.extend(peer.port().to_be_bytes());
    sin.extend(peer.ip().octets());
    sin.extend([0; 8]);
    let (data, to) = (low_buffer(b"probe"), low_buffer(&sin));
    let sent = if socketcall {
        int80(102, [11, words(&[fd as u32, data, 5, 0, to, 16]), 0, 0, 0, 0])
    } else {
        int80(369, [fd as u32, data, 5, 0, to, 16])
    };
    if sent.ret < 0 {
        return sent;
    }
    collect(fd, wait)
}

/// An ICMP echo message (type 8 request, 0 reply) with identifier `id`
/// and its checksum.
fn echo(kind: u8, id: u16) -> [u8; 8] {
    let mut m = [kind, 0, 0, 0, 0, 0, 0, 1];
    m[4..6].copy_from_slice(&id.to_be_bytes());
    let sum: u32 = m.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    m[2..4].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    m
}

/// A ping socket bound to `src` (port: the echo identifier; 0.0.0.0:0 leaves
/// it unbound) sends `dest` an echo request, then counts the replies of
/// `wait`; natively or through i386's calls. Says the send's errno and the
/// socket's address.
fn ping(src: SocketAddr, dest: IpAddr, wait: Duration, i386: bool) -> Outcome {
    use std::os::fd::AsRawFd;
    if !src.is_ipv4() || !dest.is_ipv4() {
        return failed(std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
    }
    let s = match ping_socket(i386) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let fd = s.as_raw_fd();
    if (!src.ip().is_unspecified() || src.port() != 0)
        && let Err(o) = bind_ping(fd, src, i386)
    {
        return o;
    }
    let errno = send_echo(fd, dest, src.port(), i386);
    let bound = local(fd).map(|a| a.to_string()).unwrap_or_default();
    Outcome {
        ret: count_received(fd, wait),
        errno,
        addr: Some(bound),
    }
}

/// An ICMP ping socket, made natively or by i386's socket(2); the failed
/// call's outcome otherwise.
fn ping_socket(i386: bool) -> Result<std::os::fd::OwnedFd, Outcome> {
    use super::probe::int80;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (af, ty, proto) = (libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP);
    let fd = if i386 {
        let r = int80(359, [af as u32, ty as u32, proto as u32, 0, 0, 0]);
        if r.ret < 0 {
            return Err(r);
        }
        r.ret as i32
    } else {
        // SAFETY: socket(2); owned below.
        let fd = unsafe { libc::socket(af, ty, proto) };
        if fd < 0 {
            return Err(failed(std::io::Error::last_os_error()));
        }
        fd
    };
    // SAFETY: a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The bytes of the sockaddr `ss`, `len` long.
fn sockaddr_bytes(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> &[u8] {
    // SAFETY: ss is plain data of at least len bytes.
    unsafe { std::slice::from_raw_parts(ss as *const _ as *const u8, len as usize) }
}

/// Binds ping socket `fd` to `src`, natively or by i386's bind(2).
fn bind_ping(fd: libc::c_int, src: SocketAddr, i386: bool) -> Result<(), Outcome> {
    use super::probe::{int80, low_buffer};
    let (ss, len) = raw(src);
    if i386 {
        let r = int80(361, [fd as u32, low_buffer(sockaddr_bytes(&ss, len)), len, 0, 0, 0]);
        if r.ret < 0 {
            return Err(r);
        }
    // SAFETY: ss holds a sockaddr of len bytes.
    } else if unsafe { libc::bind(fd, &ss as *const _ as *const libc::sockaddr, len) } < 0 {
        return Err(failed(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Sends `dest` an echo request with identifier `id` through ping socket
/// `fd`, natively or by i386's sendto(2); the send's errno.
fn send_echo(fd: libc::c_int, dest: IpAddr, id: u16, i386: bool) -> i32 {
    use super::probe::{int80, low_buffer};
    let (ss, len) = raw(SocketAddr::new(dest, 0));
    let request = echo(8, id);
    if i386 {
        let to = low_buffer(sockaddr_bytes(&ss, len));
        let r = int80(369, [fd as u32, low_buffer(&request), request.len() as u32, 0, to, len]);
        return r.errno;
    }
    // SAFETY: sendto with a buffer and an address we own.
    let sent = unsafe {
        libc::sendto(
            fd,
            request.as_ptr().cast(),
            request.len(),
            0,
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if sent < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
    } else {
        0
    }
}

/// How many messages arrive on `fd` within `wait`.
fn count_received(fd: libc::c_int, wait: Duration) -> i64 {
    let start = Instant::now();
    let mut received = 0;
    while let Some(left) = wait.checked_sub(start.elapsed()) {
        set_timeout(fd, libc::SO_RCVTIMEO, left);
        let mut buf = [0u8; 64];
        // SAFETY: recv into a buffer we own.
        if unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) } < 0 {
            break;
        }
        received += 1;
    }
    received
}

fn icmp_replies(to: &[SocketAddr], for_: Duration) -> Outcome {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2); owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
    if fd < 0 {
        return failed(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor, ours alone.
    let s = unsafe { OwnedFd::from_raw_fd(fd) };
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < for_ {
        for dest in to {
            let reply = echo(0, dest.port());
            let (ss, len) = raw(SocketAddr::new(dest.ip(), 0));
            // SAFETY: sendto with a buffer and an address we own.
            let r = unsafe {
                libc::sendto(
                    s.as_raw_fd(),
                    reply.as_ptr().cast(),
                    reply.len(),
                    0,
                    &ss as *const _ as *const libc::sockaddr,
                    len,
                )
            };
            if r >= 0 {
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Outcome {
        ret: sent,
        errno: 0,
        addr: None,
    }
}

fn tcp_fastopen(addr: SocketAddr) -> Outcome {
    use std::os::fd::AsRawFd;
    let s = match socket(&addr, libc::SOCK_STREAM) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let fd = s.as_raw_fd();
    set_timeout(fd, libc::SO_SNDTIMEO, Duration::from_secs(5));
    let (ss, len) = raw(addr);
    // SAFETY: sendto with a buffer and an address we own.
    let r = unsafe {
        libc::sendto(
            fd,
            b"probe".as_ptr().cast(),
            5,
            libc::MSG_FASTOPEN,
            &ss as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if r < 0 {
        return failed(std::io::Error::last_os_error());
    }
    match local(fd) {
        Ok(a) => seen(a),
        Err(e) => failed(e),
    }
}
