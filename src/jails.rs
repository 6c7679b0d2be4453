//! Running jails, seen from outside: list them, join one (`exec`), stop one
//! or several in dependency order (`down`). Each talks to the jail's
//! supervisor through its control socket in the state directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::model::JailName;
use crate::sets::{self, Node};

use crate::state::{self, Record, Registry, StateError};
use crate::supervisor::channel::Channel;
use crate::supervisor::client::{self, Exec};
use crate::supervisor::proto::{Reply, Request};

/// Why a running jail could not be reached or stopped.
#[derive(Debug, thiserror::Error)]
pub enum JailsError {
    /// The state directory or the record.
    #[error(transparent)]
    State(#[from] StateError),
    /// The control socket.
    #[error("{socket}: {source}")]
    Connect {
        /// Where the socket is.
        socket: std::path::PathBuf,
        /// Why connecting failed.
        source: std::io::Error,
    },
    /// Talking to the supervisor.
    #[error("the supervisor of {jail}: {source}")]
    Talk {
        /// The jail.
        jail: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The supervisor answered what it never answers.
    #[error("the supervisor of {jail} answered {answer}")]
    Unexpected {
        /// The jail.
        jail: String,
        /// The answer, for people.
        answer: String,
    },
    /// The supervisor did not exit in time.
    #[error("the supervisor of {jail} (pid {pid}) did not exit")]
    Stuck {
        /// The jail.
        jail: String,
        /// Its pid.
        pid: i32,
    },
}

/// The jails running with records in `dir`; stale records (their supervisor
/// gone) are cleaned up on the way. History records of ended jails are not
/// listed: [`find`] gives one.
pub fn list(dir: &Path) -> Result<Vec<Record>, JailsError> {
    let registry = Registry::open(dir)?;
    let lock = registry.lock()?;
    Ok(registry.live(&lock).0)
}

/// The record of jail `which` (its name or JID), running or ended.
pub fn find(dir: &Path, which: &str) -> Result<Record, JailsError> {
    let registry = Registry::open(dir)?;
    let lock = registry.lock()?;
    registry.clean_stale(&lock);
    Ok(registry.find_any(&lock, which)?)
}

/// Clears the history record of ended jail `which`, with its default log;
/// `Ok(false)` if it is not an ended jail's.
pub fn clear(dir: &Path, which: &str) -> Result<bool, JailsError> {
    let registry = Registry::open(dir)?;
    let lock = registry.lock()?;
    // No stale cleanup here, as in `connect`: `down` and `stop` call this
    // for every jail they stop, and `ls`, `up` and `down`'s listing clean.
    match registry.find_any(&lock, which) {
        Ok(r) if r.ended() => {
            registry.remove(&lock, &r.name);
            Ok(true)
        }
        Ok(_) | Err(StateError::NotFound(_)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The record of jail `which` (its name or JID) and a channel to its
/// supervisor.
pub fn connect(dir: &Path, which: &str) -> Result<(Record, Channel), JailsError> {
    let registry = Registry::open(dir)?;
    let record = {
        let lock = registry.lock()?;
        // By name, the record alone; stale records are cleaned by `ls`, `up`
        // and `down`'s listing (reading every record costs milliseconds with
        // hundreds of jails).
        registry.find(&lock, which)?
    };
    // The socket of the record's name in this directory, whatever path the
    // record says.
    let socket = Registry::control_name(&record.name);
    let chan = crate::supervisor::control::connect(registry.fd(), &socket).map_err(|source| JailsError::Connect {
        socket: registry.control_path(&record.name),
        source,
    })?;
    Ok((record, chan))
}

/// Runs a command in jail `which`, as `sysjail exec` does: the command's
/// exit status, or why it could not start (`Ok(Err(_))`).
pub fn join(dir: &Path, which: &str, exec: Exec) -> Result<Result<i32, client::NotStarted>, JailsError> {
    let (record, chan) = connect(dir, which)?;
    client::exec(chan, exec).map_err(|source| JailsError::Talk {
        jail: record.name,
        source,
    })
}

/// Stops jail `which` and waits, at most `wait`, until its supervisor has
/// torn it down and exited; its record goes with it. An ended jail's history
/// record is cleared.
pub fn stop(dir: &Path, which: &str, wait: Duration) -> Result<(), JailsError> {
    if clear(dir, which)? {
        return Ok(());
    }
    let (record, chan) = ask_to_stop(dir, which, Request::Stop)?;
    finish_stop(dir, record, &chan, Instant::now() + wait)
}

/// What `down` is asked to stop.
#[derive(Clone, Debug)]
pub enum Selector {
    /// Every running jail.
    All,
    /// A running jail by name or JID; an ended jail's history record is
    /// cleared instead.
    Jail(String),
    /// The running jails of some definitions: by the names they give, and
    /// every jail started from one of their files (instances, `up --name`),
    /// as a record holds its definition (canonical).
    Defined {
        /// The names the definitions give.
        names: BTreeSet<String>,
        /// The definition files, canonical.
        files: BTreeSet<std::path::PathBuf>,
    },
}

/// What `down` stops, decided under one lock: the running jails, and
/// [`stop_order`]'s order of the ones `selectors` name and their
/// dependents, each marked stopping before the lock goes, so that no jail
/// depending on one of them starts after this look (it would be stopped by
/// no one). A selector naming neither a running jail nor an ended one is an
/// error, before anything is marked; an ended one's history is cleared.
pub fn begin_stop(dir: &Path, selectors: &[Selector]) -> Result<(Vec<Record>, Vec<Stopping>), JailsError> {
    let registry = Registry::open(dir)?;
    let lock = registry.lock()?;
    let (records, _) = registry.live(&lock);
    let mut selected = BTreeSet::new();
    let mut history = Vec::new();
    for selector in selectors {
        match selector {
            Selector::All => selected.extend(records.iter().map(|r| r.name.clone())),
            Selector::Defined { names, files } => selected.extend(
                records
                    .iter()
                    .filter(|r| names.contains(&r.name) || r.definition.as_ref().is_some_and(|d| files.contains(d)))
                    .map(|r| r.name.clone()),
            ),
            Selector::Jail(which) => match records.iter().find(|r| r.name == *which || r.id.to_string() == *which) {
                Some(r) => {
                    selected.insert(r.name.clone());
                }
                None => match registry.find_any(&lock, which) {
                    Ok(r) if r.ended() => history.push(r.name),
                    Ok(_) | Err(StateError::NotFound(_)) => return Err(StateError::NotFound(which.clone()).into()),
                    Err(e) => return Err(e.into()),
                },
            },
        }
    }
    for name in history {
        registry.remove(&lock, &name);
    }
    let order = stop_order(&records, &selected);
    let names: BTreeSet<&str> = order.iter().map(|s| s.name.as_str()).collect();
    registry.mark_stopping(&lock, &records, &names);
    Ok((records, order))
}

/// At most this many jails are asked to stop before `stop_all` waits for
/// them: each holds a descriptor until it is gone.
const STOP_BATCH: usize = 256;

/// Stops the jails of `order` ([`stop_order`]'s, of the running `records`),
/// each as [`stop`] does, but not one after another: every jail whose
/// dependents among them are gone is asked to stop before any is waited
/// for, so their supervisors tear down in parallel. A jail still goes only
/// after the jails that depend on it. One result per jail, in `order`;
/// each supervisor gets at most `wait` from when its wave was asked.
pub fn stop_all(
    dir: &Path,
    order: &[Stopping],
    records: &[Record],
    wait: Duration,
) -> Vec<(String, Result<(), JailsError>)> {
    // A jail's wave: one after the latest wave of the jails of `order` that
    // depend on it (dependents come first in `order`).
    let mut wave: BTreeMap<&str, usize> = BTreeMap::new();
    for s in order {
        let after = records
            .iter()
            .filter(|r| r.depend.contains(&s.name))
            .filter_map(|r| wave.get(r.name.as_str()))
            .map(|w| w + 1)
            .max()
            .unwrap_or(0);
        wave.insert(&s.name, after);
    }
    let waves = wave.values().copied().max().map_or(0, |w| w + 1);
    let mut results: BTreeMap<&str, Result<(), JailsError>> = BTreeMap::new();
    for w in 0..waves {
        let names: Vec<&str> = order.iter().map(|s| s.name.as_str()).filter(|n| wave[n] == w).collect();
        for batch in names.chunks(STOP_BATCH) {
            let mut asked = Vec::new();
            for &name in batch {
                match clear(dir, name) {
                    Ok(true) => {
                        results.insert(name, Ok(()));
                    }
                    Ok(false) => match ask_to_stop(dir, name, Request::Stop) {
                        Ok(talk) => asked.push((name, talk)),
                        Err(e) => {
                            results.insert(name, Err(e));
                        }
                    },
                    Err(e) => {
                        results.insert(name, Err(e));
                    }
                }
            }
            let deadline = Instant::now() + wait;
            for (name, (record, chan)) in asked {
                results.insert(name, finish_stop(dir, record, &chan, deadline));
            }
        }
    }
    order
        .iter()
        .map(|s| {
            let result = results.remove(s.name.as_str()).unwrap_or(Ok(()));
            (s.name.clone(), result)
        })
        .collect()
}

/// Waits, until `deadline`, for the supervisor asked to stop `record`'s
/// jail to tear it down and exit; then clears any history it kept.
fn finish_stop(dir: &Path, record: Record, chan: &Channel, deadline: Instant) -> Result<(), JailsError> {
    // The supervisor closes the socket before its teardown; it exits after.
    while let Ok(Some(_)) = chan.recv::<Reply>() {}
    let left = deadline.saturating_duration_since(Instant::now());
    if crate::sys::host::wait_exit(record.supervisor_pid, record.supervisor_start, left) {
        // Had the jail ended by itself meanwhile, its supervisor kept
        // history: `down` leaves none. By its name alone: reading every
        // record costs milliseconds with hundreds of jails.
        let registry = Registry::open(dir)?;
        let lock = registry.lock()?;
        registry.clear_history(&lock, &record.name);
        return Ok(());
    }
    Err(JailsError::Stuck {
        jail: record.name,
        pid: record.supervisor_pid,
    })
}

/// Sends jail `which`'s supervisor `request` (Stop or Restart) and reads
/// its answer, which must be that it is stopping the jail.
fn ask_to_stop(dir: &Path, which: &str, request: Request) -> Result<(Record, Channel), JailsError> {
    let (record, chan) = connect(dir, which)?;
    let talk = |source| JailsError::Talk {
        jail: record.name.clone(),
        source,
    };
    chan.send(&request, &[]).map_err(talk)?;
    match chan.recv::<Reply>().map_err(talk)? {
        Some((Reply::Stopping, _)) => Ok((record, chan)),
        other => Err(JailsError::Unexpected {
            jail: record.name.clone(),
            answer: format!("{other:?}"),
        }),
    }
}

/// One jail of a `down` of several, in the order they are stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopping {
    /// The jail.
    pub name: String,
    /// Not asked for: it depends on this jail, which is stopped after it.
    pub dependent_of: Option<String>,
}

/// The order in which `down` stops the running jails `selected` (names of
/// `records`): each before the jails it depends on, the reverse of the start
/// order. A running jail that depends on one of them is stopped too, first:
/// what it needs is going away. Uses the `depend` each record kept from its
/// definition at start.
pub fn stop_order(records: &[Record], selected: &BTreeSet<String>) -> Vec<Stopping> {
    let mut why: BTreeMap<&str, Option<String>> = selected.iter().map(|n| (n.as_str(), None)).collect();
    // Dependents of what goes, and theirs, until nothing is added.
    let mut grew = true;
    while grew {
        grew = false;
        for r in records {
            if why.contains_key(r.name.as_str()) {
                continue;
            }
            if let Some(dep) = r.depend.iter().find(|d| why.contains_key(d.as_str())) {
                why.insert(&r.name, Some(dep.clone()));
                grew = true;
            }
        }
    }
    let nodes: Vec<Node> = records
        .iter()
        .map(|r| Node {
            // A record holds a name its jail ran under; an unparsable one
            // (a JID-named jail) has no dependents.
            name: JailName::parse(&r.name).unwrap_or_else(|_| JailName::by_jid()),
            depend: r.depend.iter().filter_map(|d| JailName::parse(d).ok()).collect(),
        })
        .collect();
    sets::order(&nodes)
        .order
        .iter()
        .rev()
        .filter_map(|&i| {
            let name = &records[i].name;
            why.get(name.as_str()).map(|because| Stopping {
                name: name.clone(),
                dependent_of: because.clone(),
            })
        })
        .collect()
}

/// Restarts running jail `which` in place: its supervisor stops it as `down`
/// would, then starts it again with the same definition, command and output.
/// Waits, at most `wait`, until the new run's command runs; returns its record.
pub fn restart(dir: &Path, which: &str, wait: Duration) -> Result<Record, JailsError> {
    let (record, _chan) = ask_to_stop(dir, which, Request::Restart)?;
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match find(dir, &record.name) {
            Ok(now)
                if now.supervisor_pid == record.supervisor_pid
                    && now.run.restarts > record.run.restarts
                    && now.state == state::JailState::Running =>
            {
                return Ok(now);
            }
            // It ended instead (its new run failed at once), or is gone.
            Ok(now) if now.ended() => return Ok(now),
            Err(JailsError::State(StateError::NotFound(_))) => {
                return Err(StateError::NotFound(which.to_string()).into());
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(JailsError::Stuck {
        jail: record.name,
        pid: record.supervisor_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, depend: &[&str]) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "id": 1, "name": name, "hostname": "h", "path": "/", "mode": "private",
            "ipv4": [], "ipv6": [], "allow": [], "supervisor_pid": 1, "supervisor_start": 1,
            "init_pid": null, "started": 0, "definition": null, "digest": "0", "id_base": 0,
            "cgroups": [], "control": "/x", "state": "running"
        }))
        .expect("a record without `depend`, as older ones are, still reads");
        r.depend = depend.iter().map(|d| d.to_string()).collect();
        r
    }

    fn order(records: &[Record], selected: &[&str]) -> Vec<(String, Option<String>)> {
        let selected = selected.iter().map(|s| s.to_string()).collect();
        stop_order(records, &selected)
            .into_iter()
            .map(|s| (s.name, s.dependent_of))
            .collect()
    }

    #[test]
    fn dependents_stop_first_and_are_added_when_what_they_need_goes() {
        let records = [
            record("db", &[]),
            record("web", &["db", "cache"]),
            record("cache", &[]),
            record("other", &[]),
            record("7", &[]),
        ];
        assert_eq!(
            order(&records, &["db", "web", "cache", "other", "7"]),
            [
                ("7".into(), None),
                ("other".into(), None),
                ("web".into(), None),
                ("cache".into(), None),
                ("db".into(), None)
            ]
        );
        assert_eq!(
            order(&records, &["db"]),
            [("web".into(), Some("db".into())), ("db".into(), None)]
        );
        assert_eq!(order(&records, &["web"]), [("web".into(), None)]);
    }
}
