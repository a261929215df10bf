//! A JSON object parser that refuses duplicate member names at the top level.
//!
//! RFC 7515 §5.2 / RFC 7519 §4: a JOSE header or claims set with duplicate member names
//! must be rejected (or parsed consistently); two `exp` or two `alg` values are a classic
//! way to make two parsers disagree, so we refuse them.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` as a JSON object with unique top-level member names.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let map = (&mut de)
        .deserialize_map(UniqueObject)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(map)
}

struct UniqueObject;

impl<'de> Visitor<'de> for UniqueObject {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: Value = access.next_value()?;
            if map.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate member {:?}",
                    crate::signature::printable(&key)
                )));
            }
            map.insert(key, value);
        }
        Ok(map)
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
}
