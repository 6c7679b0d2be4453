//! Stage 1: TOML text to [`RawJail`], with `extends` resolved and spans kept.
//!
//! Reading a definition means reading the chain of files it extends, layering
//! them (the base at the bottom) with one generic rule, and decoding the result.
//! Nothing here judges values; that is [`crate::model`]'s job.

pub mod classic;
pub mod decode;
pub mod node;
pub mod raw;

use std::io;
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, FileId, SourceMap, Span};
use decode::{Decode, Decoder};
use node::{Node, Table, Value};
pub use raw::{Allow, MountType, NetMode, RawJail, RawLimits, RawMount, RawNetwork, StopSignal};

/// How files are read: the real file system, or a map in tests.
pub trait Files {
    /// Reads a whole file as UTF-8.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// The canonical form of a path, used to detect `extends` cycles.
    fn canonical(&self, path: &Path) -> io::Result<PathBuf>;
    /// Reads a file that a jail or an unprivileged user may have written (a
    /// jail's /etc/passwd): under the host-path rule, a small regular file.
    fn read_untrusted(&self, path: &Path) -> io::Result<String> {
        self.read(path)
    }
}

/// The host's file system.
pub struct HostFiles;

impl Files for HostFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn read_untrusted(&self, path: &Path) -> io::Result<String> {
        crate::sys::hostpath::read_small(path, USER_DATABASE_LIMIT).map_err(|e| e.into_io())
    }
}

/// The largest user or group file read from a jail's tree.
pub const USER_DATABASE_LIMIT: u64 = 1 << 20;

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
}

/// Reads the definition at `path` and every file it extends.
pub fn load(path: &Path, sources: &mut SourceMap, files: &dyn Files) -> Loaded {
    let mut diags = Vec::new();
    let mut chain = Vec::new();
    let mut digest = Digest::new();
    let text = match files.read(path) {
        Ok(text) => text,
        Err(e) => {
            let file = sources.add(path, "");
            diags.push(
                Diagnostic::new(
                    Code::FileUnreadable,
                    Span::file_start(file),
                    format!("cannot read {}: {e}", path.display()),
                )
                .help("check the path and its permissions"),
            );
            return Loaded {
                raw: None,
                file,
                path: path.to_path_buf(),
                chain,
                diags,
                digest: 0,
                complete: false,
            };
        }
    };
    let file = sources.add(path, text.as_str());
    let layers = layered(
        Source {
            path: path.to_path_buf(),
            file,
            text: &text,
        },
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
    let layers = layered(
        Source {
            path: name.to_path_buf(),
            file,
            text,
        },
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
    }
}

struct Source<'t> {
    path: PathBuf,
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

/// Parses `src`, then the chain of bases below it, and layers them.
fn layered(
    src: Source<'_>,
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
    let incomplete = |table| Layers {
        table,
        parsed: true,
        complete: false,
    };
    let Value::String(base) = &extends.value.value else {
        Decoder::new(diags).nested("extends", |d| d.wrong_type(&extends.value, "a string (a file path)"));
        table.remove("extends");
        return incomplete(table);
    };
    table.remove("extends");
    let base_path = src.path.parent().unwrap_or(Path::new("")).join(base);
    let canonical_chain: Vec<PathBuf> = chain.iter().filter_map(|p| files.canonical(p).ok()).collect();
    let links = |chain: &[PathBuf]| -> Vec<String> {
        chain
            .windows(2)
            .map(|p| format!("{} extends {}", p[0].display(), p[1].display()))
            .collect()
    };
    if let Ok(canonical) = files.canonical(&base_path)
        && canonical_chain.contains(&canonical)
    {
        let mut diag = Diagnostic::new(
            Code::ExtendsCycle,
            extends.value.span,
            format!("`extends` forms a cycle: {} is already being read", base_path.display()),
        )
        .label("this file extends one of its own descendants")
        .help("remove one `extends` of the chain, or move the shared keys into a template");
        diag.notes = links(chain);
        diag.notes
            .push(format!("{} extends {}", src.path.display(), base_path.display()));
        diags.push(diag);
        return incomplete(table);
    }
    let text = match files.read(&base_path) {
        Ok(text) => text,
        Err(e) => {
            let mut diag = Diagnostic::new(
                Code::ExtendsMissing,
                extends.value.span,
                format!("cannot read base file {}: {e}", base_path.display()),
            )
            .help("`extends` is relative to the file that contains it");
            diag.notes = links(chain);
            diags.push(diag);
            return incomplete(table);
        }
    };
    let base_file = sources.add(&base_path, text.as_str());
    let base = layered(
        Source {
            path: base_path,
            file: base_file,
            text: &text,
        },
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

/// Files held in memory, for tests and fuzzing.
#[derive(Default)]
pub struct MemFiles(pub std::collections::BTreeMap<PathBuf, String>);

impl MemFiles {
    /// Adds a file.
    pub fn with(mut self, path: &str, text: &str) -> Self {
        self.0.insert(PathBuf::from(path), text.to_string());
        self
    }
}

impl Files for MemFiles {
    fn read(&self, path: &Path) -> io::Result<String> {
        self.0
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        let p = normalize(path);
        if self.0.contains_key(&p) {
            Ok(p)
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }
}

/// Lexical normalization for [`MemFiles`]: drops `.` and resolves `..`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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
