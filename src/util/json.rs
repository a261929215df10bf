//! JSON parsers that refuse duplicate member names.
//!
//! RFC 7515 §5.2 / RFC 7519 §4: a JOSE header or claims set with duplicate member names
//! must be rejected (or parsed consistently); two `exp` or two `alg` values are a classic
//! way to make two parsers disagree, so we refuse them ([`parse_object`], top level).
//! The plugin configuration gets the same treatment at every depth ([`parse_strict`]): a
//! second `issuer` or a provider named twice is a mistake, never an override.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as a JSON object with unique top-level member names.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // deserialize_any, not deserialize_map: every kind of value lands in this visitor, so
    // serde_json's "invalid type" path (and the float formatting it links) is never used.
    let map = (&mut de)
        .deserialize_any(UniqueObject)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(map)
}

struct UniqueObject;

fn not_an_object<E: serde::de::Error>() -> E {
    E::custom("expected a JSON object")
}

impl<'de> Visitor<'de> for UniqueObject {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Err(not_an_object())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(not_an_object())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {:?}",
                    crate::util::text::printable(&key)
                )));
            }
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// Parses a whole JSON document, refusing duplicate member names at any depth. The error
/// carries the path of the innermost value being read (`providers.entra.issuer`,
/// `rules[2]`; empty at the top) and serde_json's message.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, (String, String)> {
    let failed_at = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        path: String::new(),
        failed_at: &failed_at,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| (failed_at.into_inner().unwrap_or_default(), e.to_string()))
}

/// One value at `path`; records `path` in `failed_at` when reading it fails (the innermost
/// failure wins: outer values only fill an empty slot).
struct Strict<'a> {
    path: String,
    failed_at: &'a RefCell<Option<String>>,
}

impl Strict<'_> {
    fn child(&self, segment: fmt::Arguments<'_>) -> Self {
        Strict {
            path: format!("{}{segment}", self.path),
            failed_at: self.failed_at,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        let (failed_at, path) = (self.failed_at, self.path.clone());
        d.deserialize_any(self).inspect_err(|_| {
            failed_at.borrow_mut().get_or_insert(path);
        })
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) =
            seq.next_element_seed(self.child(format_args!("[{}]", items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let sep = if self.path.is_empty() { "" } else { "." };
            let child = self.child(format_args!("{sep}{key}"));
            if map.contains_key(&key) {
                self.failed_at.borrow_mut().get_or_insert(child.path);
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {:?}",
                    crate::util::text::printable(&key)
                )));
            }
            let value = access.next_value_seed(child)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_objects_and_refuses_duplicates_and_non_objects() {
        assert!(parse_object(br#"{"a":1,"b":{"a":1,"a":2}}"#).is_ok());
        let err = parse_object(br#"{"exp":1,"exp":2}"#).unwrap_err();
        assert!(err.contains("duplicate member \"exp\""), "{err}");
        assert!(parse_object(b"[1,2]").is_err());
        assert!(parse_object(b"\"x\"").is_err());
        assert!(parse_object(b"{} trailing").is_err());
        assert!(parse_object(b"").is_err());
    }

    #[test]
    fn strict_parse_refuses_duplicates_at_any_depth_and_names_the_path() {
        let v = parse_strict(br#"{"a":[1,-2,3.5,"x",true,null,{"b":{}}]}"#).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a":[1,-2,3.5,"x",true,null,{"b":{}}]})
        );
        let (path, msg) = parse_strict(br#"{"p":{"e":{"issuer":"a","issuer":"b"}}}"#).unwrap_err();
        assert_eq!(path, "p.e.issuer");
        assert!(msg.starts_with("duplicate member \"issuer\""), "{msg}");
        let (path, _) = parse_strict(br#"{"p":{"e":{},"e":{}}}"#).unwrap_err();
        assert_eq!(path, "p.e");
        let (path, _) = parse_strict(br#"{"rules":[{},{"x":}]}"#).unwrap_err();
        assert_eq!(path, "rules[1].x");
        let (path, msg) = parse_strict(br#"{"a":1} x"#).unwrap_err();
        assert_eq!(path, "");
        assert!(msg.starts_with("trailing characters"), "{msg}");
        assert!(parse_strict(b"").is_err());
    }
}
