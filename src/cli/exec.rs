//! `sysjail exec`: run a command inside a running jail (jexec).

use std::process::ExitCode;

use sysjail::model::IdRef;
use sysjail::supervisor::client;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run as this user of the jail's /etc/passwd (name or uid)
    #[arg(short = 'u', long, value_name = "USER")]
    user: Option<String>,
    /// Working directory inside the jail
    #[arg(short = 'w', long, value_name = "DIR")]
    workdir: Option<String>,
    /// Give the command a terminal even when stdin is not one
    #[arg(short = 't', long, conflicts_with = "no_tty")]
    tty: bool,
    /// Never give the command a terminal
    #[arg(short = 'T', long)]
    no_tty: bool,
    /// The jail's name or JID
    #[arg(value_name = "JAIL")]
    jail: String,
    /// The command and its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(args: Args, global: &super::Global) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        sysjail::eprintln_lossy!("sysjail exec: {e}");
        ExitCode::from(super::FAILED)
    };
    let user = match args.user.as_deref().map(|u| match u.parse::<i64>() {
        Ok(n) => IdRef::parse_id(n),
        Err(_) => IdRef::parse_name(u),
    }) {
        Some(Err(e)) => return fail(&format!("--user: {e}")),
        Some(Ok(u)) => Some(u),
        None => None,
    };
    let stdin_tty = nix::unistd::isatty(std::io::stdin()).unwrap_or(false);
    let exec = client::Exec {
        argv: args.command,
        user,
        tty: args.tty || (stdin_tty && !args.no_tty),
        workdir: args.workdir,
    };
    match sysjail::jails::join(&global.state_dir(), &args.jail, exec) {
        Ok(Ok(code)) => ExitCode::from(code.clamp(0, 255) as u8),
        Ok(Err(e)) => {
            sysjail::eprintln_lossy!("sysjail exec: {e}");
            ExitCode::from(e.status.clamp(0, 255) as u8)
        }
        Err(e) => fail(&e),
    }
}

/// Options of `sysjail` and `exec` that take a value as the next word.
const VALUED: [&str; 5] = ["--state-dir", "-u", "--user", "-w", "--workdir"];

/// A hint for a command line of `exec` that clap refused, when the command
/// was likely given without `--` (`sysjail exec web id -u`): the same words,
/// with `--` after the jail.
pub fn hint(argv: &[String]) -> Option<String> {
    if argv.iter().any(|a| a == "--") {
        return None;
    }
    // The first word that is neither an option nor an option's value, from
    // `from` on.
    let positional = |from: usize| {
        let mut i = from;
        while i < argv.len() {
            if VALUED.contains(&argv[i].as_str()) {
                i += 2;
            } else if argv[i].starts_with('-') {
                i += 1;
            } else {
                return Some(i);
            }
        }
        None
    };
    let exec = positional(1).filter(|&i| argv[i] == "exec")?;
    let jail = positional(exec + 1);
    let words: Vec<String> = std::iter::once("sysjail".to_string())
        .chain(argv[1..].iter().map(|w| quote(w)))
        .collect();
    let line = match jail {
        Some(j) if j + 1 < argv.len() => {
            format!("{} -- {}", words[..=j].join(" "), words[j + 1..].join(" "))
        }
        Some(j) => format!("{} -- CMD...", words[..=j].join(" ")),
        None => format!("{} JAIL -- CMD...", words.join(" ")),
    };
    Some(format!("hint: put the command after --: {line}"))
}

/// `word` as a POSIX shell reads it back.
fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::hint;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_hint_puts_the_command_after_the_jail() {
        let h = |l: &str| hint(&argv(l));
        assert_eq!(
            h("/usr/bin/sysjail exec web id -u").as_deref(),
            Some("hint: put the command after --: sysjail exec web -- id -u")
        );
        assert_eq!(
            h("sysjail -d --state-dir /s exec -u www web ls -l").as_deref(),
            Some("hint: put the command after --: sysjail -d --state-dir /s exec -u www web -- ls -l")
        );
        assert_eq!(
            h("sysjail exec web").as_deref(),
            Some("hint: put the command after --: sysjail exec web -- CMD...")
        );
        assert_eq!(h("sysjail exec web -- id -u"), None);
        assert_eq!(h("sysjail up web.toml id"), None);
    }
}
