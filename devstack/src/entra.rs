//! The dev IdP's "Entra mode": `/authorize`, `/token` and the discovery document behave
//! like Microsoft Entra ID's v2.0 endpoints as far as an MCP sign-in façade meets them.
//! Off unless [`IdpConfig::entra`](crate::IdpConfig::entra) is set.
//!
//! What it does, with the `AADSTS` code in `error_description` (`"AADSTS<n>: <text>"`, plus
//! `error_codes: [<n>]` like Entra):
//!
//! - metadata: no `registration_endpoint`, no `code_challenge_methods_supported`, no
//!   `grant_types_supported`; `scopes_supported` lists the OIDC scopes only.
//! - `resource` (RFC 8707) on `/authorize` or `/token` that is not the API's App ID URI
//!   (or whose scopes belong elsewhere) → `invalid_target`, AADSTS9010010.
//! - client authentication (Basic or `client_secret_post`) of the one registered web client:
//!   unknown client → `unauthorized_client` AADSTS700016; no secret → 401 `invalid_client`
//!   AADSTS7000218; wrong secret → 401 `invalid_client` AADSTS7000215.
//! - `redirect_uri` must equal a registered one exactly: otherwise an error page at
//!   `/authorize` (never a redirect) and `invalid_request` at `/token`, AADSTS50011; a
//!   registered one that differs from the authorization request's → AADSTS500112.
//! - scopes: the API's are `api://<app-id>/<name>` (or `<App ID URI>/<name>`, or
//!   `…/.default` for all of them); OIDC scopes (`openid profile email offline_access`)
//!   pass; a bare name resolves to Microsoft Graph → AADSTS650053 (unless it is a Graph
//!   scope such as `User.Read`, which yields a Graph token); an unknown resource →
//!   AADSTS500011; scopes of two resources → AADSTS28000; no `scope` at `/authorize` →
//!   AADSTS900144, none at the token endpoint for a code → AADSTS28003; an API scope the
//!   user did not consent to at `/authorize` → AADSTS65001.
//! - codes: 10 minutes, single use (a second redemption → `invalid_grant` AADSTS54005,
//!   unknown → AADSTS70000, expired → AADSTS70008); PKCE is optional for this confidential
//!   client but enforced when a challenge was sent (S256 only; mismatch or missing
//!   verifier → AADSTS501481).
//! - refresh tokens only when `offline_access` was granted; each use returns a new one and
//!   retires the old (reuse → `invalid_grant` AADSTS50173, "the grant was revoked"). Real
//!   Entra keeps an old refresh token valid until it expires; the dev IdP is stricter so
//!   that a façade's rotation is exercised.
//! - tokens: v2 shape (`typ: JWT`, `ver: "2.0"`, `iss` the tenant's v2.0 issuer, `aud` the
//!   API's app id GUID (or its App ID URI), `scp` the short names, `azp`, `azpacr`, `tid`,
//!   `oid`, pairwise `sub`, `uti`); a token for Graph (no API scope requested) has
//!   `aud` `00000003-0000-0000-c000-000000000000` and a `nonce` header like Entra's, which
//!   the filter refuses as a Graph token. `id_token` when `openid` was granted.
//! - `client_credentials`: `scope` must be `<api>/.default` (AADSTS1002012 otherwise,
//!   AADSTS900144 when missing); the token has `roles` (the configured app roles), no `scp`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::b64url;
use crate::idp::{json_response, lock, random_token, redirect_with, IdpState, Params};
use crate::mint::{now, try_sign_jws};

/// Microsoft Graph's application id: the resource of bare scopes and of OIDC-only requests.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Graph's identifier URI.
pub const GRAPH_URI: &str = "https://graph.microsoft.com";

/// Graph delegated scopes the dev IdP knows (a request for them alone yields a Graph token).
pub const GRAPH_SCOPES: [&str; 3] = ["User.Read", "User.ReadBasic.All", ".default"];

/// Scopes defined by OpenID Connect that Entra accepts next to one resource's scopes.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Default lifetime of authorization codes (Entra: 10 minutes).
pub const CODE_TTL_SECS: u64 = 600;

/// Default tenant id (the one `envoy/recipes/entra.yaml` uses as a placeholder).
pub const DEFAULT_TENANT_ID: &str = "11111111-1111-1111-1111-111111111111";
/// Default application (client) id of the API app registration.
pub const DEFAULT_APP_ID: &str = "22222222-2222-2222-2222-222222222222";
/// Default client id of the web (confidential) client the façade signs in with.
pub const DEFAULT_CLIENT_ID: &str = "33333333-3333-3333-3333-333333333333";
/// Default client secret of that web client.
pub const DEFAULT_CLIENT_SECRET: &str = "entra-dev-secret";
/// Default registered redirect URI: the façade's callback at `make run`'s Envoy.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:10000/auth/callback";

/// Entra mode settings (see the module documentation).
#[derive(Debug, Clone)]
pub struct EntraConfig {
    /// Directory (tenant) id: `tid`, and the issuer
    /// `https://login.microsoftonline.com/<tid>/v2.0` unless `IdpConfig::issuer` is set.
    pub tenant_id: String,
    /// Application (client) id of the API app registration: `aud` of its tokens.
    pub app_id: String,
    /// The API's Application ID URI, the scope prefix. Default `api://<app_id>`.
    pub app_id_uri: Option<String>,
    /// The API's delegated scopes (short names). Default `calculator.add`,
    /// `calculator.subtract`, `mcp.tools`.
    pub scopes: Vec<String>,
    /// App roles put in `roles` of client-credentials tokens. Default none.
    pub app_roles: Vec<String>,
    /// The web (confidential) client: the only client this tenant knows.
    pub client_id: String,
    /// Its secret (required at the token endpoint).
    pub client_secret: String,
    /// Its registered (Web platform) redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// `aud` is the App ID URI instead of the app id GUID (what v1 tokens usually carry).
    pub audience_is_uri: bool,
    /// Lifetime of refresh tokens. Default 1 day.
    pub refresh_ttl_secs: u64,
    /// Lifetime of authorization codes. Default [`CODE_TTL_SECS`].
    pub code_ttl_secs: u64,
}

impl Default for EntraConfig {
    fn default() -> Self {
        EntraConfig {
            tenant_id: DEFAULT_TENANT_ID.into(),
            app_id: DEFAULT_APP_ID.into(),
            app_id_uri: None,
            scopes: vec![
                "calculator.add".into(),
                "calculator.subtract".into(),
                "mcp.tools".into(),
            ],
            app_roles: Vec::new(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            redirect_uris: vec![DEFAULT_REDIRECT_URI.into()],
            audience_is_uri: false,
            refresh_ttl_secs: 86_400,
            code_ttl_secs: CODE_TTL_SECS,
        }
    }
}

impl EntraConfig {
    /// `https://login.microsoftonline.com/<tid>/v2.0`.
    pub fn issuer(&self) -> String {
        format!("https://login.microsoftonline.com/{}/v2.0", self.tenant_id)
    }

    /// The Application ID URI (`api://<app_id>` unless configured).
    pub fn app_id_uri(&self) -> String {
        self.app_id_uri
            .clone()
            .unwrap_or_else(|| format!("api://{}", self.app_id))
    }

    /// A scope in the form clients must request it: `<App ID URI>/<name>`.
    pub fn scope(&self, name: &str) -> String {
        format!("{}/{name}", self.app_id_uri())
    }

    /// `aud` of the API's tokens.
    pub fn audience(&self) -> String {
        if self.audience_is_uri {
            self.app_id_uri()
        } else {
            self.app_id.clone()
        }
    }
}

/// Which resource a set of scopes is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Api,
    Graph,
}

/// A checked `scope` value.
#[derive(Debug, Clone, Default)]
struct Scopes {
    resource: Option<Resource>,
    /// Short names of the resource's scopes (`calculator.add`, `User.Read`).
    names: Vec<String>,
    /// OIDC scopes.
    oidc: Vec<String>,
}

impl Scopes {
    fn has(&self, oidc: &str) -> bool {
        self.oidc.iter().any(|s| s == oidc)
    }

    /// The resource the token is for: OIDC-only requests get a Graph token.
    fn token_resource(&self) -> Resource {
        self.resource.unwrap_or(Resource::Graph)
    }
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scopes: Scopes,
    nonce: Option<String>,
    expires_at: u64,
}

#[derive(Clone)]
struct RefreshGrant {
    client_id: String,
    /// What the user consented to at `/authorize`.
    consented: Scopes,
    /// What the last token was for.
    current: Scopes,
    expires_at: u64,
}

/// Entra mode's state inside the IdP.
pub(crate) struct EntraState {
    pub(crate) cfg: EntraConfig,
    codes: Mutex<HashMap<String, Code>>,
    /// Redeemed codes → when they would have expired.
    redeemed: Mutex<HashMap<String, u64>>,
    refresh: Mutex<HashMap<String, RefreshGrant>>,
    /// Rotated-out refresh tokens → when they would have expired.
    retired: Mutex<HashMap<String, u64>>,
}

impl EntraState {
    pub(crate) fn new(cfg: EntraConfig) -> EntraState {
        EntraState {
            cfg,
            codes: Mutex::new(HashMap::new()),
            redeemed: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            retired: Mutex::new(HashMap::new()),
        }
    }
}

/// An Entra-style error: `{"error", "error_description": "AADSTS<n>: … Trace ID: …",
/// "error_codes": [n], "timestamp", "trace_id", "correlation_id", "error_uri"}`.
fn aad_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = guid(&random_token(16));
    let correlation = guid(&random_token(16));
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {}",
            now()
        ),
        "error_codes": [code],
        "timestamp": now().to_string(),
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    });
    let mut resp = json_response(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"devstack-idp\""),
        );
    }
    resp
}

fn bad(error: &str, code: u32, text: &str) -> Response {
    aad_error(StatusCode::BAD_REQUEST, error, code, text)
}

/// The error page `/authorize` shows when it must not redirect.
fn error_page(code: u32, text: &str) -> Response {
    let escaped: String = text
        .chars()
        .map(|c| match c {
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '&' => "&amp;".to_string(),
            '"' => "&quot;".to_string(),
            c => c.to_string(),
        })
        .collect();
    (
        StatusCode::BAD_REQUEST,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!(
            "<!doctype html><title>Sign in to your account</title><h1>Sorry, but we're having trouble signing you in.</h1><p>AADSTS{code}: {escaped}</p>"
        ),
    )
        .into_response()
}

/// A GUID-shaped string derived from `seed` (stable for the same seed).
fn guid(seed: &str) -> String {
    let h = Sha256::digest(seed.as_bytes());
    let x: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Entra's discovery document (v2.0), endpoints under the dev IdP's base URL.
pub(crate) fn metadata(st: &IdpState) -> Value {
    let b = &st.base_url;
    let Some(e) = &st.entra else {
        return Value::Null;
    };
    json!({
        "token_endpoint": format!("{b}/token"),
        "token_endpoint_auth_methods_supported":
            ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{b}/jwks"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": OIDC_SCOPES,
        "issuer": st.issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{b}/authorize"),
        "device_authorization_endpoint": format!("{b}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{b}/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
            "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{b}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
        "tenant_id_dev_only": e.cfg.tenant_id,
    })
}

/// Splits a scope into (resource identifier, name) at its last `/`.
fn split_scope(s: &str) -> Option<(&str, &str)> {
    let i = s.rfind('/')?;
    Some((&s[..i], &s[i + 1..]))
}

/// Checks a `scope` value the way Entra resolves it. `Err((error, code, text))`.
fn resolve(cfg: &EntraConfig, scope: &str) -> Result<Scopes, (&'static str, u32, String)> {
    let uri = cfg.app_id_uri();
    let guid_prefix = cfg.app_id.clone();
    let mut out = Scopes::default();
    let mut resources: Vec<String> = Vec::new();
    let mut named: Vec<(Resource, String)> = Vec::new();
    for s in scope.split(' ').filter(|t| !t.is_empty()) {
        if OIDC_SCOPES.contains(&s) {
            if !out.oidc.iter().any(|o| o == s) {
                out.oidc.push(s.to_string());
            }
            continue;
        }
        let (resource, name) = match split_scope(s) {
            // A bare name: Entra resolves it against Microsoft Graph.
            None => (GRAPH_URI.to_string(), s.to_string()),
            Some((r, n)) => (r.to_string(), n.to_string()),
        };
        let which = if resource.eq_ignore_ascii_case(&uri) || resource == guid_prefix {
            Resource::Api
        } else if resource == GRAPH_URI || resource == GRAPH_APP_ID {
            Resource::Graph
        } else {
            return Err((
                "invalid_resource",
                500011,
                format!(
                    "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                    cfg.tenant_id
                ),
            ));
        };
        let key = match which {
            Resource::Api => "api".to_string(),
            Resource::Graph => "graph".to_string(),
        };
        if !resources.contains(&key) {
            resources.push(key);
        }
        named.push((which, name));
    }
    if resources.len() > 1 {
        return Err((
            "invalid_scope",
            28000,
            format!(
                "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        ));
    }
    for (which, name) in named {
        let known = match which {
            Resource::Api => name == ".default" || cfg.scopes.contains(&name),
            Resource::Graph => GRAPH_SCOPES.contains(&name.as_str()),
        };
        if !known {
            let on = match which {
                Resource::Api => cfg.app_id.clone(),
                Resource::Graph => GRAPH_APP_ID.to_string(),
            };
            return Err((
                "invalid_scope",
                650053,
                format!(
                    "The application '{}' asked for scope '{name}' that doesn't exist on the resource '{on}'. Contact the app vendor.",
                    cfg.client_id
                ),
            ));
        }
        out.resource = Some(which);
        let names: Vec<String> = if which == Resource::Api && name == ".default" {
            cfg.scopes.clone()
        } else if which == Resource::Graph && name == ".default" {
            vec!["User.Read".to_string()]
        } else {
            vec![name]
        };
        for n in names {
            if !out.names.contains(&n) {
                out.names.push(n);
            }
        }
    }
    Ok(out)
}

/// `resource` (RFC 8707) is accepted only when it names the API the scopes are for
/// (`scopes` is `None` when they did not resolve).
fn resource_ok(cfg: &EntraConfig, resources: &[&str], scopes: Option<&Scopes>) -> bool {
    let uri = cfg.app_id_uri();
    let names_api = |r: &str| r.eq_ignore_ascii_case(&uri) || r == cfg.app_id;
    let scopes_api = scopes.is_none_or(|s| s.resource == Some(Resource::Api));
    resources.is_empty() || (resources.iter().all(|r| names_api(r)) && scopes_api)
}

const RESOURCE_MISMATCH: &str =
    "The resource parameter provided in the request doesn't match with the requested scopes.";

/// The web client's authentication (Basic or `client_secret_post`).
fn authenticate(
    cfg: &EntraConfig,
    headers: &HeaderMap,
    p: &Params,
) -> Result<String, Box<Response>> {
    let one = |n: &str| {
        p.one(n)
            .map_err(|e| Box::new(bad("invalid_request", 90015, &e)))
    };
    let body_id = one("client_id")?;
    let body_secret = one("client_secret")?;
    let (id, secret) = match headers.get(header::AUTHORIZATION) {
        Some(auth) => {
            let auth = auth.to_str().unwrap_or("");
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .ok()
                })
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(Box::new(aad_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )));
            };
            let id = crate::idp::form_decode(id).unwrap_or_default();
            let secret = crate::idp::form_decode(secret).unwrap_or_default();
            (id, Some(secret).filter(|s| !s.is_empty()))
        }
        None => {
            let Some(id) = body_id else {
                return Err(Box::new(bad(
                    "invalid_request",
                    900144,
                    "The request body must contain the following parameter: 'client_id'.",
                )));
            };
            (id.to_string(), body_secret.map(str::to_string))
        }
    };
    if id != cfg.client_id {
        return Err(Box::new(bad(
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                cfg.tenant_id
            ),
        )));
    }
    match secret {
        None => Err(Box::new(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ))),
        Some(s) if s == cfg.client_secret => Ok(id),
        Some(_) => Err(Box::new(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                cfg.client_id
            ),
        ))),
    }
}

fn redirect_not_registered(cfg: &EntraConfig, uri: &str) -> String {
    format!(
        "The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.",
        cfg.client_id
    )
}

/// `GET /authorize` in Entra mode.
pub(crate) fn authorize(e: &EntraState, query: &str) -> Response {
    let cfg = &e.cfg;
    let Some(p) = Params::parse(query) else {
        return error_page(90015, "The request is malformed.");
    };
    let get = |n: &str| p.one(n);
    let (client_id, redirect_uri, state) =
        match (get("client_id"), get("redirect_uri"), get("state")) {
            (Ok(c), Ok(r), Ok(s)) => (c, r, s),
            _ => return error_page(90015, "A parameter is repeated."),
        };
    let Some(client_id) = client_id else {
        return error_page(
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    if client_id != cfg.client_id {
        return error_page(
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                cfg.tenant_id
            ),
        );
    }
    let Some(redirect_uri) = redirect_uri else {
        return error_page(
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    if !cfg.redirect_uris.iter().any(|r| r == redirect_uri) {
        return error_page(50011, &redirect_not_registered(cfg, redirect_uri));
    }
    // From here on errors go back to the (registered) redirect URI.
    let fail = |error: &str, code: u32, text: &str| {
        let description = format!("AADSTS{code}: {text}");
        let mut params = vec![
            ("error", error),
            ("error_description", description.as_str()),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        redirect_with(redirect_uri, &params)
    };
    let (response_type, challenge, method, scope, nonce) = match (
        get("response_type"),
        get("code_challenge"),
        get("code_challenge_method"),
        get("scope"),
        get("nonce"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d), Ok(n)) => (a, b, c, d, n),
        _ => return fail("invalid_request", 90015, "A parameter is repeated."),
    };
    if response_type != Some("code") {
        return fail(
            "unsupported_response_type",
            700054,
            "response_type must be 'code' (the dev IdP's Entra mode supports only the authorization code flow).",
        );
    }
    let Some(scope) = scope else {
        return fail(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let resolved = resolve(cfg, scope);
    if !resource_ok(cfg, &p.all("resource"), resolved.as_ref().ok()) {
        return fail("invalid_target", 9010010, RESOURCE_MISMATCH);
    }
    let scopes = match resolved {
        Ok(s) => s,
        Err((error, code, text)) => return fail(error, code, &text),
    };
    if let Some(c) = challenge {
        if method != Some("S256") {
            return fail(
                "invalid_request",
                501491,
                "code_challenge_method must be S256 (the dev IdP refuses plain; Entra accepts it).",
            );
        }
        let ok = c.len() == 43
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return fail("invalid_request", 50148, "The code_challenge is malformed.");
        }
    }
    let code = random_token(48);
    {
        let t = now();
        let mut codes = lock(&e.codes);
        codes.retain(|_, c| c.expires_at >= t);
        codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                challenge: challenge.map(str::to_string),
                scopes,
                nonce: nonce.map(str::to_string),
                expires_at: t + cfg.code_ttl_secs,
            },
        );
    }
    let session_state = guid(&random_token(16));
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("session_state", session_state.as_str()));
    redirect_with(redirect_uri, &params)
}

/// `POST /token` in Entra mode (the body is already known to be a form).
pub(crate) fn token(st: &IdpState, e: &EntraState, headers: &HeaderMap, p: &Params) -> Response {
    let cfg = &e.cfg;
    let grant_type = match p.one("grant_type") {
        Ok(Some(g)) => g.to_string(),
        Ok(None) => {
            return bad(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        }
        Err(err) => return bad("invalid_request", 90015, &err),
    };
    if !["authorization_code", "refresh_token", "client_credentials"].contains(&grant_type.as_str())
    {
        return bad(
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant_type}'."),
        );
    }
    let client_id = match authenticate(cfg, headers, p) {
        Ok(id) => id,
        Err(resp) => return *resp,
    };
    let scope = match p.one("scope") {
        Ok(s) => s,
        Err(err) => return bad("invalid_request", 90015, &err),
    };
    let resources = p.all("resource");
    let resolved = scope.map(|s| resolve(cfg, s)).transpose();
    if !resource_ok(
        cfg,
        &resources,
        resolved.as_ref().ok().and_then(Option::as_ref),
    ) {
        return bad("invalid_target", 9010010, RESOURCE_MISMATCH);
    }
    let requested = match resolved {
        Ok(s) => s,
        Err((error, code, text)) => return bad(error, code, &text),
    };
    match grant_type.as_str() {
        "client_credentials" => client_credentials(st, cfg, &client_id, scope),
        "authorization_code" => authorization_code(st, e, &client_id, p, requested),
        _ => refresh(st, e, &client_id, p, requested),
    }
}

fn client_credentials(
    st: &IdpState,
    cfg: &EntraConfig,
    client_id: &str,
    scope: Option<&str>,
) -> Response {
    let Some(scope) = scope else {
        return bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
        );
    };
    let uri = cfg.app_id_uri();
    let ok = [
        format!("{uri}/.default"),
        format!("{}/.default", cfg.app_id),
    ];
    if !ok.iter().any(|o| o == scope.trim()) {
        return bad(
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }
    let t = now();
    let mut claims = json!({
        "aud": cfg.audience(),
        "iss": st.issuer,
        "iat": t,
        "nbf": t,
        "exp": t + st.ttl,
        "azp": client_id,
        "azpacr": "1",
        "idtyp": "app",
        "oid": guid(&format!("sp:{client_id}")),
        "sub": guid(&format!("sp:{client_id}")),
        "tid": cfg.tenant_id,
        "uti": random_token(16),
        "ver": "2.0",
    });
    if !cfg.app_roles.is_empty() {
        claims["roles"] = json!(cfg.app_roles);
    }
    let Some(access) = sign(st, &claims, false) else {
        return server_error();
    };
    st.tokens_issued.fetch_add(1, Ordering::SeqCst);
    json_response(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": st.ttl, "ext_expires_in": st.ttl,
                "access_token": access}),
    )
}

fn server_error() -> Response {
    aad_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        50000,
        "There was an error issuing a token (no RSA key in the ring).",
    )
}

fn authorization_code(
    st: &IdpState,
    e: &EntraState,
    client_id: &str,
    p: &Params,
    requested: Option<Scopes>,
) -> Response {
    let cfg = &e.cfg;
    let (code, redirect_uri, verifier) =
        match (p.one("code"), p.one("redirect_uri"), p.one("code_verifier")) {
            (Ok(c), Ok(r), Ok(v)) => (c, r, v),
            _ => return bad("invalid_request", 90015, "A parameter is repeated."),
        };
    let Some(requested) = requested else {
        return bad(
            "invalid_scope",
            28003,
            "Provided value for the input parameter scope cannot be empty when requesting an access token using the provided authorization code. Please specify a valid scope.",
        );
    };
    let Some(code) = code else {
        return bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'code'.",
        );
    };
    let Some(redirect_uri) = redirect_uri else {
        return bad(
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'redirect_uri'.",
        );
    };
    if !cfg.redirect_uris.iter().any(|r| r == redirect_uri) {
        return bad(
            "invalid_request",
            50011,
            &redirect_not_registered(cfg, redirect_uri),
        );
    }
    let t = now();
    {
        let mut redeemed = lock(&e.redeemed);
        redeemed.retain(|_, exp| *exp >= t);
        if redeemed.contains_key(code) {
            return bad(
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            );
        }
    }
    // Checks that fail leave the code unredeemed (the client may retry); success redeems it.
    let mut codes = lock(&e.codes);
    let Some(pending) = codes.get(code) else {
        return bad(
            "invalid_grant",
            70000,
            "The provided value for the 'code' parameter is not valid.",
        );
    };
    if pending.expires_at < t {
        codes.remove(code);
        return bad(
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
        );
    }
    if pending.client_id != client_id {
        return bad(
            "invalid_grant",
            70000,
            "The provided value for the 'code' parameter is not valid: it was issued to another application.",
        );
    }
    if pending.redirect_uri != redirect_uri {
        return bad(
            "invalid_grant",
            500112,
            &format!(
                "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                pending.redirect_uri
            ),
        );
    }
    if let Some(challenge) = &pending.challenge {
        let ok = verifier.is_some_and(|v| b64url(&Sha256::digest(v.as_bytes())) == *challenge);
        if !ok {
            return bad(
                "invalid_grant",
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            );
        }
    }
    if let Err(resp) = consented(cfg, &pending.scopes, &requested) {
        return *resp;
    }
    let Some(pending) = codes.remove(code) else {
        return server_error();
    };
    drop(codes);
    lock(&e.redeemed).insert(code.to_string(), pending.expires_at);
    let grant = RefreshGrant {
        client_id: client_id.to_string(),
        consented: pending.scopes.clone(),
        current: requested,
        expires_at: t + cfg.refresh_ttl_secs,
    };
    issue(st, e, grant, pending.nonce.as_deref())
}

/// API scopes requested at the token endpoint must have been consented to.
fn consented(
    cfg: &EntraConfig,
    consented: &Scopes,
    requested: &Scopes,
) -> Result<(), Box<Response>> {
    if requested.resource != Some(Resource::Api) {
        return Ok(());
    }
    let missing: Vec<&String> = requested
        .names
        .iter()
        .filter(|n| consented.resource != Some(Resource::Api) || !consented.names.contains(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Box::new(bad(
        "invalid_grant",
        65001,
        &format!(
            "The user or administrator has not consented to use the application with ID '{}' for the scope(s) {}. Send an interactive authorization request for this user and resource.",
            cfg.client_id,
            missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        ),
    )))
}

fn refresh(
    st: &IdpState,
    e: &EntraState,
    client_id: &str,
    p: &Params,
    requested: Option<Scopes>,
) -> Response {
    let cfg = &e.cfg;
    let token = match p.one("refresh_token") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return bad(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'refresh_token'.",
            )
        }
        Err(err) => return bad("invalid_request", 90015, &err),
    };
    let t = now();
    {
        let mut retired = lock(&e.retired);
        retired.retain(|_, exp| *exp >= t);
        if retired.contains_key(token) {
            return bad(
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. (The dev IdP retires a refresh token once it has been used.)",
            );
        }
    }
    let mut store = lock(&e.refresh);
    let Some(grant) = store.get(token).cloned() else {
        return bad(
            "invalid_grant",
            9002313,
            "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
        );
    };
    if grant.expires_at < t {
        store.remove(token);
        return bad(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        );
    }
    if grant.client_id != client_id {
        return bad(
            "invalid_grant",
            70000,
            "The refresh token was issued to another application.",
        );
    }
    let current = match requested {
        None => grant.current.clone(),
        Some(r) => {
            if let Err(resp) = consented(cfg, &grant.consented, &r) {
                return *resp;
            }
            r
        }
    };
    store.remove(token);
    drop(store);
    lock(&e.retired).insert(token.to_string(), grant.expires_at);
    let next = RefreshGrant {
        current,
        expires_at: t + cfg.refresh_ttl_secs,
        ..grant
    };
    issue(st, e, next, None)
}

fn sign(st: &IdpState, claims: &Value, graph: bool) -> Option<String> {
    let ring = st.ring();
    let key = ring.for_alg("RS256")?;
    let mut header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
    if graph {
        // Graph access tokens carry a nonce in the header (they cannot be verified by others).
        header["nonce"] = json!(random_token(32));
    }
    try_sign_jws(key, "RS256", &header, claims).ok()
}

/// Access token (+ id token, + rotated refresh token) for a grant.
fn issue(st: &IdpState, e: &EntraState, grant: RefreshGrant, nonce: Option<&str>) -> Response {
    let cfg = &e.cfg;
    let t = now();
    let user = &st.user_subject;
    let oid = guid(&format!("user:{user}"));
    let s = &grant.current;
    let graph = s.token_resource() == Resource::Graph;
    let (aud, scp, full_scope) = if graph {
        let mut names: Vec<String> = s
            .oidc
            .iter()
            .filter(|o| *o != "offline_access")
            .cloned()
            .collect();
        for n in &s.names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        if !names.iter().any(|n| n == "User.Read") {
            names.push("User.Read".into());
        }
        let full: Vec<String> = names
            .iter()
            .map(|n| {
                if OIDC_SCOPES.contains(&n.as_str()) {
                    n.clone()
                } else {
                    format!("{GRAPH_URI}/{n}")
                }
            })
            .collect();
        (GRAPH_APP_ID.to_string(), names.join(" "), full.join(" "))
    } else {
        let full: Vec<String> = s.names.iter().map(|n| cfg.scope(n)).collect();
        (cfg.audience(), s.names.join(" "), full.join(" "))
    };
    let claims = json!({
        "aud": aud,
        "iss": if graph { format!("https://sts.windows.net/{}/", cfg.tenant_id) } else { st.issuer.clone() },
        "iat": t,
        "nbf": t,
        "exp": t + st.ttl,
        "azp": grant.client_id,
        "azpacr": "1",
        "name": "Test User",
        "oid": oid,
        "preferred_username": format!("{user}@example.onmicrosoft.com"),
        "rh": "0.dev",
        "scp": scp,
        "sid": guid(&format!("sid:{user}")),
        "sub": b64url(&Sha256::digest(format!("{user}|{}", aud).as_bytes())),
        "tid": cfg.tenant_id,
        "uti": random_token(16),
        "ver": if graph { "1.0" } else { "2.0" },
    });
    let Some(access) = sign(st, &claims, graph) else {
        return server_error();
    };
    let mut body = json!({
        "token_type": "Bearer",
        "scope": full_scope,
        "expires_in": st.ttl,
        "ext_expires_in": st.ttl,
        "access_token": access,
    });
    if grant.consented.has("openid") || grant.current.has("openid") {
        let mut id = json!({
            "aud": grant.client_id,
            "iss": st.issuer,
            "iat": t,
            "nbf": t,
            "exp": t + st.ttl,
            "oid": oid,
            "sub": b64url(&Sha256::digest(format!("{user}|{}", grant.client_id).as_bytes())),
            "tid": cfg.tenant_id,
            "ver": "2.0",
        });
        if let Some(n) = nonce {
            id["nonce"] = json!(n);
        }
        if grant.consented.has("profile") {
            id["name"] = json!("Test User");
            id["preferred_username"] = json!(format!("{user}@example.onmicrosoft.com"));
        }
        if grant.consented.has("email") {
            id["email"] = json!(format!("{user}@example.com"));
        }
        match sign(st, &id, false) {
            Some(t) => body["id_token"] = json!(t),
            None => return server_error(),
        }
    }
    if grant.consented.has("offline_access") {
        let rt = format!("1.dev.{}", random_token(48));
        lock(&e.refresh).insert(rt.clone(), grant);
        body["refresh_token"] = json!(rt);
    }
    st.tokens_issued.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &body)
}
