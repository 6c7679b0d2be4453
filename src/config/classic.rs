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

/// An argument's place in the source text.
type Range = std::ops::Range<usize>;

/// The classic command line written out as source text: each argument with
/// the range it occupies there.
struct Written {
    file: FileId,
    len: usize,
    /// `-4`, `-6`, `-u` and `-U`, with their values.
    flags: Vec<(&'static str, String, Range)>,
    clean: Option<Range>,
    allows: Vec<(String, Range)>,
    positional: Vec<(String, Range)>,
}

/// Builds the jail definition of a classic command line. `argv0` is the name
/// it was invoked as, for the source text.
pub fn load(argv0: &str, c: &Classic, sources: &mut SourceMap) -> Loaded {
    let written = write(argv0, c, sources);
    let table = tree(&written);
    let mut diags = Vec::new();
    let raw = decode_jail(table, written.file, &mut diags);
    Loaded {
        raw: Some(raw),
        file: written.file,
        path: argv0.into(),
        chain: Vec::new(),
        diags,
        digest: 0,
        complete: true,
        named_by_jid: true,
    }
}

/// Writes the command line as the source text diagnostics quote, options first.
fn write(argv0: &str, c: &Classic, sources: &mut SourceMap) -> Written {
    let mut line = Line {
        text: String::new(),
        file: None,
    };
    for word in argv0.split(' ') {
        line.push(word);
    }
    let mut flags = Vec::new();
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
    let allows = c
        .allow
        .iter()
        .map(|a| (a.clone(), line.push(&format!("--allow-{a}"))))
        .collect();
    let positional = c.positional.iter().map(|p| (p.clone(), line.push(p))).collect();
    let file = sources.add("<command line>", line.text.as_str());
    line.file = Some(file);
    Written {
        file,
        len: line.text.len(),
        flags,
        clean,
        allows,
        positional,
    }
}

/// The table a definition file with the same meaning would hold.
fn tree(w: &Written) -> Table {
    let mut t = Tree {
        file: w.file,
        table: Table::default(),
    };
    let all = Span::new(w.file, 0..w.len);
    let (mut ipv4, mut ipv6) = (Vec::new(), Vec::new());
    for (flag, v, r) in &w.flags {
        match *flag {
            "-4" => ipv4.push(t.string(v, r)),
            "-6" => ipv6.push(t.string(v, r)),
            "-u" => t.put("host-user", t.string(v, r)),
            _ => t.put("user", t.string(v, r)),
        }
    }
    let mut rest = w.positional.iter();
    if let Some((p, r)) = rest.next() {
        t.put("path", t.string(p, r));
    }
    if let Some((h, r)) = rest.next() {
        // No name: the JID is the name, so two jails of one host name can run.
        t.put("hostname", t.string(h, r));
    }
    // FreeBSD's older form: an address third, the command after it.
    let freebsd = w.positional.len() >= 4 && w.positional[2].0.parse::<std::net::IpAddr>().is_ok();
    if freebsd && let Some((ip, r)) = rest.next() {
        if ip.contains(':') {
            ipv6.push(t.string(ip, r))
        } else {
            ipv4.push(t.string(ip, r))
        }
    }
    t.command(rest);
    t.options(w.clean.as_ref(), &w.allows, all);
    t.put("network", network(ipv4, ipv6, all));
    t.table
}

/// The table being built, in the command line's file.
struct Tree {
    file: FileId,
    table: Table,
}

impl Tree {
    fn span(&self, r: &Range) -> Span {
        Span::new(self.file, r.clone())
    }

    fn string(&self, v: &str, r: &Range) -> Node {
        Node {
            value: Value::String(v.to_string()),
            span: self.span(r),
        }
    }

    fn put(&mut self, key: &str, value: Node) {
        self.table.insert(Entry {
            key: key.to_string(),
            key_span: value.span,
            value,
        });
    }

    /// The words after the path, host name (and address): the command.
    fn command<'a>(&mut self, rest: impl Iterator<Item = &'a (String, Range)>) {
        let command: Vec<Node> = rest.map(|(a, r)| self.string(a, r)).collect();
        if command.is_empty() {
            return;
        }
        let span = Span {
            file: self.file,
            start: command[0].span.start,
            end: command.last().expect("non-empty").span.end,
        };
        self.put(
            "command",
            Node {
                value: Value::Array(command),
                span,
            },
        );
    }

    /// `-l` and the `--allow-*` options.
    fn options(&mut self, clean: Option<&Range>, allows: &[(String, Range)], all: Span) {
        if let Some(r) = clean {
            let span = self.span(r);
            self.put(
                "clean-env",
                Node {
                    value: Value::Boolean(true),
                    span,
                },
            );
        }
        if !allows.is_empty() {
            let nodes = allows.iter().map(|(a, r)| self.string(a, r)).collect();
            self.put(
                "allow",
                Node {
                    value: Value::Array(nodes),
                    span: all,
                },
            );
        }
    }
}

/// The `network` table. With an address the jail shares the host's stack, as
/// the old tools did; without one it has a stack of its own and no IPv4 or
/// IPv6 socket at all (the old manual: a family without an address is denied).
fn network(ipv4: Vec<Node>, ipv6: Vec<Node>, all: Span) -> Node {
    let mut net = Table::default();
    let has_addresses = !(ipv4.is_empty() && ipv6.is_empty());
    let mode = if has_addresses { "host" } else { "disabled" };
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
    Node {
        value: Value::Table(net),
        span: all,
    }
}
