//! Absolute, normal paths: the only kind a jail definition may contain.

use std::fmt;
use std::path::Path;

/// An absolute path with no `.` or `..` components, no empty components and no
/// trailing slash (except `/` itself). Both host paths and paths inside the jail
/// use it: normal form makes "is this mount under that one" a string question.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct AbsPath(String);

/// Why a string is not an [`AbsPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// Does not start with `/`.
    Relative,
    /// Empty.
    Empty,
    /// Has a `..` component.
    DotDot,
    /// Has a `.` component.
    Dot,
    /// Has `//`.
    EmptyComponent,
    /// Ends with `/`.
    TrailingSlash,
}

impl PathProblem {
    /// A short description for diagnostics.
    pub fn describe(&self) -> &'static str {
        match self {
            PathProblem::Relative => "is not absolute",
            PathProblem::Empty => "is empty",
            PathProblem::DotDot => "has a `..` component",
            PathProblem::Dot => "has a `.` component",
            PathProblem::EmptyComponent => "has an empty component (`//`)",
            PathProblem::TrailingSlash => "ends with `/`",
        }
    }
}

impl AbsPath {
    /// Checks `s`, returning the first problem found.
    pub fn parse(s: &str) -> Result<AbsPath, PathProblem> {
        if s.is_empty() {
            return Err(PathProblem::Empty);
        }
        if !s.starts_with('/') {
            return Err(PathProblem::Relative);
        }
        if s == "/" {
            return Ok(AbsPath(s.to_string()));
        }
        if s.ends_with('/') {
            return Err(PathProblem::TrailingSlash);
        }
        for part in s[1..].split('/') {
            match part {
                "" => return Err(PathProblem::EmptyComponent),
                "." => return Err(PathProblem::Dot),
                ".." => return Err(PathProblem::DotDot),
                _ => {}
            }
        }
        Ok(AbsPath(s.to_string()))
    }

    /// The root, `/`.
    pub fn root() -> AbsPath {
        AbsPath("/".into())
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path as a [`Path`].
    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// The components after the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &AbsPath) -> bool {
        other.is_root() || self.0 == other.0 || self.0.strip_prefix(&other.0).is_some_and(|rest| rest.starts_with('/'))
    }

    /// `self` followed by `rel`'s components (`rel` is taken as relative).
    pub fn join(&self, rel: &AbsPath) -> AbsPath {
        if rel.is_root() {
            self.clone()
        } else if self.is_root() {
            rel.clone()
        } else {
            AbsPath(format!("{}{}", self.0, rel.0))
        }
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_normal_absolute_paths_pass() {
        assert!(AbsPath::parse("/").is_ok());
        assert!(AbsPath::parse("/srv/jails/web").is_ok());
        assert!(AbsPath::parse("/a/.hidden/..x").is_ok());
        assert_eq!(AbsPath::parse("srv"), Err(PathProblem::Relative));
        assert_eq!(AbsPath::parse(""), Err(PathProblem::Empty));
        assert_eq!(AbsPath::parse("/a/../b"), Err(PathProblem::DotDot));
        assert_eq!(AbsPath::parse("/a/./b"), Err(PathProblem::Dot));
        assert_eq!(AbsPath::parse("/a//b"), Err(PathProblem::EmptyComponent));
        assert_eq!(AbsPath::parse("/a/"), Err(PathProblem::TrailingSlash));
    }

    #[test]
    fn prefix_is_by_component() {
        let p = |s| AbsPath::parse(s).unwrap();
        assert!(p("/usr/lib").starts_with(&p("/usr")));
        assert!(p("/usr").starts_with(&p("/usr")));
        assert!(!p("/usrlocal").starts_with(&p("/usr")));
        assert!(p("/anything").starts_with(&p("/")));
        assert_eq!(p("/srv/j").join(&p("/tmp")), p("/srv/j/tmp"));
        assert_eq!(p("/").join(&p("/tmp")), p("/tmp"));
    }
}
