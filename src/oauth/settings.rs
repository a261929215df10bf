//! The façade's settings as this part needs them. The configuration loader (elsewhere)
//! fills a [`Spec`] from the `authorization_server` section and the VM environment;
//! [`Settings::new`] refuses anything inconsistent and derives the URLs and paths once.

use super::redirect::AllowList;
use super::scopes;

/// A secret string (the upstream client secret). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it (the upstream token request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// When the consent page is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsentMode {
    /// Every authorization (default).
    #[default]
    Always,
    /// Skipped when this browser approved this client before and the navigation is not
    /// cross-site (`Sec-Fetch-Site` `same-origin`, `same-site` or `none`; absent → shown).
    Remember,
}

/// How the façade authenticates to the upstream token endpoint when it has a secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret` in the form body (`client_secret_post`).
    #[default]
    Post,
    /// HTTP Basic (`client_secret_basic`).
    Basic,
}

/// The upstream IdP.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// The façade's own client id at the IdP.
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_auth: ClientAuth,
    /// Prepended to bare scopes (`api://<app id>`); `None` sends them as they are.
    pub scope_prefix: Option<String>,
    /// Always requested as well (`offline_access` for a refresh token).
    pub extra_scopes: Vec<String>,
    /// Send `resource` (RFC 8707) upstream; Entra refuses it (AADSTS9010010).
    pub send_resource: bool,
    /// Extra authorization request parameters (Auth0 `audience`, Entra `prompt`).
    pub authorize_params: Vec<(String, String)>,
}

/// Lifetimes, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttls {
    /// The consent request and the upstream `state`.
    pub state: u64,
    /// The façade's authorization code.
    pub code: u64,
    /// A façade refresh token (renewed on each use).
    pub refresh: u64,
    /// A remembered approval (consent mode `remember`).
    pub approval: u64,
}

impl Default for Ttls {
    fn default() -> Ttls {
        Ttls {
            state: 600,
            code: 60,
            refresh: 30 * 24 * 3600,
            approval: 30 * 24 * 3600,
        }
    }
}

/// What the configuration says.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The façade's base URL (`https://mcp.example.com`, or with a path).
    pub issuer: String,
    /// The protected resource (the PRM `resource`).
    pub resource: String,
    /// Where the IdP sends the browser back (default `/auth/callback`).
    pub callback_path: String,
    /// Bare scopes offered to clients (metadata `scopes_supported`, the default request).
    pub scopes_supported: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub consent: ConsentMode,
    pub ttl: Ttls,
    pub upstream: Upstream,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            issuer: String::new(),
            resource: String::new(),
            callback_path: "/auth/callback".into(),
            scopes_supported: Vec::new(),
            redirect_uris: Vec::new(),
            consent: ConsentMode::Always,
            ttl: Ttls::default(),
            upstream: Upstream::default(),
        }
    }
}

/// Checked settings with the derived URLs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub spec: Spec,
    pub redirects: AllowList,
    /// `scheme://authority` of the issuer.
    pub origin: String,
    /// The issuer's path (`""` or `/tenant`), which prefixes the façade's endpoints.
    pub base_path: String,
    /// The callback as the IdP sees it.
    pub callback_url: String,
    /// https issuer: `__Host-` cookies with `Secure`.
    pub secure: bool,
}

/// Parameters the façade sets itself on the upstream authorization request.
const RESERVED_AUTHORIZE: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

fn http_url(what: &str, url: &str) -> Result<(), String> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.contains('#')
        && !url.bytes().any(|b| b <= 0x20 || b >= 0x7f);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be an absolute http(s) URL without a fragment"
        ))
    }
}

impl Settings {
    pub fn new(mut spec: Spec) -> Result<Settings, String> {
        let issuer = spec.issuer.trim_end_matches('/').to_string();
        http_url("issuer", &issuer)?;
        if issuer.contains('?') {
            return Err("issuer must not have a query".into());
        }
        spec.issuer = issuer;
        let after = spec.issuer.find("://").map_or(0, |i| i + 3);
        let split = spec
            .issuer
            .get(after..)
            .and_then(|r| r.find('/'))
            .map_or(spec.issuer.len(), |i| after + i);
        let origin = spec.issuer.get(..split).unwrap_or("").to_string();
        let base_path = spec.issuer.get(split..).unwrap_or("").to_string();
        if origin.len() <= after {
            return Err("issuer has no host".into());
        }
        http_url("resource", &spec.resource)?;
        if !spec.callback_path.starts_with('/')
            || spec.callback_path.contains(['?', '#'])
            || spec.callback_path.bytes().any(|b| b <= 0x20 || b >= 0x7f)
        {
            return Err("callback_path must be a path starting with '/'".into());
        }
        let u = &spec.upstream;
        http_url("upstream authorization_endpoint", &u.authorization_endpoint)?;
        http_url("upstream token_endpoint", &u.token_endpoint)?;
        if u.token_endpoint.contains('?') {
            return Err("upstream token_endpoint must not have a query".into());
        }
        if u.client_id.is_empty() {
            return Err("upstream client_id is required".into());
        }
        for s in spec.scopes_supported.iter().chain(&u.extra_scopes) {
            if !scopes::is_token(s) {
                return Err(format!("scope {s:?} is not a valid scope token"));
            }
        }
        for (name, _) in &u.authorize_params {
            if RESERVED_AUTHORIZE.contains(&name.as_str()) {
                return Err(format!(
                    "authorize_params cannot set {name:?}: the façade sets it itself"
                ));
            }
        }
        let t = spec.ttl;
        if t.state == 0 || t.state > 3600 {
            return Err("the state lifetime must be 1 to 3600 seconds".into());
        }
        if t.code == 0 || t.code > 600 {
            return Err("the code lifetime must be 1 to 600 seconds".into());
        }
        if t.refresh == 0 || t.approval == 0 {
            return Err("refresh and approval lifetimes must be positive".into());
        }
        let redirects = AllowList::new(&spec.redirect_uris, &spec.issuer)?;
        let secure = spec.issuer.starts_with("https://");
        let callback_url = format!("{origin}{}", spec.callback_path);
        Ok(Settings {
            spec,
            redirects,
            origin,
            base_path,
            callback_url,
            secure,
        })
    }

    /// The URL of one of the façade's endpoints (`/authorize`, `/token`, …).
    pub fn endpoint_url(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.spec.issuer)
    }

    /// The request path of one of the façade's endpoints.
    pub fn endpoint_path(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.base_path)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An Entra-like setup used by the endpoint tests.
    pub fn spec() -> Spec {
        Spec {
            issuer: "https://mcp.example.com".into(),
            resource: "https://mcp.example.com/mcp".into(),
            scopes_supported: vec!["calculator.add".into(), "calculator.subtract".into()],
            redirect_uris: vec![
                "http://127.0.0.1/*".into(),
                "http://localhost/*".into(),
                "https://claude.ai/api/mcp/auth_callback".into(),
            ],
            upstream: Upstream {
                authorization_endpoint:
                    "https://login.microsoftonline.com/tid/oauth2/v2.0/authorize".into(),
                token_endpoint: "https://login.microsoftonline.com/tid/oauth2/v2.0/token".into(),
                client_id: "upstream-client".into(),
                client_secret: Some(Secret::new("TOP-SECRET-VALUE")),
                scope_prefix: Some("api://app".into()),
                extra_scopes: vec!["offline_access".into()],
                authorize_params: vec![("prompt".into(), "select_account".into())],
                ..Upstream::default()
            },
            ..Spec::default()
        }
    }

    pub fn settings() -> Settings {
        match Settings::new(spec()) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn derived_urls() {
        let s = settings();
        assert_eq!(s.origin, "https://mcp.example.com");
        assert_eq!(s.base_path, "");
        assert_eq!(s.callback_url, "https://mcp.example.com/auth/callback");
        assert!(s.secure);
        assert_eq!(s.endpoint_url("/token"), "https://mcp.example.com/token");
        let mut spec = spec();
        spec.issuer = "http://localhost:10000/tenant/".into();
        let s = Settings::new(spec).unwrap();
        assert_eq!(s.spec.issuer, "http://localhost:10000/tenant");
        assert_eq!(s.origin, "http://localhost:10000");
        assert_eq!(s.base_path, "/tenant");
        assert_eq!(s.endpoint_path("/authorize"), "/tenant/authorize");
        assert_eq!(s.callback_url, "http://localhost:10000/auth/callback");
        assert!(!s.secure);
    }

    #[test]
    fn inconsistent_settings_refused() {
        type Change = Box<dyn Fn(&mut Spec)>;
        let cases: Vec<Change> = vec![
            Box::new(|s| s.issuer = "mcp.example.com".into()),
            Box::new(|s| s.issuer = "https://".into()),
            Box::new(|s| s.issuer = "https://a.com/?x".into()),
            Box::new(|s| s.resource = String::new()),
            Box::new(|s| s.callback_path = "auth/callback".into()),
            Box::new(|s| s.upstream.client_id = String::new()),
            Box::new(|s| s.upstream.token_endpoint = "ftp://x".into()),
            Box::new(|s| s.scopes_supported = vec!["a b".into()]),
            Box::new(|s| s.upstream.authorize_params = vec![("redirect_uri".into(), "x".into())]),
            Box::new(|s| s.ttl.code = 0),
            Box::new(|s| s.ttl.state = 7200),
            Box::new(|s| s.redirect_uris = vec!["http://evil.com/*".into()]),
            Box::new(|s| s.redirect_uris = vec!["https://mcp.example.com/auth/callback".into()]),
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut s = spec();
            change(&mut s);
            assert!(Settings::new(s).is_err(), "case {i}");
        }
    }

    #[test]
    fn secret_never_in_debug() {
        let s = settings();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("TOP-SECRET-VALUE"));
        assert!(dbg.contains("Secret(redacted)"));
    }
}
