//! Sets of jails: what `up`, `down` and `check` make of several arguments,
//! and the order that `depend` gives them.
//!
//! An argument is a path when it holds a `/` or ends in `.toml`, and a name
//! otherwise: `web` is the file `web.toml` of the configuration directory,
//! `web@2` the same file run as the jail `web@2` (an instance, as systemd
//! names them). A directory stands for every `*.toml` file directly in it,
//! sorted, except templates (`template = true`), which exist only to be
//! extended. A dependency is found among the jails given, then running, then
//! as `NAME.toml` beside the file that names it, then in the configuration
//! directory.
//!
//! The module is pure: the ordering takes a graph of names and gives the
//! start order and the cycles; listing directories, loading definitions and
//! asking which jails run go through a [`World`] the caller gives, so that
//! the rules are tested without a file system.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::diag::{Code, Diagnostic, Span};
use crate::load::{Definition, Rejected};
use crate::model::JailName;

/// The most jails one set holds: as many as can run at once.
pub const MAX_SET: usize = crate::state::MAX_JAILS as usize;

/// What an argument of `up`, `down`, `check` or `policy` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A file or a directory.
    Path(PathBuf),
    /// A jail by name: its definition is `NAME.toml` (the part before any
    /// `@`) in the configuration directory.
    Name(JailName),
}

impl Arg {
    /// Reads an argument: a path if it holds `/` or ends in `.toml`, a jail
    /// name otherwise.
    pub fn parse(arg: &str) -> Result<Arg, SetError> {
        if arg.contains('/') || arg.ends_with(".toml") {
            return Ok(Arg::Path(PathBuf::from(arg)));
        }
        JailName::parse(arg).map(Arg::Name).map_err(|why| SetError::BadName {
            arg: arg.to_string(),
            why,
        })
    }
}

/// The file that defines jail `name` in `dir`: `web.toml` for `web` and `web@2`.
pub fn definition_file(dir: &Path, name: &JailName) -> PathBuf {
    dir.join(format!("{}.toml", name.base()))
}

/// Why a set could not be formed.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    /// An argument that is neither a path nor a jail name.
    #[error("{arg}: not a jail name ({why}); write a path with a `/`, such as ./{arg}")]
    BadName {
        /// The argument.
        arg: String,
        /// What is wrong with it as a name.
        why: String,
    },
    /// No definition where a name was looked for.
    #[error("no definition of {name}: {}", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" nor "))]
    NotFound {
        /// The name.
        name: String,
        /// Every file looked at.
        looked: Vec<PathBuf>,
    },
    /// A directory could not be listed.
    #[error("{0}: {1}")]
    Unlistable(PathBuf, std::io::Error),
    /// Two definitions of the set give the same jail name.
    #[error("two definitions make the jail {name}: {} and {}", first.display(), second.display())]
    Duplicate {
        /// The name.
        name: String,
        /// The first file.
        first: PathBuf,
        /// The second.
        second: PathBuf,
    },
    /// Jails depending on each other in a circle.
    #[error("the jails depend on each other in a circle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// More jails than can run at once.
    #[error("more than {MAX_SET} jails in one set")]
    TooMany,
    /// A definition with errors.
    #[error("a definition has errors")]
    Rejected(Box<Rejected>),
}

/// One definition asked for: a file, the name it runs under when the
/// argument gave one (`web@2`, `--name`), and whether a template there is
/// skipped (it came from a directory) or an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The definition file.
    pub file: PathBuf,
    /// Replaces the definition's name.
    pub name: Option<JailName>,
    /// Found by listing a directory: a template there is skipped.
    pub listed: bool,
}

/// The definitions that arguments name. `config_dir` holds `NAME.toml`.
pub fn wanted(args: &[Arg], config_dir: &Path, world: &dyn World) -> Result<Vec<Wanted>, SetError> {
    let mut out = Vec::new();
    for arg in args {
        let path = match arg {
            Arg::Name(name) => {
                out.push(Wanted {
                    file: definition_file(config_dir, name),
                    name: name.instance().is_some().then(|| name.clone()),
                    listed: false,
                });
                continue;
            }
            Arg::Path(path) => path,
        };
        // A name ending in .toml is a definition, refused unread if it is a
        // directory: it is never searched.
        let listed = if path.extension().is_none_or(|e| e != "toml") {
            world.directory(path)
        } else {
            None
        };
        match listed {
            Some(Ok(files)) => out.extend(files.into_iter().map(|file| Wanted {
                file,
                name: None,
                listed: true,
            })),
            Some(Err(e)) => return Err(SetError::Unlistable(path.clone(), e)),
            None => out.push(Wanted {
                file: path.clone(),
                name: None,
                listed: false,
            }),
        }
    }
    Ok(out)
}

/// A jail of a set.
#[derive(Debug)]
pub struct Member {
    /// Its definition, under the name it runs as.
    pub def: Definition,
    /// It was asked for, not only found as a dependency.
    pub given: bool,
}

/// How [`wanted`] and [`resolve`] reach the world: listing a directory,
/// loading a definition (`Ok(None)` for a template that may be skipped),
/// whether a file exists, whether a jail runs.
pub trait World {
    /// The `*.toml` files directly in `path`, sorted; `None` when it is not a
    /// directory.
    fn directory(&self, path: &Path) -> Option<std::io::Result<Vec<PathBuf>>>;
    /// Loads `file`; `skip_template` makes a template `Ok(None)`, not an error.
    fn load(&mut self, file: &Path, skip_template: bool) -> Result<Option<Definition>, Rejected>;
    /// True when `file` exists.
    fn exists(&self, file: &Path) -> bool;
    /// True when a jail of this name runs.
    fn running(&self, name: &JailName) -> bool;
}

/// The jails to start for `wanted`, dependencies first: each wanted
/// definition, then every dependency that is neither among them nor running,
/// found beside the file that names it or in `config_dir`.
pub fn resolve(wanted: &[Wanted], config_dir: &Path, world: &mut dyn World) -> Result<Vec<Member>, SetError> {
    let mut members: Vec<Member> = Vec::new();
    let mut files: BTreeMap<JailName, PathBuf> = BTreeMap::new();
    let mut add = |members: &mut Vec<Member>, w: &Wanted, given: bool, world: &mut dyn World| {
        let Some(mut def) = world
            .load(&w.file, w.listed)
            .map_err(|r| SetError::Rejected(Box::new(r)))?
        else {
            return Ok(());
        };
        if let Some(name) = &w.name {
            def.jail.name = name.clone();
        }
        if let Some(first) = files.insert(def.jail.name.clone(), w.file.clone()) {
            return Err(SetError::Duplicate {
                name: def.jail.name.to_string(),
                first,
                second: w.file.clone(),
            });
        }
        if members.len() >= MAX_SET {
            return Err(SetError::TooMany);
        }
        members.push(Member { def, given });
        Ok(())
    };
    for w in wanted {
        add(&mut members, w, true, world)?;
    }
    // Dependencies, breadth first: each found one may name more.
    let mut next = 0;
    while next < members.len() {
        let beside = members[next].def.jail.definition.clone();
        let depend = members[next].def.jail.depend.clone();
        next += 1;
        for dep in depend {
            if members.iter().any(|m| m.def.jail.name == dep) || world.running(&dep) {
                continue;
            }
            let mut looked = Vec::new();
            if let Some(dir) = beside.as_deref().and_then(Path::parent) {
                looked.push(definition_file(dir, &dep));
            }
            looked.push(definition_file(config_dir, &dep));
            let Some(file) = looked.iter().find(|f| world.exists(f)).cloned() else {
                return Err(SetError::NotFound {
                    name: dep.to_string(),
                    looked,
                });
            };
            let w = Wanted {
                file,
                name: Some(dep.clone()),
                listed: false,
            };
            add(&mut members, &w, false, world)?;
        }
    }
    let nodes: Vec<Node> = members
        .iter()
        .map(|m| Node {
            name: m.def.jail.name.clone(),
            depend: m.def.jail.depend.clone(),
        })
        .collect();
    let ordered = order(&nodes);
    if let Some(cycle) = ordered.cycles.first() {
        return Err(SetError::Cycle(cycle_names(&nodes, cycle)));
    }
    let mut slots: Vec<Option<Member>> = members.into_iter().map(Some).collect();
    Ok(ordered.order.iter().filter_map(|&i| slots[i].take()).collect())
}

/// "a -> b -> a": the names of a cycle, the first repeated at the end.
fn cycle_names(nodes: &[Node], cycle: &[usize]) -> Vec<String> {
    cycle
        .iter()
        .chain(cycle.first())
        .map(|&i| nodes[i].name.to_string())
        .collect()
}

/// A jail and the names it depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Its name.
    pub name: JailName,
    /// Its dependencies; names outside the graph are left out of the order.
    pub depend: Vec<JailName>,
}

/// The order of a graph of jails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ordered {
    /// Every node once, each after the nodes it depends on (but for the
    /// edges that close a cycle), otherwise in the order given.
    pub order: Vec<usize>,
    /// Each cycle once, as the nodes in dependency order: the first depends
    /// on the second, and so on, the last on the first.
    pub cycles: Vec<Vec<usize>>,
}

/// Orders `nodes` so that dependencies come first: the start order; stopping
/// goes in reverse. Depth first, in the order given, so that jails without
/// dependencies keep their order.
pub fn order(nodes: &[Node]) -> Ordered {
    let index: BTreeMap<&JailName, usize> = nodes.iter().enumerate().map(|(i, n)| (&n.name, i)).collect();
    let mut walk = Walk {
        nodes,
        index,
        mark: vec![Mark::New; nodes.len()],
        stack: Vec::new(),
        out: Ordered::default(),
        seen_cycles: BTreeSet::new(),
    };
    for i in 0..nodes.len() {
        if walk.mark[i] == Mark::New {
            walk.visit(i);
        }
    }
    walk.out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    New,
    OnPath,
    Done,
}

struct Walk<'n> {
    nodes: &'n [Node],
    index: BTreeMap<&'n JailName, usize>,
    mark: Vec<Mark>,
    stack: Vec<usize>,
    out: Ordered,
    seen_cycles: BTreeSet<Vec<usize>>,
}

impl Walk<'_> {
    /// Recursion is bounded by the number of nodes, at most [`MAX_SET`].
    fn visit(&mut self, i: usize) {
        self.mark[i] = Mark::OnPath;
        self.stack.push(i);
        for dep in &self.nodes[i].depend {
            let Some(&j) = self.index.get(dep) else { continue };
            match self.mark[j] {
                Mark::New => self.visit(j),
                Mark::OnPath => {
                    let from = self.stack.iter().position(|&k| k == j).expect("on the path");
                    let cycle = self.stack[from..].to_vec();
                    let mut key = cycle.clone();
                    key.sort_unstable();
                    if self.seen_cycles.insert(key) {
                        self.out.cycles.push(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        self.stack.pop();
        self.mark[i] = Mark::Done;
        self.out.order.push(i);
    }
}

/// What `check` knows of one definition for the dependency rules.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The jail's name.
    pub name: JailName,
    /// Its file.
    pub file: PathBuf,
    /// Each `depend` entry with where it is written.
    pub depend: Vec<(JailName, Span)>,
}

/// `check`'s dependency rules over the definitions checked together: each
/// name in `depend` is one of them, or `NAME.toml` beside the file or in
/// `config_dir` (`exists` says whether a file is there); no cycle.
/// Returns the diagnostics with the index of the definition they belong to.
pub fn check(defs: &[Checked], config_dir: &Path, exists: &dyn Fn(&Path) -> bool) -> Vec<(usize, Diagnostic)> {
    let mut out = Vec::new();
    let names: BTreeSet<&JailName> = defs.iter().map(|d| &d.name).collect();
    for (i, def) in defs.iter().enumerate() {
        for (dep, span) in &def.depend {
            if names.contains(dep) {
                continue;
            }
            let beside = def.file.parent().map(|dir| definition_file(dir, dep));
            let in_config = definition_file(config_dir, dep);
            if beside.iter().chain([&in_config]).any(|f| exists(f)) {
                continue;
            }
            let beside = beside.map_or(String::new(), |b| format!("{} and ", b.display()));
            out.push((
                i,
                Diagnostic::new(
                    Code::DependUnknown,
                    *span,
                    format!("`depend` names \"{dep}\", which is not among the definitions checked"),
                )
                .label("no such jail")
                .note(format!("looked for {beside}{}", in_config.display()))
                .help(format!(
                    "check {}.toml together with this file, or give the name of a jail defined there",
                    dep.base()
                )),
            ));
        }
    }
    let nodes: Vec<Node> = defs
        .iter()
        .map(|d| Node {
            name: d.name.clone(),
            depend: d.depend.iter().map(|(n, _)| n.clone()).collect(),
        })
        .collect();
    for cycle in order(&nodes).cycles {
        out.push((cycle[0], cycle_diagnostic(defs, &cycle)));
    }
    out
}

/// A cycle, at the `depend` entry of its first jail that names the second,
/// with the other links as related labels.
fn cycle_diagnostic(defs: &[Checked], cycle: &[usize]) -> Diagnostic {
    let link = |k: usize| {
        let (from, to) = (&defs[cycle[k]], &defs[cycle[(k + 1) % cycle.len()]]);
        let span = from.depend.iter().find(|(n, _)| *n == to.name).map(|(_, s)| *s);
        (from, to, span.expect("a cycle follows depend entries"))
    };
    let names: Vec<String> = cycle
        .iter()
        .chain(cycle.first())
        .map(|&i| defs[i].name.to_string())
        .collect();
    let (first, second, span) = link(0);
    let mut diag = Diagnostic::new(
        Code::DependCycle,
        span,
        format!("jails depend on each other in a circle: {}", names.join(" -> ")),
    )
    .label(format!("{} depends on {}", first.name, second.name))
    .help("remove one `depend` entry of the circle: one of these jails must be able to start first");
    for k in 1..cycle.len() {
        let (from, to, span) = link(k);
        diag = diag.related(span, format!("{} depends on {}", from.name, to.name));
    }
    diag
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> JailName {
        JailName::parse(s).unwrap()
    }

    fn graph(edges: &[(&str, &[&str])]) -> Vec<Node> {
        edges
            .iter()
            .map(|(n, deps)| Node {
                name: name(n),
                depend: deps.iter().map(|d| name(d)).collect(),
            })
            .collect()
    }

    fn names(nodes: &[Node], order: &[usize]) -> Vec<String> {
        order.iter().map(|&i| nodes[i].name.to_string()).collect()
    }

    #[test]
    fn dependencies_come_first_and_the_rest_keep_their_order() {
        let g = graph(&[
            ("web", &["db", "cache"]),
            ("worker", &["db"]),
            ("cache", &[]),
            ("db", &[]),
        ]);
        let o = order(&g);
        assert!(o.cycles.is_empty());
        assert_eq!(names(&g, &o.order), ["db", "cache", "web", "worker"]);
    }

    #[test]
    fn names_outside_the_graph_are_left_out() {
        let g = graph(&[("web", &["running-elsewhere"]), ("a", &[])]);
        assert_eq!(names(&g, &order(&g).order), ["web", "a"]);
    }

    #[test]
    fn each_cycle_is_found_once_in_dependency_order() {
        let g = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &["a"]),
            ("d", &["d"]),
            ("e", &["a"]),
        ]);
        let o = order(&g);
        let cycles: Vec<Vec<String>> = o.cycles.iter().map(|c| names(&g, c)).collect();
        assert_eq!(cycles, [vec!["a", "b", "c"], vec!["d"]]);
        assert_eq!(o.order.len(), 5, "every node is still ordered");
    }

    #[test]
    fn arguments_with_a_slash_or_toml_are_paths_others_names() {
        assert_eq!(Arg::parse("web").unwrap(), Arg::Name(name("web")));
        assert_eq!(Arg::parse("web@2").unwrap(), Arg::Name(name("web@2")));
        assert_eq!(Arg::parse("jails/").unwrap(), Arg::Path("jails/".into()));
        assert_eq!(Arg::parse("web.toml").unwrap(), Arg::Path("web.toml".into()));
        assert!(matches!(Arg::parse("..").unwrap_err(), SetError::BadName { .. }));
        assert_eq!(
            definition_file(Path::new("/etc/sysjail"), &name("web@2")),
            Path::new("/etc/sysjail/web.toml")
        );
    }

    /// Definitions in memory: `file -> text`.
    struct Mem {
        files: crate::config::MemFiles,
        running: Vec<&'static str>,
    }

    impl World for Mem {
        fn directory(&self, path: &Path) -> Option<std::io::Result<Vec<PathBuf>>> {
            let files: Vec<PathBuf> = self
                .files
                .0
                .keys()
                .filter(|f| f.parent() == Some(path))
                .cloned()
                .collect();
            (!files.is_empty()).then_some(Ok(files))
        }
        fn load(&mut self, file: &Path, skip_template: bool) -> Result<Option<Definition>, Rejected> {
            let text = crate::config::Files::read(&self.files, file, 1 << 20).map_err(|_| Rejected {
                diags: vec![],
                sources: Default::default(),
            })?;
            let def = crate::load::load_text(file, &text);
            match def {
                Err(r) if skip_template && r.diags.iter().any(|d| d.code == Code::TemplateUsed) => Ok(None),
                other => other.map(Some),
            }
        }
        fn exists(&self, file: &Path) -> bool {
            crate::config::Files::canonical(&self.files, file).is_ok()
        }
        fn running(&self, n: &JailName) -> bool {
            self.running.contains(&n.as_str())
        }
    }

    const JAIL: &str = "path = \"/\"\ncommand = [\"/bin/true\"]\n[limits]\npids = 8\n";

    fn mem(files: &[(&str, &str)], running: Vec<&'static str>) -> Mem {
        let mut m = crate::config::MemFiles::default();
        for (p, extra) in files {
            m = m.with(p, &format!("{extra}\n{JAIL}"));
        }
        Mem { files: m, running }
    }

    fn started(members: &[Member]) -> Vec<(String, bool)> {
        members.iter().map(|m| (m.def.jail.name.to_string(), m.given)).collect()
    }

    #[test]
    fn dependencies_are_found_beside_then_in_the_config_dir_unless_running() {
        let mut world = mem(
            &[
                ("j/web.toml", "depend = [\"db\", \"cache\", \"queue\"]"),
                ("j/db.toml", "depend = [\"log@1\"]"),
                ("etc/log.toml", ""),
                ("etc/queue.toml", ""),
            ],
            vec!["cache"],
        );
        let wanted = [Wanted {
            file: "j/web.toml".into(),
            name: None,
            listed: false,
        }];
        let members = resolve(&wanted, Path::new("etc"), &mut world).unwrap();
        assert_eq!(
            started(&members),
            [
                ("log@1".into(), false),
                ("db".into(), false),
                ("queue".into(), false),
                ("web".into(), true)
            ]
        );
    }

    #[test]
    fn a_missing_dependency_says_where_it_was_looked_for() {
        let mut world = mem(&[("j/web.toml", "depend = [\"db\"]")], vec![]);
        let wanted = [Wanted {
            file: "j/web.toml".into(),
            name: None,
            listed: false,
        }];
        let e = resolve(&wanted, Path::new("etc"), &mut world).unwrap_err();
        assert_eq!(e.to_string(), "no definition of db: j/db.toml nor etc/db.toml");
    }

    #[test]
    fn instances_of_one_file_and_templates_of_a_directory() {
        let mut world = mem(&[("j/web.toml", "")], vec![]);
        world.files = std::mem::take(&mut world.files).with("j/base.toml", "template = true\n");
        let w = |file: &str, n: Option<&str>, listed| Wanted {
            file: file.into(),
            name: n.map(name),
            listed,
        };
        let members = resolve(
            &[
                w("j/web.toml", Some("web@1"), false),
                w("j/web.toml", Some("web@2"), false),
                w("j/base.toml", None, true),
            ],
            Path::new("etc"),
            &mut world,
        )
        .unwrap();
        assert_eq!(started(&members), [("web@1".into(), true), ("web@2".into(), true)]);
        let e = resolve(
            &[w("j/web.toml", None, false), w("j/web.toml", None, false)],
            Path::new("etc"),
            &mut world,
        )
        .unwrap_err();
        assert!(matches!(e, SetError::Duplicate { .. }), "{e}");
        let e = resolve(&[w("j/base.toml", None, false)], Path::new("etc"), &mut world).unwrap_err();
        assert!(matches!(e, SetError::Rejected(_)), "a template named is an error");
    }

    #[test]
    fn a_cycle_refuses_the_set() {
        let mut world = mem(
            &[("j/a.toml", "depend = [\"b\"]"), ("j/b.toml", "depend = [\"a\"]")],
            vec![],
        );
        let wanted = [Wanted {
            file: "j/a.toml".into(),
            name: None,
            listed: false,
        }];
        let e = resolve(&wanted, Path::new("etc"), &mut world).unwrap_err();
        assert_eq!(e.to_string(), "the jails depend on each other in a circle: a -> b -> a");
    }
}
