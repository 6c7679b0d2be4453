//! The other names of the binary, as the old sysjail and FreeBSD had them
//! (linked to `sysjail`): `jail` (the classic command line), `jls` (list
//! jails, jls(8)'s options), `sjls` (`ls -v`), `sjtest` (`selftest`) and
//! `jexec` (`exec` with the command after the jail, no `--` needed).

use std::path::Path;
use std::process::ExitCode;

use clap::{Args as _, CommandFactory, FromArgMatches, Parser};

use super::{Global, exec, ls, selftest};

/// List running jails (jls(8) of FreeBSD, jls(1) of the old sysjail).
#[derive(Parser, Debug)]
#[command(name = "jls", max_term_width = 100)]
struct Jls {
    #[command(flatten)]
    global: Global,
    /// Under each jail, what sjls adds: name, state, pids, processes,
    /// memory, CPU, the allow list
    #[arg(short = 'v', conflicts_with = "params")]
    verbose: bool,
    /// One line a jail, as name=value parameters: jid, name, host.hostname,
    /// path, ip4.addr, ip6.addr
    #[arg(short = 'n')]
    params: bool,
    /// With -n, quote values that hold spaces or quotes, or are empty
    #[arg(short = 'q', requires = "params")]
    quote: bool,
    /// The jail's name in place of its JID
    #[arg(short = 'N')]
    by_name: bool,
    /// Only this jail, by name or JID
    #[arg(short = 'j', value_name = "JAIL")]
    jail: Option<String>,
}

/// List running jails with details (`sysjail ls -v`; sjls(1) of the old sysjail).
#[derive(Parser, Debug)]
#[command(name = "sjls", max_term_width = 100)]
struct Sjls {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    ls: ls::Args,
}

/// Launch a jail with a probe inside and check every promise of its policy
/// (`sysjail selftest`; sjtest(1) of the old sysjail).
#[derive(Parser, Debug)]
#[command(name = "sjtest", max_term_width = 100)]
struct Sjtest {
    #[command(flatten)]
    global: Global,
    #[command(flatten)]
    selftest: selftest::Args,
}

/// `jexec`: `sysjail exec` with FreeBSD's command line, `jexec JAIL CMD...`;
/// `-U` names a user of the jail, as there.
fn jexec() -> clap::Command {
    let command = clap::Command::new("jexec")
        .about("Run a command inside a running jail (jexec(8) of FreeBSD)")
        .max_term_width(100);
    exec::Args::augment_args(Global::augment_args(command))
        .mut_arg("command", |a| a.last(false).trailing_var_arg(true))
        .mut_arg("user", |a| a.visible_short_alias('U'))
}

/// The parsers of the other names, for `sysjail __flags`.
pub fn commands() -> Vec<clap::Command> {
    vec![
        super::jail::Args::command(),
        Jls::command(),
        Sjls::command(),
        Sjtest::command(),
        jexec(),
    ]
}

/// Runs the binary as the name it was called by, when that is one of the
/// other names; `None` for `sysjail` (or any other name).
pub fn main(argv: &[std::ffi::OsString]) -> Option<ExitCode> {
    let name = argv.first().and_then(|a| Path::new(a).file_name())?.to_str()?;
    Some(match name {
        "jail" => super::jail::main(argv.to_vec()),
        "jls" => run_jls(Jls::parse_from(argv)),
        "sjls" => {
            let mut sjls = Sjls::parse_from(argv);
            super::log::init(sjls.global.debug);
            sjls.ls.verbose = true;
            ls::run(sjls.ls, &sjls.global)
        }
        "sjtest" => {
            let sjtest = Sjtest::parse_from(argv);
            super::log::init(sjtest.global.debug);
            selftest::run(sjtest.selftest, &sjtest.global)
        }
        "jexec" => {
            let matches = jexec().get_matches_from(argv);
            let parsed =
                Global::from_arg_matches(&matches).and_then(|g| Ok((g, exec::Args::from_arg_matches(&matches)?)));
            match parsed {
                Ok((global, args)) => {
                    super::log::init(global.debug);
                    exec::run(args, &global)
                }
                Err(e) => e.exit(),
            }
        }
        _ => return None,
    })
}

fn run_jls(jls: Jls) -> ExitCode {
    super::log::init(jls.global.debug);
    let records = match ls::records(&jls.global) {
        Ok(r) => r,
        Err(e) => {
            sysjail::eprintln_lossy!("jls: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = ls::rows(&records);
    if let Some(which) = &jls.jail {
        rows.retain(|row| row.record.name == *which || row.record.id.to_string() == *which);
        if rows.is_empty() {
            sysjail::eprintln_lossy!("jls: jail \"{which}\" not found");
            return ExitCode::FAILURE;
        }
    }
    let text = if jls.params {
        rows.iter()
            .map(|row| parameters(row.record, jls.quote) + "\n")
            .collect()
    } else {
        let columns = if jls.by_name {
            ls::Columns::NameForJid
        } else {
            ls::Columns::Classic
        };
        ls::table(&rows, columns, jls.verbose)
    };
    super::out::print_status(&text)
}

/// A jail as jls(8) -n prints it: name=value, with FreeBSD's parameter names.
fn parameters(r: &sysjail::state::Record, quote: bool) -> String {
    let value = |v: &str| {
        if quote && (v.is_empty() || v.contains([' ', '\t', '"', '\''])) {
            format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            v.to_string()
        }
    };
    [
        ("jid", r.id.to_string()),
        ("name", r.name.clone()),
        ("host.hostname", r.hostname.clone()),
        ("path", r.path.clone()),
        ("ip4.addr", r.ipv4.join(",")),
        ("ip6.addr", r.ipv6.join(",")),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", value(v)))
    .collect::<Vec<_>>()
    .join(" ")
}
