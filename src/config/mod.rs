//! Stage 1: TOML text to [`RawJail`], with `extends` resolved and spans kept.
//!
//! Reading a definition means reading the chain of files it extends, layering
//! them (the base at the bottom) with one generic rule, and decoding the result.
//! Nothing here judges values; that is [`crate::model`]'s job.

pub mod classic;
pub mod decode;
pub mod files;
pub mod node;
pub mod raw;

use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, FileId, SourceMap, Span};
use decode::{Decode, Decoder};
pub use files::{FileError, Files, HostFiles, LaunchFiles, MAX_DEFINITION, MemFiles};
use node::{Node, Table, Value};
pub use raw::{Allow, MountType, NetMode, RawHooks, RawJail, RawLimits, RawMount, RawNetwork, Restart, StopSignal};

/// The most files one chain of `extends` may hold: each file is bounded, and so
/// must be their number, or a hostile tree of small files costs without end.
pub const MAX_EXTENDS: usize = 16;

/// The largest user or group file read from a jail's tree.
pub const USER_DATABASE_LIMIT: u64 = 16 << 20;

/// A definition as read: the decoded tables (when the text could be decoded at
/// all), every problem found on the way, and the files involved.
#[derive(Debug)]
pub struct Loaded {
    /// The decoded definition; `None` only when a file could not be read or parsed.
    pub raw: Option<RawJail>,
    /// The file the user named.
    pub file: FileId,
    /// Its path, as given.
    pub path: PathBuf,
    /// The files of the `extends` chain, the named file first.
    pub chain: Vec<PathBuf>,
    /// Problems found while reading, parsing and decoding.
    pub diags: Vec<Diagnostic>,
    /// A digest of every file's text in the chain, recorded by `up`.
    pub digest: u64,
    /// False when a base file could not be read: keys it would have given are
    /// unknown, so their absence is not reported.
    pub complete: bool,
    /// Without `name`, the jail is named by its JID (the classic command
    /// line, as FreeBSD's jail(8)) rather than after the file.
    pub named_by_jid: bool,
}

/// Reads the definition at `path` and every file it extends.
///
/// The directory that holds `path` is the definition's root: every file of
/// its `extends` chain is read beneath it, by a path that holds no link
/// (`../` is fine while it stays inside; an absolute path or an escape is
/// refused unread). `path` itself, named by the user, may be a link.
pub fn load(path: &Path, sources: &mut SourceMap, files: &dyn Files) -> Loaded {
    load_top(path, false, sources, files)
}

/// [`load`] for a file that a directory walk found rather than the user
/// named: a link is refused unread, as any file reached by `extends` is.
pub fn load_listed(path: &Path, sources: &mut SourceMap, files: &dyn Files) -> Loaded {
    load_top(path, true, sources, files)
}

/// The root of the definition at `path` (the directory that holds it) and
/// its name there.
fn root_of(path: &Path) -> (PathBuf, PathBuf) {
    let root = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let rel = path.file_name().map_or_else(|| path.to_path_buf(), PathBuf::from);
    (root, rel)
}

fn load_top(path: &Path, listed: bool, sources: &mut SourceMap, files: &dyn Files) -> Loaded {
    let mut diags = Vec::new();
    let mut chain = Vec::new();
    let mut digest = Digest::new();
    let (root, rel) = root_of(path);
    let read = if listed {
        files.read_beneath(&root, &rel, MAX_DEFINITION)
    } else {
        files.read(path, MAX_DEFINITION)
    };
    let text = match read {
        Ok(text) => text,
        Err(e) => {
            // Nothing of the file is kept: a refused file is never quoted.
            let file = sources.add(path, "");
            diags.push(unreadable(&e, path, Span::file_start(file), Code::FileUnreadable));
            return Loaded {
                raw: None,
                file,
                path: path.to_path_buf(),
                chain,
                diags,
                digest: 0,
                complete: false,
                named_by_jid: false,
            };
        }
    };
    let file = sources.add(path, text.as_str());
    let layers = layered(
        Source {
            path: path.to_path_buf(),
            rel,
            file,
            text: &text,
        },
        &root,
        sources,
        files,
        &mut chain,
        &mut diags,
        &mut digest,
    );
    finish(layers, file, path, chain, diags, digest)
}

/// Reads a definition held in memory (tests, `jail`'s command line), named `name`;
/// `extends` is resolved relative to `name`'s directory.
pub fn load_text(name: &Path, text: &str, sources: &mut SourceMap, files: &dyn Files) -> Loaded {
    let mut diags = Vec::new();
    let mut chain = Vec::new();
    let mut digest = Digest::new();
    let file = sources.add(name, text);
    let (root, rel) = root_of(name);
    let layers = layered(
        Source {
            path: name.to_path_buf(),
            rel,
            file,
            text,
        },
        &root,
        sources,
        files,
        &mut chain,
        &mut diags,
        &mut digest,
    );
    finish(layers, file, name, chain, diags, digest)
}

fn finish(
    layers: Layers,
    file: FileId,
    path: &Path,
    chain: Vec<PathBuf>,
    mut diags: Vec<Diagnostic>,
    digest: Digest,
) -> Loaded {
    let raw = layers.parsed.then(|| decode_jail(layers.table, file, &mut diags));
    Loaded {
        raw,
        file,
        path: path.to_path_buf(),
        chain,
        diags,
        digest: digest.finish(),
        complete: layers.complete,
        named_by_jid: false,
    }
}

struct Source<'t> {
    /// The path as shown: the named file's, or its directory joined with `extends`.
    path: PathBuf,
    /// The path beneath the definition's root, by which it is read.
    rel: PathBuf,
    file: FileId,
    text: &'t str,
}

/// The layered table of a chain of files.
struct Layers {
    table: Table,
    /// Every file parsed: the table can be decoded.
    parsed: bool,
    /// Every base was found and read.
    complete: bool,
}

impl Layers {
    /// A file that parsed, whose base was not read.
    fn incomplete(table: Table) -> Layers {
        Layers {
            table,
            parsed: true,
            complete: false,
        }
    }
}

/// Parses `src`, then the chain of bases below it, and layers them.
fn layered(
    src: Source<'_>,
    root: &Path,
    sources: &mut SourceMap,
    files: &dyn Files,
    chain: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
    digest: &mut Digest,
) -> Layers {
    digest.write(src.text.as_bytes());
    chain.push(src.path.clone());
    let (mut table, parse_diags) = node::parse(src.file, src.text);
    let parsed = parse_diags.is_empty();
    diags.extend(parse_diags);
    let Some(extends) = table.get("extends").cloned().filter(|_| parsed) else {
        return Layers {
            table,
            parsed,
            complete: parsed,
        };
    };
    table.remove("extends");
    let Some((base_path, base_rel)) = extends_target(&src, &extends.value, diags) else {
        return Layers::incomplete(table);
    };
    if let Some(diag) = chain_problem(&src.path, &base_path, extends.value.span, files, chain) {
        diags.push(diag);
        return Layers::incomplete(table);
    }
    let Some(text) = read_base(root, &base_path, &base_rel, extends.value.span, files, chain, diags) else {
        return Layers::incomplete(table);
    };
    let base_file = sources.add(&base_path, text.as_str());
    let base = layered(
        Source {
            path: base_path,
            rel: base_rel,
            file: base_file,
            text: &text,
        },
        root,
        sources,
        files,
        chain,
        diags,
        digest,
    );
    let mut below = base.table;
    // A base's own `template` describes the base, not what extends it.
    below.remove("template");
    below.layer(table);
    below.insert(extends);
    // A base that does not parse still leaves this file's own keys to check.
    Layers {
        table: below,
        parsed: true,
        complete: base.parsed && base.complete,
    }
}

/// The base file that `extends` names, relative to the file that contains it:
/// a string, a definition (only .toml files are bases), and beneath the
/// definition's root. Gives the path as shown and the path beneath the root.
fn extends_target(src: &Source<'_>, extends: &Node, diags: &mut Vec<Diagnostic>) -> Option<(PathBuf, PathBuf)> {
    let Value::String(base) = &extends.value else {
        Decoder::new(diags).nested("extends", |d| d.wrong_type(extends, "a string (a file path)"));
        return None;
    };
    let base_path = src.path.parent().unwrap_or(Path::new("")).join(base);
    // Only definitions are bases: a file of another kind (/etc/shadow, a key,
    // an environment file) would have its lines quoted in diagnostics, in the
    // logs of a CI that lints untrusted definitions.
    if base_path.extension().is_none_or(|e| e != "toml") {
        diags.push(
            Diagnostic::new(
                Code::ExtendsNotToml,
                extends.span,
                format!("`extends` names {}, which is not a .toml file", base_path.display()),
            )
            .help("a base is another jail definition, a file ending in .toml"),
        );
        return None;
    }
    let base_rel = src.rel.parent().unwrap_or(Path::new("")).join(base);
    // A definition under review may name any file of the host; only files
    // beside it or below are its bases.
    if files::leaves(&base_rel) {
        diags.push(
            Diagnostic::new(
                Code::ExtendsOutside,
                extends.span,
                format!(
                    "`extends` names {}, which is outside the directory of the definition",
                    base_path.display()
                ),
            )
            .help(
                "a base is a relative path to a file in the directory that holds the definition \
                 named, or below it",
            ),
        );
        return None;
    }
    Some((base_path, base_rel))
}

/// "a extends b", for each link of the chain read so far.
fn links(chain: &[PathBuf]) -> Vec<String> {
    chain
        .windows(2)
        .map(|p| format!("{} extends {}", p[0].display(), p[1].display()))
        .collect()
}

/// A cycle, or a chain grown too long, if reading `base_path` would make one.
fn chain_problem(
    path: &Path,
    base_path: &Path,
    span: Span,
    files: &dyn Files,
    chain: &[PathBuf],
) -> Option<Diagnostic> {
    let canonical_chain: Vec<PathBuf> = chain.iter().filter_map(|p| files.canonical(p).ok()).collect();
    if let Ok(canonical) = files.canonical(base_path)
        && canonical_chain.contains(&canonical)
    {
        let mut diag = Diagnostic::new(
            Code::ExtendsCycle,
            span,
            format!("`extends` forms a cycle: {} is already being read", base_path.display()),
        )
        .label("this file extends one of its own descendants")
        .help("remove one `extends` of the chain, or move the shared keys into a template");
        diag.notes = links(chain);
        diag.notes
            .push(format!("{} extends {}", path.display(), base_path.display()));
        return Some(diag);
    }
    if chain.len() >= MAX_EXTENDS {
        let mut diag = Diagnostic::new(
            Code::ExtendsTooDeep,
            span,
            format!("`extends` chain is longer than {MAX_EXTENDS} files"),
        )
        .help("merge some of the bases: a chain this long is no longer reviewable");
        diag.notes = links(chain);
        return Some(diag);
    }
    None
}

/// The text of a base file, or the diagnostic of why it was not read.
fn read_base(
    root: &Path,
    base_path: &Path,
    base_rel: &Path,
    span: Span,
    files: &dyn Files,
    chain: &[PathBuf],
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match files.read_beneath(root, base_rel, MAX_DEFINITION) {
        Ok(text) => Some(text),
        Err(e) => {
            let mut diag = unreadable(&e, base_path, span, Code::ExtendsMissing);
            if matches!(e, FileError::Io(_)) {
                diag.help = Some("`extends` is relative to the file that contains it".into());
            }
            diag.message = format!("cannot read base file {}: {e}", base_path.display());
            diag.notes = links(chain);
            diags.push(diag);
            None
        }
    }
}

/// The diagnostic of a file that was not read, at `span`: the file's start, or
/// the `extends` value that named it. `missing` is the code of a file that could
/// not be opened; a file that was refused has a code of its own.
fn unreadable(e: &FileError, path: &Path, span: Span, missing: Code) -> Diagnostic {
    let (code, help) = match e {
        FileError::Io(_) => (missing, "check the path and its permissions".to_string()),
        FileError::NotUtf8 => (missing, "a definition is UTF-8 text".to_string()),
        FileError::NotRegular(_) | FileError::PseudoFile(_) => (
            Code::FileRefused,
            format!(
                "a definition is a regular file of at most {}; directories, devices, FIFOs, sockets \
                 and files of /proc or /sys are refused unread",
                files::human_size(MAX_DEFINITION)
            ),
        ),
        FileError::Link => (
            Code::FileLink,
            "a definition found in a directory or named by `extends` is a regular file reached \
             without a symbolic link; name a link's target on the command line instead"
                .to_string(),
        ),
        FileError::Outside => (
            Code::ExtendsOutside,
            "a base is a file in the directory that holds the definition named, or below it".to_string(),
        ),
        FileError::UnsafeOwner(_) => (
            Code::FileUnsafeOwner,
            "a definition that is launched, its bases and the directories above them are owned by root \
             or the caller and writable by no one else (a sticky directory excepted): what it says is \
             done as the caller; `chown` or `chmod go-w` it"
                .to_string(),
        ),
        FileError::TooLarge { .. } => (
            Code::FileTooLarge,
            format!(
                "a definition is at most {}; move shared keys into a base file named by `extends`",
                files::human_size(MAX_DEFINITION)
            ),
        ),
    };
    Diagnostic::new(code, span, format!("cannot read {}: {e}", path.display())).help(help)
}

fn decode_jail(table: Table, file: FileId, diags: &mut Vec<Diagnostic>) -> RawJail {
    let node = Node {
        value: Value::Table(table),
        span: Span::file_start(file),
    };
    let mut d = Decoder::new(diags);
    RawJail::decode(&node, &mut d).unwrap_or_default()
}

/// FNV-1a, 64 bits: a stable digest of definition texts (not a security measure).
struct Digest(u64);

impl Digest {
    fn new() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // Separate files so that moving text between them changes the digest.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_mem(files: &MemFiles, path: &str) -> (Loaded, SourceMap) {
        let mut sources = SourceMap::new();
        let loaded = load(Path::new(path), &mut sources, files);
        (loaded, sources)
    }

    #[test]
    fn extends_layers_the_base_under_the_file() {
        let files = MemFiles::default()
            .with(
                "j/base.toml",
                "template = true\nhostname = \"base\"\nclean-env = true\n[limits]\npids = 64\nmemory = \"1G\"\n",
            )
            .with(
                "j/web.toml",
                "extends = \"base.toml\"\npath = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\nmemory = \"2G\"\n",
            );
        let (loaded, _) = load_mem(&files, "j/web.toml");
        assert!(loaded.diags.is_empty(), "{:?}", loaded.diags);
        let raw = loaded.raw.unwrap();
        assert_eq!(raw.hostname.unwrap().value, "base");
        assert!(raw.template.is_none(), "template is not inherited");
        let limits = raw.limits.unwrap().value;
        assert_eq!(limits.pids.unwrap().value, 64);
        assert_eq!(limits.memory.unwrap().value, decode::IntOrText::Text("2G".into()));
        assert_eq!(
            loaded.chain,
            vec![PathBuf::from("j/web.toml"), PathBuf::from("j/base.toml")]
        );
    }

    #[test]
    fn values_keep_the_file_they_came_from() {
        let files = MemFiles::default()
            .with("base.toml", "hostname = \"base\"\n")
            .with("web.toml", "extends = \"base.toml\"\n");
        let mut sources = SourceMap::new();
        let loaded = load(Path::new("web.toml"), &mut sources, &files);
        let hostname = loaded.raw.unwrap().hostname.unwrap();
        assert_eq!(sources.file(hostname.span.file).path(), Path::new("base.toml"));
        assert_eq!(sources.snippet(hostname.span), "\"base\"");
    }

    #[test]
    fn a_base_outside_the_definitions_directory_is_refused_unread() {
        let files = MemFiles::default()
            .with("j/base.toml", "name = \"base\"\n")
            .with("secret.toml", "token = \"x\"\n");
        for base in ["../secret.toml", "/secret.toml", "sub/../../secret.toml"] {
            let files = MemFiles(files.0.clone()).with("j/a.toml", &format!("extends = \"{base}\"\n"));
            let (loaded, _) = load_mem(&files, "j/a.toml");
            assert_eq!(loaded.chain, [PathBuf::from("j/a.toml")], "{base}: nothing else read");
            assert!(
                loaded.diags.iter().any(|d| d.code == Code::ExtendsOutside),
                "{base}: {:?}",
                loaded.diags
            );
        }
        // `..` that stays inside is fine.
        let files = MemFiles(files.0.clone()).with("j/a.toml", "extends = \"sub/../base.toml\"\n");
        let (loaded, _) = load_mem(&files, "j/a.toml");
        assert!(loaded.diags.is_empty(), "{:?}", loaded.diags);
        assert_eq!(loaded.chain.len(), 2);
    }

    #[test]
    fn a_cycle_is_an_error_that_shows_the_chain() {
        let files = MemFiles::default()
            .with("a.toml", "extends = \"b.toml\"\n")
            .with("b.toml", "extends = \"a.toml\"\n");
        let (loaded, sources) = load_mem(&files, "a.toml");
        let cycle: Vec<_> = loaded.diags.iter().filter(|d| d.code == Code::ExtendsCycle).collect();
        assert_eq!(cycle.len(), 1);
        assert_eq!(sources.file(cycle[0].span().file).path(), Path::new("b.toml"));
        assert_eq!(cycle[0].notes, vec!["a.toml extends b.toml", "b.toml extends a.toml"]);
    }

    #[test]
    fn a_missing_base_points_at_extends() {
        let files = MemFiles::default().with("a.toml", "name = \"a\"\nextends = \"nope.toml\"\n");
        let (loaded, sources) = load_mem(&files, "a.toml");
        assert_eq!(loaded.diags.len(), 1);
        assert_eq!(loaded.diags[0].code, Code::ExtendsMissing);
        assert_eq!(sources.snippet(loaded.diags[0].span()), "\"nope.toml\"");
    }

    #[test]
    fn a_base_too_large_is_refused_at_the_extends_value() {
        let big = "#".repeat(MAX_DEFINITION as usize + 1);
        let files = MemFiles::default()
            .with("j/a.toml", "name = \"a\"\nextends = \"big.toml\"\n")
            .with("j/big.toml", &big);
        let (loaded, sources) = load_mem(&files, "j/a.toml");
        assert_eq!(loaded.diags.len(), 1, "{:?}", loaded.diags);
        let diag = &loaded.diags[0];
        assert_eq!(diag.code, Code::FileTooLarge);
        assert_eq!(
            diag.message,
            "cannot read base file j/big.toml: it is larger than 1 MiB"
        );
        let loc = sources.location(diag.span());
        assert_eq!(
            (loc.path.as_path(), loc.line, loc.column),
            (Path::new("j/a.toml"), 2, 11)
        );
        assert!(!loaded.complete);
    }

    #[test]
    fn a_chain_of_extends_is_bounded() {
        let mut files = MemFiles::default();
        for i in 0..40 {
            files = files.with(&format!("f{i}.toml"), &format!("extends = \"f{}.toml\"\n", i + 1));
        }
        let (loaded, _) = load_mem(&files, "f0.toml");
        assert_eq!(loaded.diags.len(), 1, "{:?}", loaded.diags);
        assert_eq!(loaded.diags[0].code, Code::ExtendsTooDeep);
        assert_eq!(loaded.chain.len(), MAX_EXTENDS);
    }

    #[test]
    fn a_file_too_large_is_refused_unread() {
        let files = MemFiles::default().with("a.toml", &"x".repeat(MAX_DEFINITION as usize + 1));
        let (loaded, sources) = load_mem(&files, "a.toml");
        assert_eq!(loaded.diags.len(), 1, "{:?}", loaded.diags);
        assert_eq!(loaded.diags[0].code, Code::FileTooLarge);
        assert_eq!(sources.file(loaded.file).text(), "", "nothing of the file is kept");
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_all_reported() {
        let files = MemFiles::default().with(
            "a.toml",
            "hostnme = \"x\"\ncommand = \"/bin/sh\"\n[network]\nipv4 = [1]\nmod = \"host\"\n[[mount]]\ntarget = 3\n",
        );
        let (loaded, sources) = load_mem(&files, "a.toml");
        let found: Vec<_> = loaded
            .diags
            .iter()
            .map(|d| (d.code, sources.snippet(d.span()).to_string()))
            .collect();
        assert!(found.contains(&(Code::UnknownKey, "hostnme".into())), "{found:?}");
        assert!(found.contains(&(Code::WrongType, "\"/bin/sh\"".into())), "{found:?}");
        assert!(found.contains(&(Code::WrongType, "1".into())), "{found:?}");
        assert!(found.contains(&(Code::UnknownKey, "mod".into())), "{found:?}");
        assert!(found.contains(&(Code::WrongType, "3".into())), "{found:?}");
        let mode = loaded
            .diags
            .iter()
            .find(|d| sources.snippet(d.span()) == "mod")
            .unwrap();
        assert_eq!(mode.help.as_deref(), Some("did you mean `mode`?"));
        assert_eq!(mode.message, "unknown key `mod` in `network`");
    }
}
