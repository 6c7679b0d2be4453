//! Diagnostics: one data type, a catalogue of stable codes, and three renderers.
//!
//! Every problem found in a jail definition becomes a [`Diagnostic`] that points at
//! the offending text. The same value is printed for people (miette's graphical
//! report), for tools (JSON lines) and for CI (GitHub Actions annotations).

mod excerpt;
mod render;
mod source;

pub use render::{Format, render, render_all};
pub use source::{FileId, Location, SourceFile, SourceMap, Span};

use std::fmt;

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Risky but legal: reported, and fatal only with `--deny-warnings`.
    Warning,
    /// The definition cannot be used.
    Error,
}

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $severity:ident; )*) => {
        /// The catalogue of rules. Each has a stable identifier, printed with every
        /// diagnostic, that scripts and documentation may rely on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The stable identifier, such as `sysjail::net::duplicate-address`.
            pub const fn id(self) -> &'static str {
                match self { $(Code::$variant => concat!("sysjail::", $id),)* }
            }

            /// The severity this rule reports at.
            pub const fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity,)* }
            }
        }
    };
}

catalogue! {
    /// The file is not valid TOML.
    TomlSyntax = "toml::syntax", Error;
    /// The file could not be read.
    FileUnreadable = "file::unreadable", Error;
    /// A directory, device, FIFO, socket or pseudo-file (proc, sysfs) named as a
    /// definition or by `extends`: refused without reading it.
    FileRefused = "file::not-regular", Error;
    /// A symbolic link, or a path through one, found by a directory walk or
    /// named by `extends`: refused without reading it.
    FileLink = "file::link", Error;
    /// A file that a launch reads (the definition, a base, a dependency)
    /// that a user other than root or the caller owns or can change, or
    /// whose directory such a user can change: refused before anything is
    /// created.
    FileUnsafeOwner = "file::unsafe-owner", Error;
    /// A definition larger than the limit (1 MiB).
    FileTooLarge = "file::too-large", Error;
    /// A key that the format does not have.
    UnknownKey = "key::unknown", Error;
    /// A value of the wrong type.
    WrongType = "key::type", Error;
    /// A required key is absent.
    MissingKey = "key::missing", Error;
    /// A key that does not apply in this context (e.g. `size` on a bind mount).
    NotApplicable = "key::not-applicable", Error;
    /// A value outside the closed set of allowed words.
    UnknownValue = "key::unknown-value", Error;
    /// A string holding a NUL byte, which no system call can carry.
    NulByte = "string::nul", Error;
    /// The jail's name is not usable.
    InvalidName = "name::invalid", Error;
    /// A path that is not absolute.
    RelativePath = "path::relative", Error;
    /// A path with `.`, `..`, empty components or a trailing slash.
    NonNormalPath = "path::not-normal", Error;
    /// A mount target that climbs out of the jail with `..`.
    MountEscapes = "mount::escapes", Error;
    /// Two mounts at one target.
    DuplicateMountTarget = "mount::duplicate-target", Error;
    /// A mount of the root, which `path` already provides.
    MountOverRoot = "mount::over-root", Error;
    /// A mount that hides an earlier one (its target is above the earlier target).
    ShadowedMount = "mount::shadowed", Warning;
    /// Two keys that exclude each other (such as `bridge` and `gateway`).
    KeyConflict = "key::conflict", Error;
    /// A hostname that is not an RFC 1123 host name.
    InvalidHostname = "hostname::invalid", Error;
    /// An address that does not parse.
    InvalidAddress = "net::invalid-address", Error;
    /// The same address twice.
    DuplicateAddress = "net::duplicate-address", Error;
    /// An IPv6 address in `ipv4`, or the reverse.
    WrongFamily = "net::wrong-family", Error;
    /// An address that cannot be a jail's own (wildcard, multicast, broadcast).
    UnusableAddress = "net::unusable-address", Error;
    /// Host-stack mode with no address at all: the jail has no network.
    NoAddresses = "net::no-addresses", Warning;
    /// An empty `command`, or an empty program name.
    EmptyCommand = "command::empty", Error;
    /// `user` and `host-user` both set.
    UserConflict = "user::conflict", Error;
    /// A user or group name that cannot exist.
    InvalidUser = "user::invalid", Error;
    /// A size such as "512M" that does not parse.
    InvalidSize = "limits::size", Error;
    /// A limit outside the range the kernel accepts or a jail can live with.
    OutOfRange = "limits::range", Error;
    /// A duration such as "10s" that does not parse.
    InvalidDuration = "duration::invalid", Error;
    /// An environment variable name that is not portable.
    InvalidEnvName = "env::invalid-name", Error;
    /// `extends` names a file that includes, directly or not, the file itself.
    ExtendsCycle = "extends::cycle", Error;
    /// `extends` names a file that does not exist or cannot be read.
    ExtendsMissing = "extends::missing", Error;
    /// A chain of `extends` longer than the limit (16 files).
        ExtendsTooDeep = "extends::too-deep", Error;
    /// `extends` names a file that is not a definition (no .toml extension).
    ExtendsNotToml = "extends::not-toml", Error;
    /// `extends` names a file outside the directory of the definition (an
    /// absolute path, or `..` that leaves it).
    ExtendsOutside = "extends::outside", Error;
    /// `depend` names the same jail twice.
    DependDuplicate = "depend::duplicate", Warning;
    /// `depend` names a jail that is neither among the definitions given nor
    /// found as NAME.toml.
    DependUnknown = "depend::unknown", Error;
    /// Jails that depend on each other in a circle: none can start first.
    DependCycle = "depend::cycle", Error;
    /// A template (`template = true`) given where a complete jail is needed.
    TemplateUsed = "template::not-a-jail", Error;
    /// The same `allow` entry twice.
    DuplicateAllow = "allow::duplicate", Warning;
    /// `raw-sockets` together with `all-domains`.
    RawWithAllDomains = "allow::raw-with-all-domains", Warning;
    /// An `allow` entry that the chosen network mode makes ineffective.
    NoEffect = "allow::no-effect", Warning;
    /// The host's root directory, writable.
    WritableHostRoot = "root::writable-host-root", Warning;
    /// No `[limits]` at all.
    NoLimits = "limits::none", Warning;
    /// `check --host`: the jail's `path` does not exist here.
    HostPathMissing = "host::path-missing", Error;
    /// `check --host`: a bind mount's source does not exist here.
    HostSourceMissing = "host::source-missing", Error;
    /// `check --host`: the user or a group is not in the database it is looked up in.
    HostUserMissing = "host::user-missing", Error;
    /// `check --host`: a host path goes through a link that a jail or an
    /// unprivileged user could have planted.
    HostPathLink = "host::untrusted-link", Error;
    /// `check --host`: a writable, id-mapped tree or directory is owned by
    /// host root, so files jail root writes there would be host root's.
    HostRootOwned = "host::root-owned", Error;
    /// `check --host`: a writable tree that every host user can reach, where
    /// a set-id file the jail left would serve them.
    HostTreeReachable = "host::reachable-tree", Error;
    /// More diagnostics than are shown for one definition: "and N more". Its
    /// severity is the worst of those left out.
    MoreDiagnostics = "diag::more", Warning;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A span with an optional short text, drawn under the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// What the label points at.
    pub span: Span,
    /// Shown next to the underline.
    pub text: Option<String>,
}

/// One problem, with everything a renderer needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Which rule.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// What would be valid.
    pub help: Option<String>,
    /// Where: the first label is the primary one.
    pub labels: Vec<Label>,
    /// Extra lines, such as the chain of `extends` that led here.
    pub notes: Vec<String>,
    /// For a [`Code::MoreDiagnostics`], the problems it stands for.
    pub more: Omitted,
}

impl Diagnostic {
    /// A diagnostic of `code` at `span`.
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            help: None,
            labels: vec![Label { span, text: None }],
            notes: Vec::new(),
            more: Omitted::default(),
        }
    }

    /// The problems this diagnostic stands for: itself, or those a
    /// [`Code::MoreDiagnostics`] left out.
    pub fn tally(&self) -> Omitted {
        match (self.code, self.severity) {
            (Code::MoreDiagnostics, _) => self.more,
            (_, Severity::Error) => Omitted { errors: 1, warnings: 0 },
            (_, Severity::Warning) => Omitted { errors: 0, warnings: 1 },
        }
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the primary label's text.
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.labels[0].text = Some(text.into());
        self
    }

    /// Adds a secondary label, such as the other half of a conflict.
    pub fn related(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            text: Some(text.into()),
        });
        self
    }

    /// Adds a note line.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The primary span.
    pub fn span(&self) -> Span {
        self.labels[0].span
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics by file and position, so that output follows the text.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| (d.span().file, d.span().start, d.span().end, d.code));
}

/// Diagnostics shown for one definition, at most: a hostile file can hold one
/// problem every few bytes, and no reader needs the six thousandth.
pub const MAX_SHOWN: usize = 100;

/// How many problems of each severity were left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Omitted {
    /// Errors left out.
    pub errors: usize,
    /// Warnings left out.
    pub warnings: usize,
}

impl Omitted {
    /// Left out problems of a severity.
    pub fn count(&self, severity: Severity) -> usize {
        match severity {
            Severity::Error => self.errors,
            Severity::Warning => self.warnings,
        }
    }

    /// The problems of `diags`, those their [`Code::MoreDiagnostics`] stand for included.
    pub fn of<'a>(diags: impl IntoIterator<Item = &'a Diagnostic>) -> Omitted {
        diags
            .into_iter()
            .map(Diagnostic::tally)
            .fold(Omitted::default(), |a, b| Omitted {
                errors: a.errors + b.errors,
                warnings: a.warnings + b.warnings,
            })
    }
}

/// Keeps the first [`MAX_SHOWN`] of one definition's sorted diagnostics and
/// puts in place of the others one closing [`Code::MoreDiagnostics`] ("and N
/// more"), at the first left out, so that every output format ends with it.
pub fn cap(diags: &mut Vec<Diagnostic>) -> Omitted {
    if diags.len() <= MAX_SHOWN {
        return Omitted::default();
    }
    let rest = diags.split_off(MAX_SHOWN);
    let omitted = Omitted::of(&rest);
    diags.push(more(rest[0].span(), omitted));
    omitted
}

/// The closing diagnostic at `span` for `omitted` problems not shown.
pub fn more(span: Span, omitted: Omitted) -> Diagnostic {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut more = Diagnostic::new(
        Code::MoreDiagnostics,
        span,
        format!(
            "and {} more, from here on: {}, {}",
            omitted.errors + omitted.warnings,
            plural(omitted.errors, "error"),
            plural(omitted.warnings, "warning")
        ),
    )
    .label("not shown from here on")
    .help(format!(
        "only the first {MAX_SHOWN} problems of a definition are shown; fix these and check again"
    ));
    if omitted.errors > 0 {
        more.severity = Severity::Error;
    }
    more.more = omitted;
    more
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_one_diagnostic_says_how_many_more() {
        let mut map = SourceMap::new();
        let id = map.add("a.toml", "x".repeat(300));
        let mut diags: Vec<_> = (0..250)
            .map(|i| Diagnostic::new(Code::UnknownKey, Span::new(id, i..i + 1), "unknown"))
            .collect();
        diags[200].severity = Severity::Warning;
        let omitted = cap(&mut diags);
        assert_eq!(
            omitted,
            Omitted {
                errors: 149,
                warnings: 1
            }
        );
        assert_eq!(diags.len(), MAX_SHOWN + 1);
        let more = diags.last().unwrap();
        assert_eq!(more.code, Code::MoreDiagnostics);
        assert_eq!(more.severity, Severity::Error);
        assert_eq!(more.message, "and 150 more, from here on: 149 errors, 1 warning");
        assert_eq!(more.span(), Span::new(id, 100..101));
        assert_eq!(
            Omitted::of(&diags),
            Omitted {
                errors: 249,
                warnings: 1
            }
        );
        // A closing diagnostic left out by a later cap is counted for what it stands for.
        let mut again: Vec<_> = diags[..60].iter().chain(&diags[..60]).cloned().collect();
        again.push(diags[100].clone());
        assert_eq!(
            cap(&mut again),
            Omitted {
                errors: 20 + 149,
                warnings: 1
            }
        );
        let mut few = diags[..3].to_vec();
        assert_eq!(cap(&mut few), Omitted::default());
        assert_eq!(few.len(), 3);
    }

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut ids: Vec<_> = Code::ALL.iter().map(|c| c.id()).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), before, "two rules share an identifier");
        assert!(
            ids.iter()
                .all(|id| id.starts_with("sysjail::") && id.matches("::").count() == 2)
        );
    }
}
