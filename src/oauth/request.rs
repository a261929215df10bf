//! What every endpoint gets: the request parts it may read, and the context (settings,
//! keys, time, randomness) it runs in.

use super::random::Random;
use super::seal::Keys;
use super::settings::Settings;

/// The parts of a request the façade reads. Header names are the glue's business; only the
/// values arrive here. `Debug` shows neither the query, the cookies nor the body (codes,
/// tokens, CSRF and binding values travel there).
#[derive(Clone, Copy, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `:path`, query included.
    pub path: &'a str,
    /// Every `Cookie` header value.
    pub cookies: &'a [&'a str],
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &super::form::split_path(self.path).0)
            .field("cookies", &self.cookies.len())
            .field("origin", &self.origin)
            .field("sec_fetch_site", &self.sec_fetch_site)
            .field("content_type", &self.content_type)
            .field("authorization", &self.authorization.map(|_| "present"))
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> Request<'a> {
    /// The query string (without `?`; empty when absent).
    pub fn query(&self) -> &'a str {
        super::form::split_path(self.path).1
    }
}

/// Everything else an endpoint may use.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub keys: &'a Keys,
    /// Unix seconds.
    pub now: u64,
    pub rng: &'a mut dyn Random,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("settings", &self.settings)
            .field("keys", &self.keys)
            .field("now", &self.now)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_query_cookies_and_body() {
        let cookies = ["__Host-mcp-bind-x=BINDING"];
        let r = Request {
            method: "POST",
            path: "/auth/callback?code=UPSTREAM-CODE",
            cookies: &cookies,
            authorization: Some("Basic SECRET"),
            body: b"code_verifier=VERIFIER",
            ..Request::default()
        };
        let d = format!("{r:?}");
        for s in ["UPSTREAM-CODE", "BINDING", "SECRET", "VERIFIER"] {
            assert!(!d.contains(s), "{d}");
        }
        assert!(d.contains("/auth/callback"));
        assert_eq!(r.query(), "code=UPSTREAM-CODE");
    }
}
