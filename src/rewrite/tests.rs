//! The rewrite programs, run by the interpreter on modelled sockets.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::interp::{World, check_reachable, run};
use super::*;

const ROOT: u32 = 0x7001_0000;

fn addresses() -> Addresses {
    Addresses {
        v4: vec!["192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap()],
        v6: vec!["2001:db8::10".parse().unwrap(), "2001:db8::11".parse().unwrap()],
    }
}

fn program(a: &Addresses, hook: Hook) -> Vec<Insn> {
    compile(a, ROOT)
        .into_iter()
        .find(|p| p.hook == hook)
        .unwrap_or_else(|| panic!("no {hook:?} program"))
        .insns
}

/// A `bpf_sock_addr` for a call with `user` as the address (4 or 16 bytes),
/// `port`, and the socket bound to `bound` (zero: unbound).
fn sock_addr(user: &[u8], port: u16, bound: &[u8], msg_src: &[u8]) -> World {
    let mut ctx = vec![0u8; 72];
    if user.len() == 4 {
        ctx[4..8].copy_from_slice(user);
        ctx[40..44].copy_from_slice(msg_src);
    } else {
        ctx[8..24].copy_from_slice(user);
        ctx[44..60].copy_from_slice(msg_src);
    }
    ctx[24..26].copy_from_slice(&port.to_be_bytes());
    let mut sock = vec![0u8; 80];
    if bound.len() == 4 {
        sock[24..28].copy_from_slice(bound);
    } else {
        sock[28..44].copy_from_slice(bound);
    }
    World {
        ctx,
        sock,
        uid: ROOT,
        binds: Vec::new(),
        writable: vec![(4, 4), (8, 16), (24, 4), (40, 4), (44, 16)],
        packet: Vec::new(),
    }
}

fn v4(s: &str) -> [u8; 4] {
    s.parse::<Ipv4Addr>().unwrap().octets()
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

fn user4(w: &World) -> Ipv4Addr {
    Ipv4Addr::from(<[u8; 4]>::try_from(&w.ctx[4..8]).unwrap())
}

fn user6(w: &World) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(&w.ctx[8..24]).unwrap())
}

fn msg_src4(w: &World) -> Ipv4Addr {
    Ipv4Addr::from(<[u8; 4]>::try_from(&w.ctx[40..44]).unwrap())
}

/// The address of each sockaddr passed to bpf_bind, and its port.
fn bound(w: &World) -> Vec<(String, u16)> {
    w.binds
        .iter()
        .map(|b| {
            let family = u16::from_ne_bytes([b[0], b[1]]);
            let port = u16::from_be_bytes([b[2], b[3]]);
            let addr = match family {
                2 => Ipv4Addr::from(<[u8; 4]>::try_from(&b[4..8]).unwrap()).to_string(),
                10 => Ipv6Addr::from(<[u8; 16]>::try_from(&b[8..24]).unwrap()).to_string(),
                f => format!("family {f}"),
            };
            (addr, port)
        })
        .collect()
}

#[test]
fn bind4_keeps_listed_and_rewrites_the_rest() {
    let prog = program(&addresses(), Hook::Bind4);
    for (given, expected) in [
        ("0.0.0.0", "192.0.2.10"),
        ("192.0.2.10", "192.0.2.10"),
        ("192.0.2.11", "192.0.2.11"),
        ("198.51.100.7", "192.0.2.10"),
        ("127.0.0.1", "192.0.2.10"),
        ("255.255.255.255", "192.0.2.10"),
    ] {
        let mut w = sock_addr(&v4(given), 8080, &[0; 4], &[0; 4]);
        assert_eq!(run(&prog, &mut w), Ok(1), "{given}");
        assert_eq!(user4(&w).to_string(), expected, "{given}");
        // The port is kept.
        assert_eq!(u16::from_be_bytes([w.ctx[24], w.ctx[25]]), 8080);
    }
}

#[test]
fn jail_root_binds_privileged_ports() {
    let prog = program(&addresses(), Hook::Bind4);
    for (port, uid, expected) in [
        (80, ROOT, 3),
        (1023, ROOT, 3),
        (80, ROOT + 1, 1),
        (1024, ROOT, 1),
        (0, ROOT, 1),
        (65535, ROOT, 1),
    ] {
        let mut w = sock_addr(&v4("0.0.0.0"), port, &[0; 4], &[0; 4]);
        w.uid = uid;
        assert_eq!(run(&prog, &mut w), Ok(expected), "port {port} uid {uid:#x}");
    }
}

#[test]
fn connect4_binds_the_source_and_keeps_loopback_in_the_jail() {
    let prog = program(&addresses(), Hook::Connect4);
    for (dest, expected) in [
        ("198.51.100.7", "198.51.100.7"),
        ("192.0.2.11", "192.0.2.11"),
        ("127.0.0.1", "192.0.2.10"),
        ("127.1.2.3", "192.0.2.10"),
        ("0.0.0.0", "192.0.2.10"),
    ] {
        let mut w = sock_addr(&v4(dest), 443, &[0; 4], &[0; 4]);
        assert_eq!(run(&prog, &mut w), Ok(1), "{dest}");
        assert_eq!(user4(&w).to_string(), expected, "{dest}");
        assert_eq!(bound(&w), [("192.0.2.10".to_string(), 0)], "{dest}");
    }
    // A bound socket keeps its address.
    let mut w = sock_addr(&v4("198.51.100.7"), 443, &v4("192.0.2.11"), &[0; 4]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert!(w.binds.is_empty());
}

#[test]
fn sendmsg4_sets_the_source() {
    let prog = program(&addresses(), Hook::Sendmsg4);
    for (dest, src, bound_to, expected_dest, expected_src) in [
        // Unbound, no explicit source: the first address.
        ("198.51.100.7", "0.0.0.0", "0.0.0.0", "198.51.100.7", "192.0.2.10"),
        // Loopback stays in the jail.
        ("127.0.0.53", "0.0.0.0", "0.0.0.0", "192.0.2.10", "192.0.2.10"),
        // A listed explicit source stays.
        ("198.51.100.7", "192.0.2.11", "0.0.0.0", "198.51.100.7", "192.0.2.11"),
        // An unlisted one (IP_PKTINFO) is replaced.
        ("198.51.100.7", "203.0.113.5", "0.0.0.0", "198.51.100.7", "192.0.2.10"),
        // A bound socket sends from its address: the source is left alone.
        ("198.51.100.7", "0.0.0.0", "192.0.2.11", "198.51.100.7", "0.0.0.0"),
    ] {
        let mut w = sock_addr(&v4(dest), 53, &v4(bound_to), &v4(src));
        assert_eq!(run(&prog, &mut w), Ok(1), "{dest} {src}");
        assert_eq!(user4(&w).to_string(), expected_dest, "{dest} {src}");
        assert_eq!(msg_src4(&w).to_string(), expected_src, "{dest} {src}");
    }
}

#[test]
fn post_bind4_refuses_unlisted_addresses() {
    let prog = program(&addresses(), Hook::PostBind4);
    for (src, expected) in [
        ("192.0.2.10", 1),
        ("192.0.2.11", 1),
        ("0.0.0.0", 1),
        ("198.51.100.7", 0),
        ("127.0.0.1", 0),
    ] {
        // post_bind's context is the socket itself.
        let mut sock = vec![0u8; 80];
        sock[24..28].copy_from_slice(&v4(src));
        let mut w = World {
            ctx: sock,
            sock: Vec::new(),
            uid: ROOT,
            binds: Vec::new(),
            writable: Vec::new(),
            packet: Vec::new(),
        };
        assert_eq!(run(&prog, &mut w), Ok(expected), "{src}");
    }
}

#[test]
fn bind6_rewrites_and_follows_the_ipv4_list_for_mapped_addresses() {
    let prog = program(&addresses(), Hook::Bind6);
    for (given, expected) in [
        ("::", "2001:db8::10"),
        ("2001:db8::11", "2001:db8::11"),
        ("2001:db8::12", "2001:db8::10"),
        ("::1", "2001:db8::10"),
        ("::ffff:192.0.2.11", "::ffff:192.0.2.11"),
        ("::ffff:198.51.100.7", "::ffff:192.0.2.10"),
    ] {
        let mut w = sock_addr(&v6(given), 8080, &[0; 16], &[0; 16]);
        assert_eq!(run(&prog, &mut w), Ok(1), "{given}");
        assert_eq!(user6(&w).to_string(), expected, "{given}");
    }
    // Without IPv4 addresses, IPv4 through an IPv6 socket is refused.
    let v6_only = Addresses {
        v4: Vec::new(),
        v6: addresses().v6,
    };
    let prog = program(&v6_only, Hook::Bind6);
    let mut w = sock_addr(&v6("::ffff:192.0.2.10"), 80, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(0));
}

#[test]
fn connect6_binds_the_source_of_its_family() {
    let prog = program(&addresses(), Hook::Connect6);
    let mut w = sock_addr(&v6("2001:db8:ffff::1"), 443, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert_eq!(bound(&w), [("2001:db8::10".to_string(), 0)]);
    let mut w = sock_addr(&v6("::1"), 443, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert_eq!(user6(&w).to_string(), "2001:db8::10");
    // A mapped destination gets the mapped first IPv4 address as source,
    // and mapped loopback stays in the jail.
    let mut w = sock_addr(&v6("::ffff:127.0.0.1"), 443, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert_eq!(user6(&w).to_string(), "::ffff:192.0.2.10");
    assert_eq!(bound(&w), [("::ffff:192.0.2.10".to_string(), 0)]);
    let mut w = sock_addr(&v6("::ffff:198.51.100.7"), 443, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert_eq!(user6(&w).to_string(), "::ffff:198.51.100.7");
}

#[test]
fn sendmsg6_and_post_bind6() {
    let a = addresses();
    let prog = program(&a, Hook::Sendmsg6);
    let mut w = sock_addr(&v6("::1"), 53, &[0; 16], &[0; 16]);
    assert_eq!(run(&prog, &mut w), Ok(1));
    assert_eq!(user6(&w).to_string(), "2001:db8::10");
    assert_eq!(
        Ipv6Addr::from(<[u8; 16]>::try_from(&w.ctx[44..60]).unwrap()).to_string(),
        "2001:db8::10"
    );
    let prog = program(&a, Hook::PostBind6);
    for (src, expected) in [
        ("2001:db8::11", 1),
        ("::", 1),
        ("::ffff:192.0.2.11", 1),
        ("2001:db8::12", 0),
        ("::ffff:198.51.100.7", 0),
    ] {
        let mut sock = vec![0u8; 80];
        sock[28..44].copy_from_slice(&v6(src));
        let mut w = World {
            ctx: sock,
            ..World::default()
        };
        assert_eq!(run(&prog, &mut w), Ok(expected), "{src}");
    }
}

#[test]
fn families_without_addresses_get_no_programs() {
    let only4 = Addresses {
        v4: vec![Ipv4Addr::LOCALHOST],
        v6: Vec::new(),
    };
    let packet_hooks = [Hook::Ingress, Hook::Egress];
    assert!(
        compile(&only4, ROOT)
            .iter()
            .all(|p| p.hook.name().ends_with('4') || packet_hooks.contains(&p.hook))
    );
    assert!(compile(&Addresses::default(), ROOT).is_empty());
}

proptest::proptest! {
    /// Whatever address a bind names, the socket ends on a listed one.
    #[test]
    fn every_bind_ends_on_a_listed_address(given: [u8; 4], given6: [u8; 16], port: u16) {
        let a = addresses();
        let mut w = sock_addr(&given, port, &[0; 4], &[0; 4]);
        let r = run(&program(&a, Hook::Bind4), &mut w).unwrap();
        proptest::prop_assert!(r == 1 || r == 3);
        proptest::prop_assert!(a.v4.contains(&user4(&w)));
        let mut w = sock_addr(&given6, port, &[0; 16], &[0; 16]);
        run(&program(&a, Hook::Bind6), &mut w).unwrap();
        let got = user6(&w);
        let ok = a.v6.contains(&got) || got.to_ipv4_mapped().is_some_and(|m| a.v4.contains(&m));
        proptest::prop_assert!(ok, "{} became {}", Ipv6Addr::from(given6), got);
    }
}

#[test]
fn every_instruction_is_reachable_for_every_mix_of_families() {
    let a = addresses();
    let mixes = [
        a.clone(),
        Addresses {
            v4: a.v4.clone(),
            v6: Vec::new(),
        },
        Addresses {
            v4: Vec::new(),
            v6: a.v6.clone(),
        },
        Addresses {
            v4: a.v4[..1].to_vec(),
            v6: a.v6[..1].to_vec(),
        },
    ];
    for mix in mixes {
        for p in compile(&mix, ROOT) {
            assert_eq!(check_reachable(&p.insns), Ok(()), "{:?} for {mix:?}", p.hook);
        }
    }
}

proptest::proptest! {
    /// The programs apply the rule `Addresses` states in plain Rust.
    #[test]
    fn programs_agree_with_the_reference_rule(given: [u8; 4], given6: [u8; 16], loopback: bool) {
        let a = addresses();
        let given = if loopback { [127, given[1], given[2], given[3]] } else { given };
        let ip4 = std::net::IpAddr::V4(Ipv4Addr::from(given));
        let mut w = sock_addr(&given, 8080, &[0; 4], &[0; 4]);
        run(&program(&a, Hook::Bind4), &mut w).unwrap();
        proptest::prop_assert_eq!(Some(std::net::IpAddr::V4(user4(&w))), a.bind_address(ip4));
        let mut w = sock_addr(&given, 8080, &[0; 4], &[0; 4]);
        run(&program(&a, Hook::Connect4), &mut w).unwrap();
        proptest::prop_assert_eq!(Some(std::net::IpAddr::V4(user4(&w))), a.destination(ip4));
        let ip6 = std::net::IpAddr::V6(Ipv6Addr::from(given6));
        let mut w = sock_addr(&given6, 8080, &[0; 16], &[0; 16]);
        run(&program(&a, Hook::Bind6), &mut w).unwrap();
        proptest::prop_assert_eq!(Some(std::net::IpAddr::V6(user6(&w))), a.bind_address(ip6));
        let mut w = sock_addr(&given6, 8080, &[0; 16], &[0; 16]);
        run(&program(&a, Hook::Connect6), &mut w).unwrap();
        proptest::prop_assert_eq!(Some(std::net::IpAddr::V6(user6(&w))), a.destination(ip6));
    }
}

/// A packet from its network header: IPv4 (20 bytes) or IPv6 (40), by the
/// addresses' length.
fn ip_packet(src: &[u8], dst: &[u8]) -> Vec<u8> {
    if src.len() == 4 {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(src);
        p[16..20].copy_from_slice(dst);
        p
    } else {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[8..24].copy_from_slice(src);
        p[24..40].copy_from_slice(dst);
        p
    }
}

/// Runs a packet program on `packet`, in a `struct __sk_buff` it never reads.
fn verdict(prog: &[Insn], packet: Vec<u8>) -> u64 {
    let mut w = World {
        ctx: vec![0u8; 192],
        packet,
        ..World::default()
    };
    run(prog, &mut w).unwrap()
}

const HOST4: &str = "198.51.100.7";
const HOST6: &str = "2001:db8:ffff::7";

#[test]
fn egress_passes_listed_sources_only() {
    let prog = program(&addresses(), Hook::Egress);
    for (src, expected) in [
        ("192.0.2.10", 1),
        ("192.0.2.11", 1),
        ("192.0.2.12", 0),
        ("0.0.0.0", 0),
        ("127.0.0.1", 0),
    ] {
        assert_eq!(verdict(&prog, ip_packet(&v4(src), &v4(HOST4))), expected, "{src}");
    }
    for (src, expected) in [
        ("2001:db8::10", 1),
        ("2001:db8::11", 1),
        ("2001:db8::12", 0),
        ("::1", 0),
        // Mapped traffic leaves as IPv4; an IPv6 packet never carries it.
        ("::ffff:192.0.2.10", 0),
    ] {
        assert_eq!(verdict(&prog, ip_packet(&v6(src), &v6(HOST6))), expected, "{src}");
    }
    // The destination does not matter, but for loopback and the wildcard.
    assert_eq!(verdict(&prog, ip_packet(&v4(HOST4), &v4("192.0.2.10"))), 0);
}

#[test]
fn egress_keeps_listed_sources_off_the_hosts_loopback() {
    // A ping socket's send runs no call program: its destination is the
    // packet program's to hold, as connect and sendmsg hold theirs.
    let prog = program(&addresses(), Hook::Egress);
    for (dst, expected) in [("127.0.0.1", 0), ("127.1.2.3", 0), ("0.0.0.0", 0), ("192.0.2.11", 1)] {
        assert_eq!(
            verdict(&prog, ip_packet(&v4("192.0.2.10"), &v4(dst))),
            expected,
            "{dst}"
        );
    }
    for (dst, expected) in [("::1", 0), ("::", 0), ("2001:db8::11", 1), (HOST6, 1)] {
        assert_eq!(
            verdict(&prog, ip_packet(&v6("2001:db8::10"), &v6(dst))),
            expected,
            "{dst}"
        );
    }
    // A jail on loopback talks to itself there.
    let lo = Addresses {
        v4: vec!["127.0.0.2".parse().unwrap()],
        v6: vec![],
    };
    let prog = program(&lo, Hook::Egress);
    assert_eq!(verdict(&prog, ip_packet(&v4("127.0.0.2"), &v4("127.0.0.2"))), 1);
    assert_eq!(verdict(&prog, ip_packet(&v4("127.0.0.2"), &v4("127.0.0.1"))), 0);
}

#[test]
fn ingress_passes_listed_destinations_only() {
    let prog = program(&addresses(), Hook::Ingress);
    for (dst, expected) in [
        ("192.0.2.10", 1),
        ("192.0.2.11", 1),
        ("192.0.2.12", 0),
        ("255.255.255.255", 0),
        ("127.0.0.1", 0),
    ] {
        assert_eq!(verdict(&prog, ip_packet(&v4(HOST4), &v4(dst))), expected, "{dst}");
    }
    for (dst, expected) in [
        ("2001:db8::10", 1),
        ("2001:db8::11", 1),
        ("2001:db8::12", 0),
        ("ff02::1", 0),
    ] {
        assert_eq!(verdict(&prog, ip_packet(&v6(HOST6), &v6(dst))), expected, "{dst}");
    }
    assert_eq!(verdict(&prog, ip_packet(&v4("192.0.2.10"), &v4(HOST4))), 0);
}

#[test]
fn packets_of_a_family_without_addresses_are_dropped() {
    let a = addresses();
    let v6_only = Addresses {
        v4: Vec::new(),
        v6: a.v6.clone(),
    };
    let v4_only = Addresses {
        v4: a.v4.clone(),
        v6: Vec::new(),
    };
    // A dual-stack socket of an IPv6-only jail meets IPv4 as mapped
    // addresses: the packets are IPv4, and dropped both ways.
    for hook in [Hook::Ingress, Hook::Egress] {
        let to_and_from = ip_packet(&v4("192.0.2.10"), &v4("192.0.2.10"));
        assert_eq!(verdict(&program(&v6_only, hook), to_and_from), 0, "{hook:?}");
        let listed6 = ip_packet(&v6("2001:db8::10"), &v6("2001:db8::10"));
        assert_eq!(verdict(&program(&v6_only, hook), listed6.clone()), 1, "{hook:?}");
        assert_eq!(verdict(&program(&v4_only, hook), listed6), 0, "{hook:?}");
    }
}

#[test]
fn short_or_foreign_packets_are_dropped() {
    let a = addresses();
    for hook in [Hook::Ingress, Hook::Egress] {
        let prog = program(&a, hook);
        let full = ip_packet(&v4("192.0.2.10"), &v4("192.0.2.10"));
        assert_eq!(verdict(&prog, full.clone()), 1, "{hook:?}");
        // Cut before the address: bpf_skb_load_bytes fails.
        assert_eq!(verdict(&prog, full[..14].to_vec()), 0, "{hook:?}");
        assert_eq!(verdict(&prog, Vec::new()), 0, "{hook:?}");
        let mut other = full;
        other[0] = 0x55;
        assert_eq!(verdict(&prog, other), 0, "{hook:?}");
    }
}

#[test]
fn a_loopback_address_is_listed_like_any_other() {
    let a = Addresses {
        v4: vec!["127.0.0.2".parse().unwrap()],
        v6: Vec::new(),
    };
    let egress = program(&a, Hook::Egress);
    let ingress = program(&a, Hook::Ingress);
    let to_self = ip_packet(&v4("127.0.0.2"), &v4("127.0.0.2"));
    assert_eq!(verdict(&egress, to_self.clone()), 1);
    assert_eq!(verdict(&ingress, to_self), 1);
    assert_eq!(verdict(&egress, ip_packet(&v4("127.0.0.1"), &v4("127.0.0.2"))), 0);
    assert_eq!(verdict(&ingress, ip_packet(&v4("127.0.0.2"), &v4("127.0.0.1"))), 0);
}

proptest::proptest! {
    /// A packet passes exactly when its local address is listed in its
    /// family (and, going out, it is not for an unlisted loopback).
    #[test]
    fn packets_pass_exactly_when_their_local_address_is_listed(
        a4: [u8; 4], b4: [u8; 4], a6: [u8; 16], b6: [u8; 16], pick: u8, listed: bool,
    ) {
        let a = addresses();
        // Often a listed address, which random bytes would never hit.
        let a4 = if listed { a.v4[usize::from(pick) % 2].octets() } else { a4 };
        let a6 = if listed { a.v6[usize::from(pick) % 2].octets() } else { a6 };
        let in4 = a.v4.contains(&Ipv4Addr::from(a4));
        let in6 = a.v6.contains(&Ipv6Addr::from(a6));
        let (egress, ingress) = (program(&a, Hook::Egress), program(&a, Hook::Ingress));
        // Going out, an unlisted loopback or wildcard destination is dropped too.
        let to4 = Ipv4Addr::from(b4);
        let to6 = Ipv6Addr::from(b6);
        let local4 = (to4.is_loopback() || to4.is_unspecified()) && !a.v4.contains(&to4);
        let local6 = (to6.is_loopback() || to6.is_unspecified()) && !a.v6.contains(&to6);
        proptest::prop_assert_eq!(verdict(&egress, ip_packet(&a4, &b4)), u64::from(in4 && !local4));
        proptest::prop_assert_eq!(verdict(&ingress, ip_packet(&b4, &a4)), u64::from(in4));
        proptest::prop_assert_eq!(verdict(&egress, ip_packet(&a6, &b6)), u64::from(in6 && !local6));
        proptest::prop_assert_eq!(verdict(&ingress, ip_packet(&b6, &a6)), u64::from(in6));
    }
}
