use std::path::Path;

use super::*;
use crate::config::{MemFiles, load};
use crate::diag::SourceMap;

/// Validates `text` as `jails/<name>.toml`; returns the result, and each
/// diagnostic as (code, line, column).
fn check(name: &str, text: &str) -> (Validated, Vec<(Code, usize, usize)>) {
    let path = format!("jails/{name}.toml");
    let files = MemFiles::default().with(&path, text);
    let mut sources = SourceMap::new();
    let loaded = load(Path::new(&path), &mut sources, &files);
    let mut v = validate(&loaded);
    v.diags.extend(loaded.diags);
    crate::diag::sort(&mut v.diags);
    let found = v
        .diags
        .iter()
        .map(|d| {
            let loc = sources.location(d.span());
            (d.code, loc.line, loc.column)
        })
        .collect();
    (v, found)
}

const MINIMAL: &str = "path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 16\n";

#[test]
fn a_minimal_jail_is_valid_with_documented_defaults() {
    let (v, found) = check("web", MINIMAL);
    assert_eq!(found, vec![]);
    let jail = v.jail.unwrap();
    assert_eq!(jail.name.as_str(), "web");
    assert_eq!(jail.hostname.as_str(), "web");
    assert!(jail.root.read_only, "the host's root is read-only by default");
    assert_eq!(jail.workdir, AbsPath::root());
    assert_eq!(jail.identity, Identity::JailRoot);
    // No address, no inet socket: the old manual's promise stays the default.
    assert_eq!(jail.network.mode, NetworkMode::Disabled);
    assert!(jail.network.ipv4.is_empty() && jail.network.ipv6.is_empty());
    assert!(!jail.network.ipv4_allowed() && !jail.network.ipv6_allowed());
    assert_eq!(
        jail.stop,
        Stop {
            timeout: Duration::from_secs(10),
            signal: StopSignal::Term
        }
    );
    let targets: Vec<_> = jail.mounts.iter().map(|m| m.target.as_str()).collect();
    assert_eq!(targets, ["/proc", "/dev"], "/proc and /dev are implied");
}

#[test]
fn unknown_key_bad_address_and_relative_path_are_three_diagnostics_at_their_places() {
    let text = "path = \"srv/jails/web\"\ncommand = [\"/bin/true\"]\nhostnme = \"web\"\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.300\"]\n[limits]\npids = 8\n";
    let (v, found) = check("web", text);
    assert_eq!(
        found,
        vec![
            (Code::RelativePath, 1, 8),
            (Code::UnknownKey, 3, 1),
            (Code::InvalidAddress, 6, 9)
        ]
    );
    assert!(v.jail.is_none());
}

#[test]
fn addresses_wrong_family_duplicate_and_unusable() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.1\", \"2001:db8::1\", \"192.0.2.1\", \"0.0.0.0\"]\nipv6 = [\"::ffff:1.2.3.4\"]\n[limits]\npids = 8\n";
    let (v, found) = check("n", text);
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        vec![
            Code::WrongFamily,
            Code::DuplicateAddress,
            Code::UnusableAddress,
            Code::UnusableAddress
        ]
    );
    let dup = v.diags.iter().find(|d| d.code == Code::DuplicateAddress).unwrap();
    assert_eq!(dup.labels.len(), 2, "the first listing is shown too");
}

#[test]
fn host_mode_takes_no_prefix_and_no_private_keys() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.1/24\"]\nbridge = \"br0\"\n[limits]\npids = 8\n";
    let (_, found) = check("n", text);
    assert_eq!(found, vec![(Code::NotApplicable, 5, 9), (Code::NotApplicable, 6, 1)]);
}

#[test]
fn network_mode_defaults_to_private_with_an_address_and_disabled_without() {
    let net = |body: &str| {
        let (v, found) = check(
            "n",
            &format!("path = \"/\"\ncommand = [\"x\"]\n{body}[limits]\npids = 8\n"),
        );
        assert_eq!(found, vec![], "{body}");
        v.jail.unwrap().network
    };
    assert_eq!(net("[network]\n").mode, NetworkMode::Disabled);
    assert!(matches!(
        net("[network]\nipv6 = [\"fd00::2/64\"]\n").mode,
        NetworkMode::Private(_)
    ));
    // Explicitly private without addresses: the jail's own loopback, both families.
    let lo = net("[network]\nmode = \"private\"\n");
    assert!(lo.loopback_only() && lo.ipv4_allowed() && lo.ipv6_allowed());
    // Loopback addresses need no veth either.
    assert!(net("[network]\nmode = \"private\"\nipv4 = [\"127.0.0.1\"]\n").ipv6_allowed());
    // With a veth, a family without addresses stays denied.
    let veth = net("[network]\nipv4 = [\"10.0.0.2/24\"]\n");
    assert!(!veth.loopback_only() && veth.ipv4_allowed() && !veth.ipv6_allowed());
}

#[test]
fn disabled_mode_takes_no_addresses_and_no_private_keys() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nmode = \"disabled\"\nipv4 = [\"10.0.0.2\"]\nipv6 = []\ninterface = \"eth1\"\n[limits]\npids = 8\n";
    let (v, found) = check("n", text);
    assert_eq!(found, vec![(Code::KeyConflict, 5, 1), (Code::NotApplicable, 7, 1)]);
    assert!(v.jail.is_none());
    let conflict = v.diags.iter().find(|d| d.code == Code::KeyConflict).unwrap();
    assert_eq!(conflict.labels.len(), 2, "the mode is shown too");
    // Without a mode, a veth key alone is not applicable either.
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nbridge = \"br0\"\n[limits]\npids = 8\n";
    assert_eq!(check("n", text).1, vec![(Code::NotApplicable, 4, 1)]);
}

#[test]
fn private_mode_settings() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nipv4 = [\"10.0.0.2/24\", \"127.0.0.1\"]\ngateway = \"10.0.0.1\"\ninterface = \"veth-in\"\n[limits]\npids = 8\n";
    let (v, found) = check("n", text);
    assert_eq!(found, vec![]);
    let net = v.jail.unwrap().network;
    assert_eq!(
        net.ipv4[0],
        Addr {
            addr: Ipv4Addr::new(10, 0, 0, 2),
            prefix: 24
        }
    );
    assert_eq!(net.ipv4[1].prefix, 32);
    assert_eq!(
        net.mode,
        NetworkMode::Private(Private {
            uplink: Uplink::Gateway {
                v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
                v6: None
            },
            interface: "veth-in".into()
        })
    );
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nipv4 = [\"10.0.0.2\"]\ngateway = \"10.0.0.1\"\nbridge = \"br0\"\ngateway6 = \"fd00::1\"\n[limits]\npids = 8\n";
    let (_, found) = check("n", text);
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert_eq!(codes, [Code::NotApplicable], "gateway6 without ipv6: {codes:?}");
    // With a bridge, the gateway is the bridged network's router.
    let text = "path = \"/\"\ncommand = [\"x\"]\n[network]\nipv4 = [\"10.0.0.2/24\"]\ngateway = \"10.0.0.1\"\nbridge = \"br0\"\n[limits]\npids = 8\n";
    let (jail, found) = check("n", text);
    assert!(found.is_empty(), "{found:?}");
    let NetworkMode::Private(p) = jail.jail.expect("valid").network.mode else {
        panic!("private")
    };
    assert_eq!(
        p.uplink,
        Uplink::Bridge {
            bridge: "br0".into(),
            v4: Some("10.0.0.1".parse().unwrap()),
            v6: None
        }
    );
}

#[test]
fn hostnames_follow_rfc_1123() {
    let (_, found) = check("h", &format!("hostname = \"web_1\"\n{MINIMAL}"));
    assert_eq!(found, vec![(Code::InvalidHostname, 1, 12)]);
}

#[test]
fn paths_must_be_normal_and_mounts_may_not_escape() {
    let text = "path = \"/srv//web/\"\ncommand = [\"x\"]\nworkdir = \"/a/./b\"\n[[mount]]\nsource = \"/usr\"\ntarget = \"/../etc\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/\"\n[limits]\npids = 8\n";
    let (v, found) = check("p", text);
    assert_eq!(
        found,
        vec![
            (Code::NonNormalPath, 1, 8),
            (Code::NonNormalPath, 3, 11),
            (Code::MountEscapes, 6, 10),
            (Code::MountOverRoot, 9, 10),
        ]
    );
    let first = &v.diags[0];
    assert_eq!(first.help.as_deref(), Some("write it in normal form: \"/srv/web\""));
}

#[test]
fn empty_command_and_both_users() {
    let text = "path = \"/\"\ncommand = []\nuser = \"www\"\nhost-user = \"nobody\"\n[limits]\npids = 8\n";
    let (v, found) = check("c", text);
    assert_eq!(found, vec![(Code::EmptyCommand, 2, 11), (Code::UserConflict, 4, 1)]);
    let conflict = v.diags.iter().find(|d| d.code == Code::UserConflict).unwrap();
    assert_eq!(conflict.labels.len(), 2);
}

#[test]
fn sizes_and_ranges() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[limits]\nmemory = \"12X\"\npids = 1\ncpu = 0\nnofile = \"unlimited\"\nstack = \"1K\"\ncore = 0\nas = \"unlimited\"\nnproc = -3\n";
    let (v, found) = check("l", text);
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        vec![
            Code::InvalidSize,
            Code::OutOfRange,
            Code::OutOfRange,
            Code::OutOfRange,
            Code::OutOfRange,
            Code::InvalidSize
        ]
    );
    assert!(v.jail.is_none());
    let text = "path = \"/\"\ncommand = [\"x\"]\n[limits]\nmemory = \"512M\"\npids = 64\ncpu = 1.5\nnofile = 1024\ncore = 0\nas = \"unlimited\"\n";
    let (v, found) = check("l", text);
    assert_eq!(found, vec![]);
    let limits = v.jail.unwrap().limits;
    assert_eq!(limits.memory, Some(Bytes(512 << 20)));
    assert_eq!(limits.cpu, Some(MilliCpu(1500)));
    assert_eq!(limits.rlimits[&Rlimit::Nofile], RlimitValue::Limited(1024));
    assert_eq!(limits.rlimits[&Rlimit::Core], RlimitValue::Limited(0));
    assert_eq!(limits.rlimits[&Rlimit::As], RlimitValue::Unlimited);
}

#[test]
fn env_names_are_portable() {
    let text = format!("{MINIMAL}[env]\nGOOD_1 = \"x\"\n\"1BAD\" = \"y\"\n\"A-B\" = \"z\"\n");
    let (_, found) = check("e", &text);
    assert_eq!(found, vec![(Code::InvalidEnvName, 7, 1), (Code::InvalidEnvName, 8, 1)]);
}

#[test]
fn warnings_for_risky_but_legal_choices() {
    let text = "path = \"/\"\nread-only = false\ncommand = [\"x\"]\nallow = [\"raw-sockets\", \"ipc\", \"all-domains\", \"ipc\"]\n";
    let (v, found) = check("w", text);
    assert!(v.jail.is_some(), "warnings do not make a jail invalid");
    assert_eq!(
        found,
        vec![
            (Code::NoLimits, 1, 1),
            (Code::WritableHostRoot, 2, 13),
            (Code::RawWithAllDomains, 4, 10),
            (Code::DuplicateAllow, 4, 47),
        ]
    );
    assert!(v.diags.iter().all(|d| d.severity == crate::diag::Severity::Warning));
}

#[test]
fn mounts_need_the_right_keys() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[[mount]]\ntarget = \"/a\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/b\"\nsource = \"/x\"\nsize = \"1G\"\nmode = \"1777\"\n[[mount]]\nsource = \"/c\"\ntarget = \"/b\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/\"\n[limits]\npids = 8\n";
    let (_, found) = check("m", text);
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert_eq!(
        codes,
        vec![
            Code::MissingKey,
            Code::NotApplicable,
            Code::DuplicateMountTarget,
            Code::MountOverRoot
        ]
    );
}

#[test]
fn a_later_mount_above_an_earlier_one_is_a_warning() {
    let text = "path = \"/\"\ncommand = [\"x\"]\n[[mount]]\nsource = \"/usr/lib\"\ntarget = \"/opt/lib\"\n[[mount]]\ntype = \"tmpfs\"\ntarget = \"/opt\"\n[limits]\npids = 8\n";
    let (v, found) = check("m", text);
    assert_eq!(found, vec![(Code::ShadowedMount, 8, 10)]);
    assert!(v.jail.is_some());
}

#[test]
fn templates_need_no_path_or_command() {
    let (v, found) = check("base", "template = true\nclean-env = true\n");
    assert_eq!(found, vec![]);
    assert!(v.template && v.jail.is_none());
    let (_, found) = check("full", "clean-env = true\n");
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert_eq!(codes, vec![Code::MissingKey, Code::MissingKey, Code::NoLimits]);
}

#[test]
fn a_missing_base_does_not_hide_the_files_own_problems() {
    let (_, found) = check("x", "extends = \"gone.toml\"\nhostname = \"-bad\"\n");
    let codes: Vec<_> = found.iter().map(|f| f.0).collect();
    assert!(codes.contains(&Code::ExtendsMissing));
    assert!(codes.contains(&Code::InvalidHostname));
    assert!(
        !codes.contains(&Code::MissingKey),
        "path may come from the missing base: {codes:?}"
    );
}

#[test]
fn a_bad_file_name_needs_a_name_key() {
    let (_, found) = check("-web", MINIMAL);
    assert_eq!(found, vec![(Code::InvalidName, 1, 1)]);
    let (_, found) = check("-web", &format!("name = \"web\"\n{MINIMAL}"));
    assert_eq!(found, vec![]);
}

#[test]
fn users_by_name_or_number() {
    let (v, _) = check("u", &format!("user = 33\n{MINIMAL}"));
    assert_eq!(v.jail.unwrap().identity, Identity::Jail(IdRef::Id(33)));
    let (v, _) = check("u", &format!("host-user = \"nobody\"\n{MINIMAL}"));
    assert_eq!(v.jail.unwrap().identity, Identity::Host(IdRef::Name("nobody".into())));
    let (_, found) = check("u", &format!("user = \"bad name\"\ngroups = [-1]\n{MINIMAL}"));
    assert_eq!(found, vec![(Code::InvalidUser, 1, 8), (Code::InvalidUser, 2, 11)]);
}

#[test]
fn nul_bytes_never_reach_a_system_call() {
    let (_, found) = check(
        "z",
        "path = \"/\"\ncommand = [\"/bin/sh\\u0000x\"]\n[limits]\npids = 8\n",
    );
    assert_eq!(found, vec![(Code::NulByte, 2, 12)]);
}

#[test]
fn durations() {
    let (v, _) = check(
        "d",
        &format!("stop-timeout = \"500ms\"\nstop-signal = \"SIGINT\"\n{MINIMAL}"),
    );
    assert_eq!(
        v.jail.unwrap().stop,
        Stop {
            timeout: Duration::from_millis(500),
            signal: StopSignal::Int
        }
    );
    let (_, found) = check("d", &format!("stop-timeout = \"soon\"\n{MINIMAL}"));
    assert_eq!(found, vec![(Code::InvalidDuration, 1, 16)]);
}

#[test]
fn a_duration_too_large_for_the_clock_is_a_diagnostic() {
    let (v, found) = check("d", &format!("stop-timeout = \"99999999999999999999h\"\n{MINIMAL}"));
    assert_eq!(found, vec![(Code::InvalidDuration, 1, 16)]);
    assert!(v.diags[0].message.contains("too large"), "{}", v.diags[0].message);
}

#[test]
fn raw_sockets_on_the_host_stack_are_said_to_take_no_effect() {
    let host = "path = \"/\"\ncommand = [\"x\"]\nallow = [\"ipc\", \"raw-sockets\"]\n[network]\nmode = \"host\"\nipv4 = [\"192.0.2.1\"]\n[limits]\npids = 8\n";
    let (v, found) = check("h", host);
    assert!(v.jail.is_some(), "a warning, not an error");
    assert_eq!(found, vec![(Code::NoEffect, 3, 17)]);
    let private = host.replace("mode = \"host\"", "mode = \"private\"");
    assert_eq!(check("p", &private).1, vec![]);
}

#[test]
fn lifecycle_keys_and_hooks_are_validated_at_their_places() {
    let (v, found) = check("web", MINIMAL);
    assert_eq!(found, vec![]);
    assert_eq!(v.jail.unwrap().lifecycle, Lifecycle::default());
    let text = format!(
        "start-window = \"250ms\"\nrestart = \"on-failure\"\nrestart-limit = 3\n{MINIMAL}\
         [hooks]\nprestart = [[\"/bin/mkdir\", \"-p\", \"/srv/x\"]]\nprestop = [[\"/bin/true\"]]\ntimeout = 5\n"
    );
    let (v, found) = check("web", &text);
    assert_eq!(found, vec![]);
    let life = v.jail.unwrap().lifecycle;
    assert_eq!(life.start_window, Duration::from_millis(250));
    assert_eq!(life.restart, crate::config::Restart::OnFailure);
    assert_eq!(life.restart_limit, 3);
    assert_eq!(life.hooks.prestart, vec![vec!["/bin/mkdir", "-p", "/srv/x"]]);
    assert_eq!(life.hooks.prestop, vec![vec!["/bin/true"]]);
    assert_eq!(life.hooks.timeout, Duration::from_secs(5));
    // Each mistake at its own place.
    let text = format!(
        "start-window = \"2m\"\nrestart = \"sometimes\"\nrestart-limit = -1\n{MINIMAL}\
         [hooks]\nposttart = []\npoststart = [[\"mkdir\"], []]\ntimeout = \"soon\"\n"
    );
    let (_, found) = check("web", &text);
    assert_eq!(
        found,
        vec![
            (Code::OutOfRange, 1, 16),
            (Code::UnknownValue, 2, 11),
            (Code::OutOfRange, 3, 17),
            (Code::UnknownKey, 9, 1),
            (Code::RelativePath, 10, 15),
            (Code::EmptyCommand, 10, 25),
            (Code::InvalidDuration, 11, 11),
        ]
    );
}
