//! Network interfaces over rtnetlink: the veth pair of a private jail, its
//! addresses and routes, loopback. Messages are built by hand; sysjail needs
//! six of them, not a netlink library.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::plan::Route;

const NLMSG_ERROR: u16 = 2;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_F_NODAD: u8 = 0x02;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_SCOPE_LINK: u8 = 253;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

/// One netlink request being built.
struct Msg {
    buf: Vec<u8>,
    /// Starts of the nested attributes still open.
    open: Vec<usize>,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    fn new(ty: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        Msg { buf, open: Vec::new() }
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(b);
        self.buf.resize(align(self.buf.len()), 0);
        self
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Msg {
        let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
        b.extend(index.to_ne_bytes());
        b.extend(flags.to_ne_bytes());
        b.extend(change.to_ne_bytes());
        self.bytes(&b)
    }

    fn attr(&mut self, ty: u16, value: &[u8]) -> &mut Msg {
        let len = (4 + value.len()) as u16;
        let mut b = len.to_ne_bytes().to_vec();
        b.extend(ty.to_ne_bytes());
        b.extend_from_slice(value);
        self.bytes(&b)
    }

    fn begin(&mut self, ty: u16) -> &mut Msg {
        self.open.push(self.buf.len());
        self.attr(ty | NLA_F_NESTED, &[])
    }

    fn end(&mut self) -> &mut Msg {
        let start = self.open.pop().expect("a nest is open");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn finish(&mut self) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        &self.buf
    }
}

fn name_attr(name: &str) -> io::Result<Vec<u8>> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(c.as_bytes_with_nul().to_vec())
}

/// An rtnetlink socket of the caller's network namespace.
pub struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    /// Opens one.
    pub fn open() -> io::Result<Netlink> {
        // SAFETY: socket(2); owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor, ours alone.
        Ok(Netlink {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends a request and waits for its acknowledgement.
    fn request(&self, msg: &mut Msg) -> io::Result<()> {
        let bytes = msg.finish();
        // SAFETY: send(2) of a buffer we own to the kernel (the socket's
        // default destination).
        let r = unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = [0u8; 4096];
        loop {
            // SAFETY: recv(2) into a local buffer.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), reply.as_mut_ptr().cast(), reply.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            let n = n as usize;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(reply[off..off + 4].try_into().expect("4 bytes")) as usize;
                let ty = u16::from_ne_bytes(reply[off + 4..off + 6].try_into().expect("2 bytes"));
                if ty == NLMSG_ERROR && off + 20 <= n {
                    let code = i32::from_ne_bytes(reply[off + 16..off + 20].try_into().expect("4 bytes"));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                if len < 16 {
                    break;
                }
                off += align(len);
            }
        }
    }

    /// Creates a veth pair: `host` here, `peer` in the network namespace of
    /// process `pid`.
    pub fn create_veth(&self, host: &str, peer: &str, pid: i32) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0)
            .attr(IFLA_IFNAME, &name_attr(host)?)
            .begin(IFLA_LINKINFO);
        m.attr(IFLA_INFO_KIND, b"veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER);
        // The peer's own ifinfomsg, then its attributes.
        m.ifinfo(0, 0, 0)
            .attr(IFLA_IFNAME, &name_attr(peer)?)
            .attr(IFLA_NET_NS_PID, &(pid as u32).to_ne_bytes());
        m.end().end().end();
        self.request(&mut m)
    }

    /// Sets a link up, and attaches it to a bridge.
    pub fn link_up(&self, name: &str, master: Option<&str>) -> io::Result<()> {
        let index = index_of(name)?;
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index, libc::IFF_UP as u32, libc::IFF_UP as u32);
        if let Some(bridge) = master {
            m.attr(IFLA_MASTER, &(index_of(bridge)? as u32).to_ne_bytes());
        }
        self.request(&mut m)
    }

    /// Deletes a link (and with a veth, its peer).
    pub fn delete_link(&self, name: &str) -> io::Result<()> {
        let index = index_of(name)?;
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(index, 0, 0);
        self.request(&mut m)
    }

    /// Adds an address with its prefix length.
    pub fn add_address(&self, name: &str, addr: IpAddr, prefix: u8) -> io::Result<()> {
        let index = index_of(name)?;
        let (family, bytes, flags) = match addr {
            IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec(), 0),
            // No duplicate address detection: the address is the jail's by
            // definition, and usable at once.
            IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec(), IFA_F_NODAD),
        };
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        let mut head = vec![family, prefix, flags, 0];
        head.extend((index as u32).to_ne_bytes());
        m.bytes(&head).attr(IFA_LOCAL, &bytes).attr(IFA_ADDRESS, &bytes);
        self.request(&mut m)
    }

    /// Adds a route: through a gateway, or directly on an interface.
    pub fn add_route(&self, route: &Route) -> io::Result<()> {
        let bytes = |ip: IpAddr| match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let family = if route.dst.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        } as u8;
        // Direct routes are of the link; routes through a gateway, universal.
        let scope = if route.via.is_none() { RT_SCOPE_LINK } else { 0 };
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
        // type, then u32 flags.
        let head = [
            family,
            route.prefix,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            scope,
            RTN_UNICAST,
            0,
            0,
            0,
            0,
        ];
        m.bytes(&head);
        if route.prefix > 0 {
            m.attr(RTA_DST, &bytes(route.dst));
        }
        if let Some(via) = route.via {
            m.attr(RTA_GATEWAY, &bytes(via));
        }
        if let Some(dev) = &route.dev {
            m.attr(RTA_OIF, &(index_of(dev)? as u32).to_ne_bytes());
        }
        self.request(&mut m)
    }
}

fn index_of(name: &str) -> io::Result<i32> {
    let c = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named {name}"),
        ))
    } else {
        Ok(i as i32)
    }
}

/// Brings the loopback interface up.
pub fn loopback_up() -> io::Result<()> {
    Netlink::open()?.link_up("lo", None)
}

/// [`configure`] in the network namespace of `pid`, from a thread that
/// enters it (the caller's own namespace is left alone).
pub fn configure_in(pid: i32, name: &str, addresses: &[(IpAddr, u8)], routes: &[Route]) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            configure(name, addresses, routes)
        })
        .join()
        .map_err(|_| io::Error::other("the thread configuring the jail's interface panicked"))?
    })
}

/// Whether a network interface of this name exists here.
pub fn exists(name: &str) -> bool {
    index_of(name).is_ok()
}

/// Configures the jail's end of its veth, from inside the jail's network
/// namespace: addresses, up, then routes in order.
pub fn configure(name: &str, addresses: &[(IpAddr, u8)], routes: &[Route]) -> io::Result<()> {
    let nl = Netlink::open()?;
    for (a, p) in addresses {
        nl.add_address(name, *a, *p)
            .map_err(|e| io::Error::new(e.kind(), format!("address {a}/{p} on {name}: {e}")))?;
    }
    nl.link_up(name, None)?;
    for r in routes {
        nl.add_route(r)
            .map_err(|e| io::Error::new(e.kind(), format!("route {r}: {e}")))?;
    }
    Ok(())
}

/// Creates a private jail's veth from the host: `peer` goes into the
/// network namespace of `pid`; the host end joins `bridge` or gets
/// `addresses` and `routes`, and comes up.
pub fn create_veth(
    host: &str,
    peer: &str,
    pid: i32,
    bridge: Option<&str>,
    addresses: &[(IpAddr, u8)],
    routes: &[Route],
) -> io::Result<()> {
    let nl = Netlink::open()?;
    nl.create_veth(host, peer, pid)
        .map_err(|e| io::Error::new(e.kind(), format!("creating veth {host}: {e}")))?;
    let configured = (|| -> io::Result<()> {
        for (a, p) in addresses {
            nl.add_address(host, *a, *p)?;
        }
        nl.link_up(host, bridge)?;
        for r in routes {
            nl.add_route(r)?;
        }
        Ok(())
    })();
    if let Err(e) = configured {
        // Nothing half-made stays: the pair goes with its host end.
        let _ = nl.delete_link(host);
        return Err(io::Error::new(e.kind(), format!("configuring veth {host}: {e}")));
    }
    Ok(())
}

/// Deletes the host end of a jail's veth if it is still there (the kernel
/// removes it with the jail's network namespace, a little later).
pub fn remove_veth(host: &str) -> io::Result<()> {
    if !exists(host) {
        return Ok(());
    }
    match Netlink::open()?.delete_link(host) {
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        other => other,
    }
}
