//! Challenge rendering: whatever the description, scope and URL, the WWW-Authenticate value
//! is a valid header value: `Bearer` then `name="value"` pairs, each name once, no quote or
//! backslash inside a value, visible ASCII only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::http::challenge::{BearerError, Challenge};

/// Parses `Bearer a="x", b="y"`; returns the names, or None if malformed.
fn params(v: &str) -> Option<Vec<String>> {
    let mut rest = v.strip_prefix("Bearer")?;
    let mut names = Vec::new();
    if rest.is_empty() {
        return Some(names);
    }
    rest = rest.strip_prefix(' ')?;
    loop {
        let eq = rest.find("=\"")?;
        let name = &rest[..eq];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        names.push(name.to_string());
        let after = &rest[eq + 2..];
        let close = after.find('"')?;
        if after[..close].contains('\\') {
            return None;
        }
        rest = &after[close + 1..];
        if rest.is_empty() {
            return Some(names);
        }
        rest = rest.strip_prefix(", ")?;
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\u{1}');
    let description = parts.next().unwrap_or("");
    let scope = parts.next().unwrap_or("");
    let url = parts.next().unwrap_or("");
    for error in [
        None,
        Some(BearerError::InvalidToken),
        Some(BearerError::InsufficientScope),
    ] {
        let c = Challenge {
            error,
            description: Some(description),
            resource_metadata: Some(url),
            scope: Some(scope),
        };
        let v = c.header_value();
        assert!(
            v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()),
            "not a header value: {v:?}"
        );
        let names = params(&v).unwrap_or_else(|| panic!("malformed challenge: {v:?}"));
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "repeated parameter: {v:?}");
        let body = c.response().body;
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
    }
});
