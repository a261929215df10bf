//! `authorization_server.upstream.discovery`: the upstream IdP's authorization and token
//! endpoints read from its OpenID Connect discovery / RFC 8414 metadata document, and when
//! to fetch that document. Pure: the callout's status and body come in, the endpoints or a
//! precise error come out; time and jitter are arguments.
//!
//! The document is accepted when it is a JSON object within the size limit whose `issuer`
//! equals the configured one (when one is configured), and whose `authorization_endpoint`
//! and `token_endpoint` are absolute URLs without a fragment (the token endpoint also without
//! a query), `https` unless the document itself came from a loopback host over `http` and
//! the endpoint is on a loopback host too (a dev IdP on 127.0.0.1). The token endpoint is
//! called through an Envoy cluster: without a `token_cluster` of its own it must be on the
//! document's host, since the document's cluster is the one that reaches that host.

use std::fmt;

/// Delay before the first retry after a failed fetch; it doubles up to [`BACKOFF_MAX_MS`].
pub const BACKOFF_INITIAL_MS: u64 = 1_000;
/// Longest delay between retries.
pub const BACKOFF_MAX_MS: u64 = 300_000;

/// What a fetched document is checked against.
#[derive(Clone, Debug)]
pub struct Rules<'a> {
    /// The document's URL (its host and scheme decide what the endpoints may be).
    pub document_uri: &'a str,
    /// The `issuer` the document must name, if configured.
    pub issuer: Option<&'a str>,
    /// Whether the token endpoint has a cluster of its own (then it may be on another host).
    pub token_cluster_set: bool,
    /// Largest accepted body.
    pub max_bytes: usize,
}

/// The upstream endpoints a document names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
}

/// Why a document was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// No HTTP answer (connection failure, reset, timeout).
    NoResponse,
    Status(u16),
    TooLarge {
        size: usize,
        limit: usize,
    },
    NotJson(String),
    NotObject,
    IssuerMismatch {
        expected: String,
        found: String,
    },
    Missing(&'static str),
    BadUrl {
        field: &'static str,
        reason: String,
    },
    NotHttps {
        field: &'static str,
        url: String,
    },
    OtherHost {
        found: String,
        expected: String,
    },
}

/// Printable, bounded text from a document (never trusted for a log line as it is).
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(200)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::NoResponse => write!(f, "no response (timeout or connection failure)"),
            MetadataError::Status(s) => write!(f, "HTTP status {s}"),
            MetadataError::TooLarge { size, limit } => {
                write!(f, "response of {size} bytes exceeds the {limit}-byte limit")
            }
            MetadataError::NotJson(e) => write!(f, "response is not JSON: {}", shown(e)),
            MetadataError::NotObject => write!(f, "response is not a JSON object"),
            MetadataError::IssuerMismatch { expected, found } => write!(
                f,
                "issuer {:?} differs from the configured upstream.discovery.issuer {:?}",
                shown(found),
                shown(expected)
            ),
            MetadataError::Missing(field) => write!(f, "no {field} (a string) in the document"),
            MetadataError::BadUrl { field, reason } => write!(f, "{field}: {reason}"),
            MetadataError::NotHttps { field, url } => write!(
                f,
                "{field} {:?} is not https (plain http only for a loopback IdP whose document \
                 is also fetched over http)",
                shown(url)
            ),
            MetadataError::OtherHost { found, expected } => write!(
                f,
                "token_endpoint is on {:?}, not the document's host and port {:?}: set \
                 upstream.discovery.token_cluster to the Envoy cluster that reaches it",
                shown(found),
                shown(expected)
            ),
        }
    }
}

/// `(scheme, authority)` of an absolute http(s) URL, or why not.
fn scheme_authority(url: &str) -> Result<(&str, &str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "not an absolute URL".to_string())?;
    if scheme != "https" && scheme != "http" {
        return Err("not an http(s) URL".into());
    }
    if url.contains('#') {
        return Err("has a fragment".into());
    }
    if url.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
        return Err("has spaces, control or non-ASCII characters".into());
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or("");
    if authority.is_empty() {
        return Err("has no host".into());
    }
    if !authority
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
    {
        return Err("has an unusual host (user info or invalid characters)".into());
    }
    Ok((scheme, authority))
}

/// The host of an authority, without the port (IPv6 in brackets kept).
fn host(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|i| authority.get(..=i))
            .unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_loopback(authority: &str) -> bool {
    let h = host(authority);
    h == "localhost" || h == "[::1]" || h.starts_with("127.")
}

fn endpoint(
    doc: &serde_json::Map<String, serde_json::Value>,
    field: &'static str,
    rules: &Rules<'_>,
) -> Result<(String, String), MetadataError> {
    let url = doc
        .get(field)
        .and_then(serde_json::Value::as_str)
        .ok_or(MetadataError::Missing(field))?;
    let (scheme, authority) =
        scheme_authority(url).map_err(|reason| MetadataError::BadUrl { field, reason })?;
    if scheme != "https" {
        let dev = scheme_authority(rules.document_uri)
            .is_ok_and(|(s, a)| s == "http" && is_loopback(a))
            && is_loopback(authority);
        if !dev {
            return Err(MetadataError::NotHttps {
                field,
                url: url.to_string(),
            });
        }
    }
    Ok((url.to_string(), authority.to_ascii_lowercase()))
}

/// Checks a fetched document (`status` 0: no HTTP answer) and returns its endpoints.
pub fn parse(status: u16, body: &[u8], rules: &Rules<'_>) -> Result<Endpoints, MetadataError> {
    if status == 0 {
        return Err(MetadataError::NoResponse);
    }
    if status != 200 {
        return Err(MetadataError::Status(status));
    }
    if body.len() > rules.max_bytes {
        return Err(MetadataError::TooLarge {
            size: body.len(),
            limit: rules.max_bytes,
        });
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| MetadataError::NotJson(e.to_string()))?;
    let doc = v.as_object().ok_or(MetadataError::NotObject)?;
    if let Some(expected) = rules.issuer {
        let found = doc
            .get("issuer")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if found != expected {
            return Err(MetadataError::IssuerMismatch {
                expected: expected.to_string(),
                found: found.to_string(),
            });
        }
    }
    let (authorization_endpoint, _) = endpoint(doc, "authorization_endpoint", rules)?;
    let (token_endpoint, token_authority) = endpoint(doc, "token_endpoint", rules)?;
    if token_endpoint.contains('?') {
        return Err(MetadataError::BadUrl {
            field: "token_endpoint",
            reason: "has a query".into(),
        });
    }
    if !rules.token_cluster_set {
        let doc_authority = scheme_authority(rules.document_uri)
            .map(|(_, a)| a.to_ascii_lowercase())
            .unwrap_or_default();
        if token_authority != doc_authority {
            return Err(MetadataError::OtherHost {
                found: token_authority,
                expected: doc_authority,
            });
        }
    }
    Ok(Endpoints {
        authorization_endpoint,
        token_endpoint,
    })
}

/// When to fetch the document: once at start, again after `refresh_ms`, and after a failure
/// with exponential backoff and jitter (1 s doubling to 5 min). The last accepted endpoints
/// stay in use while a refresh fails.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// When the next fetch is due (0: now).
    pub next_fetch_at: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// When the fetch under way started.
    pub in_flight_since: Option<u64>,
}

impl Schedule {
    /// Whether a fetch should start now.
    pub fn due(&self, now_ms: u64) -> bool {
        self.in_flight_since.is_none() && now_ms >= self.next_fetch_at
    }

    pub fn started(&mut self, now_ms: u64) {
        self.in_flight_since = Some(now_ms);
    }

    pub fn succeeded(&mut self, now_ms: u64, refresh_ms: u64) {
        self.in_flight_since = None;
        self.failures = 0;
        self.next_fetch_at = now_ms.saturating_add(refresh_ms);
    }

    /// A failed fetch; `jitter` in `[0, 1)` spreads retries. Returns the delay chosen.
    pub fn failed(&mut self, now_ms: u64, jitter: f64) -> u64 {
        self.in_flight_since = None;
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(self.failures, jitter);
        self.next_fetch_at = now_ms.saturating_add(delay);
        delay
    }
}

/// The delay after `failures` consecutive failures: `BACKOFF_INITIAL_MS · 2^(failures-1)`,
/// capped at `BACKOFF_MAX_MS`, then scaled into `[½, 1)` of that by `jitter`.
pub fn backoff(failures: u32, jitter: f64) -> u64 {
    let exp = failures.saturating_sub(1).min(20);
    let base = BACKOFF_INITIAL_MS
        .saturating_mul(1u64 << exp)
        .min(BACKOFF_MAX_MS);
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    // base/2 + base/2·j, in integers of milliseconds.
    let half = base / 2;
    half.saturating_add((half as f64 * j) as u64).max(1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTRA: &str =
        "https://login.microsoftonline.com/tid/v2.0/.well-known/openid-configuration";

    fn rules(uri: &str) -> Rules<'_> {
        Rules {
            document_uri: uri,
            issuer: None,
            token_cluster_set: false,
            max_bytes: 4096,
        }
    }

    fn doc(authz: &str, token: &str) -> Vec<u8> {
        json!({"issuer": "https://login.microsoftonline.com/tid/v2.0",
               "authorization_endpoint": authz, "token_endpoint": token})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn accepts_entra_shape() {
        let body = doc(
            "https://login.microsoftonline.com/tid/oauth2/v2.0/authorize",
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token",
        );
        let mut r = rules(ENTRA);
        r.issuer = Some("https://login.microsoftonline.com/tid/v2.0");
        let e = parse(200, &body, &r).unwrap();
        assert_eq!(
            e.token_endpoint,
            "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
        );
        assert_eq!(
            e.authorization_endpoint,
            "https://login.microsoftonline.com/tid/oauth2/v2.0/authorize"
        );
    }

    #[test]
    fn refuses_with_a_precise_reason() {
        let ok_a = "https://login.microsoftonline.com/tid/oauth2/v2.0/authorize";
        let ok_t = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";
        let r = rules(ENTRA);
        assert_eq!(parse(0, b"", &r), Err(MetadataError::NoResponse));
        assert_eq!(parse(404, b"x", &r), Err(MetadataError::Status(404)));
        assert!(matches!(
            parse(200, &[b' '; 5000], &r),
            Err(MetadataError::TooLarge { size: 5000, .. })
        ));
        assert!(matches!(
            parse(200, b"<html>", &r),
            Err(MetadataError::NotJson(_))
        ));
        assert_eq!(parse(200, b"[1]", &r), Err(MetadataError::NotObject));
        let mut strict = rules(ENTRA);
        strict.issuer = Some("https://other/v2.0");
        assert!(matches!(
            parse(200, &doc(ok_a, ok_t), &strict),
            Err(MetadataError::IssuerMismatch { .. })
        ));
        assert_eq!(
            parse(200, br#"{"token_endpoint":"https://x/t"}"#, &r),
            Err(MetadataError::Missing("authorization_endpoint"))
        );
        assert!(matches!(
            parse(200, &doc("/authorize", ok_t), &r),
            Err(MetadataError::BadUrl {
                field: "authorization_endpoint",
                ..
            })
        ));
        assert!(matches!(
            parse(200, &doc(ok_a, &format!("{ok_t}?x=1")), &r),
            Err(MetadataError::BadUrl {
                field: "token_endpoint",
                ..
            })
        ));
        assert!(matches!(
            parse(200, &doc("https://evil@x/a", ok_t), &r),
            Err(MetadataError::BadUrl { .. })
        ));
        assert!(matches!(
            parse(
                200,
                &doc("http://login.microsoftonline.com/tid/authorize", ok_t),
                &r
            ),
            Err(MetadataError::NotHttps {
                field: "authorization_endpoint",
                ..
            })
        ));
        let e = parse(200, &doc(ok_a, "https://token.example/t"), &r).unwrap_err();
        assert!(matches!(e, MetadataError::OtherHost { .. }));
        assert!(e.to_string().contains("upstream.discovery.token_cluster"));
        let mut own = rules(ENTRA);
        own.token_cluster_set = true;
        assert!(parse(200, &doc(ok_a, "https://token.example/t"), &own).is_ok());
    }

    #[test]
    fn plain_http_only_for_a_loopback_dev_idp() {
        let dev = rules("http://127.0.0.1:9001/.well-known/openid-configuration");
        let body = doc(
            "http://127.0.0.1:9001/authorize",
            "http://127.0.0.1:9001/token",
        );
        assert!(parse(200, &body, &dev).is_ok());
        // A loopback document naming a non-loopback http endpoint: refused.
        let body = doc(
            "http://idp.example/authorize",
            "http://127.0.0.1:9001/token",
        );
        assert!(matches!(
            parse(200, &body, &dev),
            Err(MetadataError::NotHttps { .. })
        ));
        // An http document from a real host: its http endpoints are refused.
        let remote = rules("http://idp.example/.well-known/openid-configuration");
        let body = doc("http://idp.example/authorize", "http://idp.example/token");
        assert!(matches!(
            parse(200, &body, &remote),
            Err(MetadataError::NotHttps { .. })
        ));
    }

    #[test]
    fn errors_never_carry_control_characters() {
        let mut r = rules(ENTRA);
        r.issuer = Some("https://a");
        let body = json!({"issuer": "x\u{1b}[31m\n", "authorization_endpoint": "https://a/b",
                          "token_endpoint": "https://a/c"})
        .to_string();
        let e = parse(200, body.as_bytes(), &r).unwrap_err().to_string();
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }

    #[test]
    fn schedule_fetches_at_start_backs_off_and_refreshes() {
        let mut s = Schedule::default();
        assert!(s.due(0));
        s.started(10);
        assert!(!s.due(10_000), "one fetch at a time");
        let d1 = s.failed(100, 0.0);
        assert_eq!(d1, 500);
        assert!(!s.due(599) && s.due(600));
        s.started(600);
        let d2 = s.failed(700, 0.999);
        assert!((1_000..2_000).contains(&d2), "{d2}");
        for _ in 0..30 {
            s.failed(0, 0.999);
        }
        assert!(s.next_fetch_at < BACKOFF_MAX_MS && s.next_fetch_at >= BACKOFF_MAX_MS / 2);
        s.started(1_000);
        s.succeeded(2_000, 3_600_000);
        assert_eq!(s.failures, 0);
        assert!(!s.due(2_000 + 3_599_999) && s.due(2_000 + 3_600_000));
        assert_eq!(backoff(1, f64::NAN), 500);
    }
}
