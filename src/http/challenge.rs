//! 400/401/403 answers and their `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3,
//! RFC 9728 §5.1): each parameter at most once, every value quoted, values restricted to
//! the characters the grammar allows so a hostile token can never inject header syntax.

use std::borrow::Cow;

use crate::http::response::{Response, EXPOSE_HEADERS};

/// The `error_description` of the 401 for a request without a token.
const MISSING_TOKEN: &str = "a Bearer access token is required";

/// RFC 6750 §3.1 error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl BearerError {
    pub fn code(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            BearerError::InvalidRequest => 400,
            BearerError::InvalidToken => 401,
            BearerError::InsufficientScope => 403,
        }
    }
}

/// What a challenge says. `error: None` is the "no credentials" challenge.
#[derive(Clone, Debug, Default)]
pub struct Challenge<'a> {
    pub error: Option<BearerError>,
    pub description: Option<&'a str>,
    pub resource_metadata: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// Keeps only `%x20-21 / %x23-5B / %x5D-7E` (RFC 6750 `error_description`): no quotes,
/// backslashes, control or non-ASCII characters. Borrows when there is nothing to drop.
pub fn sanitize(value: &str) -> Cow<'_, str> {
    let allowed = |c: u32| matches!(c, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
    if value.bytes().all(|b| allowed(u32::from(b))) {
        return Cow::Borrowed(value); // the usual case
    }
    Cow::Owned(value.chars().filter(|c| allowed(*c as u32)).collect())
}

/// Scope tokens (`%x21 / %x23-5B / %x5D-7E`) separated by single spaces. Borrows when the
/// value already is exactly that.
fn sanitize_scope(value: &str) -> Cow<'_, str> {
    let clean = !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
        && value.bytes().all(|b| b == b' ' || scope_char(u32::from(b)));
    if clean {
        return Cow::Borrowed(value);
    }
    Cow::Owned(scope_tokens(value))
}

fn scope_char(c: u32) -> bool {
    matches!(c, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// Each space-separated token cleaned of other characters, empty ones dropped.
fn scope_tokens(value: &str) -> String {
    value
        .split(' ')
        .map(|t| {
            t.chars()
                .filter(|c| scope_char(*c as u32))
                .collect::<String>()
        })
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Challenge<'_> {
    /// The `WWW-Authenticate` header value, written into one string.
    pub fn header_value(&self) -> String {
        let mut out = String::with_capacity(
            64 + self.description.map_or(0, str::len)
                + self.resource_metadata.map_or(0, str::len)
                + self.scope.map_or(0, str::len),
        );
        out.push_str("Bearer");
        let mut first = true;
        let mut param = |name: &str, value: &str| {
            out.push_str(if first { " " } else { ", " });
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        };
        if let Some(e) = self.error {
            param("error", e.code());
            if let Some(d) = self.description {
                let d = sanitize(d);
                if !d.is_empty() {
                    param("error_description", &d);
                }
            }
        }
        if let Some(url) = self.resource_metadata {
            param("resource_metadata", &sanitize(url));
        }
        if let Some(scope) = self.scope {
            let s = sanitize_scope(scope);
            if !s.is_empty() {
                param("scope", &s);
            }
        }
        out
    }

    /// The whole response: status from the error code (401 without one), the challenge,
    /// a JSON error body, and CORS headers so browsers can read the challenge.
    pub fn response(&self) -> Response {
        let status = self.error.map_or(401, BearerError::status);
        let (code, description) = match self.error {
            Some(e) => (e.code(), sanitize(self.description.unwrap_or(""))),
            // No token at all: a fixed text, clean as written.
            None => ("unauthorized", Cow::Borrowed(MISSING_TOKEN)),
        };
        Response::new(status)
            .header("www-authenticate", self.header_value())
            .header("access-control-allow-origin", "*")
            .header("access-control-expose-headers", EXPOSE_HEADERS)
            .header("cache-control", "no-store")
            .error_body(code, &description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_token_text_needs_no_cleaning() {
        assert_eq!(sanitize(MISSING_TOKEN), MISSING_TOKEN);
    }

    #[test]
    fn scope_fast_path_matches_the_token_by_token_cleanup() {
        for v in [
            "",
            " ",
            "a",
            "a b",
            "a  b",
            " a b",
            "a b ",
            "api://x/a api://x/b",
            "a\"b",
            "a\\b c",
            "a\tb",
            "é a",
            "a\u{7f}",
            "a,b",
        ] {
            let fast = sanitize_scope(v);
            assert_eq!(fast, scope_tokens(v), "{v:?}");
            assert_eq!(matches!(fast, Cow::Borrowed(_)), fast == v, "{v:?}");
        }
    }

    #[test]
    fn missing_token_challenge_has_no_error() {
        let c = Challenge {
            resource_metadata: Some(
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
            ),
            scope: Some("api://x/a api://x/b"),
            ..Challenge::default()
        };
        assert_eq!(
            c.header_value(),
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"api://x/a api://x/b\""
        );
        let r = c.response();
        assert_eq!(r.status, 401);
        assert_eq!(
            r.get_header("access-control-expose-headers"),
            Some(EXPOSE_HEADERS)
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "unauthorized");
    }

    #[test]
    fn invalid_token_challenge_is_sanitized() {
        let c = Challenge {
            error: Some(BearerError::InvalidToken),
            description: Some("issuer \"evil\\\" injected\r\nX: y é"),
            resource_metadata: Some("https://a/\".well-known"),
            scope: Some("  a\"b  c "),
        };
        let v = c.header_value();
        assert_eq!(
            v,
            "Bearer error=\"invalid_token\", error_description=\"issuer evil injectedX: y \", resource_metadata=\"https://a/.well-known\", scope=\"ab c\""
        );
        assert_eq!(v.matches("error=").count(), 1);
        assert_eq!(v.matches("error_description=").count(), 1);
        let r = c.response();
        assert_eq!(r.status, 401);
        assert_eq!(
            BearerError::InvalidRequest.status(),
            400,
            "invalid_request is a 400"
        );
        assert_eq!(BearerError::InsufficientScope.status(), 403);
    }

    #[test]
    fn sanitize_keeps_only_grammar_chars() {
        let all: String = (0u8..=255).map(char::from).collect();
        let s = sanitize(&all);
        assert!(s
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'));
        assert_eq!(s.len(), 95 - 2);
    }
}
