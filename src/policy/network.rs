//! Network rules: which families a jail may use, where its sockets end up, and
//! how the kernel is made to keep that promise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use super::Why;
use super::host::{Degraded, Refused};
use crate::facts::HostFacts;
use crate::model::{Addr, Jail, Network, NetworkMode, Private, Uplink};

/// The network section of a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkPolicy {
    /// "host", "private" or "disabled".
    pub mode: &'static str,
    /// IPv4.
    pub ipv4: Family<Ipv4Addr>,
    /// IPv6.
    pub ipv6: Family<Ipv6Addr>,
    /// Address rewriting, when the jail has addresses.
    pub rewrite: Option<Rewrite>,
    /// The veth interface of a private jail with addresses beyond loopback.
    pub interface: Option<Interface>,
    /// What the jail's /etc/hosts says.
    pub hosts: Hosts,
}

/// The jail's /etc/hosts, and with it /etc/hostname.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hosts {
    /// A file init writes in its own staging tmpfs and binds read-only over
    /// the jail's /etc/hosts (when the jail's tree has one): localhost, and
    /// the jail's hostname on `address`; likewise /etc/hostname.
    Generated {
        /// The jail's hostname, and its first label when it has several.
        names: Vec<String>,
        /// The jail's first address, or a loopback one.
        address: IpAddr,
        /// Why that address.
        why: Why,
    },
    /// The jail's tree keeps its own file.
    Kept {
        /// Why.
        why: Why,
    },
}

/// One address family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Family<A> {
    /// Sockets of the family may be created.
    pub allowed: bool,
    /// Where any unlisted address (the wildcard included) is rewritten to.
    pub first: Option<A>,
    /// Listed addresses after the first: they pass unchanged.
    pub unchanged: Vec<A>,
    /// Why.
    pub why: Why,
}

/// How the rewrite rule is enforced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// cgroup socket-address hooks on the jail's cgroup: they act on the kernel's
    /// own copy of the address, after the process handed it over; and the
    /// packet hooks (ingress, egress), which drop any packet of a jail socket
    /// whose local address is not listed.
    pub hooks: Vec<&'static str>,
    /// Always through the supervisor: listen(2) on a never-bound socket, which
    /// no hook sees.
    pub supervised: Vec<&'static str>,
    /// Why the host can run the programs.
    pub why: Why,
}

/// A private jail's interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Name inside the jail.
    pub name: String,
    /// Exactly the listed addresses beyond loopback, with prefix lengths.
    pub addresses: Vec<(IpAddr, u8)>,
    /// The host end.
    pub uplink: UplinkPolicy,
}

/// The host end of a private jail's veth pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UplinkPolicy {
    /// Left unconfigured.
    None,
    /// Attached to this bridge; default routes through the routers given.
    Bridge {
        /// The bridge.
        bridge: String,
        /// IPv4 router on the bridged network.
        v4: Option<Ipv4Addr>,
        /// IPv6 router on the bridged network.
        v6: Option<Ipv6Addr>,
    },
    /// Holds the gateway addresses; the jail's default routes go through them.
    Gateway {
        /// IPv4 gateway.
        v4: Option<Ipv4Addr>,
        /// IPv6 gateway.
        v6: Option<Ipv6Addr>,
    },
}

fn family<A: Copy>(net: &Network, list: &[Addr<A>], key: &'static str) -> Family<A> {
    let why = match &net.mode {
        _ if !list.is_empty() => Why::Key(format!("network.{key}")),
        // Nothing but the jail's own loopback to reach: the namespace
        // confines the family, no address rule is needed.
        NetworkMode::Private(_) if net.loopback_only() => Why::Key("network.mode".into()),
        NetworkMode::Disabled => Why::Default(
            "promise: no inet socket without an address (old manual; mode \"disabled\", the default without addresses)",
        ),
        // With a veth, an unlisted family would still reach the host end's
        // link-local address.
        _ => Why::Default("promise: a family without addresses is denied (old manual)"),
    };
    Family {
        allowed: !list.is_empty() || net.loopback_only(),
        first: list.first().map(|a| a.addr),
        unchanged: list.iter().skip(1).map(|a| a.addr).collect(),
        why,
    }
}

/// True for addresses that live on loopback (no veth needed for them).
pub fn on_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback(),
    }
}

/// The network policy of a jail on a host. The address rule's programs take
/// root and cgroup2: without them a private jail runs without the rewrite
/// (its own network namespace still confines its sockets), and a host-stack
/// jail with addresses is refused.
pub fn compile(jail: &Jail, facts: &HostFacts, degraded: &mut Vec<Degraded>) -> Result<NetworkPolicy, Refused> {
    let net = &jail.network;
    let rewrite = rewrite(net, facts, degraded)?;
    let (mode, interface) = match &net.mode {
        NetworkMode::Host => ("host", None),
        NetworkMode::Private(p) => ("private", interface(net, p)),
        NetworkMode::Disabled => ("disabled", None),
    };
    if interface.is_some() && !facts.root {
        return Err(Refused::RootlessVeth);
    }
    Ok(NetworkPolicy {
        mode,
        ipv4: family(net, &net.ipv4, "ipv4"),
        ipv6: family(net, &net.ipv6, "ipv6"),
        rewrite,
        interface,
        hosts: hosts(jail),
    })
}

/// The jail's /etc/hosts: generated, so that the hostname resolves inside,
/// unless the jail's own writable tree holds the file (it is the jail's to
/// keep, as a FreeBSD jail's administrator keeps it) or a mount provides it.
fn hosts(jail: &Jail) -> Hosts {
    let etc_hosts = crate::model::AbsPath::parse("/etc/hosts").expect("static");
    if let Some(m) = jail.mounts.iter().find(|m| m.target == etc_hosts) {
        return Hosts::Kept {
            why: Why::Key(format!("mount[{}]", m.index.unwrap_or_default())),
        };
    }
    if !jail.root.read_only && !jail.root.is_host_root() {
        return Hosts::Kept {
            why: Why::Default("the jail's own writable root keeps its /etc/hosts"),
        };
    }
    let net = &jail.network;
    let (address, why) = match (net.ipv4.first(), net.ipv6.first()) {
        (Some(a), _) => (IpAddr::V4(a.addr), Why::Key("network.ipv4".into())),
        (None, Some(a)) => (IpAddr::V6(a.addr), Why::Key("network.ipv6".into())),
        // Debian's address for the machine's own name: on loopback, and not
        // 127.0.0.1, which stays `localhost`.
        (None, None) => (
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1)),
            Why::Default("no address: the hostname on loopback, as Debian's 127.0.1.1"),
        ),
    };
    let name = jail.hostname.as_str().to_string();
    let short = name.split('.').next().filter(|s| *s != name).map(str::to_string);
    Hosts::Generated {
        names: std::iter::once(name).chain(short).collect(),
        address,
        why,
    }
}

/// The text of a generated /etc/hosts.
pub fn hosts_file(names: &[String], address: IpAddr) -> String {
    format!(
        "# Written by sysjail for this jail.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{}\n",
        names.join(" ")
    )
}

/// The address rule's programs, for a jail with addresses.
fn rewrite(net: &Network, facts: &HostFacts, degraded: &mut Vec<Degraded>) -> Result<Option<Rewrite>, Refused> {
    let has_addresses = !(net.ipv4.is_empty() && net.ipv6.is_empty());
    // The hooks of the families with addresses (crate::rewrite::compile).
    // The packet hooks come with both families: every path to a local
    // address that the call hooks miss (UDP autobind, ping sockets) ends there.
    let hooks = crate::rewrite::hooks(!net.ipv4.is_empty(), !net.ipv6.is_empty());
    Ok(match (has_addresses, super::host::address_programs(facts)) {
        (false, _) => None,
        (true, Ok(why)) => Some(Rewrite {
            hooks: hooks.iter().map(|h| h.name()).collect(),
            supervised: vec!["listen"],
            why,
        }),
        // The programs are the only race-free enforcement of the address
        // rule on the host's stack: a supervisor acting on notifications
        // would have to let the kernel re-read the descriptor of every unix
        // socket call (sysjail.toml(5), NETWORK).
        (true, Err(missing)) if net.mode == NetworkMode::Host => return Err(Refused::NoAddressPrograms(missing)),
        (true, Err(missing)) => {
            degraded.push(Degraded {
                what: "the address rewrite is not enforced: the jail's own network namespace confines its \
                       sockets, but a bind to the wildcard or loopback is not rewritten"
                    .into(),
                why: super::host::why(format!("cgroup socket-address programs: {missing}")),
            });
            None
        }
    })
}

/// A private jail's veth, when it has an address off loopback.
fn interface(net: &Network, p: &Private) -> Option<Interface> {
    let addresses: Vec<(IpAddr, u8)> = net
        .ipv4
        .iter()
        .map(|a| (IpAddr::V4(a.addr), a.prefix))
        .chain(net.ipv6.iter().map(|a| (IpAddr::V6(a.addr), a.prefix)))
        .filter(|(ip, _)| !on_loopback(*ip))
        .collect();
    let uplink = match &p.uplink {
        Uplink::None => UplinkPolicy::None,
        Uplink::Bridge { bridge, v4, v6 } => UplinkPolicy::Bridge {
            bridge: bridge.clone(),
            v4: *v4,
            v6: *v6,
        },
        Uplink::Gateway { v4, v6 } => UplinkPolicy::Gateway { v4: *v4, v6: *v6 },
    };
    (!addresses.is_empty()).then(|| Interface {
        name: p.interface.clone(),
        addresses,
        uplink,
    })
}
