//! Drift: how a bundle's files differ from what the export would write now.

use std::fmt;

use serde_json::Value;

/// One difference, at a JSON pointer of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The file, such as `config.json`.
    pub file: String,
    /// Where in it (RFC 6901 pointer; empty: the whole file).
    pub pointer: String,
    /// What the export writes there (`None`: nothing).
    pub expected: Option<Value>,
    /// What the bundle has (`None`: nothing).
    pub found: Option<Value>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or("nothing".to_string(), |v| v.to_string());
        write!(
            f,
            "{}:{}: the export writes {}, the bundle has {}",
            self.file,
            if self.pointer.is_empty() { "/" } else { &self.pointer },
            show(&self.expected),
            show(&self.found)
        )
    }
}

/// The differences between `expected` and `found`, in document order.
pub fn compare(file: &str, expected: &Value, found: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(file, String::new(), Some(expected), Some(found), &mut out);
    out
}

fn walk(file: &str, at: String, expected: Option<&Value>, found: Option<&Value>, out: &mut Vec<Difference>) {
    match (expected, found) {
        (Some(Value::Object(e)), Some(Value::Object(f))) => {
            let mut keys: Vec<&String> = e.keys().chain(f.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let next = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                walk(file, next, e.get(k), f.get(k), out);
            }
        }
        (Some(Value::Array(e)), Some(Value::Array(f))) if e.len() == f.len() => {
            for (i, (a, b)) in e.iter().zip(f).enumerate() {
                walk(file, format!("{at}/{i}"), Some(a), Some(b), out);
            }
        }
        (e, f) if e != f => out.push(Difference {
            file: file.to_string(),
            pointer: at,
            expected: e.cloned(),
            found: f.cloned(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_change_by_pointer() {
        let e = json!({"hostname": "a", "process": {"args": ["x", "y"]}, "linux": {"k": 1}});
        let f = json!({"hostname": "b", "process": {"args": ["x", "z"]}, "extra": true});
        let d: Vec<String> = compare("config.json", &e, &f).iter().map(|d| d.to_string()).collect();
        assert_eq!(
            d,
            [
                "config.json:/extra: the export writes nothing, the bundle has true",
                "config.json:/hostname: the export writes \"a\", the bundle has \"b\"",
                "config.json:/linux: the export writes {\"k\":1}, the bundle has nothing",
                "config.json:/process/args/1: the export writes \"y\", the bundle has \"z\"",
            ]
        );
        assert!(compare("config.json", &e, &e).is_empty());
    }
}
