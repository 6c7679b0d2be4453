//! The classic command line: `sysjail jail`, or the binary called `jail`.
//!
//! `jail [-bdhilv] [-4 addr]... [-6 addr]... [-u user | -U user] [-j dbdir]
//! [--allow-*] path hostname command...` as the old sysjail(1) manual gives it,
//! and FreeBSD jail(8)'s older `jail path hostname ip command...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use sysjail::config::classic::Classic;
use sysjail::launch::{self, Launch};
use sysjail::load;

/// Imprison a process and its descendants (the classic jail(1) command line).
#[derive(Parser, Debug)]
#[command(name = "jail", version, disable_version_flag = true, max_term_width = 100)]
pub struct Args {
    /// Run in the background; standard input and output go to /dev/null
    #[arg(short = 'b')]
    background: bool,
    /// Warnings (-d) and debug notes (-dd)
    #[arg(short = 'd', action = ArgAction::Count)]
    debug: u8,
    /// Print the jail's identifier
    #[arg(short = 'i')]
    print_id: bool,
    /// Clean environment: HOME, SHELL and USER of the login, TERM of the caller
    #[arg(short = 'l')]
    clean_env: bool,
    /// Print the version
    #[arg(short = 'v', action = ArgAction::Version)]
    version: Option<bool>,
    /// An IPv4 address: the first is where other addresses are rewritten to,
    /// later ones pass unchanged. None: IPv4 is denied
    #[arg(short = '4', value_name = "ADDR")]
    ipv4: Vec<String>,
    /// An IPv6 address, as -4
    #[arg(short = '6', value_name = "ADDR")]
    ipv6: Vec<String>,
    /// Credentials of a host user
    #[arg(short = 'u', value_name = "USER", conflicts_with = "jail_user")]
    host_user: Option<String>,
    /// Credentials of a user of the jail's own /etc/passwd
    #[arg(short = 'U', value_name = "USER")]
    jail_user: Option<String>,
    /// The jail database (state directory)
    #[arg(short = 'j', value_name = "DIR")]
    db: Option<PathBuf>,
    /// Allow SOCK_RAW sockets
    #[arg(long)]
    allow_raw_sockets: bool,
    /// Allow every socket domain
    #[arg(long)]
    allow_all_domains: bool,
    /// Allow System V IPC
    #[arg(long)]
    allow_ipc: bool,
    /// Allow inode flags (chflags)
    #[arg(long)]
    allow_chflags: bool,
    /// Allow raising hard resource limits
    #[arg(long)]
    allow_rlimit: bool,
    /// path hostname command... (or FreeBSD's path hostname ip command...).
    /// Options end at the path: an unknown one is a usage error, never a path
    #[arg(required = true, num_args = 3.., trailing_var_arg = true, value_name = "ARGS")]
    positional: Vec<String>,
}

/// Parses the classic arguments (argv\[0\] included) and runs the jail.
pub fn main(argv: Vec<std::ffi::OsString>) -> ExitCode {
    let args = Args::parse_from(argv);
    run(args, "jail", None)
}

/// Runs the classic command line; `state_dir` is `sysjail --state-dir`,
/// which `-j` overrides.
pub fn run(args: Args, argv0: &str, state_dir: Option<PathBuf>) -> ExitCode {
    super::log::init(args.debug);
    let allow = [
        (args.allow_all_domains, "all-domains"),
        (args.allow_raw_sockets, "raw-sockets"),
        (args.allow_ipc, "ipc"),
        (args.allow_chflags, "chflags"),
        (args.allow_rlimit, "rlimit"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| w.to_string())
    .collect();
    let classic = Classic {
        ipv4: args.ipv4,
        ipv6: args.ipv6,
        host_user: args.host_user,
        user: args.jail_user,
        clean_env: args.clean_env,
        allow,
        positional: args.positional,
    };
    let def = match load::load_classic(argv0, &classic) {
        Ok(def) => def,
        Err(rejected) => {
            super::print_rejected(&rejected);
            return ExitCode::from(super::FAILED);
        }
    };
    let global = super::Global {
        debug: args.debug,
        state_dir: args.db.or(state_dir),
        config_dir: None,
    };
    let registry = match super::up::prepare(&def, &global, "jail") {
        Ok(r) => r,
        Err(code) => return code,
    };
    let launch = Launch {
        jail: def.jail,
        digest: def.digest,
        command: None,
        background: args.background,
        print_id: args.print_id,
        registry,
        log_denials: None,
        no_idmap: false,
        config_dir: None,
        stdio: None,
    };
    super::up::finish(launch::up(launch), "jail")
}
