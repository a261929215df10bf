//! What an endpoint answers: status, headers, body. Header values may be computed
//! (Location, Set-Cookie), so they are owned strings; names are constants. `set-cookie` can
//! appear several times, so headers are a list, not a map.

/// A response the filter sends itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    // The body may hold tokens (a token response): never printed, only its length.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::with_capacity(8),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// `{"error": …, "error_description": …}` (RFC 6749 §5.2 / RFC 7591 §3.2.2), not
    /// cacheable.
    pub fn oauth_error(status: u16, error: &str, description: &str) -> Response {
        let body = serde_json::json!({ "error": error, "error_description": description });
        Response::new(status).no_store().json(&body)
    }

    /// A JSON body with its content type.
    pub fn json(mut self, body: &serde_json::Value) -> Response {
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.header("content-type", "application/json")
    }

    /// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
    pub fn no_store(self) -> Response {
        self.header("cache-control", "no-store")
            .header("pragma", "no-cache")
    }

    /// A redirect (302 after GET, 303 after POST) that is never cached.
    pub fn redirect(status: u16, location: String) -> Response {
        Response::new(status)
            .header("location", location)
            .header("cache-control", "no-store")
    }

    /// The first value of a header (names compared case-insensitively).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_and_debug_hide_the_body() {
        let r = Response::oauth_error(400, "invalid_grant", "say \"no\"");
        assert_eq!(r.status, 400);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"], "invalid_grant");
        assert_eq!(v["error_description"], "say \"no\"");
        assert_eq!(r.get_header("Cache-Control"), Some("no-store"));
        let mut t = Response::new(200);
        t.body = b"{\"access_token\":\"SECRET\"}".to_vec();
        assert!(!format!("{t:?}").contains("SECRET"));
    }
}
