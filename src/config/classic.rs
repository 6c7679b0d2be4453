//! The classic command lines, `jail [-bdhilv] [-4 addr]... [-6 addr]... [-u user
//! | -U user] [--allow-*] path hostname command...` of the old sysjail(1) and
//! FreeBSD jail(8)'s older `jail path hostname ip command...`, turned into the
//! same tree a definition file becomes.
//!
//! The source text of that tree is the command line itself, so a diagnostic
//! points at the argument at fault.

use super::node::{Entry, Node, Table, Value};
use super::{Loaded, decode_jail};
use crate::diag::{FileId, SourceMap, Span};

/// The classic options, as parsed by the command line layer.
#[derive(Clone, Debug, Default)]
pub struct Classic {
    /// `-4 addr`, in order.
    pub ipv4: Vec<String>,
    /// `-6 addr`, in order.
    pub ipv6: Vec<String>,
    /// `-u user`: host credentials.
    pub host_user: Option<String>,
    /// `-U user`: the jail's credentials.
    pub user: Option<String>,
    /// `-l`: clean environment.
    pub clean_env: bool,
    /// `--allow-*` entries, as the allow words.
    pub allow: Vec<String>,
    /// path, hostname, then the command (or, FreeBSD's form, path hostname ip command).
    pub positional: Vec<String>,
}

/// Writes `arg` so that a shell would read it back, for the source text.
fn quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,+@%".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

struct Line {
    text: String,
    file: Option<FileId>,
}

impl Line {
    /// Appends an argument; returns its span (set once the file is registered).
    fn push(&mut self, arg: &str) -> std::ops::Range<usize> {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let q = quote(arg);
        // The span covers the argument itself, inside its quotes.
        let start = self.text.len() + usize::from(q.starts_with('\''));
        self.text.push_str(&q);
        start..start + arg.len().min(q.len())
    }
}

/// Builds the jail definition of a classic command line. `argv0` is the name
/// it was invoked as, for the source text.
pub fn load(argv0: &str, c: &Classic, sources: &mut SourceMap) -> Loaded {
    let mut line = Line {
        text: String::new(),
        file: None,
    };
    for word in argv0.split(' ') {
        line.push(word);
    }
    let mut flags: Vec<(&str, String, std::ops::Range<usize>)> = Vec::new();
    for (flag, values) in [("-4", &c.ipv4), ("-6", &c.ipv6)] {
        for v in values {
            line.push(flag);
            flags.push((flag, v.clone(), line.push(v)));
        }
    }
    for (flag, value) in [("-u", &c.host_user), ("-U", &c.user)] {
        if let Some(v) = value {
            line.push(flag);
            flags.push((flag, v.clone(), line.push(v)));
        }
    }
    let clean = c.clean_env.then(|| line.push("-l"));
    let allows: Vec<(String, std::ops::Range<usize>)> = c
        .allow
        .iter()
        .map(|a| (a.clone(), line.push(&format!("--allow-{a}"))))
        .collect();
    let positional: Vec<(String, std::ops::Range<usize>)> =
        c.positional.iter().map(|p| (p.clone(), line.push(p))).collect();
    let file = sources.add("<command line>", line.text.as_str());
    line.file = Some(file);

    let span = |r: &std::ops::Range<usize>| Span::new(file, r.clone());
    let string = |v: &str, r: &std::ops::Range<usize>| Node {
        value: Value::String(v.to_string()),
        span: span(r),
    };
    let mut table = Table::default();
    let mut put = |key: &str, value: Node| {
        table.insert(Entry {
            key: key.to_string(),
            key_span: value.span,
            value,
        });
    };
    // FreeBSD's older form: an address third, the command after it.
    let freebsd = positional.len() >= 4 && positional[2].0.parse::<std::net::IpAddr>().is_ok();
    let (mut ipv4, mut ipv6): (Vec<Node>, Vec<Node>) = (Vec::new(), Vec::new());
    for (flag, v, r) in &flags {
        match *flag {
            "-4" => ipv4.push(string(v, r)),
            "-6" => ipv6.push(string(v, r)),
            "-u" => put("host-user", string(v, r)),
            _ => put("user", string(v, r)),
        }
    }
    let mut rest = positional.iter();
    if let Some((p, r)) = rest.next() {
        put("path", string(p, r));
    }
    if let Some((h, r)) = rest.next() {
        put("hostname", string(h, r));
        // Classic jails are named by their host name.
        put("name", string(h, r));
    }
    if freebsd && let Some((ip, r)) = rest.next() {
        if ip.contains(':') {
            ipv6.push(string(ip, r))
        } else {
            ipv4.push(string(ip, r))
        }
    }
    let command: Vec<Node> = rest.map(|(a, r)| string(a, r)).collect();
    let all = Span::new(file, 0..line.text.len());
    if !command.is_empty() {
        let cspan = Span {
            file,
            start: command[0].span.start,
            end: command.last().expect("non-empty").span.end,
        };
        put(
            "command",
            Node {
                value: Value::Array(command),
                span: cspan,
            },
        );
    }
    if let Some(r) = clean {
        put(
            "clean-env",
            Node {
                value: Value::Boolean(true),
                span: span(&r),
            },
        );
    }
    if !allows.is_empty() {
        let nodes = allows.iter().map(|(a, r)| string(a, r)).collect();
        put(
            "allow",
            Node {
                value: Value::Array(nodes),
                span: all,
            },
        );
    }
    // With an address the jail shares the host's stack, as the old tools did;
    // without one it has loopback only, and IPv4 and IPv6 are denied either way.
    let mut net = Table::default();
    let has_addresses = !(ipv4.is_empty() && ipv6.is_empty());
    let mode = if has_addresses { "host" } else { "private" };
    net.insert(Entry {
        key: "mode".into(),
        key_span: all,
        value: Node {
            value: Value::String(mode.into()),
            span: all,
        },
    });
    for (key, list) in [("ipv4", ipv4), ("ipv6", ipv6)] {
        if !list.is_empty() {
            net.insert(Entry {
                key: key.into(),
                key_span: all,
                value: Node {
                    value: Value::Array(list),
                    span: all,
                },
            });
        }
    }
    put(
        "network",
        Node {
            value: Value::Table(net),
            span: all,
        },
    );
    let mut diags = Vec::new();
    let raw = decode_jail(table, file, &mut diags);
    Loaded {
        raw: Some(raw),
        file,
        path: argv0.into(),
        chain: Vec::new(),
        diags,
        digest: 0,
        complete: true,
    }
}
