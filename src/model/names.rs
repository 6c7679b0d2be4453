//! Names: jails, hosts, users, interfaces and environment variables.

use std::fmt;

/// A jail's name: 1 to 64 of `[A-Za-z0-9._-]`, starting with a letter or digit,
/// optionally followed by one instance suffix `@INSTANCE` of the same
/// characters (systemd's `web@2`: instance 2 of the definition `web`).
///
/// It names the state record, the control socket and the cgroup directory, so
/// it must be a safe path component: no `/`, never `.` or `..`, and never the
/// name of a file the kernel keeps in a cgroup directory (`tasks`,
/// `cgroup.procs`, `memory.max`...), which a jail's cgroup would collide with.
/// A name of digits only is the name of the jail with that JID (a classic jail
/// without a name), never one a user writes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct JailName(String);

/// The controllers whose files (`CONTROLLER.*`) sit in every cgroup directory,
/// on cgroup v2 and on v1 hierarchies.
const CGROUP_PREFIXES: &[&str] = &[
    "blkio",
    "cgroup",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "io",
    "irq",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// cgroup v1 files without a controller prefix.
const CGROUP_FILES: &[&str] = &["tasks", "notify_on_release", "release_agent"];

impl JailName {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<JailName, String> {
        if s.is_empty() || s.len() > 64 {
            return Err("must be 1 to 64 characters long".into());
        }
        let (base, instance) = match s.split_once('@') {
            Some((base, instance)) => (base, Some(instance)),
            None => (s, None),
        };
        Self::check_part(base)?;
        if let Some(instance) = instance {
            if !instance.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
                return Err("must have an instance starting with a letter or a digit after `@`".into());
            }
            if let Some(bad) = instance.chars().find(|c| !Self::allowed(*c)) {
                return Err(format!(
                    "may not contain {bad:?} in its instance: only letters, digits, `.`, `_` and `-`"
                ));
            }
        }
        Ok(JailName(s.to_string()))
    }

    fn allowed(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
    }

    /// The part before any `@`.
    fn check_part(s: &str) -> Result<(), String> {
        if !s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or a digit".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            // `down 1` and `exec 1` mean JID 1.
            return Err("may not be digits only, which name a JID".into());
        }
        if let Some(bad) = s.chars().find(|c| !Self::allowed(*c)) {
            return Err(format!(
                "may not contain {bad:?}: only letters, digits, `.`, `_` and `-` (and one `@` before an instance)"
            ));
        }
        let prefix = s.split('.').next().unwrap_or(s);
        if CGROUP_FILES.contains(&s) || (s.contains('.') && CGROUP_PREFIXES.contains(&prefix)) {
            return Err(
                "is the name of a file the kernel keeps in every cgroup directory, where the jail's cgroup is made"
                    .into(),
            );
        }
        Ok(())
    }

    /// The name of a jail that is to be named by its JID once the registry
    /// gives it one ([`JailName::of_jid`]): empty until then, which no
    /// parsed name is.
    pub fn by_jid() -> JailName {
        JailName(String::new())
    }

    /// True for [`JailName::by_jid`].
    pub fn is_by_jid(&self) -> bool {
        self.0.is_empty()
    }

    /// The name of the jail with id `jid`: a classic jail without a name
    /// (FreeBSD's rule: without a name, the JID is the name).
    pub fn of_jid(jid: u32) -> JailName {
        JailName(jid.to_string())
    }

    /// The definition part of an instance name: `web` of `web@2`; the whole
    /// name otherwise.
    pub fn base(&self) -> &str {
        self.0.split_once('@').map_or(self.0.as_str(), |(base, _)| base)
    }

    /// The instance of `web@2` (`2`), if any.
    pub fn instance(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, instance)| instance)
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JailName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An RFC 1123 host name that also fits Linux's 64-byte UTS field.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Hostname(String);

impl Hostname {
    /// Checks `s`.
    pub fn parse(s: &str) -> Result<Hostname, String> {
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.len() > 64 {
            return Err(format!("is {} bytes long; Linux host names hold at most 64", s.len()));
        }
        for label in s.split('.') {
            if label.is_empty() {
                return Err("has an empty label (`..`, or a leading or trailing dot)".into());
            }
            if label.len() > 63 {
                return Err(format!("label `{label}` is longer than 63 characters"));
            }
            if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
                return Err(format!(
                    "label `{label}` contains {bad:?}; only letters, digits and `-` are allowed"
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(format!("label `{label}` starts or ends with `-`"));
            }
        }
        Ok(Hostname(s.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user or group, by name or by number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum IdRef {
    /// Looked up by name.
    Name(String),
    /// Used as is.
    Id(u32),
}

impl IdRef {
    /// Checks a name: POSIX portable user names, plus the `$` of machine accounts.
    pub fn parse_name(s: &str) -> Result<IdRef, String> {
        let body = s.strip_suffix('$').unwrap_or(s);
        let first_ok = body.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if body.is_empty() || s.len() > 32 {
            return Err("must be 1 to 32 characters long".into());
        }
        if !first_ok
            || body
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err("must start with a letter or `_` and hold only letters, digits, `_`, `.` and `-`".into());
        }
        Ok(IdRef::Name(s.to_string()))
    }

    /// Checks a number: `u32::MAX` is (uid_t)-1, which means "no change" to setuid.
    pub fn parse_id(n: i64) -> Result<IdRef, String> {
        match u32::try_from(n) {
            Ok(id) if id != u32::MAX => Ok(IdRef::Id(id)),
            _ => Err(format!("{n} is not a valid id: ids range from 0 to 4294967294")),
        }
    }
}

impl fmt::Display for IdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdRef::Name(n) => f.write_str(n),
            IdRef::Id(id) => write!(f, "{id}"),
        }
    }
}

/// Checks a portable environment variable name.
pub fn check_env_name(s: &str) -> Result<(), String> {
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err("must start with a letter or `_` and hold only letters, digits and `_`".into())
    }
}

/// Checks a network interface name (IFNAMSIZ is 16 with the NUL).
pub fn check_ifname(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err("must be 1 to 15 characters long".into());
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("may not be `.` or `..` or contain `/`, `:` or spaces".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_follow_rfc_1123_and_the_uts_limit() {
        assert!(Hostname::parse("web.example.org").is_ok());
        assert!(Hostname::parse("1host").is_ok());
        assert!(Hostname::parse("a-b").is_ok());
        assert!(Hostname::parse("-a").is_err());
        assert!(Hostname::parse("a-").is_err());
        assert!(Hostname::parse("a_b").is_err());
        assert!(Hostname::parse("a..b").is_err());
        assert!(Hostname::parse("").is_err());
        assert!(Hostname::parse(&"a".repeat(64)).is_err(), "a label holds 63");
        assert!(
            Hostname::parse(&format!("{}.{}", "a".repeat(40), "b".repeat(30))).is_err(),
            "UTS holds 64"
        );
    }

    #[test]
    fn jail_names_are_path_safe() {
        assert!(JailName::parse("web-1.prod_x").is_ok());
        assert!(JailName::parse("../x").is_err());
        assert!(JailName::parse(".x").is_err());
        assert!(JailName::parse("a/b").is_err());
        assert!(JailName::parse("").is_err());
    }

    #[test]
    fn instance_names_have_one_at_between_two_safe_parts() {
        let web2 = JailName::parse("web@2").unwrap();
        assert_eq!((web2.base(), web2.instance()), ("web", Some("2")));
        assert_eq!(JailName::parse("web").unwrap().instance(), None);
        assert!(JailName::parse("db.prod@blue-1").is_ok());
        for bad in ["@2", "web@", "web@2@3", "web@../x", "web@a/b", "1@x", "web@.", "w@ b"] {
            assert!(JailName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn jail_names_never_collide_with_cgroup_files() {
        for bad in [
            "tasks",
            "cgroup.procs",
            "memory.max",
            "pids.max",
            "cpu.weight",
            "release_agent",
        ] {
            assert!(JailName::parse(bad).is_err(), "{bad}");
        }
        for good in ["memory", "db.prod", "io-worker", "cpuinfo.x", "tasks2"] {
            assert!(JailName::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn jail_names_are_never_taken_for_a_jid() {
        assert!(JailName::parse("1").is_err());
        assert!(JailName::parse("2024").is_err());
        assert!(JailName::parse("1a").is_ok());
        assert!(JailName::parse("web1").is_ok());
        assert_eq!(JailName::of_jid(7).as_str(), "7");
    }

    #[test]
    fn ids() {
        assert_eq!(IdRef::parse_id(0), Ok(IdRef::Id(0)));
        assert!(IdRef::parse_id(-1).is_err());
        assert!(IdRef::parse_id(4294967295).is_err());
        assert!(IdRef::parse_name("www-data").is_ok());
        assert!(IdRef::parse_name("host$").is_ok());
        assert!(IdRef::parse_name("1abc").is_err());
        assert!(IdRef::parse_name("a b").is_err());
    }
}
