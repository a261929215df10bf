//! Reads an MCP POST body in one pass of serde_json's tokenizer, keeping only what
//! authorization looks at: per message `jsonrpc`, `method`, `id`, whether it has `result` or
//! `error`, and `params.name` / `params.uri`. Every other value (a tool's `arguments`, a
//! result) is read through and built into nothing (`Skip`), so a body costs no tree of maps
//! and strings while serde_json's own checks (escapes, numbers, a depth limit of 128) and
//! error messages all hold: it is the same tokenizer, visiting the same values.
//!
//! Duplicate member names are refused at the top of every message and for `params.name` /
//! `params.uri`: two parsers that pick different duplicates must never see different calls.
//! What the members mean (which are required, their types) is judged by `mcp.rs`.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

/// One message as read, before `mcp.rs` judges it.
#[derive(Debug, Default, PartialEq)]
pub struct Raw {
    /// The element was a JSON object (a batch element may be anything).
    pub object: bool,
    /// `jsonrpc` is the string "2.0".
    pub version: bool,
    /// `method`: `Some(None)` when present but not a string.
    pub method: Option<Option<String>>,
    /// `id`: `Some(None)` when present but not a string, a number or null.
    pub id: Option<Option<Value>>,
    /// `params.name` and `params.uri` when `params` is an object and they are strings.
    pub name: Option<String>,
    pub uri: Option<String>,
    /// The message has a `result` or an `error` member.
    pub reply: bool,
}

/// A body: one message, or a batch (`[`…`]`, possibly empty).
#[derive(Debug, PartialEq)]
pub enum Body {
    Single(Raw),
    Batch(Vec<Raw>),
}

/// Reads `body` (leading whitespace allowed): an object is one message, an array a batch.
/// The error is serde_json's message, a duplicate member named, or that the body is
/// another kind of value.
pub fn read(body: &[u8]) -> Result<Body, String> {
    // From a slice, as everything else the filter parses: one copy of the tokenizer in the
    // module. Every string, read or skipped, is checked to be UTF-8.
    let mut de = serde_json::Deserializer::from_slice(body);
    let got = Read(Want::Top)
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    match got {
        Got::Message(raw) => Ok(Body::Single(raw)),
        Got::Batch(list) => Ok(Body::Batch(list)),
        _ => Err("the body is neither a JSON object nor an array".into()),
    }
}

fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format_args!(
        "duplicate member {:?}",
        crate::util::text::printable(name)
    ))
}

/// What the reader wants of the value at hand. One visitor serves them all, so the module
/// holds one copy of serde_json's value dispatch for this reader.
#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// The body: a message (object) or a batch (array); anything else is `Nothing`.
    Top,
    /// A batch element: a message, or any other value (`object: false`).
    Message,
    /// `params`: its `name` and `uri` strings.
    Params,
    /// A string (`jsonrpc`, `method`, `params.name`, `params.uri`).
    Text,
    /// An `id`: a string, a number or null.
    Id,
    /// Nothing: the value is read through (so serde_json checks it as it would any value:
    /// escapes, lone surrogates, UTF-8, numbers beyond `f64`, nesting past 128 levels) and
    /// built into nothing. Unlike serde's `IgnoredAny`, which skips without those checks.
    Skip,
}

/// What it got: `Nothing` when the value is not of the kind wanted (consumed all the same).
enum Got {
    Nothing,
    Text(String),
    Id(Value),
    Params(Option<String>, Option<String>),
    Message(Raw),
    Batch(Vec<Raw>),
}

struct Read(Want);

impl<'de> DeserializeSeed<'de> for Read {
    type Value = Got;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Got, D::Error> {
        d.deserialize_any(self)
    }
}

/// A scalar value as serde_json hands it over.
enum Scalar<'a> {
    Bool,
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Str(&'a str),
    Unit,
}

impl Read {
    /// What each want makes of a scalar (an `id` or a text built only when wanted).
    fn scalar<E>(self, v: Scalar<'_>) -> Result<Got, E> {
        Ok(match (self.0, v) {
            (Want::Message, _) => Got::Message(Raw::default()),
            (Want::Params, _) => Got::Params(None, None),
            (Want::Text, Scalar::Str(s)) => Got::Text(s.to_string()),
            (Want::Id, Scalar::Str(s)) => Got::Id(Value::String(s.to_string())),
            (Want::Id, Scalar::Signed(i)) => Got::Id(i.into()),
            (Want::Id, Scalar::Unsigned(u)) => Got::Id(u.into()),
            (Want::Id, Scalar::Float(f)) => {
                Got::Id(Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            (Want::Id, Scalar::Unit) => Got::Id(Value::Null),
            _ => Got::Nothing,
        })
    }

    fn text<'de, A: MapAccess<'de>>(access: &mut A) -> Result<Option<String>, A::Error> {
        Ok(match access.next_value_seed(Read(Want::Text))? {
            Got::Text(t) => Some(t),
            _ => None,
        })
    }

    fn message<'de, A: MapAccess<'de>>(mut access: A) -> Result<Raw, A::Error> {
        let mut raw = Raw {
            object: true,
            ..Raw::default()
        };
        let mut seen = 0u8;
        let mut others: Vec<String> = Vec::new();
        while let Some(key) = access.next_key_seed(KeySeed { keep_other: true })? {
            let bit = key.bit();
            if seen & bit != 0 {
                return Err(duplicate(key.name()));
            }
            seen |= bit;
            match key {
                Key::Jsonrpc => raw.version = Read::text(&mut access)?.is_some_and(|v| v == "2.0"),
                Key::Method => raw.method = Some(Read::text(&mut access)?),
                Key::Id => {
                    raw.id = Some(match access.next_value_seed(Read(Want::Id))? {
                        Got::Id(v) => Some(v),
                        _ => None,
                    })
                }
                Key::Params => {
                    if let Got::Params(name, uri) = access.next_value_seed(Read(Want::Params))? {
                        (raw.name, raw.uri) = (name, uri);
                    }
                }
                Key::Result | Key::Error => {
                    raw.reply = true;
                    access.next_value_seed(Read(Want::Skip))?;
                }
                // Not members of a message: what they hold does not matter, only that
                // each is named once.
                Key::Name | Key::Uri | Key::Other(_) => {
                    let name = key.name();
                    if others.iter().any(|o| o == name) {
                        return Err(duplicate(name));
                    }
                    others.push(name.to_string());
                    access.next_value_seed(Read(Want::Skip))?;
                }
            }
        }
        Ok(raw)
    }

    fn params<'de, A: MapAccess<'de>>(mut access: A) -> Result<Got, A::Error> {
        let (mut name, mut uri, mut seen) = (None, None, 0u8);
        while let Some(key) = access.next_key_seed(KeySeed { keep_other: false })? {
            match key {
                Key::Name | Key::Uri => {
                    if seen & key.bit() != 0 {
                        let name = if matches!(key, Key::Name) {
                            "params.name"
                        } else {
                            "params.uri"
                        };
                        return Err(duplicate(name));
                    }
                    seen |= key.bit();
                    let text = Read::text(&mut access)?;
                    if matches!(key, Key::Name) {
                        name = text;
                    } else {
                        uri = text;
                    }
                }
                _ => {
                    access.next_value_seed(Read(Want::Skip))?;
                }
            }
        }
        Ok(Got::Params(name, uri))
    }
}

impl<'de> Visitor<'de> for Read {
    type Value = Got;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Got, E> {
        self.scalar(Scalar::Bool)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Got, E> {
        self.scalar(Scalar::Signed(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Got, E> {
        self.scalar(Scalar::Unsigned(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Got, E> {
        self.scalar(Scalar::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Got, E> {
        self.scalar(Scalar::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Got, E> {
        self.scalar(Scalar::Unit)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Got, A::Error> {
        match self.0 {
            Want::Top | Want::Message => Read::message(access).map(Got::Message),
            Want::Params => Read::params(access),
            Want::Text | Want::Id | Want::Skip => {
                while access
                    .next_key_seed(KeySeed { keep_other: false })?
                    .is_some()
                {
                    access.next_value_seed(Read(Want::Skip))?;
                }
                Ok(Got::Nothing)
            }
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Got, A::Error> {
        if self.0 == Want::Top {
            let mut list = Vec::new();
            while let Some(got) = seq.next_element_seed(Read(Want::Message))? {
                if let Got::Message(raw) = got {
                    list.push(raw);
                }
            }
            return Ok(Got::Batch(list));
        }
        while seq.next_element_seed(Read(Want::Skip))?.is_some() {}
        Ok(match self.0 {
            Want::Message => Got::Message(Raw::default()),
            Want::Params => Got::Params(None, None),
            _ => Got::Nothing,
        })
    }
}

/// A member name: the ones a message or its `params` means, or another (kept to refuse a
/// duplicate).
enum Key {
    Jsonrpc,
    Method,
    Id,
    Params,
    Result,
    Error,
    Name,
    Uri,
    Other(String),
}

impl Key {
    /// Which bit of a seen-set this name takes (`Other` takes none).
    fn bit(&self) -> u8 {
        match self {
            Key::Jsonrpc => 1,
            Key::Method => 2,
            Key::Id => 4,
            Key::Params => 8,
            Key::Result => 16,
            Key::Error => 32,
            Key::Name => 64,
            Key::Uri => 128,
            Key::Other(_) => 0,
        }
    }

    fn name(&self) -> &str {
        match self {
            Key::Jsonrpc => "jsonrpc",
            Key::Method => "method",
            Key::Id => "id",
            Key::Params => "params",
            Key::Result => "result",
            Key::Error => "error",
            Key::Name => "name",
            Key::Uri => "uri",
            Key::Other(s) => s,
        }
    }
}

struct KeySeed {
    /// Keep the text of a name that is none of the known ones.
    keep_other: bool,
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "jsonrpc" => Key::Jsonrpc,
            "method" => Key::Method,
            "id" => Key::Id,
            "params" => Key::Params,
            "result" => Key::Result,
            "error" => Key::Error,
            "name" => Key::Name,
            "uri" => Key::Uri,
            other if self.keep_other => Key::Other(other.to_string()),
            _ => Key::Other(String::new()),
        })
    }
}
