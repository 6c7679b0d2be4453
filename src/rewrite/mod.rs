//! The old sysjail's address rule, compiled to cgroup socket-address programs.
//!
//! "If specified once, causes addresses to be re-written to the address
//! specified. Subsequent invocations denote addresses not re-written." The
//! kernel runs these programs on its own copy of the address, after bind(2),
//! connect(2) or sendmsg(2) copied it in, so a second thread changing the
//! caller's memory changes nothing. For each family with addresses:
//!
//! - `bind`: a listed address stays; any other, the wildcard included,
//!   becomes the first. Jail root may bind ports below 1024 on them, as on
//!   FreeBSD, although it holds no CAP_NET_BIND_SERVICE over the host.
//! - `connect`: the wildcard and loopback, unless listed, become the first
//!   address (the jail's loopback is its address, as on FreeBSD); an unbound
//!   socket is bound to the first address, so peers see the jail's address.
//! - `sendmsg` (unconnected UDP): the destination as for connect; a source
//!   that is not listed (IP_PKTINFO), or none on an unbound socket, becomes
//!   the first address.
//! - `post_bind`: a socket bound to an unlisted specific address is refused
//!   (EPERM), whatever path bound it.
//! - `ingress`, `egress` (on packets, not calls): a packet whose local
//!   address, the destination coming in or the source going out, is not
//!   listed is dropped. The hooks above see only the paths that call them;
//!   a socket can get a local address on others: UDP autobind on sendmsg
//!   (before the sendmsg hook runs) keeps the wildcard, ping sockets bind
//!   and send through no hook. Every IP packet of a jail socket passes these
//!   two, so what the others miss never reaches the wire or the socket. A
//!   dropped UDP, ping or raw send fails with EPERM (the kernel's verdict
//!   for a program returning 0); a dropped TCP segment fails nothing at
//!   once and is retransmitted until the connection times out. A packet
//!   coming in is dropped silently.
//!
//! IPv6 sockets may carry IPv4-mapped addresses: they follow the IPv4 list,
//! and are refused when the jail has no IPv4 address.
//!
//! This module is pure: it only produces instructions. [`crate::sys`] loads
//! them and attaches them to the jail's cgroup.

pub mod ebpf;
#[cfg(test)]
mod interp;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ebpf::{Asm, Insn, Label, R0, R1, R2, R3, R4, R6, R10, helper, op, word};

/// Where a program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// bind(2) on an IPv4 socket.
    Bind4,
    /// bind(2) on an IPv6 socket.
    Bind6,
    /// connect(2) on an IPv4 socket.
    Connect4,
    /// connect(2) on an IPv6 socket.
    Connect6,
    /// sendmsg(2) and sendto(2) on an unconnected IPv4 UDP socket.
    Sendmsg4,
    /// The same on IPv6.
    Sendmsg6,
    /// After an IPv4 socket was bound.
    PostBind4,
    /// After an IPv6 socket was bound.
    PostBind6,
    /// A packet arriving at a socket of the jail, either family.
    Ingress,
    /// A packet leaving a socket of the jail, either family.
    Egress,
}

impl Hook {
    /// `BPF_PROG_TYPE_*`.
    pub fn prog_type(self) -> u32 {
        match self {
            // BPF_PROG_TYPE_CGROUP_SOCK
            Hook::PostBind4 | Hook::PostBind6 => 9,
            // BPF_PROG_TYPE_CGROUP_SKB
            Hook::Ingress | Hook::Egress => 8,
            // BPF_PROG_TYPE_CGROUP_SOCK_ADDR
            _ => 18,
        }
    }

    /// `BPF_CGROUP_*` attach type, also the expected attach type at load
    /// (for CGROUP_SKB the kernel accepts either of its two there).
    pub fn attach_type(self) -> u32 {
        match self {
            Hook::Ingress => 0,
            Hook::Egress => 1,
            Hook::Bind4 => 8,
            Hook::Bind6 => 9,
            Hook::Connect4 => 10,
            Hook::Connect6 => 11,
            Hook::PostBind4 => 12,
            Hook::PostBind6 => 13,
            Hook::Sendmsg4 => 14,
            Hook::Sendmsg6 => 15,
        }
    }

    /// The name `sysjail policy` and bpftool use.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Bind4 => "bind4",
            Hook::Bind6 => "bind6",
            Hook::Connect4 => "connect4",
            Hook::Connect6 => "connect6",
            Hook::Sendmsg4 => "sendmsg4",
            Hook::Sendmsg6 => "sendmsg6",
            Hook::PostBind4 => "post_bind4",
            Hook::PostBind6 => "post_bind6",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

/// One program and its hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Where it attaches.
    pub hook: Hook,
    /// Its instructions.
    pub insns: Vec<Insn>,
}

/// The jail's address lists, first address first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addresses {
    /// IPv4, the rewrite target first.
    pub v4: Vec<Ipv4Addr>,
    /// IPv6, the rewrite target first.
    pub v6: Vec<Ipv6Addr>,
}

impl Addresses {
    /// The addresses of a network policy, each family's first first.
    pub fn of(net: &crate::policy::network::NetworkPolicy) -> Addresses {
        Addresses {
            v4: net
                .ipv4
                .first
                .into_iter()
                .chain(net.ipv4.unchanged.iter().copied())
                .collect(),
            v6: net
                .ipv6
                .first
                .into_iter()
                .chain(net.ipv6.unchanged.iter().copied())
                .collect(),
        }
    }

    fn listed(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.v4.contains(&a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => self.v4.contains(&m),
                None => self.v6.contains(&a),
            },
        }
    }

    /// The family's first address, in the form of `like` (IPv4-mapped for a
    /// mapped address); `None` when the family has no address.
    fn first_like(&self, like: IpAddr) -> Option<IpAddr> {
        match like {
            IpAddr::V4(_) => self.v4.first().map(|a| IpAddr::V4(*a)),
            IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => self.v4.first().map(|a| IpAddr::V6(a.to_ipv6_mapped())),
            IpAddr::V6(_) => self.v6.first().map(|a| IpAddr::V6(*a)),
        }
    }

    /// Where a bind to `ip` ends: `ip` if listed, else the first address of
    /// its family. `None`: refused (a family without addresses). The rule the
    /// bind programs carry out, stated in plain Rust to test them against.
    ///
    /// ```
    /// use sysjail::rewrite::Addresses;
    /// let a = Addresses { v4: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()], v6: vec![] };
    /// assert_eq!(a.bind_address("0.0.0.0".parse().unwrap()), Some("192.0.2.10".parse().unwrap()));
    /// assert_eq!(a.bind_address("192.0.2.11".parse().unwrap()), Some("192.0.2.11".parse().unwrap()));
    /// ```
    pub fn bind_address(&self, ip: IpAddr) -> Option<IpAddr> {
        if self.listed(ip) { Some(ip) } else { self.first_like(ip) }
    }

    /// Where a connection or datagram to `ip` goes: unchanged, but for the
    /// wildcard and loopback, which stay in the jail (its first address),
    /// unless listed. `None`: refused.
    pub fn destination(&self, ip: IpAddr) -> Option<IpAddr> {
        let local = match ip {
            IpAddr::V4(a) => a.is_unspecified() || a.is_loopback(),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(m) => m.is_unspecified() || m.is_loopback(),
                None => a.is_unspecified() || a.is_loopback(),
            },
        };
        if self.listed(ip) || !local {
            // A mapped destination needs an IPv4 address to come from.
            self.first_like(ip).map(|_| ip)
        } else {
            self.first_like(ip)
        }
    }

    /// The address an unbound socket is bound to before it talks to `dest`.
    pub fn source(&self, dest: IpAddr) -> Option<IpAddr> {
        self.first_like(dest)
    }
}

/// `struct bpf_sock_addr` offsets.
mod ctx {
    pub const USER_IP4: i16 = 4;
    pub const USER_IP6: i16 = 8;
    pub const USER_PORT: i16 = 24;
    pub const MSG_SRC_IP4: i16 = 40;
    pub const MSG_SRC_IP6: i16 = 44;
    pub const SK: i16 = 64;
}

/// `struct bpf_sock` offsets.
mod sk {
    pub const SRC_IP4: i16 = 24;
    pub const SRC_IP6: i16 = 28;
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
/// Return values: refuse (EPERM), allow, allow and skip the
/// CAP_NET_BIND_SERVICE check (bind hooks only).
const DENY: i32 = 0;
const ALLOW: i32 = 1;
const ALLOW_PRIVILEGED_PORT: i32 = 3;

/// The programs for `addresses`; `jail_root` is the host uid of the jail's
/// root, which may bind ports below 1024. A family without addresses gets
/// no call hooks: its sockets cannot be created. The packet hooks serve
/// both families and drop the packets of a family without addresses (an
/// IPv6 socket still meets IPv4 as mapped addresses).
///
/// ```
/// use sysjail::rewrite::{Addresses, Hook, compile};
/// let a = Addresses { v4: vec!["192.0.2.10".parse().unwrap()], v6: vec![] };
/// let hooks: Vec<Hook> = compile(&a, 0x7001_0000).iter().map(|p| p.hook).collect();
/// assert_eq!(
///     hooks,
///     [Hook::Bind4, Hook::Connect4, Hook::Sendmsg4, Hook::PostBind4, Hook::Ingress, Hook::Egress]
/// );
/// ```
pub fn compile(addresses: &Addresses, jail_root: u32) -> Vec<Program> {
    let v4: Vec<[u8; 4]> = addresses.v4.iter().map(|a| a.octets()).collect();
    let v6: Vec<[u8; 16]> = addresses.v6.iter().map(|a| a.octets()).collect();
    hooks(!v4.is_empty(), !v6.is_empty())
        .into_iter()
        .map(|hook| Program {
            hook,
            insns: match hook {
                Hook::Bind4 => bind4(&v4, jail_root),
                Hook::Connect4 => connect4(&v4),
                Hook::Sendmsg4 => sendmsg4(&v4),
                Hook::PostBind4 => post_bind4(&v4),
                Hook::Bind6 => bind6(&v6, &v4, jail_root),
                Hook::Connect6 => connect6(&v6, &v4),
                Hook::Sendmsg6 => sendmsg6(&v6, &v4),
                Hook::PostBind6 => post_bind6(&v6, &v4),
                Hook::Ingress => packet(Local::Destination, &v4, &v6),
                Hook::Egress => packet(Local::Source, &v4, &v6),
            },
        })
        .collect()
}

/// The hooks [`compile`] gives a jail with addresses of these families, in
/// order: the call hooks of each family with addresses, then the packet
/// hooks, which cover both families.
pub fn hooks(v4: bool, v6: bool) -> Vec<Hook> {
    let mut out = Vec::new();
    if v4 {
        out.extend([Hook::Bind4, Hook::Connect4, Hook::Sendmsg4, Hook::PostBind4]);
    }
    if v6 {
        out.extend([Hook::Bind6, Hook::Connect6, Hook::Sendmsg6, Hook::PostBind6]);
    }
    if v4 || v6 {
        out.extend([Hook::Ingress, Hook::Egress]);
    }
    out
}

fn w(b: &[u8], i: usize) -> i32 {
    word([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

/// Jumps to `hit` when the u32 at `reg + off` is one of `list`.
fn if_listed4(a: &mut Asm, reg: ebpf::Reg, off: i16, list: &[[u8; 4]], hit: Label) {
    a.load32(R2, reg, off);
    for addr in list {
        a.jump32(op::JEQ32_K, R2, word(*addr), hit);
    }
}

/// Jumps to `hit` when the four u32 at `reg + off` are one of `list`.
fn if_listed6(a: &mut Asm, reg: ebpf::Reg, off: i16, list: &[[u8; 16]], hit: Label) {
    for addr in list {
        let next = a.label();
        for i in 0..4 {
            a.load32(R2, reg, off + 4 * i as i16);
            a.jump32(op::JNE32_K, R2, w(addr, i), next);
        }
        a.goto(hit);
        a.mark(next);
    }
}

/// Jumps to `hit` when the u32 at `reg + off` is 0.0.0.0 or in 127.0.0.0/8.
fn if_any_or_loopback4(a: &mut Asm, reg: ebpf::Reg, off: i16, hit: Label) {
    a.load32(R2, reg, off);
    a.jump32(op::JEQ32_K, R2, 0, hit);
    a.and32(R2, word([0xff, 0, 0, 0]));
    a.jump32(op::JEQ32_K, R2, word([127, 0, 0, 0]), hit);
}

/// Jumps to `mapped` when the address at `reg + off` is IPv4-mapped
/// (::ffff:a.b.c.d); its IPv4 part is then the word at `off + 12`.
fn if_mapped(a: &mut Asm, reg: ebpf::Reg, off: i16, mapped: Label) {
    let not = a.label();
    a.load32(R2, reg, off);
    a.jump32(op::JNE32_K, R2, 0, not);
    a.load32(R2, reg, off + 4);
    a.jump32(op::JNE32_K, R2, 0, not);
    a.load32(R2, reg, off + 8);
    a.jump32(op::JEQ32_K, R2, word([0, 0, 0xff, 0xff]), mapped);
    a.mark(not);
}

fn store6(a: &mut Asm, reg: ebpf::Reg, off: i16, addr: &[u8; 16]) {
    for i in 0..4 {
        a.store32(reg, off + 4 * i as i16, w(addr, i));
    }
}

/// The mapped form of an IPv4 address, as stored in an IPv6 field.
fn mapped(v4: [u8; 4]) -> [u8; 16] {
    Ipv4Addr::from(v4).to_ipv6_mapped().octets()
}

/// The end of a bind program: a port below 1024 is jail root's to bind.
fn bind_port_and_return(a: &mut Asm, jail_root: u32) {
    let allow = a.label();
    a.load32(R2, R6, ctx::USER_PORT);
    a.be16(R2);
    a.jump32(op::JEQ32_K, R2, 0, allow);
    a.jump32(op::JGE32_K, R2, 1024, allow);
    a.call(helper::GET_CURRENT_UID_GID);
    a.mov32(R0, R0);
    a.jump32(op::JNE32_K, R0, jail_root as i32, allow);
    a.ret(ALLOW_PRIVILEGED_PORT);
    a.mark(allow);
    a.ret(ALLOW);
}

fn bind4(list: &[[u8; 4]], jail_root: u32) -> Vec<Insn> {
    let mut a = Asm::default();
    let port = a.label();
    a.mov(R6, R1);
    if_listed4(&mut a, R6, ctx::USER_IP4, list, port);
    a.store32(R6, ctx::USER_IP4, word(list[0]));
    a.mark(port);
    bind_port_and_return(&mut a, jail_root);
    a.finish()
}

/// The IPv6 programs' handling of IPv4-mapped addresses in `field`: listed
/// IPv4 addresses stay, others become the first IPv4 address, and without
/// IPv4 addresses the call is refused. Falls through for other addresses.
fn mapped_rule(a: &mut Asm, field: i16, v4: &[[u8; 4]], done: Label, loopback_only: bool) {
    let mapped_label = a.label();
    let not_mapped = a.label();
    if_mapped(a, R6, field, mapped_label);
    a.goto(not_mapped);
    a.mark(mapped_label);
    match v4.first() {
        None => a.ret(DENY),
        Some(first) => {
            let rewrite = a.label();
            if_listed4(a, R6, field + 12, v4, done);
            if loopback_only {
                if_any_or_loopback4(a, R6, field + 12, rewrite);
                a.goto(done);
            }
            a.mark(rewrite);
            a.store32(R6, field + 12, word(*first));
            a.goto(done);
        }
    }
    a.mark(not_mapped);
}

fn bind6(list: &[[u8; 16]], v4: &[[u8; 4]], jail_root: u32) -> Vec<Insn> {
    let mut a = Asm::default();
    let port = a.label();
    a.mov(R6, R1);
    mapped_rule(&mut a, ctx::USER_IP6, v4, port, false);
    if_listed6(&mut a, R6, ctx::USER_IP6, list, port);
    store6(&mut a, R6, ctx::USER_IP6, &list[0]);
    a.mark(port);
    bind_port_and_return(&mut a, jail_root);
    a.finish()
}

/// Binds the connecting socket to `source` (port 0: the kernel picks one at
/// connect) unless it is bound already; then allows.
fn bind_source_and_allow(a: &mut Asm, family: u16, source: &[u8], len: i32) {
    let allow = a.label();
    a.load64(R2, R6, ctx::SK);
    if source.len() == 4 {
        a.load32(R3, R2, sk::SRC_IP4);
        a.jump32(op::JNE32_K, R3, 0, allow);
    } else {
        for i in 0..4 {
            a.load32(R3, R2, sk::SRC_IP6 + 4 * i);
            a.jump32(op::JNE32_K, R3, 0, allow);
        }
    }
    // struct sockaddr_in or sockaddr_in6 on the stack: family, port 0, then
    // the address (after sin6_flowinfo for IPv6), the rest zero.
    let f = family.to_ne_bytes();
    a.store32(R10, -(len as i16), word([f[0], f[1], 0, 0]));
    let mut off = -(len as i16) + 4;
    if source.len() == 16 {
        a.store32(R10, off, 0);
        off += 4;
    }
    for i in 0..source.len() / 4 {
        a.store32(R10, off, w(source, i));
        off += 4;
    }
    while off < 0 {
        a.store32(R10, off, 0);
        off += 4;
    }
    a.mov(R1, R6);
    a.mov(R2, R10);
    a.add_imm(R2, -len);
    a.mov_imm(R3, len);
    // Fails harmlessly when the socket was bound meanwhile.
    a.call(helper::BIND);
    a.mark(allow);
    a.ret(ALLOW);
}

/// The destination rule of connect and sendmsg: the wildcard and loopback,
/// unless listed, become the first address. Continues at `done`.
fn destination4(a: &mut Asm, list: &[[u8; 4]], done: Label) {
    let rewrite = a.label();
    a.mov(R6, R1);
    if_listed4(a, R6, ctx::USER_IP4, list, done);
    if_any_or_loopback4(a, R6, ctx::USER_IP4, rewrite);
    a.goto(done);
    a.mark(rewrite);
    a.store32(R6, ctx::USER_IP4, word(list[0]));
    a.mark(done);
}

/// The same for IPv6; a mapped destination follows the IPv4 list and
/// continues at `done4` instead.
fn destination6(a: &mut Asm, list: &[[u8; 16]], v4: &[[u8; 4]], done: Label, done4: Label) {
    let rewrite = a.label();
    a.mov(R6, R1);
    mapped_rule(a, ctx::USER_IP6, v4, done4, true);
    if_listed6(a, R6, ctx::USER_IP6, list, done);
    if_any_or_loopback6(a, R6, ctx::USER_IP6, rewrite);
    a.goto(done);
    a.mark(rewrite);
    store6(a, R6, ctx::USER_IP6, &list[0]);
    a.mark(done);
}

fn connect4(list: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let source = a.label();
    destination4(&mut a, list, source);
    bind_source_and_allow(&mut a, AF_INET, &list[0], 16);
    a.finish()
}

/// Jumps to `hit` when the IPv6 address at `reg + off` is :: or ::1.
fn if_any_or_loopback6(a: &mut Asm, reg: ebpf::Reg, off: i16, hit: Label) {
    let not = a.label();
    for i in 0..3 {
        a.load32(R2, reg, off + 4 * i);
        a.jump32(op::JNE32_K, R2, 0, not);
    }
    a.load32(R2, reg, off + 12);
    a.jump32(op::JEQ32_K, R2, 0, hit);
    a.jump32(op::JEQ32_K, R2, word([0, 0, 0, 1]), hit);
    a.mark(not);
}

fn connect6(list: &[[u8; 16]], v4: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let (source, source4) = (a.label(), a.label());
    destination6(&mut a, list, v4, source, source4);
    bind_source_and_allow(&mut a, AF_INET6, &list[0], 28);
    // A mapped destination: the source is the first IPv4 address, mapped.
    // (Without IPv4 addresses, mapped_rule refused it already.)
    if let Some(first) = v4.first() {
        a.mark(source4);
        bind_source_and_allow(&mut a, AF_INET6, &mapped(*first), 28);
    }
    a.finish()
}

fn sendmsg4(list: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let (source, set, allow) = (a.label(), a.label(), a.label());
    destination4(&mut a, list, source);
    // An explicit source (IP_PKTINFO) must be listed.
    if_listed4(&mut a, R6, ctx::MSG_SRC_IP4, list, allow);
    a.jump32(op::JNE32_K, R2, 0, set);
    // None: the socket's own address if it is bound, else the first.
    a.load64(R2, R6, ctx::SK);
    a.load32(R3, R2, sk::SRC_IP4);
    a.jump32(op::JNE32_K, R3, 0, allow);
    a.mark(set);
    a.store32(R6, ctx::MSG_SRC_IP4, word(list[0]));
    a.mark(allow);
    a.ret(ALLOW);
    a.finish()
}

fn sendmsg6(list: &[[u8; 16]], v4: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let (source, set, allow, source4) = (a.label(), a.label(), a.label(), a.label());
    destination6(&mut a, list, v4, source, source4);
    if_listed6(&mut a, R6, ctx::MSG_SRC_IP6, list, allow);
    // No explicit source (all zero): the socket's own, or the first.
    for i in 0..4 {
        a.load32(R2, R6, ctx::MSG_SRC_IP6 + 4 * i);
        a.jump32(op::JNE32_K, R2, 0, set);
    }
    a.load64(R2, R6, ctx::SK);
    for i in 0..4 {
        a.load32(R3, R2, sk::SRC_IP6 + 4 * i);
        a.jump32(op::JNE32_K, R3, 0, allow);
    }
    a.mark(set);
    store6(&mut a, R6, ctx::MSG_SRC_IP6, &list[0]);
    a.mark(allow);
    a.ret(ALLOW);
    // A mapped destination leaves the source to the kernel: the socket's
    // own address, bound through bind6 (mapped rule) or unbound.
    if !v4.is_empty() {
        a.mark(source4);
        a.ret(ALLOW);
    }
    a.finish()
}

fn post_bind4(list: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let allow = a.label();
    // Unbound (an automatic bind keeps the wildcard) or listed.
    if_listed4(&mut a, R1, sk::SRC_IP4, list, allow);
    a.jump32(op::JEQ32_K, R2, 0, allow);
    a.ret(DENY);
    a.mark(allow);
    a.ret(ALLOW);
    a.finish()
}

fn post_bind6(list: &[[u8; 16]], v4: &[[u8; 4]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let allow = a.label();
    a.mov(R6, R1);
    let mut mapped_list: Vec<[u8; 16]> = v4.iter().map(|a| mapped(*a)).collect();
    mapped_list.extend_from_slice(list);
    mapped_list.push([0; 16]);
    if_listed6(&mut a, R6, sk::SRC_IP6, &mapped_list, allow);
    a.ret(DENY);
    a.mark(allow);
    a.ret(ALLOW);
    a.finish()
}

/// Which address of a packet is the socket's own.
#[derive(Clone, Copy)]
enum Local {
    /// Coming in: the destination.
    Destination,
    /// Going out: the source.
    Source,
}

/// Offsets in the IP headers, from the network header, where a cgroup skb
/// program's packet starts in both directions.
mod ip {
    pub const V4_SRC: i32 = 12;
    pub const V4_DST: i32 = 16;
    pub const V6_SRC: i32 = 8;
    pub const V6_DST: i32 = 24;
}

/// Where on the stack the program copies packet bytes (16 of them at most).
const BUF: i16 = -16;

/// Copies `len` packet bytes at `off` to the stack buffer; jumps to `fail`
/// when the packet is shorter.
fn load_bytes(a: &mut Asm, off: i32, len: i32, fail: Label) {
    a.mov(R1, R6);
    a.mov_imm(R2, off);
    a.mov(R3, R10);
    a.add_imm(R3, i32::from(BUF));
    a.mov_imm(R4, len);
    a.call(helper::SKB_LOAD_BYTES);
    a.jump32(op::JNE32_K, R0, 0, fail);
}

/// A cgroup skb program: passes (1) an IP packet whose local address is
/// listed, drops (0) any other. IPv4-mapped traffic of IPv6 sockets is
/// IPv4 on the wire, so it meets the IPv4 list here. Going out, a packet
/// to loopback or the wildcard that is not listed is dropped too: the call
/// programs send those to the first address, and a ping socket, whose
/// send runs none of them, must not reach the host's loopback services.
fn packet(local: Local, v4: &[[u8; 4]], v6: &[[u8; 16]]) -> Vec<Insn> {
    let mut a = Asm::default();
    let (drop, pass, is_v4, is_v6) = (a.label(), a.label(), a.label(), a.label());
    let (to4, to6) = match local {
        Local::Destination => (pass, pass),
        Local::Source => (a.label(), a.label()),
    };
    a.mov(R6, R1);
    // The version nibble.
    load_bytes(&mut a, 0, 1, drop);
    a.load8(R2, R10, BUF);
    a.and32(R2, 0xf0);
    a.jump32(op::JEQ32_K, R2, 0x40, is_v4);
    a.jump32(op::JEQ32_K, R2, 0x60, is_v6);
    a.goto(drop);
    let (off4, off6) = match local {
        Local::Destination => (ip::V4_DST, ip::V6_DST),
        Local::Source => (ip::V4_SRC, ip::V6_SRC),
    };
    a.mark(is_v4);
    if !v4.is_empty() {
        load_bytes(&mut a, off4, 4, drop);
        if_listed4(&mut a, R10, BUF, v4, to4);
    }
    a.goto(drop);
    a.mark(is_v6);
    if !v6.is_empty() {
        load_bytes(&mut a, off6, 16, drop);
        if_listed6(&mut a, R10, BUF, v6, to6);
    }
    a.goto(drop);
    // The destination of an outgoing packet from a listed source.
    if let (Local::Source, false) = (local, v4.is_empty()) {
        a.mark(to4);
        load_bytes(&mut a, ip::V4_DST, 4, drop);
        if_listed4(&mut a, R10, BUF, v4, pass);
        if_any_or_loopback4(&mut a, R10, BUF, drop);
        a.goto(pass);
    }
    if let (Local::Source, false) = (local, v6.is_empty()) {
        a.mark(to6);
        load_bytes(&mut a, ip::V6_DST, 16, drop);
        if_listed6(&mut a, R10, BUF, v6, pass);
        if_any_or_loopback6(&mut a, R10, BUF, drop);
        a.goto(pass);
    }
    a.mark(drop);
    a.ret(DENY);
    a.mark(pass);
    a.ret(ALLOW);
    a.finish()
}
