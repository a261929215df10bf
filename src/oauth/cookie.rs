//! Cookies the consent flow sets and reads. On an https façade every name carries the
//! `__Host-` prefix (Secure, `Path=/`, no `Domain`: a sibling subdomain cannot plant or
//! shadow it); all are HttpOnly and `SameSite=Lax` (the IdP's redirect back to the callback
//! is a top-level GET, which Lax still sends).

/// The full cookie name for `base` (`__Host-` prefixed when `secure`).
pub fn name(base: &str, secure: bool) -> String {
    if secure {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A `Set-Cookie` value. `max_age` 0 deletes.
pub fn set(base: &str, value: &str, secure: bool, max_age: u64) -> String {
    let mut out = format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax",
        name(base, secure)
    );
    if secure {
        out.push_str("; Secure");
    }
    out
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear(base: &str, secure: bool) -> String {
    set(base, "", secure, 0)
}

/// The value of cookie `base` (prefixed when `secure`) in the request's `Cookie` header
/// values. A name sent twice is ambiguous (a planted copy): treated as absent.
pub fn get<'a>(headers: &[&'a str], base: &str, secure: bool) -> Option<&'a str> {
    let wanted = name(base, secure);
    let mut found = None;
    for header in headers {
        for pair in header.split(';') {
            let Some((n, v)) = pair.split_once('=') else {
                continue;
            };
            if n.trim() == wanted {
                if found.is_some() {
                    return None;
                }
                found = Some(v.trim().trim_matches('"'));
            }
        }
    }
    found.filter(|v| !v.is_empty())
}

/// Fuzz entry: looks up a fixed name in arbitrary header bytes.
pub fn fuzz_get(input: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(input).ok()?;
    get(&[text], "mcp-consent", true).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get() {
        assert_eq!(
            set("mcp-bind", "abc", true, 600),
            "__Host-mcp-bind=abc; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            clear("mcp-bind", false),
            "mcp-bind=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        let h = ["a=1; __Host-mcp-bind=xyz ; mcp-bind=plain", "other=2"];
        assert_eq!(get(&h, "mcp-bind", true), Some("xyz"));
        assert_eq!(get(&h, "mcp-bind", false), Some("plain"));
        assert_eq!(get(&h, "other", false), Some("2"));
        assert_eq!(get(&h, "missing", false), None);
    }

    #[test]
    fn unprefixed_copy_does_not_count_on_https_and_duplicates_are_refused() {
        assert_eq!(get(&["mcp-bind=planted"], "mcp-bind", true), None);
        assert_eq!(get(&["mcp-bind=a; mcp-bind=b"], "mcp-bind", false), None);
        assert_eq!(get(&["mcp-bind=a", "mcp-bind=b"], "mcp-bind", false), None);
        assert_eq!(get(&["mcp-bind="], "mcp-bind", false), None);
        assert_eq!(fuzz_get(b"__Host-mcp-consent=\"q\""), Some("q".into()));
        assert_eq!(fuzz_get(&[0xff]), None);
    }
}
