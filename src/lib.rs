//! sysjail: declarative jails for Linux.
//!
//! This library is the sysjail(3) of today: everything the `sysjail` command
//! does, as an API another Rust program can embed. Data flows one way:
//!
//! ```text
//! TOML text --config::load-->     RawJail     spans kept, extends merged
//!           --model::validate-->  Jail        typed, every problem reported
//!           --policy::compile-->  Policy      pure data, each entry says why
//!           --plan::build-->      LaunchPlan  ordered steps, rules checked
//!           --launch::up-->       running jail: the one preamble of every launch
//! ```

#![warn(missing_docs)]

pub mod config;
pub mod diag;
pub mod doctor;
pub mod host;
pub mod launch;
pub mod lint;
pub mod model;
pub mod plan;
pub mod policy;
pub mod promises;
pub mod rewrite;
pub mod seccomp;
pub mod selftest;
pub mod state;
pub mod supervisor;
pub mod sys;
pub mod syscalls;
pub mod users;

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
