//! Remote key sources on the wire: the callout request for a URI, and what a JWKS or OIDC
//! discovery response must look like to be accepted. Pure: status and body in, keys or a
//! precise error out.

use std::fmt;

use crate::keys::jwks::KeySet;
use crate::util::text::printable;

/// Default cap on a JWKS or discovery response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// An absolute http(s) URI split the way `dispatch_http_call` needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub scheme: String,
    pub authority: String,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Target {
    pub fn parse(uri: &str) -> Result<Target, String> {
        let bad = || format!("{:?} is not an absolute http(s) URI", printable(uri));
        let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
        if scheme != "https" && scheme != "http" {
            return Err(bad());
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = rest.get(..split).unwrap_or("");
        let path = rest.get(split..).unwrap_or("");
        let valid_authority = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
        if !valid_authority || uri.contains('#') || !uri.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad());
        }
        let path = if path.is_empty() || path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Target {
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            path,
        })
    }

    /// Headers for a GET callout.
    pub fn request_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (":method", "GET".to_string()),
            (":path", self.path.clone()),
            (":authority", self.authority.clone()),
            (":scheme", self.scheme.clone()),
            ("accept", "application/json".to_string()),
            ("user-agent", "mcp-edge-auth".to_string()),
        ]
    }
}

/// Why a fetch did not produce keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// No response (timeout, reset, no healthy upstream, unknown cluster).
    NoResponse,
    /// The callout could not even be sent.
    Dispatch(String),
    Status(String),
    TooLarge {
        size: usize,
        limit: usize,
    },
    Empty,
    NotJson(String),
    NoUsableKeys(String),
    IssuerMismatch {
        expected: String,
        found: String,
    },
    NoJwksUri,
    BadJwksUri(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NoResponse => write!(f, "no response (timeout or connection failure)"),
            FetchError::Dispatch(e) => write!(f, "callout not sent: {e}"),
            FetchError::Status(s) => write!(f, "HTTP status {}", printable(s)),
            FetchError::TooLarge { size, limit } => {
                write!(f, "response of {size} bytes exceeds the {limit}-byte limit")
            }
            FetchError::Empty => write!(f, "empty response body"),
            FetchError::NotJson(e) => write!(f, "response is not a JSON document: {e}"),
            FetchError::NoUsableKeys(s) => write!(f, "JWKS has no usable key ({s})"),
            FetchError::IssuerMismatch { expected, found } => write!(
                f,
                "discovery document issuer {:?} differs from the configured issuer {:?}",
                printable(found),
                printable(expected)
            ),
            FetchError::NoJwksUri => write!(f, "discovery document has no jwks_uri"),
            FetchError::BadJwksUri(e) => write!(f, "discovery jwks_uri: {e}"),
        }
    }
}

fn check_body<'a>(
    status: Option<&str>,
    body: Option<&'a [u8]>,
    body_size: usize,
    limit: usize,
) -> Result<&'a [u8], FetchError> {
    match status {
        None => return Err(FetchError::NoResponse),
        Some("200") => {}
        Some(other) => return Err(FetchError::Status(other.to_string())),
    }
    if body_size > limit {
        return Err(FetchError::TooLarge {
            size: body_size,
            limit,
        });
    }
    match body {
        Some(b) if b.len() > limit => Err(FetchError::TooLarge {
            size: b.len(),
            limit,
        }),
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => Ok(b),
        _ => Err(FetchError::Empty),
    }
}

/// Accepts a JWKS response: status 200, within the cap, a JWKS with at least one usable key.
pub fn jwks_response(
    status: Option<&str>,
    body: Option<&[u8]>,
    body_size: usize,
    limit: usize,
) -> Result<KeySet, FetchError> {
    let body = check_body(status, body, body_size, limit)?;
    let set = KeySet::parse(body).map_err(|e| FetchError::NotJson(e.to_string()))?;
    if set.is_empty() {
        return Err(FetchError::NoUsableKeys(set.summary()));
    }
    Ok(set)
}

/// Accepts an OIDC discovery / RFC 8414 document: its `issuer` must equal the provider's
/// issuer exactly; returns its `jwks_uri`.
pub fn discovery_response(
    status: Option<&str>,
    body: Option<&[u8]>,
    body_size: usize,
    limit: usize,
    expected_issuer: &str,
) -> Result<String, FetchError> {
    let body = check_body(status, body, body_size, limit)?;
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| FetchError::NotJson(e.to_string()))?;
    let found = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
    if found != expected_issuer {
        return Err(FetchError::IssuerMismatch {
            expected: expected_issuer.to_string(),
            found: found.to_string(),
        });
    }
    let uri = doc
        .get("jwks_uri")
        .and_then(|v| v.as_str())
        .ok_or(FetchError::NoJwksUri)?;
    Target::parse(uri).map_err(FetchError::BadJwksUri)?;
    Ok(uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 4096;

    fn ed_jwks() -> Vec<u8> {
        serde_json::json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x": crate::crypto::b64::encode(&[3u8;32])}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn targets() {
        let t = Target::parse("https://login.example.com/t/discovery/v2.0/keys?x=1").unwrap();
        assert_eq!(t.authority, "login.example.com");
        assert_eq!(t.path, "/t/discovery/v2.0/keys?x=1");
        assert_eq!(Target::parse("http://127.0.0.1:9000").unwrap().path, "/");
        assert_eq!(Target::parse("http://h?q").unwrap().path, "/?q");
        for bad in [
            "ftp://x/",
            "https:///keys",
            "keys",
            "https://a b/",
            "https://h/#f",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        let h = t.request_headers();
        assert!(h.contains(&(":authority", "login.example.com".to_string())));
        assert!(h.contains(&(":method", "GET".to_string())));
    }

    #[test]
    fn jwks_responses() {
        let good = ed_jwks();
        assert!(jwks_response(Some("200"), Some(&good), good.len(), LIMIT).is_ok());
        assert_eq!(
            jwks_response(None, None, 0, LIMIT).err(),
            Some(FetchError::NoResponse)
        );
        assert_eq!(
            jwks_response(Some("500"), Some(&good), good.len(), LIMIT).err(),
            Some(FetchError::Status("500".into()))
        );
        assert_eq!(
            jwks_response(Some("200"), None, LIMIT + 1, LIMIT).err(),
            Some(FetchError::TooLarge {
                size: LIMIT + 1,
                limit: LIMIT
            })
        );
        assert_eq!(
            jwks_response(Some("200"), Some(b"  "), 2, LIMIT).err(),
            Some(FetchError::Empty)
        );
        assert!(matches!(
            jwks_response(Some("200"), Some(b"<html>"), 6, LIMIT).err(),
            Some(FetchError::NotJson(_))
        ));
        assert!(matches!(
            jwks_response(
                Some("200"),
                Some(b"{\"keys\":[{\"kty\":\"oct\"}]}"),
                24,
                LIMIT
            )
            .err(),
            Some(FetchError::NoUsableKeys(_))
        ));
    }

    #[test]
    fn discovery_documents() {
        let doc = br#"{"issuer":"https://idp/","jwks_uri":"https://idp/keys"}"#;
        assert_eq!(
            discovery_response(Some("200"), Some(doc), doc.len(), LIMIT, "https://idp/"),
            Ok("https://idp/keys".to_string())
        );
        assert!(matches!(
            discovery_response(Some("200"), Some(doc), doc.len(), LIMIT, "https://idp"),
            Err(FetchError::IssuerMismatch { .. })
        ));
        let no_uri = br#"{"issuer":"https://idp/"}"#;
        assert_eq!(
            discovery_response(
                Some("200"),
                Some(no_uri),
                no_uri.len(),
                LIMIT,
                "https://idp/"
            ),
            Err(FetchError::NoJwksUri)
        );
        let bad_uri = br#"{"issuer":"https://idp/","jwks_uri":"/keys"}"#;
        assert!(matches!(
            discovery_response(
                Some("200"),
                Some(bad_uri),
                bad_uri.len(),
                LIMIT,
                "https://idp/"
            ),
            Err(FetchError::BadJwksUri(_))
        ));
    }
}
