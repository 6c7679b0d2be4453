//! [`RawJail`] to [`Jail`]: every rule of sysjail.toml(5), every problem reported.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Bound;
use std::path::Path;
use std::time::Duration;

use super::{
    AbsPath, Addr, Bytes, Counter, Hooks, Hostname, IdRef, Identity, Jail, JailName, Lifecycle, Limits, MilliCpu,
    Mount, MountKind, Network, NetworkMode, PathProblem, Private, Rlimit, RlimitValue, Root, Stop, Uplink,
    check_env_name, check_ifname, parse_duration,
};
use crate::config::decode::{Field, IntOrText, Spanned};
use crate::config::{
    Allow, Loaded, MountType, NetMode, RawHooks, RawJail, RawLimits, RawMount, RawNetwork, StopSignal,
};

/// A duration's upper bound as the help line gives it ("1h", "1m").
fn humantime_short(d: Duration) -> String {
    match d.as_secs() {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
use crate::diag::{Code, Diagnostic, FileId, Span};

/// The outcome of validation.
#[derive(Debug)]
pub struct Validated {
    /// The jail, when there is no error and the file is not a template.
    pub jail: Option<Jail>,
    /// The file says `template = true`.
    pub template: bool,
    /// Errors and warnings, in no particular order.
    pub diags: Vec<Diagnostic>,
}

/// Validates a loaded definition. Diagnostics from loading are not repeated here.
pub fn validate(loaded: &Loaded) -> Validated {
    let Some(raw) = &loaded.raw else {
        return Validated {
            jail: None,
            template: false,
            diags: Vec::new(),
        };
    };
    let template = raw.template.as_ref().is_some_and(|t| t.value);
    let mut v = Checker {
        diags: Vec::new(),
        file: loaded.file,
        require: loaded.complete && !template,
    };
    let jail = v.jail(raw, &loaded.path, loaded.named_by_jid);
    let has_error = v.diags.iter().any(Diagnostic::is_error);
    Validated {
        jail: if has_error || template { None } else { jail },
        template,
        diags: v.diags,
    }
}

struct Checker {
    diags: Vec<Diagnostic>,
    file: FileId,
    /// Report keys that a complete jail needs (not for templates, nor when a base
    /// file was missing).
    require: bool,
}

type Opt<T> = Option<Field<T>>;

impl Checker {
    fn report(&mut self, diag: Diagnostic) {
        self.diags.push(diag);
    }

    fn missing(&mut self, raw: &RawJail, key: &str, help: &str) {
        // A key that is present but invalid was reported already.
        if self.require && !raw.invalid.contains(&key) {
            self.report(
                Diagnostic::new(
                    Code::MissingKey,
                    Span::file_start(self.file),
                    format!("missing key `{key}`"),
                )
                .label(format!("this jail has no `{key}`"))
                .help(help),
            );
        }
    }

    fn jail(&mut self, raw: &RawJail, path: &Path, by_jid: bool) -> Option<Jail> {
        let name = match (&raw.name, by_jid) {
            (None, true) => Some(JailName::by_jid()),
            _ => self.name(&raw.name, path),
        };
        let depend = self.depend(raw);
        let root = self.root(raw);
        let hostname = self.hostname(&raw.hostname, name.as_ref());
        let command = self.command(raw);
        let workdir = self
            .opt_path(&raw.workdir, "workdir", false)
            .unwrap_or_else(AbsPath::root);
        let identity = self.identity(&raw.user, &raw.host_user);
        let groups = raw.groups.as_ref().map(|g| {
            g.value
                .iter()
                .filter_map(|s| self.id_ref(&s.value, s.span, "groups"))
                .collect::<Vec<_>>()
        });
        let env = self.env(raw);
        let allow = self.allow(&raw.allow);
        let network = self.network(&raw.network);
        self.raw_sockets_on_the_host_stack(raw);
        let limits = self.limits(&raw.limits);
        let mounts = self.mounts(&raw.mount);
        let stop = self.stop(&raw.stop_timeout, &raw.stop_signal);
        let lifecycle = self.lifecycle(raw);
        let log = match &raw.log {
            Some(f) if f.value == "journal" => Some(super::LogTarget::Journal),
            _ => self.opt_path(&raw.log, "log", false).map(super::LogTarget::File),
        };
        let log_denials = self.opt_path(&raw.log_denials, "log-denials", false);
        let log_size = raw.log_size.as_ref().map_or(Some(super::DEFAULT_LOG_SIZE), |f| {
            self.size(
                f,
                "log-size",
                Some(64 << 10),
                "at least 64K: a smaller log would rotate at every burst",
            )
        });
        Some(Jail {
            name: name?,
            depend,
            definition: Some(path.to_path_buf()),
            root: root?,
            hostname: hostname?,
            command: command?,
            workdir,
            identity,
            groups,
            clean_env: raw.clean_env.as_ref().is_some_and(|f| f.value),
            env,
            allow,
            network: network?,
            limits,
            mounts,
            stop,
            lifecycle,
            log,
            log_size: log_size?,
            log_denials,
        })
    }

    /// `depend`: names of jails, each once. Whether they exist is a question
    /// of the set of definitions ([`crate::sets`]), not of this file.
    fn depend(&mut self, raw: &RawJail) -> Vec<JailName> {
        let mut out: Vec<JailName> = Vec::new();
        for entry in raw.depend.iter().flat_map(|f| &f.value) {
            match JailName::parse(&entry.value) {
                Ok(n) if out.contains(&n) => self.report(
                    Diagnostic::new(
                        Code::DependDuplicate,
                        entry.span,
                        format!("`depend` names \"{n}\" twice"),
                    )
                    .help("remove one of them"),
                ),
                Ok(n) => out.push(n),
                Err(why) => self.report(
                    Diagnostic::new(
                        Code::InvalidName,
                        entry.span,
                        format!("jail name \"{}\" {why}", entry.value),
                    )
                    .help("`depend` lists jail names, such as \"db\" or \"web@2\""),
                ),
            }
        }
        out
    }

    fn name(&mut self, field: &Opt<String>, path: &Path) -> Option<JailName> {
        match field {
            Some(f) => match JailName::parse(&f.value) {
                Ok(n) => Some(n),
                Err(why) => {
                    self.report(
                        Diagnostic::new(Code::InvalidName, f.span, format!("jail name \"{}\" {why}", f.value))
                            .help("names such as \"web\", \"build-1\" or \"db.prod\" work"),
                    );
                    None
                }
            },
            None => {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match JailName::parse(&stem) {
                    Ok(n) => Some(n),
                    Err(why) => {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidName,
                                Span::file_start(self.file),
                                format!("the file name \"{stem}\", the default jail name, {why}"),
                            )
                            .help("set `name` to a name such as \"web\""),
                        );
                        None
                    }
                }
            }
        }
    }

    /// Checks a path. `escapes` selects the mount-target wording for `..`.
    fn path(&mut self, value: &str, span: Span, key: &str, escapes: bool) -> Option<AbsPath> {
        match AbsPath::parse(value) {
            Ok(p) => Some(p),
            Err(problem) => {
                let (code, help) = match problem {
                    PathProblem::Relative | PathProblem::Empty => (
                        Code::RelativePath,
                        format!(
                            "write it from the root, such as \"/{}\"",
                            value.trim_start_matches("./")
                        ),
                    ),
                    PathProblem::DotDot if escapes => (
                        Code::MountEscapes,
                        "a mount target names a place inside the jail; `..` would climb out of it".to_string(),
                    ),
                    _ => (
                        Code::NonNormalPath,
                        format!("write it in normal form: \"{}\"", lexical_normal(value)),
                    ),
                };
                self.report(
                    Diagnostic::new(code, span, format!("`{key}` {}: \"{value}\"", problem.describe())).help(help),
                );
                None
            }
        }
    }

    fn opt_path(&mut self, field: &Opt<String>, key: &str, escapes: bool) -> Option<AbsPath> {
        let f = field.as_ref()?;
        self.path(&f.value, f.span, key, escapes)
    }

    fn root(&mut self, raw: &RawJail) -> Option<Root> {
        let Some(path_field) = &raw.path else {
            self.missing(
                raw,
                "path",
                "set the jail's root directory, such as path = \"/srv/jails/web\", or \"/\" to share the host's",
            );
            return None;
        };
        let path = self.path(&path_field.value, path_field.span, "path", false)?;
        let read_only = match &raw.read_only {
            Some(f) => {
                if path.is_root() && !f.value {
                    self.report(
                        Diagnostic::new(Code::WritableHostRoot, f.span, "the host's root directory is writable in this jail")
                            .related(path_field.span, "the jail shares the host's root")
                            .help("keep `read-only = true` and mount writable directories (a tmpfs, or a bind with read-only = false) where the jail needs them"),
                    );
                }
                f.value
            }
            None => path.is_root(),
        };
        Some(Root { path, read_only })
    }

    fn hostname(&mut self, field: &Opt<String>, name: Option<&JailName>) -> Option<Hostname> {
        match field {
            Some(f) => match Hostname::parse(&f.value) {
                Ok(h) => Some(h),
                Err(why) => {
                    self.report(
                        Diagnostic::new(Code::InvalidHostname, f.span, format!("hostname \"{}\" {why}", f.value))
                            .help("an RFC 1123 host name: dot-separated labels of letters, digits and `-`, such as \"web.example.org\""),
                    );
                    None
                }
            },
            None => {
                let name = name?;
                match Hostname::parse(name.as_str()) {
                    Ok(h) => Some(h),
                    Err(why) => {
                        self.report(
                            Diagnostic::new(
                                Code::InvalidHostname,
                                Span::file_start(self.file),
                                format!("the jail name \"{name}\", the default hostname, {why}"),
                            )
                            .help("set `hostname`"),
                        );
                        None
                    }
                }
            }
        }
    }

    fn command(&mut self, raw: &RawJail) -> Option<Vec<String>> {
        let Some(f) = &raw.command else {
            self.missing(
                raw,
                "command",
                "set the program to run, such as command = [\"/bin/sh\", \"-c\", \"echo hello\"]",
            );
            return None;
        };
        match f.value.first() {
            None => {
                self.report(
                    Diagnostic::new(Code::EmptyCommand, f.span, "`command` is empty")
                        .help("give at least the program, such as command = [\"/usr/sbin/nginx\"]"),
                );
                None
            }
            Some(first) if first.value.is_empty() => {
                self.report(
                    Diagnostic::new(Code::EmptyCommand, first.span, "the program name is empty")
                        .help("the first element is the program, such as \"/bin/sh\""),
                );
                None
            }
            Some(_) => Some(f.value.iter().map(|s| s.value.clone()).collect()),
        }
    }

    fn id_ref(&mut self, value: &IntOrText, span: Span, key: &str) -> Option<IdRef> {
        let parsed = match value {
            IntOrText::Int(n) => IdRef::parse_id(*n),
            IntOrText::Text(s) => match s.parse::<i64>() {
                Ok(n) => IdRef::parse_id(n),
                Err(_) => IdRef::parse_name(s),
            },
        };
        match parsed {
            Ok(id) => Some(id),
            Err(why) => {
                self.report(
                    Diagnostic::new(Code::InvalidUser, span, format!("`{key}`: {value} {why}"))
                        .help("give a name such as \"www-data\" or a number such as 1000"),
                );
                None
            }
        }
    }

    fn identity(&mut self, user: &Opt<IntOrText>, host_user: &Opt<IntOrText>) -> Identity {
        if let (Some(u), Some(h)) = (user, host_user) {
            self.report(
                Diagnostic::new(Code::UserConflict, h.key_span, "`user` and `host-user` are both set")
                    .label("the host's user database")
                    .related(u.key_span, "the jail's user database")
                    .help("keep `user` to look the name up in the jail's /etc/passwd, or `host-user` for the host's"),
            );
        }
        if let Some(u) = user {
            return self
                .id_ref(&u.value, u.span, "user")
                .map_or(Identity::JailRoot, Identity::Jail);
        }
        if let Some(h) = host_user {
            return self
                .id_ref(&h.value, h.span, "host-user")
                .map_or(Identity::JailRoot, Identity::Host);
        }
        Identity::JailRoot
    }

    fn env(&mut self, raw: &RawJail) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (key, value) in raw.env.iter().flat_map(|f| f.value.0.iter()) {
            if let Err(why) = check_env_name(&key.value) {
                self.report(
                    Diagnostic::new(
                        Code::InvalidEnvName,
                        key.span,
                        format!("environment variable name `{}` {why}", key.value),
                    )
                    .help("names such as TZ, LANG or APP_MODE work; quote nothing else into a key"),
                );
                continue;
            }
            out.insert(key.value.clone(), value.value.clone());
        }
        out
    }

    fn allow(&mut self, field: &Opt<Vec<Spanned<Allow>>>) -> BTreeSet<Allow> {
        let mut out = BTreeSet::new();
        let mut first_span = BTreeMap::new();
        for entry in field.iter().flat_map(|f| f.value.iter()) {
            if let Some(&first) = first_span.get(&entry.value) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateAllow,
                        entry.span,
                        format!("\"{}\" is allowed twice", entry.value),
                    )
                    .related(first, "first here")
                    .help("remove the repeated entry"),
                );
            } else {
                first_span.insert(entry.value, entry.span);
            }
            out.insert(entry.value);
        }
        if let (Some(&raw_span), Some(&all_span)) =
            (first_span.get(&Allow::RawSockets), first_span.get(&Allow::AllDomains))
        {
            self.report(
                Diagnostic::new(
                    Code::RawWithAllDomains,
                    raw_span,
                    "`raw-sockets` with `all-domains` lets the jail open raw packet sockets (AF_PACKET) that see every frame of its interfaces",
                )
                .related(all_span, "all address families allowed here")
                .help("allow only what the program needs: ping, for one, needs neither (it uses ICMP datagram sockets)"),
            );
        }
        out
    }

    /// `raw-sockets` on the host's stack takes no effect: CAP_NET_RAW is
    /// checked against the owner of the network namespace, and the host's is
    /// not the jail's user namespace. Said here, rather than left to
    /// surprise the user with EPERM at run time.
    fn raw_sockets_on_the_host_stack(&mut self, raw: &RawJail) {
        let Some(mode) = raw
            .network
            .as_ref()
            .and_then(|n| n.value.mode.as_ref())
            .filter(|m| m.value == NetMode::Host)
        else {
            return;
        };
        let raw_entry = raw
            .allow
            .iter()
            .flat_map(|a| &a.value)
            .find(|e| e.value == Allow::RawSockets);
        if let Some(entry) = raw_entry {
            self.report(
                Diagnostic::new(
                    Code::NoEffect,
                    entry.span,
                    "`raw-sockets` takes no effect on the host's network stack: jail root holds CAP_NET_RAW over its own user namespace, never over the host's network",
                )
                .related(mode.span, "the jail uses the host's network stack")
                .help("use mode = \"private\" for raw sockets, or remove the entry (ping works without it where net.ipv4.ping_group_range admits the jail's group)"),
            );
        }
    }

    fn network(&mut self, field: &Opt<RawNetwork>) -> Option<Network> {
        let empty = RawNetwork::default();
        let net = field.as_ref().map_or(&empty, |f| &f.value);
        let listed = |l: &Opt<Vec<Spanned<String>>>| l.as_ref().is_some_and(|f| !f.value.is_empty());
        // Without a mode, a jail that lists no address keeps the old manual's
        // promise: no address, no inet socket.
        let mode = net.mode.as_ref().map_or(
            if listed(&net.ipv4) || listed(&net.ipv6) {
                NetMode::Private
            } else {
                NetMode::Disabled
            },
            |m| m.value,
        );
        let host = mode == NetMode::Host;
        let ipv4 = self.addresses(&net.ipv4, "ipv4", host, |ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        let ipv6 = self.addresses(&net.ipv6, "ipv6", host, |ip| match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
        let mode = match mode {
            NetMode::Host => {
                self.private_keys_unused(net, "the jail uses the host's network stack");
                if ipv4.as_ref().is_some_and(Vec::is_empty) && ipv6.as_ref().is_some_and(Vec::is_empty) {
                    let span = net.mode.as_ref().map_or(Span::file_start(self.file), |m| m.span);
                    self.report(
                        Diagnostic::new(Code::NoAddresses, span, "a host-stack jail without addresses can open no IPv4 or IPv6 socket")
                            .help("list the addresses the jail may use in `ipv4` or `ipv6`, or use mode = \"private\" for a jail with loopback only"),
                    );
                }
                NetworkMode::Host
            }
            NetMode::Disabled => {
                self.private_keys_unused(net, "the jail has no IPv4 or IPv6 socket");
                self.no_addresses_when_disabled(net)?;
                NetworkMode::Disabled
            }
            NetMode::Private => NetworkMode::Private(self.private(net, ipv4.as_deref(), ipv6.as_deref())?),
        };
        Some(Network {
            mode,
            ipv4: ipv4?,
            ipv6: ipv6?,
        })
    }

    /// The keys of a private network's veth, set where there is none.
    fn private_keys_unused(&mut self, net: &RawNetwork, because: &str) {
        let mode = net.mode.as_ref().map(|m| (m.span, m.value));
        for (key, f) in [
            ("bridge", &net.bridge),
            ("gateway", &net.gateway),
            ("gateway6", &net.gateway6),
            ("interface", &net.interface),
        ] {
            if let Some(f) = f {
                let d = Diagnostic::new(
                    Code::NotApplicable,
                    f.key_span,
                    format!("`network.{key}` applies to private networks only"),
                )
                .related(mode.map_or(f.key_span, |m| m.0), because);
                self.report(if mode.is_some() {
                    d.help("remove it, or set mode = \"private\"")
                } else {
                    d.help("list the jail's addresses in `ipv4` or `ipv6`, or set mode = \"private\"")
                });
            }
        }
    }

    /// `mode = "disabled"` with an address: the jail could use none of them.
    fn no_addresses_when_disabled(&mut self, net: &RawNetwork) -> Option<()> {
        // Without a mode, "disabled" is only the default when nothing is listed.
        let Some(mode) = net.mode.as_ref() else { return Some(()) };
        let mut ok = true;
        for (key, f) in [("ipv4", &net.ipv4), ("ipv6", &net.ipv6)] {
            if let Some(f) = f.as_ref().filter(|f| !f.value.is_empty()) {
                self.report(
                    Diagnostic::new(
                        Code::KeyConflict,
                        f.key_span,
                        format!("`network.{key}` lists addresses, but mode = \"disabled\" gives the jail no IPv4 or IPv6 socket"),
                    )
                    .related(mode.span, "no inet sockets here")
                    .help("use mode = \"private\" (its own stack with these addresses) or \"host\", or remove the addresses"),
                );
                ok = false;
            }
        }
        ok.then_some(())
    }

    fn private(
        &mut self,
        net: &RawNetwork,
        ipv4: Option<&[Addr<Ipv4Addr>]>,
        ipv6: Option<&[Addr<Ipv6Addr>]>,
    ) -> Option<Private> {
        let mut ok = true;
        let interface = self
            .ifname(&net.interface, "interface", &mut ok)
            .unwrap_or_else(|| "eth0".into());
        let bridge = self.ifname(&net.bridge, "bridge", &mut ok);
        let v4 = self.gateway::<Ipv4Addr>(&net.gateway, "gateway", ipv4.map(<[_]>::is_empty), |ip| match ip {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        let v6 = self.gateway::<Ipv6Addr>(&net.gateway6, "gateway6", ipv6.map(<[_]>::is_empty), |ip| match ip {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        });
        let gateway = net.gateway.is_some() || net.gateway6.is_some();
        let uplink = match (bridge, gateway) {
            (Some(bridge), _) => Uplink::Bridge {
                bridge,
                v4: v4.flatten(),
                v6: v6.flatten(),
            },
            (None, true) => Uplink::Gateway {
                v4: v4.flatten(),
                v6: v6.flatten(),
            },
            (None, false) => Uplink::None,
        };
        ok &= v4.is_some() && v6.is_some();
        ok.then_some(Private { uplink, interface })
    }

    /// `network.interface` or `network.bridge`: a valid interface name, and
    /// not loopback's. Clears `ok` when it reports.
    fn ifname(&mut self, f: &Opt<String>, key: &str, ok: &mut bool) -> Option<String> {
        let f = f.as_ref()?;
        match check_ifname(&f.value) {
            Ok(()) if key == "interface" && f.value == "lo" => {
                self.report(
                    Diagnostic::new(
                        Code::NotApplicable,
                        f.span,
                        "the jail's interface cannot be named \"lo\"",
                    )
                    .help("loopback always exists; choose another name, such as \"eth0\""),
                );
                *ok = false;
                None
            }
            Ok(()) => Some(f.value.clone()),
            Err(why) => {
                self.report(
                    Diagnostic::new(
                        Code::InvalidName,
                        f.span,
                        format!("interface name \"{}\" {why}", f.value),
                    )
                    .help("interface names such as \"br0\" or \"eth0\" work"),
                );
                *ok = false;
                None
            }
        }
    }

    /// `Some(None)`: not set; `Some(Some(a))`: valid; `None`: reported.
    fn gateway<A: Copy>(
        &mut self,
        field: &Opt<String>,
        key: &str,
        family_empty: Option<bool>,
        family: impl Fn(IpAddr) -> Option<A>,
    ) -> Option<Option<A>> {
        let Some(f) = field else { return Some(None) };
        let fam = if key == "gateway" { "IPv4" } else { "IPv6" };
        let list = if key == "gateway" { "ipv4" } else { "ipv6" };
        match f.value.parse::<IpAddr>() {
            Err(_) => {
                self.report(
                    Diagnostic::new(
                        Code::InvalidAddress,
                        f.span,
                        format!("`network.{key}` \"{}\" is not an {fam} address", f.value),
                    )
                    .help(format!("write an {fam} address without a prefix length")),
                );
                None
            }
            Ok(ip) => match family(ip) {
                None => {
                    self.report(
                        Diagnostic::new(
                            Code::WrongFamily,
                            f.span,
                            format!("`network.{key}` must be an {fam} address"),
                        )
                        .help(if key == "gateway" {
                            "IPv6 gateways go in `gateway6`"
                        } else {
                            "IPv4 gateways go in `gateway`"
                        }),
                    );
                    None
                }
                Some(_) if family_empty == Some(true) => {
                    self.report(
                        Diagnostic::new(
                            Code::NotApplicable,
                            f.span,
                            format!("`network.{key}` is set but `{list}` is empty"),
                        )
                        .help(format!(
                            "a gateway is reached from the jail's own {fam} address: add one to `{list}`"
                        )),
                    );
                    None
                }
                Some(a) => Some(Some(a)),
            },
        }
    }

    /// Parses one family's list. Host mode takes no prefix lengths.
    fn addresses<A: Copy + Ord + std::fmt::Display>(
        &mut self,
        field: &Opt<Vec<Spanned<String>>>,
        key: &str,
        host: bool,
        family: impl Fn(IpAddr) -> Option<A>,
    ) -> Option<Vec<Addr<A>>> {
        let mut out: Vec<Addr<A>> = Vec::new();
        // Where each address was first listed: a map, so that a long list costs
        // n log n, not n squared.
        let mut first: BTreeMap<A, Span> = BTreeMap::new();
        let mut ok = true;
        for item in field.iter().flat_map(|f| f.value.iter()) {
            let Some(parsed) = self.address(item, key, host, &family) else {
                ok = false;
                continue;
            };
            let addr = parsed.addr;
            if let Some(&first_span) = first.get(&addr) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateAddress,
                        item.span,
                        format!("{addr} is listed twice in `{key}`"),
                    )
                    .related(first_span, "first listed here")
                    .help("each address is listed once; the first one listed is the rewrite target"),
                );
                ok = false;
                continue;
            }
            out.push(parsed);
            first.insert(addr, item.span);
        }
        ok.then_some(out)
    }

    /// One entry of `ipv4` or `ipv6`: an address of the family, usable as a
    /// jail's own, with its prefix length.
    fn address<A: Copy>(
        &mut self,
        item: &Spanned<String>,
        key: &str,
        host: bool,
        family: &impl Fn(IpAddr) -> Option<A>,
    ) -> Option<Addr<A>> {
        let (fam, other, _) = family_words(key);
        let (addr_text, prefix_text) = match item.value.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (item.value.as_str(), None),
        };
        let Ok(ip) = addr_text.parse::<IpAddr>() else {
            self.report(
                Diagnostic::new(
                    Code::InvalidAddress,
                    item.span,
                    format!("\"{}\" is not an {fam} address", item.value),
                )
                .help(if key == "ipv4" {
                    "write four decimal numbers, such as \"192.0.2.10\""
                } else {
                    "write an IPv6 address, such as \"2001:db8::10\""
                }),
            );
            return None;
        };
        let Some(addr) = family(ip) else {
            self.report(
                Diagnostic::new(
                    Code::WrongFamily,
                    item.span,
                    format!("\"{addr_text}\" is not an {fam} address"),
                )
                .help(format!("move it to `{other}`")),
            );
            return None;
        };
        if let Some(why) = unusable(ip) {
            self.report(
                Diagnostic::new(
                    Code::UnusableAddress,
                    item.span,
                    format!("\"{addr_text}\" cannot be a jail's address: it is {why}"),
                )
                .help("list the jail's own unicast addresses; the first is where wildcard binds go"),
            );
            return None;
        }
        let prefix = self.prefix(item, addr_text, prefix_text, key, host)?;
        Some(Addr { addr, prefix })
    }

    /// The prefix length after the address: the family's full length when
    /// there is none; none at all on the host's stack.
    fn prefix(
        &mut self,
        item: &Spanned<String>,
        addr_text: &str,
        text: Option<&str>,
        key: &str,
        host: bool,
    ) -> Option<u8> {
        let (fam, _, full) = family_words(key);
        let p = match text {
            None => return Some(full),
            Some(_) if host => {
                self.report(
                    Diagnostic::new(
                        Code::NotApplicable,
                        item.span,
                        "a prefix length applies to private networks only",
                    )
                    .help(format!(
                        "a host-stack jail uses the host's addresses as they are: write \"{addr_text}\""
                    )),
                );
                return None;
            }
            Some(p) => p,
        };
        match p.parse::<u8>() {
            Ok(n) if n >= 1 && n <= full => Some(n),
            _ => {
                self.report(
                    Diagnostic::new(
                        Code::InvalidAddress,
                        item.span,
                        format!("\"/{p}\" is not an {fam} prefix length"),
                    )
                    .help(format!("prefix lengths range from 1 to {full}")),
                );
                None
            }
        }
    }

    fn limits(&mut self, field: &Opt<RawLimits>) -> Limits {
        let Some(f) = field else {
            // A template, or a file whose base is missing, may get limits elsewhere.
            if self.require {
                self.report(
                    Diagnostic::new(
                        Code::NoLimits,
                        Span::file_start(self.file),
                        "this jail sets no limits: its processes may use all of the host's memory, processes and CPU",
                    )
                    .label("no [limits] table")
                    .help("add a [limits] table, such as memory = \"512M\", pids = 256, cpu = 1.0"),
                );
            }
            return Limits::default();
        };
        let l = &f.value;
        let mut out = Limits::default();
        if let Some(m) = &l.memory {
            out.memory = self.size(
                m,
                "limits.memory",
                Some(4 << 20),
                "at least 4M: less cannot start a program",
            );
        }
        self.counters(l, &mut out);
        if let Some(m) = &l.shm {
            out.shm = self.size(m, "limits.shm", Some(4 << 10), "at least 4K");
        }
        if let Some(p) = &l.pids {
            out.pids = self
                .range(
                    p,
                    "limits.pids",
                    2,
                    4_194_304,
                    "between 2 (the jail's init and one process) and 4194304 (the kernel's pid_max)",
                )
                .map(|n| n as u32);
        }
        if let Some(c) = &l.cpu {
            out.cpu = self.cpu(c);
        }
        self.rlimits(l, &mut out);
        out
    }

    /// The per-user counters: inotify instances and watches.
    fn counters(&mut self, l: &RawLimits, out: &mut Limits) {
        for (counter, field) in [
            (Counter::InotifyInstances, &l.inotify_instances),
            (Counter::InotifyWatches, &l.inotify_watches),
        ] {
            if let Some(v) = field {
                let key = format!("limits.{}", counter.key());
                if let Some(n) = self.range(v, &key, 1, i64::from(i32::MAX), "between 1 and 2147483647") {
                    out.counters.insert(counter, n as u32);
                }
            }
        }
    }

    /// `limits.cpu`, in cores: 0.01 to 1024.
    fn cpu(&mut self, c: &Field<f64>) -> Option<MilliCpu> {
        let millis = c.value * 1000.0;
        if c.value.is_finite() && (10.0..=1_024_000.0).contains(&millis) {
            return Some(MilliCpu(millis.round() as u32));
        }
        self.report(
            Diagnostic::new(
                Code::OutOfRange,
                c.span,
                format!("`limits.cpu` = {} is out of range", c.value),
            )
            .help("give cores between 0.01 and 1024, such as 0.5 for half a core"),
        );
        None
    }

    /// The resource limits, each with whether it is a size and its least value.
    fn rlimits(&mut self, l: &RawLimits, out: &mut Limits) {
        let rlimits: [(Rlimit, &Opt<IntOrText>, bool, u64); 7] = [
            (Rlimit::Nofile, &l.nofile, false, 1),
            (Rlimit::Nproc, &l.nproc, false, 1),
            (Rlimit::Core, &l.core, true, 0),
            (Rlimit::Fsize, &l.fsize, true, 0),
            (Rlimit::Stack, &l.stack, true, 16 << 10),
            (Rlimit::As, &l.address_space, true, 16 << 20),
            (Rlimit::Msgqueue, &l.msgqueue, true, 0),
        ];
        for (which, field, is_size, min) in rlimits {
            if let Some(f) = field
                && let Some(v) = self.rlimit(which, f, is_size, min)
            {
                out.rlimits.insert(which, v);
            }
        }
    }

    fn range(&mut self, f: &Field<i64>, key: &str, min: i64, max: i64, help: &str) -> Option<i64> {
        if (min..=max).contains(&f.value) {
            Some(f.value)
        } else {
            self.report(
                Diagnostic::new(
                    Code::OutOfRange,
                    f.span,
                    format!("`{key}` = {} is out of range", f.value),
                )
                .help(format!("give a number {help}")),
            );
            None
        }
    }

    fn size(&mut self, f: &Field<IntOrText>, key: &str, min: Option<u64>, min_help: &str) -> Option<Bytes> {
        let parsed = match &f.value {
            IntOrText::Int(n) if *n < 0 => Err(format!("{n} is negative")),
            IntOrText::Int(n) => Ok(Bytes(*n as u64)),
            IntOrText::Text(s) => Bytes::parse(s),
        };
        match parsed {
            Err(why) => {
                self.report(
                    Diagnostic::new(Code::InvalidSize, f.span, format!("`{key}`: {why}"))
                        .help("write a number of bytes, or a number with a unit: K, M, G, T (powers of 1024), such as \"512M\""),
                );
                None
            }
            Ok(b) if min.is_some_and(|m| b.0 < m) => {
                self.report(
                    Diagnostic::new(Code::OutOfRange, f.span, format!("`{key}` = {} is too small", f.value))
                        .help(min_help.to_string()),
                );
                None
            }
            Ok(b) => Some(b),
        }
    }

    fn rlimit(&mut self, which: Rlimit, f: &Field<IntOrText>, is_size: bool, min: u64) -> Option<RlimitValue> {
        let key = format!("limits.{}", which.key());
        if matches!(&f.value, IntOrText::Text(s) if s == "unlimited") {
            if which == Rlimit::Nofile {
                self.report(
                    Diagnostic::new(Code::OutOfRange, f.span, "`limits.nofile` cannot be unlimited")
                        .help("the kernel caps open files at fs.nr_open (1048576 by default); give a number"),
                );
                return None;
            }
            return Some(RlimitValue::Unlimited);
        }
        let value = if is_size {
            self.size(f, &key, None, "")?.0
        } else {
            match &f.value {
                IntOrText::Int(n) if *n >= 0 => *n as u64,
                other => {
                    self.report(
                        Diagnostic::new(Code::InvalidSize, f.span, format!("`{key}` = {other} is not a count"))
                            .help("give a whole number, or \"unlimited\""),
                    );
                    return None;
                }
            }
        };
        let max = if which == Rlimit::Nofile { 1 << 20 } else { u64::MAX };
        if value < min || value > max {
            let help = if which == Rlimit::Nofile {
                "give a number between 1 and 1048576 (fs.nr_open)".to_string()
            } else {
                format!(
                    "give at least {}",
                    if is_size {
                        Bytes(min).to_string()
                    } else {
                        min.to_string()
                    }
                )
            };
            self.report(
                Diagnostic::new(
                    Code::OutOfRange,
                    f.span,
                    format!("`{key}` = {} is out of range", f.value),
                )
                .help(help),
            );
            return None;
        }
        Some(RlimitValue::Limited(value))
    }

    fn mounts(&mut self, field: &Opt<Vec<Spanned<RawMount>>>) -> Vec<Mount> {
        let mut out: Vec<Mount> = Vec::new();
        // Each target so far, sorted, with where it was written: a duplicate is
        // one lookup and the targets below a new one are one range, so that
        // many mounts cost n log n, not n squared.
        let mut targets: BTreeMap<String, Span> = BTreeMap::new();
        for (index, m) in field.iter().flat_map(|f| f.value.iter()).enumerate() {
            if let Some((mount, span)) = self.mount(index, &m.value, m.span) {
                let target = mount.target.as_str();
                if let Some(&first) = targets.get(target) {
                    self.report(
                        Diagnostic::new(Code::DuplicateMountTarget, span, format!("two mounts at {target}"))
                            .related(first, "first mounted here")
                            .help("the second would hide the first; keep one"),
                    );
                    continue;
                }
                // A mount is never at the root, so the targets below it are
                // exactly those that start with its target and a slash.
                let below = format!("{target}/");
                if let Some((hidden, &hidden_span)) = targets
                    .range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded))
                    .next()
                    .filter(|(t, _)| t.starts_with(&below))
                {
                    self.report(
                        Diagnostic::new(
                            Code::ShadowedMount,
                            span,
                            format!("this mount at {target} hides the earlier mount at {hidden}"),
                        )
                        .related(hidden_span, "hidden by the later mount")
                        .help("mounts are made in order: list the outer directory first"),
                    );
                }
                targets.insert(target.to_string(), span);
                out.push(mount);
            }
        }
        let has_proc = out.iter().any(|m| matches!(m.kind, MountKind::Proc));
        let has_dev = out.iter().any(|m| matches!(m.kind, MountKind::Dev));
        if !has_proc {
            out.push(Mount {
                target: AbsPath::parse("/proc").expect("static"),
                kind: MountKind::Proc,
                index: None,
            });
        }
        if !has_dev {
            out.push(Mount {
                target: AbsPath::parse("/dev").expect("static"),
                kind: MountKind::Dev,
                index: None,
            });
        }
        out
    }

    /// One mount, and the span of its target (for conflicts).
    fn mount(&mut self, index: usize, m: &RawMount, span: Span) -> Option<(Mount, Span)> {
        let kind = self.mount_type(index, m, span)?;
        let (target, target_span) = self.mount_target(index, m, span)?;
        let key = |k: &str| format!("mount[{index}].{k}");
        let mount_kind = match kind {
            MountType::Bind => self.bind_mount(index, m, span)?,
            MountType::Tmpfs => self.tmpfs_mount(m, &key)?,
            MountType::Proc | MountType::Dev => self.kernel_mount(kind, m, &key),
        };
        Some((
            Mount {
                target: target?,
                kind: mount_kind,
                index: Some(index),
            },
            target_span,
        ))
    }

    /// `type`, or a bind mount when only `source` is set.
    fn mount_type(&mut self, index: usize, m: &RawMount, span: Span) -> Option<MountType> {
        match (&m.kind, &m.source) {
            (Some(k), _) => Some(k.value),
            (None, Some(_)) => Some(MountType::Bind),
            (None, None) => {
                self.report(
                    Diagnostic::new(
                        Code::MissingKey,
                        span,
                        format!("mount[{index}] has neither `type` nor `source`"),
                    )
                    .help("a bind mount needs `source`; other mounts need type = \"tmpfs\", \"proc\" or \"dev\""),
                );
                None
            }
        }
    }

    /// `target`: set, and not the root. `Some((None, _))`: set but invalid,
    /// reported, and the rest of the mount still checked.
    fn mount_target(&mut self, index: usize, m: &RawMount, span: Span) -> Option<(Option<AbsPath>, Span)> {
        let Some(target_field) = &m.target else {
            self.report(
                Diagnostic::new(Code::MissingKey, span, format!("mount[{index}] has no `target`"))
                    .help("set where it appears in the jail, such as target = \"/tmp\""),
            );
            return None;
        };
        let target = self.path(
            &target_field.value,
            target_field.span,
            &format!("mount[{index}].target"),
            true,
        );
        if target.as_ref().is_some_and(AbsPath::is_root) {
            self.report(
                Diagnostic::new(
                    Code::MountOverRoot,
                    target_field.span,
                    "a mount cannot replace the jail's root",
                )
                .help("the root is `path`; mount below it"),
            );
            return None;
        }
        Some((target, target_field.span))
    }

    /// Reports a key set on a mount of a type it does not apply to.
    fn not_for(&mut self, f: Option<Span>, key: &str, what: &str) {
        if let Some(s) = f {
            self.report(
                Diagnostic::new(
                    Code::NotApplicable,
                    s,
                    format!("`{key}` does not apply to {what} mounts"),
                )
                .help("remove it"),
            );
        }
    }

    fn bind_mount(&mut self, index: usize, m: &RawMount, span: Span) -> Option<MountKind> {
        let key = |k: &str| format!("mount[{index}].{k}");
        self.not_for(key_span(&m.size), &key("size"), "bind");
        self.not_for(key_span(&m.mode), &key("mode"), "bind");
        let Some(src) = &m.source else {
            self.report(
                Diagnostic::new(Code::MissingKey, span, format!("bind mount[{index}] has no `source`"))
                    .help("set the host path to bind, such as source = \"/usr\""),
            );
            return None;
        };
        Some(MountKind::Bind {
            source: self.path(&src.value, src.span, &key("source"), false)?,
            read_only: m.read_only.as_ref().is_none_or(|f| f.value),
            recursive: m.recursive.as_ref().is_some_and(|f| f.value),
            idmap: m.idmap.as_ref().is_some_and(|f| f.value),
        })
    }

    fn tmpfs_mount(&mut self, m: &RawMount, key: &dyn Fn(&str) -> String) -> Option<MountKind> {
        let kinds = "tmpfs";
        self.not_for(key_span(&m.source), &key("source"), kinds);
        self.not_for(key_span(&m.recursive), &key("recursive"), kinds);
        self.not_for(key_span(&m.idmap), &key("idmap"), kinds);
        let size = match &m.size {
            Some(f) => self.size(f, &key("size"), Some(4096), "at least 4K (one page)")?,
            None => Bytes(64 << 20),
        };
        let mode = match &m.mode {
            Some(f) => self.mode(f, &key("mode"))?,
            None => 0o755,
        };
        Some(MountKind::Tmpfs {
            size,
            mode,
            read_only: m.read_only.as_ref().is_some_and(|f| f.value),
        })
    }

    /// `proc` and `dev`: the kernel's file systems, which take no options.
    fn kernel_mount(&mut self, kind: MountType, m: &RawMount, key: &dyn Fn(&str) -> String) -> MountKind {
        let what = kind.as_str();
        for (f, k) in [
            (key_span(&m.source), "source"),
            (key_span(&m.recursive), "recursive"),
            (key_span(&m.idmap), "idmap"),
            (key_span(&m.read_only), "read-only"),
            (key_span(&m.size), "size"),
            (key_span(&m.mode), "mode"),
        ] {
            self.not_for(f, &key(k), what);
        }
        if kind == MountType::Proc {
            MountKind::Proc
        } else {
            MountKind::Dev
        }
    }

    fn mode(&mut self, f: &Field<IntOrText>, key: &str) -> Option<u32> {
        let parsed = match &f.value {
            IntOrText::Int(n) => u32::try_from(*n).ok(),
            IntOrText::Text(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        };
        match parsed {
            Some(m) if m <= 0o7777 => Some(m),
            _ => {
                self.report(
                    Diagnostic::new(
                        Code::OutOfRange,
                        f.span,
                        format!("`{key}` = {} is not a file mode", f.value),
                    )
                    .help("write octal permissions as a string, such as \"1777\", or a TOML octal integer, 0o1777"),
                );
                None
            }
        }
    }

    fn stop(&mut self, timeout: &Opt<IntOrText>, signal: &Opt<StopSignal>) -> Stop {
        let default = Duration::from_secs(10);
        let timeout = timeout.as_ref().map_or(default, |f| {
            self.duration(
                f,
                "stop-timeout",
                Duration::from_secs(3600),
                "a jail that needs longer should stop itself",
            )
            .unwrap_or(default)
        });
        Stop {
            timeout,
            signal: signal.as_ref().map_or(StopSignal::Term, |f| f.value),
        }
    }

    /// A duration key: seconds, or a string such as "10s"; at most `max`.
    fn duration(&mut self, f: &Field<IntOrText>, key: &str, max: Duration, why_max: &str) -> Option<Duration> {
        let parsed = match &f.value {
            IntOrText::Int(n) if *n >= 0 => Ok(Duration::from_secs(*n as u64)),
            IntOrText::Int(n) => Err(format!("{n} is negative")),
            IntOrText::Text(s) => parse_duration(s),
        };
        match parsed {
            Ok(d) if d <= max => Some(d),
            Ok(_) => {
                self.report(
                    Diagnostic::new(
                        Code::OutOfRange,
                        f.span,
                        format!("`{key}` is longer than {}", humantime_short(max)),
                    )
                    .help(format!("give at most \"{}\"; {why_max}", humantime_short(max))),
                );
                None
            }
            Err(why) => {
                self.report(
                    Diagnostic::new(Code::InvalidDuration, f.span, format!("`{key}`: {why}"))
                        .help("write seconds as a number, or a string such as \"10s\", \"500ms\" or \"2m\""),
                );
                None
            }
        }
    }

    /// `start-window`, `restart` and `restart-limit`.
    fn lifecycle(&mut self, raw: &RawJail) -> Lifecycle {
        let mut out = Lifecycle::default();
        if let Some(f) = &raw.start_window {
            let max = Duration::from_secs(60);
            out.start_window = self
                .duration(f, "start-window", max, "`up -b` waits that long before it returns")
                .unwrap_or(out.start_window);
        }
        if let Some(f) = &raw.restart {
            out.restart = f.value;
        }
        if let Some(f) = &raw.restart_limit {
            out.restart_limit = self
                .range(f, "restart-limit", 0, 1000, "between 0 (never restart) and 1000")
                .map_or(out.restart_limit, |n| n as u32);
        }
        if let Some(h) = &raw.hooks {
            out.hooks = self.hooks(&h.value);
        }
        out
    }

    /// `[hooks]`: every command non-empty, its program an absolute path.
    fn hooks(&mut self, raw: &RawHooks) -> Hooks {
        let mut out = Hooks::default();
        let phases = [
            (&raw.prestart, &mut out.prestart, "hooks.prestart"),
            (&raw.poststart, &mut out.poststart, "hooks.poststart"),
            (&raw.prestop, &mut out.prestop, "hooks.prestop"),
            (&raw.poststop, &mut out.poststop, "hooks.poststop"),
        ];
        for (field, commands, key) in phases {
            let Some(f) = field else { continue };
            for cmd in &f.value {
                let Some(first) = cmd.value.first() else {
                    self.report(
                        Diagnostic::new(Code::EmptyCommand, cmd.span, format!("a command of `{key}` is empty"))
                            .help("give the program and its arguments, such as [\"/bin/mkdir\", \"-p\", \"/srv/run\"]"),
                    );
                    continue;
                };
                if !first.value.starts_with('/') {
                    self.report(
                        Diagnostic::new(
                            Code::RelativePath,
                            first.span,
                            format!("the program of a `{key}` command is not an absolute path"),
                        )
                        .help(format!(
                            "hooks run without a search path: write it from the root, such as \"/usr/bin/{}\"",
                            first.value.trim_start_matches("./")
                        )),
                    );
                    continue;
                }
                commands.push(cmd.value.iter().map(|s| s.value.clone()).collect());
            }
        }
        if let Some(f) = &raw.timeout {
            let max = Duration::from_secs(3600);
            out.timeout = self
                .duration(
                    f,
                    "hooks.timeout",
                    max,
                    "a hook that needs longer should run in the jail",
                )
                .unwrap_or(out.timeout);
        }
        out
    }
}

/// The family of `ipv4` or `ipv6`, the other list, and the full prefix length.
fn family_words(key: &str) -> (&'static str, &'static str, u8) {
    if key == "ipv4" {
        ("IPv4", "ipv6", 32)
    } else {
        ("IPv6", "ipv4", 128)
    }
}

fn key_span<T>(f: &Option<Field<T>>) -> Option<Span> {
    f.as_ref().map(|f| f.key_span)
}

/// Why an address cannot be a jail's own, if it cannot.
fn unusable(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) if a.is_unspecified() => Some("the wildcard address"),
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.is_unspecified() => Some("the wildcard address"),
        IpAddr::V6(a) if a.is_multicast() => Some("a multicast address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Some("an IPv4-mapped address (list it in `ipv4`)"),
        _ => None,
    }
}

/// `..` and `.` resolved lexically, `//` and a trailing `/` removed.
fn lexical_normal(s: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests;
