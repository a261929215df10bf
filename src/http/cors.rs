//! Cross-origin requests: which `Origin`s may call (`allowed_origins`), and the CORS
//! headers on every answer, local or from the backend.
//!
//! MCP Streamable HTTP asks servers to validate `Origin` (DNS rebinding): with a list
//! configured, a request whose `Origin` is present and not listed is refused with 403 at the
//! edge. Without a list any origin may call (bearer tokens are not ambient credentials) and
//! answers carry `Access-Control-Allow-Origin: *`.

use crate::http::response::{Response, EXPOSE_HEADERS};

const ALLOW_ORIGIN: &str = "access-control-allow-origin";
const EXPOSE: &str = "access-control-expose-headers";

/// The configured origin policy.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Origins {
    /// Any origin (no `allowed_origins`, or `["*"]`).
    #[default]
    Any,
    /// Exactly these serialized origins (`scheme://host[:port]`, lower case).
    List(Vec<String>),
}

impl Origins {
    /// Validates `allowed_origins`. `Err` carries the offending field (`allowed_origins` or
    /// `allowed_origins[i]`) and why.
    pub fn parse(list: Option<&[String]>) -> Result<Origins, (String, String)> {
        const FIELD: &str = "allowed_origins";
        let Some(list) = list else {
            return Ok(Origins::Any);
        };
        if list.is_empty() {
            return Err((
                FIELD.into(),
                "must not be empty (leave it out to allow any origin)".into(),
            ));
        }
        if list.iter().any(|o| o == "*") {
            if list.len() > 1 {
                return Err((
                    FIELD.into(),
                    "\"*\" cannot be combined with other origins".into(),
                ));
            }
            return Ok(Origins::Any);
        }
        let mut out = Vec::with_capacity(list.len());
        for (i, o) in list.iter().enumerate() {
            let norm = normalize(o).ok_or_else(|| {
                (
                    format!("{FIELD}[{i}]"),
                    format!(
                        "{o:?} is not an origin: expected scheme://host[:port] with no path, \
                         e.g. \"https://app.example.com\""
                    ),
                )
            })?;
            if !out.contains(&norm) {
                out.push(norm);
            }
        }
        Ok(Origins::List(out))
    }

    /// Whether a request with this `Origin` header value may be served.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Origins::Any => true,
            Origins::List(list) => normalize(origin).is_some_and(|o| list.contains(&o)),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, if the answer gets one.
    fn allow_origin(&self, origin: Option<&str>) -> Option<String> {
        match (self, origin) {
            (Origins::Any, _) => Some("*".into()),
            (Origins::List(_), Some(o)) if self.allows(o) => Some(o.to_string()),
            (Origins::List(_), _) => None,
        }
    }

    /// Rewrites the CORS headers of an answer the filter gives itself: the allow-origin
    /// header echoes an allowed origin (with `Vary: Origin`) or is dropped.
    pub fn apply(&self, origin: Option<&str>, response: &mut Response) {
        if let Origins::Any = self {
            return;
        }
        response
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(ALLOW_ORIGIN));
        if let Some(v) = self.allow_origin(origin) {
            response.headers.push((ALLOW_ORIGIN, v.into()));
            response.headers.push(("vary", "Origin".into()));
        }
    }

    /// Headers to set on the backend's response to a cross-origin request, so a browser
    /// client can read it (and `Mcp-Session-Id`). Nothing for same-origin / non-browser
    /// requests (no `Origin`).
    pub fn backend_response_headers(&self, origin: Option<&str>) -> Vec<(String, String)> {
        let Some(origin) = origin else {
            return Vec::new();
        };
        let Some(v) = self.allow_origin(Some(origin)) else {
            return Vec::new();
        };
        let mut h = vec![
            (ALLOW_ORIGIN.to_string(), v),
            (EXPOSE.to_string(), EXPOSE_HEADERS.to_string()),
        ];
        if let Origins::List(_) = self {
            h.push(("vary".into(), "Origin".into()));
        }
        h
    }
}

/// 403 for a request whose `Origin` is not allowed.
pub fn refused() -> Response {
    Response::new(403).error_body(
        "access_denied",
        "the request's Origin is not in this server's allowed_origins",
    )
}

/// `scheme://host[:port]` in lower case, or `None` when `s` is not a serialized origin.
fn normalize(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        || rest.is_empty()
        || rest.contains(['/', '?', '#', '@', ' '])
        || rest.chars().any(|c| c.is_control())
    {
        return None;
    }
    let (host, port) = if rest.starts_with('[') {
        // An IPv6 literal: `[addr]` or `[addr]:port`.
        let close = rest.find(']')?;
        let host = rest.get(..=close)?;
        match rest.get(close.checked_add(1)?..)? {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty()
        || port.is_some_and(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let mut out = format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    );
    if let Some(p) = port {
        out.push(':');
        out.push_str(p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Origins {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        Origins::parse(Some(&v)).unwrap()
    }

    #[test]
    fn no_list_or_star_allows_any_origin() {
        assert_eq!(Origins::parse(None).unwrap(), Origins::Any);
        assert_eq!(list(&["*"]), Origins::Any);
        assert!(Origins::Any.allows("https://evil.example"));
    }

    #[test]
    fn a_list_allows_exactly_its_origins_case_insensitively() {
        let o = list(&["https://App.Example.com", "http://localhost:5173"]);
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("http://localhost:5173"));
        assert!(!o.allows("http://localhost:5174"));
        assert!(!o.allows("http://app.example.com"));
        assert!(!o.allows("https://app.example.com.evil.test"));
        assert!(!o.allows("null"));
        assert!(!o.allows(""));
    }

    #[test]
    fn bad_entries_are_config_errors() {
        for bad in [
            vec!["https://app.example.com/"],
            vec!["app.example.com"],
            vec!["https://app.example.com/path"],
            vec!["https://a.example", "*"],
            vec!["https://host:port"],
            vec![],
        ] {
            let v: Vec<String> = bad.iter().map(|s| s.to_string()).collect();
            assert!(Origins::parse(Some(&v)).is_err(), "{bad:?}");
        }
        let v = vec!["http://[::1]:8080".to_string(), "http://[::1]".to_string()];
        assert!(Origins::parse(Some(&v)).is_ok());
    }

    #[test]
    fn local_answers_echo_an_allowed_origin_and_drop_the_star_otherwise() {
        let o = list(&["http://localhost:5173"]);
        let mut r = Response::new(401).header(ALLOW_ORIGIN, "*");
        o.apply(Some("http://localhost:5173"), &mut r);
        assert_eq!(r.get_header(ALLOW_ORIGIN), Some("http://localhost:5173"));
        assert_eq!(r.get_header("vary"), Some("Origin"));
        let mut r = Response::new(401).header(ALLOW_ORIGIN, "*");
        o.apply(None, &mut r);
        assert_eq!(r.get_header(ALLOW_ORIGIN), None);
        let mut r = Response::new(401).header(ALLOW_ORIGIN, "*");
        Origins::Any.apply(Some("http://x.test"), &mut r);
        assert_eq!(r.get_header(ALLOW_ORIGIN), Some("*"));
    }

    #[test]
    fn backend_answers_get_cors_headers_only_for_cross_origin_requests() {
        assert!(Origins::Any.backend_response_headers(None).is_empty());
        let h = Origins::Any.backend_response_headers(Some("http://a.test"));
        assert!(h.contains(&(ALLOW_ORIGIN.into(), "*".into())));
        assert!(h
            .iter()
            .any(|(n, v)| n == EXPOSE && v.contains("Mcp-Session-Id")));
        let o = list(&["http://a.test"]);
        assert!(o.backend_response_headers(Some("http://b.test")).is_empty());
        let h = o.backend_response_headers(Some("http://a.test"));
        assert!(h.contains(&(ALLOW_ORIGIN.into(), "http://a.test".into())));
    }
}
