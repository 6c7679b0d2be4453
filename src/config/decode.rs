//! Typed decoding of a [`Node`] tree that reports every problem, not only the first.
//!
//! serde stops at the first error; a linter must not. Each table of the format is
//! declared once with [`toml_table!`]: the macro writes the struct (whose doc
//! comments feed the JSON Schema), its list of keys, and a decoder that records an
//! unknown key or a wrong type and carries on with the next key.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::node::{Node, Table, Value};
use crate::diag::{Code, Diagnostic, Span};

/// A value and the span of its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// A table field: the value, its span, and the span of its key.
#[derive(Clone, Debug, PartialEq)]
pub struct Field<T> {
    /// The value.
    pub value: T,
    /// Where the value was written.
    pub span: Span,
    /// Where the key was written.
    pub key_span: Span,
}

impl<T> Field<T> {
    /// The value with its span, dropping the key's.
    pub fn spanned(&self) -> Spanned<&T> {
        Spanned {
            value: &self.value,
            span: self.span,
        }
    }
}

macro_rules! transparent_schema {
    ($ty:ident) => {
        impl<T: JsonSchema> JsonSchema for $ty<T> {
            fn inline_schema() -> bool {
                T::inline_schema()
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                T::schema_name()
            }
            fn schema_id() -> std::borrow::Cow<'static, str> {
                T::schema_id()
            }
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                T::json_schema(generator)
            }
        }
    };
}
transparent_schema!(Spanned);
transparent_schema!(Field);

/// Collects diagnostics while decoding, and knows where in the document it is.
pub struct Decoder<'a> {
    diags: &'a mut Vec<Diagnostic>,
    path: Vec<String>,
}

impl<'a> Decoder<'a> {
    /// A decoder that appends to `diags`.
    pub fn new(diags: &'a mut Vec<Diagnostic>) -> Self {
        Decoder {
            diags,
            path: Vec::new(),
        }
    }

    /// Records a diagnostic.
    pub fn report(&mut self, diag: Diagnostic) {
        self.diags.push(diag);
    }

    /// The dotted path of the key being decoded, such as `network.ipv4`.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for part in &self.path {
            if !out.is_empty() && !part.starts_with('[') {
                out.push('.');
            }
            out.push_str(part);
        }
        out
    }

    /// Runs `f` with `part` appended to the path.
    pub fn nested<R>(&mut self, part: impl Into<String>, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(part.into());
        let out = f(self);
        self.path.pop();
        out
    }

    /// Reports that `node` has the wrong type.
    pub fn wrong_type(&mut self, node: &Node, expected: &str) {
        let path = self.path();
        let what = if path.is_empty() {
            "the document".to_string()
        } else {
            format!("`{path}`")
        };
        self.report(
            Diagnostic::new(
                Code::WrongType,
                node.span,
                format!("{what} must be {expected}, found {}", node.value.type_name()),
            )
            .label(format!("expected {expected}")),
        );
    }

    /// Reports an unknown key, suggesting the closest valid one.
    pub fn unknown_key(&mut self, key: &str, span: Span, valid: &[&str]) {
        let path = self.path();
        let message = if path.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!("unknown key `{key}` in `{path}`")
        };
        let help = match did_you_mean(key, valid) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("valid keys here: {}", valid.join(", ")),
        };
        self.report(Diagnostic::new(Code::UnknownKey, span, message).help(help));
    }

    /// Reports a word outside a closed set.
    pub fn unknown_value(&mut self, value: &str, span: Span, valid: &[&str]) {
        let path = self.path();
        let help = match did_you_mean(value, valid) {
            Some(close) => format!("did you mean \"{close}\"? valid values: {}", valid.join(", ")),
            None => format!("valid values: {}", valid.join(", ")),
        };
        self.report(Diagnostic::new(Code::UnknownValue, span, format!("`{path}` cannot be \"{value}\"")).help(help));
    }
}

/// The closest candidate to `word`, if one is close enough to be a typo.
pub fn did_you_mean<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance with transpositions (optimal string alignment), ASCII-folded.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_ascii_lowercase().chars().collect();
    let b: Vec<char> = b.to_ascii_lowercase().chars().collect();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// A type that can be read from a [`Node`], reporting problems to a [`Decoder`].
pub trait Decode: Sized {
    /// What a value must look like, for "must be X" messages.
    fn expected() -> String;

    /// Decodes `node`, or reports why not and returns `None`.
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self>;
}

impl Decode for String {
    fn expected() -> String {
        "a string".into()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        match &node.value {
            // No key of the format can carry a NUL: every string ends up in a
            // system call or a file that stops at the first one.
            Value::String(s) if s.contains('\0') => {
                let path = d.path();
                d.report(
                    Diagnostic::new(Code::NulByte, node.span, format!("`{path}` contains a NUL character"))
                        .help("remove the \\u0000 escape"),
                );
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                d.wrong_type(node, &Self::expected());
                None
            }
        }
    }
}

impl Decode for bool {
    fn expected() -> String {
        "true or false".into()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        match node.value {
            Value::Boolean(b) => Some(b),
            _ => {
                d.wrong_type(node, &Self::expected());
                None
            }
        }
    }
}

impl Decode for i64 {
    fn expected() -> String {
        "an integer".into()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        match node.value {
            Value::Integer(n) => Some(n),
            _ => {
                d.wrong_type(node, &Self::expected());
                None
            }
        }
    }
}

impl Decode for f64 {
    fn expected() -> String {
        "a number".into()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        match node.value {
            Value::Float(f) => Some(f),
            Value::Integer(n) => Some(n as f64),
            _ => {
                d.wrong_type(node, &Self::expected());
                None
            }
        }
    }
}

impl<T: Decode> Decode for Spanned<T> {
    fn expected() -> String {
        T::expected()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        T::decode(node, d).map(|value| Spanned { value, span: node.span })
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn expected() -> String {
        format!(
            "a list of {}",
            T::expected().trim_start_matches("a ").trim_start_matches("an ")
        )
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        let Value::Array(items) = &node.value else {
            d.wrong_type(node, &Self::expected());
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match d.nested(format!("[{i}]"), |d| T::decode(item, d)) {
                Some(v) => out.push(v),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }
}

/// A table with keys chosen by the user (such as `env`), in key order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map<T>(pub Vec<(Spanned<String>, Spanned<T>)>);

impl<T: Decode> Decode for Map<T> {
    fn expected() -> String {
        format!(
            "a table of {}",
            T::expected().trim_start_matches("a ").trim_start_matches("an ")
        )
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        let Value::Table(table) = &node.value else {
            d.wrong_type(node, &Self::expected());
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for entry in table.iter() {
            let key = Spanned {
                value: entry.key.clone(),
                span: entry.key_span,
            };
            match d.nested(entry.key.clone(), |d| Spanned::<T>::decode(&entry.value, d)) {
                Some(v) => out.push((key, v)),
                None => ok = false,
            }
        }
        ok.then_some(Map(out))
    }
}

impl<T: JsonSchema> JsonSchema for Map<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let inner = generator.subschema_for::<T>();
        json_schema!({ "type": "object", "additionalProperties": inner })
    }
}

/// An integer or a string: user ids or names, sizes as bytes or "512M", and so on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntOrText {
    /// Written as a TOML integer.
    Int(i64),
    /// Written as a TOML string.
    Text(String),
}

impl fmt::Display for IntOrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrText::Int(n) => write!(f, "{n}"),
            IntOrText::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

impl Decode for IntOrText {
    fn expected() -> String {
        "an integer or a string".into()
    }
    fn decode(node: &Node, d: &mut Decoder<'_>) -> Option<Self> {
        match &node.value {
            Value::Integer(n) => Some(IntOrText::Int(*n)),
            Value::String(s) => Some(IntOrText::Text(s.clone())),
            _ => {
                d.wrong_type(node, &Self::expected());
                None
            }
        }
    }
}

impl JsonSchema for IntOrText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "IntOrText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": ["integer", "string"] })
    }
}

/// Decodes a table's known keys with `field`, reporting unknown ones. Used by
/// [`toml_table!`]; returns `None` when `node` is not a table.
pub fn decode_table(
    node: &Node,
    d: &mut Decoder<'_>,
    keys: &[&str],
    mut field: impl FnMut(&str, &super::node::Entry, &mut Decoder<'_>),
) -> Option<()> {
    let Value::Table(table) = &node.value else {
        d.wrong_type(node, "a table");
        return None;
    };
    decode_entries(table, d, keys, &mut field);
    Some(())
}

fn decode_entries(
    table: &Table,
    d: &mut Decoder<'_>,
    keys: &[&str],
    field: &mut impl FnMut(&str, &super::node::Entry, &mut Decoder<'_>),
) {
    for entry in table.iter() {
        if keys.contains(&entry.key.as_str()) {
            d.nested(entry.key.clone(), |d| field(&entry.key, entry, d));
        } else {
            d.unknown_key(&entry.key, entry.key_span, keys);
        }
    }
}

/// Decodes one field's value, keeping both spans.
pub fn decode_field<T: Decode>(entry: &super::node::Entry, d: &mut Decoder<'_>) -> Option<Field<T>> {
    T::decode(&entry.value, d).map(|value| Field {
        value,
        span: entry.value.span,
        key_span: entry.key_span,
    })
}

/// Declares one table of the format: the struct, its keys, and its decoder.
macro_rules! toml_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        $vis struct $name {
            $(
                $(#[$fmeta])*
                #[serde(rename = $key)]
                pub $field: Option<$crate::config::decode::Field<$ty>>,
            )*
            /// Keys that were present but could not be decoded (already reported).
            #[schemars(skip)]
            pub invalid: Vec<&'static str>,
        }

        impl $name {
            /// Every key of this table, as written in TOML.
            pub const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl $crate::config::decode::Decode for $name {
            fn expected() -> String {
                "a table".into()
            }
            fn decode(
                node: &$crate::config::node::Node,
                d: &mut $crate::config::decode::Decoder<'_>,
            ) -> Option<Self> {
                let mut out = Self::default();
                $crate::config::decode::decode_table(node, d, Self::KEYS, |key, entry, d| {
                    match key {
                        $( $key => {
                            out.$field = $crate::config::decode::decode_field(entry, d);
                            if out.$field.is_none() {
                                out.invalid.push($key);
                            }
                        } )*
                        _ => unreachable!("decode_table passes known keys only"),
                    }
                })?;
                Some(out)
            }
        }
    };
}

/// Declares a closed set of words, such as the `allow` entries.
macro_rules! toml_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, schemars::JsonSchema,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// Every value as written in TOML.
            pub const WORDS: &'static [&'static str] = &[$($word),*];

            /// The value as written in TOML.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $word,)* }
            }

            /// The value written as `word`, if any.
            pub fn from_word(word: &str) -> Option<Self> {
                match word { $($word => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::config::decode::Decode for $name {
            fn expected() -> String {
                format!("one of {}", Self::WORDS.iter().map(|w| format!("\"{w}\"")).collect::<Vec<_>>().join(", "))
            }
            fn decode(
                node: &$crate::config::node::Node,
                d: &mut $crate::config::decode::Decoder<'_>,
            ) -> Option<Self> {
                let word = <String as $crate::config::decode::Decode>::decode(node, d)?;
                let found = Self::from_word(&word);
                if found.is_none() {
                    d.unknown_value(&word, node.span, Self::WORDS);
                }
                found
            }
        }
    };
}

pub(crate) use {toml_enum, toml_table};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_and_not_unrelated_words() {
        let keys = ["hostname", "host-user", "path", "command"];
        assert_eq!(did_you_mean("hostnme", &keys), Some("hostname"));
        assert_eq!(did_you_mean("comand", &keys), Some("command"));
        assert_eq!(did_you_mean("hsotname", &keys), Some("hostname"));
        assert_eq!(did_you_mean("colour", &keys), None);
        assert_eq!(did_you_mean("pth", &keys), Some("path"));
    }
}
