//! /etc/passwd and /etc/group, read as text: a jail's user database is a file in
//! the jail's tree, not whatever NSS module the host happens to use.

use crate::model::IdRef;

/// One /etc/passwd entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passwd {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// One /etc/group entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Member login names.
    pub members: Vec<String>,
}

/// Parses passwd(5) text; malformed lines are skipped, as libc does.
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 7 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(Passwd {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].to_string(),
                shell: f[6].to_string(),
            })
        })
        .collect()
}

/// Parses group(5) text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() < 4 || f[0].is_empty() || f[0].starts_with(['#', '+', '-']) {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].parse().ok()?,
                members: f[3].split(',').filter(|m| !m.is_empty()).map(String::from).collect(),
            })
        })
        .collect()
}

/// Finds a user by name or uid. A uid with no entry is still a user: it gets
/// gid = uid, home `/` and shell `/bin/sh`, as nsjail and bubblewrap allow.
pub fn find_user(db: &[Passwd], who: &IdRef) -> Option<Passwd> {
    match who {
        IdRef::Name(n) => db.iter().find(|p| &p.name == n).cloned(),
        IdRef::Id(uid) => Some(db.iter().find(|p| p.uid == *uid).cloned().unwrap_or_else(|| Passwd {
            name: uid.to_string(),
            uid: *uid,
            gid: *uid,
            home: "/".into(),
            shell: "/bin/sh".into(),
        })),
    }
}

/// Finds a group id by name or number.
pub fn find_group(db: &[Group], which: &IdRef) -> Option<u32> {
    match which {
        IdRef::Name(n) => db.iter().find(|g| &g.name == n).map(|g| g.gid),
        IdRef::Id(gid) => Some(*gid),
    }
}

/// The supplementary groups initgroups(3) would give `user`: every group that
/// lists the user as a member, plus the primary group.
pub fn groups_of(db: &[Group], user: &Passwd) -> Vec<u32> {
    let mut out: Vec<u32> = vec![user.gid];
    out.extend(
        db.iter()
            .filter(|g| g.members.iter().any(|m| m == &user.name))
            .map(|g| g.gid),
    );
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\n# comment\nbroken\nwww-data:x:33:33:www:/var/www:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\nadm:x:4:www-data,syslog\nwww-data:x:33:\nbad:x:y:\n";

    #[test]
    fn users_and_groups() {
        let users = parse_passwd(PASSWD);
        assert_eq!(users.len(), 2);
        let www = find_user(&users, &IdRef::Name("www-data".into())).unwrap();
        assert_eq!((www.uid, www.gid, www.home.as_str()), (33, 33, "/var/www"));
        assert_eq!(find_user(&users, &IdRef::Name("nobody".into())), None);
        assert_eq!(find_user(&users, &IdRef::Id(1234)).unwrap().gid, 1234);
        let groups = parse_group(GROUP);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups_of(&groups, &www), vec![4, 33]);
        assert_eq!(find_group(&groups, &IdRef::Name("adm".into())), Some(4));
    }
}
