//! Loading a definition, which every command starts with: the file read and
//! parsed, `extends` merged, the jail validated; and `sysjail check`, the
//! offline lint users run in CI.
//!
//! The lint needs nothing of the machine it runs on: not `path`, not the bind
//! sources, not the users. [`host_checks`] adds those checks on demand
//! (`check --host`), and `up` runs them before it creates anything.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{self, Files, HostFiles, LaunchFiles, Loaded, RawJail};
use crate::diag::{self, Code, Diagnostic, FileId, Omitted, Severity, SourceMap, Span};
use crate::model::{self, IdRef, Identity, Jail};
use crate::plan::DiskIds;
use crate::sys::hostpath::{self, HostPathError};
use crate::users;

/// The outcome of checking one file.
#[derive(Debug)]
pub struct FileReport {
    /// The file, as named or found.
    pub path: PathBuf,
    /// Its problems, in text order: at most [`diag::MAX_SHOWN`], then one
    /// saying how many more there are.
    pub diags: Vec<Diagnostic>,
    /// The problems left out.
    pub omitted: Omitted,
    /// The file is a template.
    pub template: bool,
}

/// The outcome of checking several files.
#[derive(Debug, Default)]
pub struct Report {
    /// Every file read, for rendering.
    pub sources: SourceMap,
    /// One entry per definition checked.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Number of problems of a severity, those left out included.
    pub fn count(&self, severity: Severity) -> usize {
        Omitted::of(self.diags()).count(severity)
    }

    /// Every diagnostic, file by file.
    pub fn diags(&self) -> impl Iterator<Item = &Diagnostic> {
        self.files.iter().flat_map(|f| &f.diags)
    }
}

/// A definition that loaded and validated, with what `up` records of it.
#[derive(Debug)]
pub struct Definition {
    /// The jail.
    pub jail: Jail,
    /// Digest of the files it was read from.
    pub digest: u64,
    /// Warnings found on the way.
    pub warnings: Vec<Diagnostic>,
    /// The files, for rendering the warnings.
    pub sources: SourceMap,
}

/// Why a definition could not be used.
#[derive(Debug)]
pub struct Rejected {
    /// Every problem.
    pub diags: Vec<Diagnostic>,
    /// The files, for rendering.
    pub sources: SourceMap,
}

/// Errors in naming what to check (exit status 2 of `check`).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A named path does not exist.
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    /// A named directory holds no definition.
    #[error("{0}: no *.toml files in this directory")]
    EmptyDir(PathBuf),
    /// A directory could not be listed.
    #[error("{0}: {1}")]
    Unlistable(PathBuf, std::io::Error),
}

/// A definition file to check: named by the user, or found by a directory walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// Found by walking a directory: a link is refused unread.
    pub listed: bool,
}

/// Expands directories to the `*.toml` files below them (sorted, recursively).
/// The walk never enters a linked directory; a linked `*.toml` entry is
/// listed, to be refused unread when it is loaded.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Found>, UsageError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|_| UsageError::Missing(p.clone()))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found, &mut BTreeSet::new())?;
            if found.is_empty() {
                return Err(UsageError::EmptyDir(p.clone()));
            }
            out.extend(found.into_iter().map(|path| Found { path, listed: true }));
        } else {
            out.push(Found {
                path: p.clone(),
                listed: false,
            });
        }
    }
    Ok(out)
}

/// The `*.toml` files directly in `dir`, sorted: the jails of a directory
/// for `up` and `down` (which, unlike `check`, do not search below it). A
/// linked entry is listed, to be refused unread by [`load_member`].
pub fn toml_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && !entry.file_type()?.is_dir() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Walks `dir`, each directory once: `seen` holds the (device, inode) of every
/// directory entered, so that links back up the tree (which a repository under
/// review may hold) cannot make the walk endless or exponential.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut BTreeSet<(u64, u64)>) -> Result<(), UsageError> {
    let unlistable = |e| UsageError::Unlistable(dir.to_path_buf(), e);
    let meta = fs::metadata(dir).map_err(unlistable)?;
    if !seen.insert((meta.dev(), meta.ino())) {
        return Ok(());
    }
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(unlistable)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        // The entry's own type (lstat's): a linked directory is not entered,
        // as it may lead anywhere on the host.
        if kind.is_dir() {
            walk(&path, out, seen)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks files (directories already expanded). With `host`, also checks what
/// the definitions name on this machine. `depend` is checked across the
/// files: a name is one of them, or NAME.toml beside the file or in
/// `config_dir`, and no jails depend on each other in a circle.
pub fn check(files: &[Found], host: bool, config_dir: &Path) -> Report {
    let mut report = Report::default();
    let mut all = Vec::new();
    let mut jails = Vec::new();
    for Found { path, listed } in files {
        let loaded = if *listed {
            config::load_listed(path, &mut report.sources, &HostFiles)
        } else {
            config::load(path, &mut report.sources, &HostFiles)
        };
        let mut validated = model::validate(&loaded);
        let mut diags = loaded.diags.clone();
        diags.append(&mut validated.diags);
        if host && let (Some(raw), Some(jail)) = (&loaded.raw, &validated.jail) {
            diags.extend(host_checks(raw, jail, loaded.file, &HostFiles, true));
        }
        if let (Some(raw), Some(jail)) = (&loaded.raw, &validated.jail) {
            jails.push((all.len(), depend_of(raw, jail, path)));
        }
        all.push((path.clone(), diags, validated.template));
    }
    let checked: Vec<crate::sets::Checked> = jails.iter().map(|(_, c)| c.clone()).collect();
    for (i, diag) in crate::sets::check(&checked, config_dir, &|p: &Path| p.is_file()) {
        all[jails[i].0].1.push(diag);
    }
    for (path, mut diags, template) in all {
        diag::sort(&mut diags);
        let omitted = diag::cap(&mut diags);
        report.files.push(FileReport {
            path,
            diags,
            omitted,
            template,
        });
    }
    report
}

/// What the dependency rules need of a valid jail: its `depend` entries with
/// their places.
fn depend_of(raw: &RawJail, jail: &Jail, path: &Path) -> crate::sets::Checked {
    let depend = raw
        .depend
        .iter()
        .flat_map(|f| &f.value)
        .filter_map(|e| model::JailName::parse(&e.value).ok().map(|n| (n, e.span)))
        .collect();
    crate::sets::Checked {
        name: jail.name.clone(),
        file: path.to_path_buf(),
        depend,
    }
}

/// Loads and validates a definition that is to be used (`policy`, `up`): a
/// template, or any error, rejects it.
pub fn load(path: &Path) -> Result<Definition, Rejected> {
    let mut sources = SourceMap::new();
    let loaded = config::load(path, &mut sources, &HostFiles);
    finish(loaded, sources, None)
}

/// What a launch starts from (`up`, `selftest`): [`load`], then the checks of
/// `check --host`, so that a missing tree or a planted link is a diagnostic
/// with its line and column, not a failed system call. `idmap` is false for
/// `up --no-idmap`.
pub fn load_for_launch(path: &Path, idmap: bool) -> Result<Definition, Rejected> {
    let mut sources = SourceMap::new();
    let loaded = config::load(path, &mut sources, &LaunchFiles);
    finish(loaded, sources, Some(idmap))
}

/// A member of a set of jails: [`load`] (`idmap` `None`) or
/// [`load_for_launch`], but with `skip_template` a template is `Ok(None)`:
/// a directory of jails holds the templates they extend. `skip_template` is
/// given for the files of a directory, so such a file is also loaded as
/// [`config::load_listed`] does: a link is refused unread.
pub fn load_member(path: &Path, idmap: Option<bool>, skip_template: bool) -> Result<Option<Definition>, Rejected> {
    let mut sources = SourceMap::new();
    // A launch reads only files safe from other users; `down` reads any.
    let files: &dyn Files = if idmap.is_some() { &LaunchFiles } else { &HostFiles };
    let loaded = if skip_template {
        config::load_listed(path, &mut sources, files)
    } else {
        config::load(path, &mut sources, files)
    };
    if skip_template
        && loaded
            .raw
            .as_ref()
            .is_some_and(|r| r.template.as_ref().is_some_and(|t| t.value))
    {
        return Ok(None);
    }
    finish(loaded, sources, idmap).map(Some)
}

/// Like [`load`], for a definition held in memory (such as `jail`'s command line).
pub fn load_text(name: &Path, text: &str) -> Result<Definition, Rejected> {
    let mut sources = SourceMap::new();
    let loaded = config::load_text(name, text, &mut sources, &HostFiles);
    finish(loaded, sources, None)
}

/// Like [`load_for_launch`], for the classic `jail` command line.
pub fn load_classic(argv0: &str, classic: &config::classic::Classic) -> Result<Definition, Rejected> {
    let mut sources = SourceMap::new();
    let loaded = config::classic::load(argv0, classic, &mut sources);
    // The classic command line has no way to set limits: no use warning about it.
    finish(loaded, sources, Some(true))
        .map(|mut def| {
            def.warnings.retain(|d| d.code != Code::NoLimits);
            def
        })
        .map_err(|mut rejected| {
            rejected.diags.retain(|d| d.code != Code::NoLimits);
            rejected
        })
}

fn finish(loaded: Loaded, sources: SourceMap, host: Option<bool>) -> Result<Definition, Rejected> {
    let validated = model::validate(&loaded);
    let mut diags = loaded.diags;
    diags.extend(validated.diags);
    if let (Some(idmap), Some(raw), Some(jail)) = (host, &loaded.raw, &validated.jail)
        && !validated.template
    {
        diags.extend(host_checks(raw, jail, loaded.file, &HostFiles, idmap));
    }
    if validated.template {
        diags.push(
            Diagnostic::new(
                Code::TemplateUsed,
                Span::file_start(loaded.file),
                "this file is a template, not a jail",
            )
            .help("run a file that extends it; `template = true` marks files meant only for `extends`"),
        );
    }
    diag::sort(&mut diags);
    diag::cap(&mut diags);
    match validated.jail {
        Some(jail) if !diags.iter().any(Diagnostic::is_error) => Ok(Definition {
            jail,
            digest: loaded.digest,
            warnings: diags,
            sources,
        }),
        _ => Err(Rejected { diags, sources }),
    }
}

/// What `check --host` and `up` verify on this machine: the root directory and
/// bind sources exist and are reached without a link a jail or user could
/// have planted (the rule of [`crate::sys::hostpath`]), no writable id-mapped
/// tree or directory would make jail root's files host root's, and the user
/// and groups exist where they are looked up. `idmap` is false for `up
/// --no-idmap`.
pub fn host_checks(raw: &RawJail, jail: &Jail, file: FileId, files: &dyn Files, idmap: bool) -> Vec<Diagnostic> {
    let mut out = root_checks(raw, jail, file, idmap);
    out.extend(mount_checks(raw, jail));
    let db_root = user_checks(raw, jail, files, &mut out);
    out.extend(group_checks(raw, jail, files, db_root));
    out
}

/// A host path that [`hostpath::open`] refused: a planted link, or `missing`.
fn refused(e: &HostPathError, missing: Code, span: Span, what: &str, help: &'static str) -> Diagnostic {
    let (code, help) = match e {
        HostPathError::UntrustedLink { .. } | HostPathError::TooManyLinks { .. } => (
            Code::HostPathLink,
            "name the real directory: a jail or a user could have planted this link",
        ),
        _ => (missing, help),
    };
    Diagnostic::new(code, span, format!("{what}: {e}")).help(help)
}

/// The id mapping a launch would make of a mount, checked as the executor
/// checks it (crate::plan::DiskIds::maps).
fn disk_ids(span: Span, what: String, how: DiskIds, stat: &hostpath::Stat) -> Option<Diagnostic> {
    how.maps(stat.uid, stat.gid, true, 0, crate::policy::JAIL_IDS).err().map(|e| {
        Diagnostic::new(Code::HostRootOwned, span, format!("{what}: {e}")).help(match how {
            DiskIds::Tree => "its root directory's owner becomes jail root: give the tree an unprivileged owner range, or set read-only = true",
            DiskIds::Owner => "its owner becomes jail root: bind a directory owned by the user the jail writes as, or set read-only = true",
        })
    })
}

/// `path`: a directory, and, when writable and id-mapped, neither owned so
/// that jail root would be host root nor reachable by every host user.
fn root_checks(raw: &RawJail, jail: &Jail, file: FileId, idmap: bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let path_span = raw.path.as_ref().map_or(Span::file_start(file), |f| f.span);
    match hostpath::open(jail.root.path.as_path()) {
        Ok(found) if !found.stat.is_dir() => out.push(
            Diagnostic::new(
                Code::HostPathMissing,
                path_span,
                format!("{} is not a directory", jail.root.path),
            )
            .help("`path` is the jail's root directory"),
        ),
        Ok(found) => {
            if idmap && !jail.root.read_only && !jail.root.is_host_root() {
                out.extend(disk_ids(
                    path_span,
                    format!("the tree {}", jail.root.path),
                    DiskIds::Tree,
                    &found.stat,
                ));
                if let Ok(None) = hostpath::guard_above(jail.root.path.as_path()) {
                    out.push(
                        Diagnostic::new(
                            Code::HostTreeReachable,
                            path_span,
                            format!("every host user can reach the writable tree {}: a set-id file in it would serve them", jail.root.path),
                        )
                        .help("keep writable trees below a directory of root's that others cannot search, such as /var/lib/sysjail (mode 0700)"),
                    );
                }
            }
        }
        Err(e) => out.push(refused(
            &e,
            Code::HostPathMissing,
            path_span,
            "path",
            "create the jail's tree first, or use path = \"/\" to share the host's root read-only",
        )),
    }
    out
}

/// Bind sources: they exist, and a writable id-mapped one is not owned so
/// that jail root would be host root.
fn mount_checks(raw: &RawJail, jail: &Jail) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, m) in raw.mount.iter().flat_map(|f| f.value.iter()).enumerate() {
        let Some(src) = &m.value.source else { continue };
        match hostpath::open(Path::new(&src.value)) {
            Ok(found) => {
                let spec = jail.mounts.iter().find(|j| j.index == Some(i)).map(|j| &j.kind);
                if let Some(model::MountKind::Bind {
                    read_only: false,
                    idmap: true,
                    ..
                }) = spec
                {
                    out.extend(disk_ids(
                        src.span,
                        format!("mount[{i}].source {}", src.value),
                        DiskIds::Owner,
                        &found.stat,
                    ));
                }
            }
            Err(e) => out.push(refused(
                &e,
                Code::HostSourceMissing,
                src.span,
                &format!("mount[{i}].source"),
                "bind sources are host paths and must exist when the jail starts",
            )),
        }
    }
    out
}

/// The user named by `user` or `host-user` exists in the database it is looked
/// up in. Returns the root of that database: the jail's tree or the host's.
fn user_checks<'j>(raw: &RawJail, jail: &'j Jail, files: &dyn Files, out: &mut Vec<Diagnostic>) -> Option<&'j Path> {
    let (db_root, key) = match &jail.identity {
        Identity::JailRoot => (None, None),
        Identity::Jail(_) => (Some(jail.root.path.as_path()), raw.user.as_ref()),
        Identity::Host(_) => (Some(Path::new("/")), raw.host_user.as_ref()),
    };
    if let (Some(root), Some(key), Identity::Jail(who) | Identity::Host(who)) = (db_root, key, &jail.identity)
        && let IdRef::Name(name) = who
    {
        let passwd = user_database(files, &root.join("etc/passwd"));
        if users::find_user(&users::parse_passwd(&passwd), who).is_none() {
            out.push(
                Diagnostic::new(
                    Code::HostUserMissing,
                    key.span,
                    format!("no user \"{name}\" in {}", root.join("etc/passwd").display()),
                )
                .help("add the user to that file, or give a numeric uid"),
            );
        }
    }
    db_root
}

/// Every group named in `groups` exists in the user's database (the jail's,
/// when the jail runs as jail root).
fn group_checks(raw: &RawJail, jail: &Jail, files: &dyn Files, db_root: Option<&Path>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let (Some(groups), Some(field)) = (&jail.groups, &raw.groups) else {
        return out;
    };
    let root = db_root.unwrap_or(jail.root.path.as_path());
    let db = users::parse_group(&user_database(files, &root.join("etc/group")));
    // A set, not a scan per group: both lists may be long.
    let names: BTreeSet<&str> = db.iter().map(|g| g.name.as_str()).collect();
    for (g, spanned) in groups.iter().zip(&field.value) {
        if let IdRef::Name(name) = g
            && !names.contains(name.as_str())
        {
            out.push(
                Diagnostic::new(
                    Code::HostUserMissing,
                    spanned.span,
                    format!("no group \"{g}\" in {}", root.join("etc/group").display()),
                )
                .help("add the group to that file, or give a numeric gid"),
            );
        }
    }
    out
}

/// A user or group file: of a jail's tree, it is the jail's to write, so it is
/// read under the host-path rule; unreadable, it holds no one.
fn user_database(files: &dyn Files, path: &Path) -> String {
    files.read_untrusted(path).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MemFiles;

    #[test]
    fn host_checks_find_groups_by_name_in_the_jails_database() {
        let files = MemFiles::default()
            .with(
                "j.toml",
                "path = \"/srv/j\"\ncommand = [\"/bin/true\"]\ngroups = [\"adm\", \"nosuch\", 27]\n[limits]\npids = 8\n",
            )
            .with("/srv/j/etc/group", "root:x:0:\nadm:x:4:alice\n");
        let mut sources = SourceMap::new();
        let loaded = config::load(Path::new("j.toml"), &mut sources, &files);
        let jail = model::validate(&loaded).jail.expect("valid");
        let diags = host_checks(loaded.raw.as_ref().unwrap(), &jail, loaded.file, &files, true);
        let groups: Vec<_> = diags
            .iter()
            .filter(|d| d.message.starts_with("no group"))
            .map(|d| sources.snippet(d.span()))
            .collect();
        assert_eq!(groups, ["\"nosuch\""]);
    }
}
