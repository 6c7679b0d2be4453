//! sysjail: declarative jails for Linux.
//!
//! This library is sysjail(3): what the `sysjail` command does, as an API
//! another Rust program can embed. Data flows one way:
//!
//! ```text
//! TOML text --config::load-->     RawJail     spans kept, extends merged
//!           --model::validate-->  Jail        typed, every problem reported
//!           --policy::compile-->  Policy      pure data, each entry says why,
//!                                             for the host facts given
//!           --plan::build-->      LaunchPlan  host and jail steps, in order
//!           --launch-->           a running jail, supervised
//! ```
//!
//! The few calls most programs need are at the top: [`load()`], [`facts()`],
//! [`compile`], [`launch()`], [`list`], [`join`] and [`stop`]. The modules
//! hold the stages themselves.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Load and validate a definition; print what this host would enforce.
//! let definition = sysjail::load("examples/jails/hello.toml".as_ref())
//!     .map_err(|rejected| format!("{} problems", rejected.diags.len()))?;
//! let policy = sysjail::compile(&definition.jail, &sysjail::facts())?;
//! print!("{}", sysjail::policy::render_text(&policy));
//!
//! // The running jails of the default state directory; stop one.
//! let dir = sysjail::state::Registry::default_dir();
//! for jail in sysjail::list(&dir)? {
//!     println!("{} {}", jail.id, jail.name);
//! }
//! sysjail::stop(&dir, "hello", Duration::from_secs(10))?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

/// Writes to standard error, ignoring failure: a message to a reader that
/// went away (stderr a closed pipe, a full disk) is dropped. `eprintln!`
/// panics there instead, which would abort whatever cleanup follows the
/// message (stopping the jails a failed `up` started); no path of sysjail
/// may panic because its stderr is gone.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `eprintln!` that never panics: see [`write_stderr`].
#[macro_export]
macro_rules! eprintln_lossy {
    () => {
        $crate::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics: see [`write_stderr`].
#[macro_export]
macro_rules! eprint_lossy {
    ($($arg:tt)*) => {
        $crate::write_stderr(format_args!($($arg)*))
    };
}

/// `println!` that never panics, for the few lines the library prints (the
/// JID of a background jail): a reader of stdout that went away loses them.
#[macro_export]
macro_rules! println_lossy {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod config;
pub mod diag;
pub mod doctor;
pub mod facts;
pub mod jails;
pub mod launch;
pub mod load;
pub mod model;
pub mod oci;
pub mod plan;
pub mod policy;
pub mod promises;
pub mod rewrite;
pub mod seccomp;
pub mod selftest;
pub mod sets;
pub mod state;
pub mod supervisor;
pub mod sys;
pub mod syscalls;
pub mod terminal;
pub mod users;

pub use jails::{join, list, stop};

/// Reads and validates the definition at `path` (and what it extends),
/// with the checks of the host that `up` makes: its files are opened under
/// the host-path rule of sysjail(1).
pub fn load(path: &std::path::Path) -> Result<load::Definition, load::Rejected> {
    load::load_for_launch(path, true)
}

/// What this machine offers, probed once.
pub fn facts() -> facts::HostFacts {
    sys::probe::probe()
}

/// The policy `jail` gets on a host with `facts`: exactly what a launch
/// there enforces, or why it cannot run there.
pub fn compile(jail: &model::Jail, facts: &facts::HostFacts) -> Result<policy::Policy, policy::host::Refused> {
    policy::compile(jail, facts)
}

/// Launches a jail and supervises it until it ends; the exit status `sysjail
/// up` would give (the command's, or 125-127 for sysjail's own failures).
/// With `background`, this process returns once the jail runs or failed to
/// start, and the supervisor is a fork of it that never returns into the
/// caller's code: it exits when the jail has ended.
pub fn launch(launch: launch::Launch) -> Result<i32, launch::UpError> {
    launch::up(launch)
}

/// The JSON Schema of the definition format, as `sysjail schema` prints it.
pub fn schema() -> serde_json::Value {
    let schema = schemars::schema_for!(config::RawJail);
    let mut value = serde_json::to_value(&schema).expect("a schema is always JSON");
    strip_null(&mut value);
    value["title"] = "sysjail jail definition (sysjail.toml(5))".into();
    value
}

/// TOML has no null: an optional key is one that is not required, so the
/// `null` alternatives schemars adds for `Option` are removed.
fn strip_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    if let Value::Object(map) = value {
        if let Some(Value::Array(types)) = map.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types.remove(0);
                map.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
            alternatives.retain(|a| a.get("type").is_none_or(|t| t != "null"));
            if alternatives.len() == 1 {
                let Value::Object(only) = alternatives.remove(0) else {
                    unreachable!("schemas are objects")
                };
                map.remove("anyOf");
                map.extend(only);
            }
        }
        map.values_mut().for_each(strip_null);
    } else if let Value::Array(items) = value {
        items.iter_mut().for_each(strip_null);
    }
}
