//! A TOML document as a tree whose every key and value knows its file and span.
//!
//! Values from several files (a definition and the bases it extends) can be merged
//! into one tree and still point back at the file each came from.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use crate::diag::{self, Code, Diagnostic, FileId, Span};

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// The value's text.
    pub span: Span,
}

/// A TOML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    String(String),
    /// An integer that fits in 64 bits.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A date or time, kept as written (the format has no such key).
    Datetime(String),
    /// An array.
    Array(Vec<Node>),
    /// A table.
    Table(Table),
}

impl Value {
    /// The TOML name of the value's type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }
}

/// A key, its span, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key as written (unquoted).
    pub key: String,
    /// Where the key was written.
    pub key_span: Span,
    /// The value.
    pub value: Node,
}

/// A table, keys in sorted order so that everything derived from it is deterministic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    entries: BTreeMap<String, Entry>,
}

impl Table {
    /// The entry for `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Removes and returns the entry for `key`.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        self.entries.remove(key)
    }

    /// Inserts an entry, replacing one with the same key.
    pub fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.key.clone(), entry);
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// True when the table has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Layers `over` on top of `self`, the one rule `extends` uses: tables merge key
    /// by key, recursively; any other value (arrays included) in `over` replaces the
    /// one below it.
    pub fn layer(&mut self, over: Table) {
        for (key, entry) in over.entries {
            match (self.entries.get_mut(&key), entry.value.value) {
                (
                    Some(Entry {
                        value:
                            Node {
                                value: Value::Table(below),
                                ..
                            },
                        ..
                    }),
                    Value::Table(above),
                ) => below.layer(above),
                (_, value) => {
                    let entry = Entry {
                        value: Node {
                            value,
                            span: entry.value.span,
                        },
                        ..entry
                    };
                    self.entries.insert(key, entry);
                }
            }
        }
    }
}

/// Parses TOML text into a tree. Syntax errors are all reported (the parser
/// recovers), with their spans; the tree holds what could be read.
pub fn parse(file: FileId, text: &str) -> (Table, Vec<Diagnostic>) {
    let (doc, mut errors) = DeTable::parse_recoverable(text);
    // A hostile file holds an error every byte or two: only those that can be
    // shown become diagnostics, and one more stands for the rest.
    errors.sort_by_key(|e| e.span().map(|r| (r.start, r.end)));
    let span = |e: &toml::de::Error| e.span().map_or(Span::file_start(file), |r| Span::new(file, r));
    let mut diags: Vec<Diagnostic> = errors
        .iter()
        .take(diag::MAX_SHOWN)
        .map(|e| {
            Diagnostic::new(Code::TomlSyntax, span(e), first_line(e.message()))
                .help("see sysjail.toml(5) for the format; TOML itself is described at https://toml.io")
        })
        .collect();
    if let Some(first) = errors.get(diag::MAX_SHOWN) {
        let left_out = diag::Omitted {
            errors: errors.len() - diag::MAX_SHOWN,
            warnings: 0,
        };
        diags.push(diag::more(span(first), left_out));
    }
    let mut table = Table::default();
    if diags.is_empty() {
        table = convert_table(file, doc.get_ref(), &mut diags);
    }
    (table, diags)
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}

fn convert_table(file: FileId, table: &DeTable<'_>, diags: &mut Vec<Diagnostic>) -> Table {
    let mut out = Table::default();
    for (key, value) in table.iter() {
        let key_span = Span::new(file, key.span());
        let value = convert(file, value.get_ref(), Span::new(file, value.span()), diags);
        out.insert(Entry {
            key: key.get_ref().to_string(),
            key_span,
            value,
        });
    }
    out
}

fn convert(file: FileId, value: &DeValue<'_>, span: Span, diags: &mut Vec<Diagnostic>) -> Node {
    let value = match value {
        DeValue::String(s) => Value::String(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Integer(n),
            Err(_) => {
                diags.push(
                    Diagnostic::new(Code::TomlSyntax, span, "integer does not fit in 64 bits")
                        .help("TOML integers range from -2^63 to 2^63-1"),
                );
                Value::Integer(0)
            }
        },
        DeValue::Float(f) => Value::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Boolean(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| convert(file, item.get_ref(), Span::new(file, item.span()), diags))
                .collect(),
        ),
        DeValue::Table(t) => Value::Table(convert_table(file, t, diags)),
    };
    Node { value, span }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceMap;

    fn tree(text: &str) -> (Table, SourceMap) {
        let mut map = SourceMap::new();
        let id = map.add("t.toml", text);
        let (table, diags) = parse(id, text);
        assert!(diags.is_empty(), "{diags:?}");
        (table, map)
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let (t, map) = tree("name = \"web\"\n[network]\nipv4 = [\"192.0.2.1\"]\n");
        let name = t.get("name").unwrap();
        assert_eq!(map.snippet(name.key_span), "name");
        assert_eq!(map.snippet(name.value.span), "\"web\"");
        let Value::Table(net) = &t.get("network").unwrap().value.value else {
            panic!()
        };
        let Value::Array(v4) = &net.get("ipv4").unwrap().value.value else {
            panic!()
        };
        assert_eq!(map.snippet(v4[0].span), "\"192.0.2.1\"");
    }

    #[test]
    fn syntax_errors_are_all_reported_with_spans() {
        let mut map = SourceMap::new();
        let text = "a = \nb = [1,\n";
        let id = map.add("t.toml", text);
        let (_, diags) = parse(id, text);
        assert!(!diags.is_empty());
        assert!(diags.iter().all(|d| d.code == Code::TomlSyntax));
    }

    #[test]
    fn layering_merges_tables_and_replaces_the_rest() {
        let (mut base, _) = tree("a = 1\nlist = [1, 2]\n[t]\nx = 1\ny = 2\n");
        let (over, _) = tree("list = [3]\n[t]\ny = 20\nz = 30\n");
        base.layer(over);
        let get = |t: &Table, k: &str| t.get(k).unwrap().value.value.clone();
        assert_eq!(get(&base, "a"), Value::Integer(1));
        let Value::Array(list) = get(&base, "list") else {
            panic!()
        };
        assert_eq!(list.len(), 1);
        let Value::Table(t) = get(&base, "t") else { panic!() };
        assert_eq!(get(&t, "x"), Value::Integer(1));
        assert_eq!(get(&t, "y"), Value::Integer(20));
        assert_eq!(get(&t, "z"), Value::Integer(30));
    }
}
