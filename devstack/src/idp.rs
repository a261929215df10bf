//! A small but real OAuth 2.0 / OIDC authorization server for development and
//! tests: discovery, JWKS (with fault injection), client_credentials and
//! authorization_code + PKCE (S256) grants, and a `/mint` helper.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::entra::{self, EntraConfig, EntraState};
use crate::keys::{KeyKind, KeyRing, SigningKey};
use crate::mint::{now, try_sign_jws};
use crate::server::ServerThread;
use crate::{b64url, mint};

/// Minimum size of the body served in [`JwksMode::Oversized`] (just over 1 MiB).
pub const OVERSIZED_JWKS_BYTES: usize = 1024 * 1024 + 1;

/// How long an authorization code stays valid.
pub const AUTH_CODE_TTL_SECS: u64 = 300;

/// What `GET /jwks` does. Every mode counts as a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum JwksMode {
    /// 200 with the ring's JWKS.
    #[default]
    Normal,
    /// 500 with a small JSON error body.
    Status500,
    /// Never answers (the connection stays open until the IdP is dropped).
    Hang,
    /// 200 `application/json` whose body is not JSON.
    Garbage,
    /// 200 with a valid JWKS padded (extra `"padding"` member) past
    /// [`OVERSIZED_JWKS_BYTES`].
    Oversized,
    /// 200 `application/json` with exactly this body.
    Custom(String),
}

/// IdP settings. `IdpConfig::default()` gives the standard dev setup.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Port on 127.0.0.1; 0 = OS-chosen.
    pub port: u16,
    /// `iss` of issued tokens and discovery `issuer`. Default `http://127.0.0.1:<port>`.
    pub issuer: Option<String>,
    /// Base URL used for the endpoint URLs in discovery documents, for when the IdP
    /// is reached under another name (e.g. from a container). Default
    /// `http://127.0.0.1:<port>`.
    pub public_base_url: Option<String>,
    /// `aud` when the client sends no `resource`. Default `"mcp-demo"`.
    pub audience: String,
    /// Registered clients: `(client_id, client_secret, allowed scopes)`. An empty
    /// secret makes a public client (token endpoint auth method `none`, only for
    /// authorization_code). Default: `demo-client`/`demo-secret` and the public
    /// `demo-public`, both allowed [`DEFAULT_SCOPES`].
    pub clients: Vec<(String, String, Vec<String>)>,
    /// Lifetime of issued tokens. Default 3600.
    pub token_ttl_secs: u64,
    /// `typ` header of tokens from `/token`. Default `"at+jwt"` (RFC 9068).
    pub token_typ: String,
    /// `sub` of the user auto-approved at `/authorize`. Default `"test-user"`.
    pub user_subject: String,
    /// Initial keys. Default: RSA-2048 `rsa-1` and P-256 `ec-1`
    /// (process-cached, see [`SigningKey::cached`]).
    pub keys: Option<KeyRing>,
    /// Entra mode ([`crate::entra`]): `/authorize`, `/token` and discovery behave like
    /// Entra ID v2.0, only the configured web client exists, the issuer defaults to
    /// `https://login.microsoftonline.com/<tid>/v2.0` and the audience is the API's
    /// (`EntraConfig::audience`, replacing `audience`). Default `None` (off).
    pub entra: Option<EntraConfig>,
}

/// Scopes the default clients may request.
pub const DEFAULT_SCOPES: [&str; 3] = ["mcp:tools", "mcp:read", "mcp:write"];

impl Default for IdpConfig {
    fn default() -> Self {
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        IdpConfig {
            port: 0,
            issuer: None,
            public_base_url: None,
            audience: "mcp-demo".to_string(),
            clients: vec![
                ("demo-client".into(), "demo-secret".into(), scopes.clone()),
                ("demo-public".into(), String::new(), scopes),
            ],
            token_ttl_secs: 3600,
            token_typ: "at+jwt".to_string(),
            user_subject: "test-user".to_string(),
            keys: None,
            entra: None,
        }
    }
}

/// The default ring: RSA-2048 `rsa-1` and P-256 `ec-1`, process-cached.
pub fn default_ring() -> KeyRing {
    KeyRing::new(vec![
        SigningKey::cached(KeyKind::Rsa2048, "rsa-1"),
        SigningKey::cached(KeyKind::EcP256, "ec-1"),
    ])
}

struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    scopes: Vec<String>,
    resources: Vec<String>,
    expires_at: u64,
}

struct Client {
    secret: String,
    scopes: Vec<String>,
}

pub(crate) struct IdpState {
    pub(crate) issuer: String,
    pub(crate) base_url: String,
    audience: String,
    clients: HashMap<String, Client>,
    scopes_supported: Vec<String>,
    pub(crate) ttl: u64,
    token_typ: String,
    pub(crate) user_subject: String,
    ring: RwLock<KeyRing>,
    jwks_mode: Mutex<JwksMode>,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    pub(crate) tokens_issued: AtomicU64,
    codes: Mutex<HashMap<String, PendingCode>>,
    pub(crate) entra: Option<EntraState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl IdpState {
    pub(crate) fn ring(&self) -> KeyRing {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds `iss`, `aud`, `iat`, `exp` where absent.
    fn fill_defaults(&self, claims: &mut Map<String, Value>) {
        let t = now();
        claims.entry("iss").or_insert_with(|| json!(self.issuer));
        claims.entry("aud").or_insert_with(|| json!(self.audience));
        claims.entry("iat").or_insert_with(|| json!(t));
        claims.entry("exp").or_insert_with(|| json!(t + self.ttl));
    }

    fn metadata(&self) -> Value {
        if self.entra.is_some() {
            return entra::metadata(self);
        }
        let b = &self.base_url;
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{b}/authorize"),
            "token_endpoint": format!("{b}/token"),
            "jwks_uri": format!("{b}/jwks"),
            "grant_types_supported": ["client_credentials", "authorization_code"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_post", "client_secret_basic", "none"],
            "scopes_supported": self.scopes_supported,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }
}

/// A running dev IdP. Dropping it stops the server.
pub struct Idp {
    state: Arc<IdpState>,
    server: ServerThread,
}

impl Idp {
    /// Starts the IdP; returns once it is listening. Panics if it cannot bind.
    pub fn start(cfg: IdpConfig) -> Idp {
        match Idp::try_start(cfg) {
            Ok(i) => i,
            #[allow(clippy::panic)]
            Err(e) => panic!("idp: cannot start: {e}"),
        }
    }

    /// [`Idp::start`] with `IdpConfig::default()`.
    pub fn start_default() -> Idp {
        Idp::start(IdpConfig::default())
    }

    /// Starts the IdP, returning bind errors.
    pub fn try_start(cfg: IdpConfig) -> io::Result<Idp> {
        // Bind first so the issuer can contain the real port.
        let listener = crate::server::bind(cfg.port)?;
        let listener_port = listener.local_addr()?.port();
        let local = format!("http://127.0.0.1:{listener_port}");
        let mut scopes_supported: Vec<String> = Vec::new();
        for (_, _, scopes) in &cfg.clients {
            for s in scopes {
                if !scopes_supported.contains(s) {
                    scopes_supported.push(s.clone());
                }
            }
        }
        let state = Arc::new(IdpState {
            issuer: cfg
                .issuer
                .clone()
                .or_else(|| cfg.entra.as_ref().map(EntraConfig::issuer))
                .unwrap_or_else(|| local.clone()),
            base_url: cfg
                .public_base_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or(local),
            // Entra mode: the API's audience (what `mint` and `claims_for` use too).
            audience: cfg
                .entra
                .as_ref()
                .map(EntraConfig::audience)
                .unwrap_or_else(|| cfg.audience.clone()),
            clients: cfg
                .clients
                .iter()
                .map(|(id, secret, scopes)| {
                    (
                        id.clone(),
                        Client {
                            secret: secret.clone(),
                            scopes: scopes.clone(),
                        },
                    )
                })
                .collect(),
            scopes_supported,
            ttl: cfg.token_ttl_secs,
            token_typ: cfg.token_typ.clone(),
            user_subject: cfg.user_subject.clone(),
            ring: RwLock::new(cfg.keys.clone().unwrap_or_else(default_ring)),
            jwks_mode: Mutex::new(JwksMode::Normal),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            codes: Mutex::new(HashMap::new()),
            entra: cfg.entra.clone().map(EntraState::new),
        });
        let s = state.clone();
        let server = ServerThread::spawn_on("idp", listener, move || router(s))?;
        Ok(Idp { state, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>` (always the local address, whatever the issuer).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// The issuer (`iss`) of issued tokens.
    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    /// The default audience.
    pub fn audience(&self) -> String {
        self.state.audience.clone()
    }

    /// `http://127.0.0.1:<port>/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base_url())
    }

    /// `http://127.0.0.1:<port>/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// `http://127.0.0.1:<port>/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    /// `http://127.0.0.1:<port>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.base_url())
    }

    /// `http://127.0.0.1:<port>/.well-known/oauth-authorization-server`.
    pub fn as_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-authorization-server", self.base_url())
    }

    /// The current JWKS document (what `/jwks` serves in [`JwksMode::Normal`]);
    /// does not count as a fetch.
    pub fn jwks_json(&self) -> Value {
        self.state.ring().jwks()
    }

    /// A snapshot of the key ring (clone; mint tokens with its keys in-process).
    pub fn keys(&self) -> KeyRing {
        self.state.ring()
    }

    /// The key with this kid.
    pub fn key(&self, kid: &str) -> Option<SigningKey> {
        self.state.ring().get(kid).cloned()
    }

    /// Replaces the whole ring.
    pub fn set_keys(&self, ring: KeyRing) {
        *self.state.ring.write().unwrap_or_else(|p| p.into_inner()) = ring;
    }

    /// Mutates the ring in place; returns what `f` returns.
    pub fn update_keys<R>(&self, f: impl FnOnce(&mut KeyRing) -> R) -> R {
        let mut guard = self.state.ring.write().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// [`KeyRing::rotate`]: `new_key` first, old keys kept.
    pub fn rotate(&self, new_key: SigningKey) {
        self.update_keys(|r| r.rotate(new_key));
    }

    /// [`KeyRing::add`].
    pub fn add_key(&self, key: SigningKey) {
        self.update_keys(|r| r.add(key));
    }

    /// [`KeyRing::remove`].
    pub fn remove_key(&self, kid: &str) -> Option<SigningKey> {
        self.update_keys(|r| r.remove(kid))
    }

    /// Signs `claims` with the ring's first key for `alg`, header
    /// `{"alg","typ":"JWT","kid"}`, after filling in `iss`, `aud`, `iat` and `exp`
    /// where absent. Panics if no key fits `alg`.
    pub fn mint(&self, alg: &str, claims: Value) -> String {
        let mut claims = match claims {
            Value::Object(m) => m,
            #[allow(clippy::panic)]
            other => panic!("Idp::mint: claims must be an object, got {other}"),
        };
        self.state.fill_defaults(&mut claims);
        self.mint_raw(alg, Value::Object(claims))
    }

    /// Signs `claims` exactly as given with the ring's first key for `alg`.
    /// Panics if no key fits `alg`.
    pub fn mint_raw(&self, alg: &str, claims: Value) -> String {
        let ring = self.state.ring();
        match ring.for_alg(alg) {
            Some(k) => mint::mint(k, alg, claims),
            #[allow(clippy::panic)]
            None => panic!("Idp::mint: no key in the ring can sign {alg}"),
        }
    }

    /// Default claims for a token as `/token` would issue to `sub` with `scope`
    /// (space-separated): iss, sub, aud, iat, nbf, exp, jti, scope, scp.
    pub fn claims_for(&self, sub: &str, scope: &str) -> Value {
        let t = now();
        json!({
            "iss": self.state.issuer,
            "sub": sub,
            "aud": self.state.audience,
            "iat": t,
            "nbf": t,
            "exp": t + self.state.ttl,
            "jti": random_token(16),
            "scope": scope,
            "scp": scope,
        })
    }

    /// Number of `GET /jwks` requests served (any [`JwksMode`]).
    pub fn jwks_fetch_count(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Number of discovery document requests served (both well-known paths).
    pub fn discovery_fetch_count(&self) -> u64 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Number of access tokens issued by `/token`.
    pub fn tokens_issued(&self) -> u64 {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    /// Resets the fetch and token counters to 0.
    pub fn reset_counts(&self) {
        self.state.jwks_fetches.store(0, Ordering::SeqCst);
        self.state.discovery_fetches.store(0, Ordering::SeqCst);
        self.state.tokens_issued.store(0, Ordering::SeqCst);
    }

    /// Changes what `/jwks` does from the next request on.
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        *lock(&self.state.jwks_mode) = mode;
    }

    /// The current [`JwksMode`].
    pub fn jwks_mode(&self) -> JwksMode {
        lock(&self.state.jwks_mode).clone()
    }

    /// Blocks forever serving requests (for the binary).
    pub fn wait(self) {
        let Idp { state, server } = self;
        let _keep = state;
        server.join();
    }
}

fn router(state: Arc<IdpState>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/oauth-authorization-server", get(discovery))
        .route("/jwks", get(jwks))
        .route("/token", post(token).options(preflight))
        .route("/authorize", get(authorize))
        .route("/mint", post(mint_endpoint).options(preflight))
        .layer(axum::middleware::map_response(cors))
        .with_state(state)
}

async fn cors(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "authorization, content-type",
            ),
        ],
    )
        .into_response()
}

pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        v.to_string(),
    )
        .into_response()
}

async fn discovery(State(st): State<Arc<IdpState>>) -> Response {
    st.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &st.metadata())
}

async fn jwks(State(st): State<Arc<IdpState>>) -> Response {
    st.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let mode = lock(&st.jwks_mode).clone();
    let ok_json = |body: String| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    };
    match mode {
        JwksMode::Normal => ok_json(st.ring().jwks().to_string()),
        JwksMode::Status500 => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "injected failure"}),
        ),
        JwksMode::Hang => {
            // Runs until the IdP is dropped (runtime shutdown cancels it).
            loop {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
        JwksMode::Garbage => ok_json("<html>this is not a JWKS {".to_string()),
        JwksMode::Oversized => {
            let mut doc = st.ring().jwks();
            if let Value::Object(m) = &mut doc {
                m.insert("padding".into(), json!("x".repeat(OVERSIZED_JWKS_BYTES)));
            }
            ok_json(doc.to_string())
        }
        JwksMode::Custom(body) => ok_json(body),
    }
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64url(&buf)
}

/// An RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = json_response(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"devstack-idp\""),
        );
    }
    resp
}

fn bad_request(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

/// Parsed form/query parameters, keeping repeats.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn parse(s: &str) -> Option<Params> {
        serde_urlencoded::from_str::<Vec<(String, String)>>(s)
            .ok()
            .map(Params)
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `name`; `Err` when it is repeated (RFC 6749 §3.1/3.2).
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, String> {
        let v = self.all(name);
        match v.len() {
            0 => Ok(None),
            1 => Ok(v.first().copied().filter(|s| !s.is_empty())),
            _ => Err(format!("parameter {name} is repeated")),
        }
    }
}

/// Percent-decodes an `application/x-www-form-urlencoded` component.
pub(crate) fn form_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

struct ClientAuth {
    id: String,
    /// The method used: `client_secret_basic`, `client_secret_post` or `none`.
    method: &'static str,
}

/// Authenticates the client per RFC 6749 §2.3.1 (Basic or post) or as a public
/// client (`none`).
fn authenticate(
    st: &IdpState,
    headers: &HeaderMap,
    p: &Params,
) -> Result<ClientAuth, Box<Response>> {
    let invalid_client =
        |d: &str| Box::new(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", d));
    let invalid_request = |d: &str| Box::new(bad_request("invalid_request", d));
    let body_id = p.one("client_id").map_err(|e| invalid_request(&e))?;
    let body_secret = p.one("client_secret").map_err(|e| invalid_request(&e))?;

    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().unwrap_or("");
        let Some(b64) = auth
            .strip_prefix("Basic ")
            .or_else(|| auth.strip_prefix("basic "))
        else {
            return Err(invalid_client("unsupported Authorization scheme"));
        };
        if body_secret.is_some() {
            return Err(invalid_request(
                "more than one client authentication method",
            ));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid_client("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| invalid_client("malformed Basic credentials"))?;
        let id = form_decode(id).ok_or_else(|| invalid_client("malformed client_id"))?;
        let secret = form_decode(secret).ok_or_else(|| invalid_client("malformed secret"))?;
        if body_id.is_some_and(|b| b != id) {
            return Err(invalid_request(
                "client_id does not match Basic credentials",
            ));
        }
        match st.clients.get(&id) {
            Some(c) if !c.secret.is_empty() && c.secret == secret => Ok(ClientAuth {
                id,
                method: "client_secret_basic",
            }),
            _ => Err(invalid_client("client authentication failed")),
        }
    } else {
        let Some(id) = body_id else {
            return Err(invalid_client("no client authentication"));
        };
        let Some(client) = st.clients.get(id) else {
            return Err(invalid_client("client authentication failed"));
        };
        match body_secret {
            Some(secret) if !client.secret.is_empty() && client.secret == secret => {
                Ok(ClientAuth {
                    id: id.to_string(),
                    method: "client_secret_post",
                })
            }
            Some(_) => Err(invalid_client("client authentication failed")),
            None if client.secret.is_empty() => Ok(ClientAuth {
                id: id.to_string(),
                method: "none",
            }),
            None => Err(invalid_client("client authentication required")),
        }
    }
}

/// Requested scopes, checked against the client's allowed ones. Absent → all of
/// the client's scopes.
fn resolve_scopes(client: &Client, scope: Option<&str>) -> Result<Vec<String>, String> {
    match scope {
        None => Ok(client.scopes.clone()),
        Some(s) => {
            let mut out: Vec<String> = Vec::new();
            for sc in s.split(' ').filter(|x| !x.is_empty()) {
                if !client.scopes.iter().any(|a| a == sc) {
                    return Err(format!("scope {sc:?} is not allowed for this client"));
                }
                if !out.iter().any(|o| o == sc) {
                    out.push(sc.to_string());
                }
            }
            Ok(out)
        }
    }
}

/// RFC 8707: absolute URI without fragment.
fn check_resources(resources: &[&str]) -> Result<(), String> {
    for r in resources {
        let scheme_ok = r
            .split_once("://")
            .is_some_and(|(s, rest)| !s.is_empty() && !rest.is_empty());
        if !scheme_ok || r.contains('#') {
            return Err(format!(
                "resource {r:?} is not an absolute URI without fragment"
            ));
        }
    }
    Ok(())
}

fn issue_token(
    st: &IdpState,
    sub: &str,
    client_id: &str,
    scopes: &[String],
    resources: &[String],
) -> Response {
    let t = now();
    let scope = scopes.join(" ");
    let aud = match resources {
        [] => json!(st.audience),
        [one] => json!(one),
        many => json!(many),
    };
    let mut claims = json!({
        "iss": st.issuer,
        "sub": sub,
        "aud": aud,
        "exp": t + st.ttl,
        "iat": t,
        "nbf": t,
        "jti": random_token(16),
        "client_id": client_id,
        "azp": client_id,
    });
    if !scope.is_empty() {
        if let Value::Object(m) = &mut claims {
            m.insert("scope".into(), json!(scope));
            m.insert("scp".into(), json!(scope));
        }
    }
    let ring = st.ring();
    let Some(key) = ring.for_alg("RS256") else {
        return oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "no RSA key in the ring",
        );
    };
    let header = json!({"alg": "RS256", "typ": st.token_typ, "kid": key.kid});
    match try_sign_jws(key, "RS256", &header, &claims) {
        Ok(token) => {
            st.tokens_issued.fetch_add(1, Ordering::SeqCst);
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": st.ttl,
                    "scope": scope,
                }),
            )
        }
        Err(e) => oauth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            &e.to_string(),
        ),
    }
}

async fn token(State(st): State<Arc<IdpState>>, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return bad_request(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let Some(p) = std::str::from_utf8(&body).ok().and_then(Params::parse) else {
        return bad_request("invalid_request", "malformed form body");
    };
    if let Some(e) = &st.entra {
        return entra::token(&st, e, &headers, &p);
    }
    let grant_type = match p.one("grant_type") {
        Ok(Some(g)) => g.to_string(),
        Ok(None) => return bad_request("invalid_request", "grant_type is required"),
        Err(e) => return bad_request("invalid_request", &e),
    };
    if grant_type != "client_credentials" && grant_type != "authorization_code" {
        return bad_request(
            "unsupported_grant_type",
            &format!("grant_type {grant_type:?} is not supported"),
        );
    }
    let auth = match authenticate(&st, &headers, &p) {
        Ok(a) => a,
        Err(resp) => return *resp,
    };
    let Some(client) = st.clients.get(&auth.id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    };
    let resources = p.all("resource");
    if let Err(e) = check_resources(&resources) {
        return bad_request("invalid_target", &e);
    }
    if grant_type == "client_credentials" {
        if auth.method == "none" {
            return bad_request(
                "unauthorized_client",
                "public clients cannot use client_credentials",
            );
        }
        let scope = match p.one("scope") {
            Ok(s) => s,
            Err(e) => return bad_request("invalid_request", &e),
        };
        let scopes = match resolve_scopes(client, scope) {
            Ok(s) => s,
            Err(e) => return bad_request("invalid_scope", &e),
        };
        let resources: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
        return issue_token(&st, &auth.id, &auth.id, &scopes, &resources);
    }

    // authorization_code
    let (code, redirect_uri, verifier) =
        match (p.one("code"), p.one("redirect_uri"), p.one("code_verifier")) {
            (Ok(c), Ok(r), Ok(v)) => (c, r, v),
            _ => return bad_request("invalid_request", "repeated parameter"),
        };
    let Some(code) = code else {
        return bad_request("invalid_request", "code is required");
    };
    let Some(redirect_uri) = redirect_uri else {
        return bad_request("invalid_request", "redirect_uri is required");
    };
    let Some(verifier) = verifier else {
        return bad_request("invalid_request", "code_verifier is required (PKCE)");
    };
    // Single use: the code is consumed by any redemption attempt.
    let Some(pending) = lock(&st.codes).remove(code) else {
        return bad_request("invalid_grant", "unknown, used or expired code");
    };
    if pending.expires_at < now() {
        return bad_request("invalid_grant", "the code has expired");
    }
    if pending.client_id != auth.id {
        return bad_request("invalid_grant", "the code was issued to another client");
    }
    if pending.redirect_uri != redirect_uri {
        return bad_request("invalid_grant", "redirect_uri does not match");
    }
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok {
        return bad_request("invalid_grant", "malformed code_verifier");
    }
    if b64url(&Sha256::digest(verifier.as_bytes())) != pending.code_challenge {
        return bad_request("invalid_grant", "PKCE verification failed");
    }
    let resources: Vec<String> = if resources.is_empty() {
        pending.resources.clone()
    } else {
        if !pending.resources.is_empty()
            && !resources
                .iter()
                .all(|r| pending.resources.iter().any(|a| a == r))
        {
            return bad_request("invalid_target", "resource was not authorized");
        }
        resources.iter().map(|r| r.to_string()).collect()
    };
    issue_token(&st, &st.user_subject, &auth.id, &pending.scopes, &resources)
}

pub(crate) fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let location = format!("{redirect_uri}{sep}{query}");
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => bad_request("invalid_request", "bad redirect_uri"),
    }
}

async fn authorize(State(st): State<Arc<IdpState>>, RawQuery(q): RawQuery) -> Response {
    if let Some(e) = &st.entra {
        return entra::authorize(e, q.as_deref().unwrap_or(""));
    }
    let Some(p) = Params::parse(q.as_deref().unwrap_or("")) else {
        return bad_request("invalid_request", "malformed query");
    };
    // Errors before the client and redirect_uri are known go to the user agent.
    let (client_id, redirect_uri, state) =
        match (p.one("client_id"), p.one("redirect_uri"), p.one("state")) {
            (Ok(c), Ok(r), Ok(s)) => (c, r, s),
            _ => return bad_request("invalid_request", "repeated parameter"),
        };
    let Some(client_id) = client_id else {
        return bad_request("invalid_request", "client_id is required");
    };
    let Some(client) = st.clients.get(client_id) else {
        return bad_request("invalid_client", "unknown client_id");
    };
    let Some(redirect_uri) = redirect_uri else {
        return bad_request("invalid_request", "redirect_uri is required");
    };
    if !(redirect_uri.starts_with("http://") || redirect_uri.starts_with("https://"))
        || redirect_uri.contains('#')
    {
        return bad_request(
            "invalid_request",
            "redirect_uri must be an absolute http(s) URI",
        );
    }
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        redirect_with(redirect_uri, &params)
    };
    let one = |name: &str| p.one(name);
    let (response_type, challenge, method, scope) = match (
        one("response_type"),
        one("code_challenge"),
        one("code_challenge_method"),
        one("scope"),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        _ => return fail("invalid_request", "repeated parameter"),
    };
    if response_type != Some("code") {
        return fail("unsupported_response_type", "only response_type=code");
    }
    let Some(challenge) = challenge else {
        return fail("invalid_request", "code_challenge is required (PKCE)");
    };
    if method != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let challenge_ok = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !challenge_ok {
        return fail("invalid_request", "malformed code_challenge");
    }
    let scopes = match resolve_scopes(client, scope) {
        Ok(s) => s,
        Err(e) => return fail("invalid_scope", &e),
    };
    let resources = p.all("resource");
    if let Err(e) = check_resources(&resources) {
        return fail("invalid_target", &e);
    }
    let code = random_token(32);
    {
        let mut codes = lock(&st.codes);
        let t = now();
        codes.retain(|_, c| c.expires_at >= t);
        codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                code_challenge: challenge.to_string(),
                scopes,
                resources: resources.iter().map(|r| r.to_string()).collect(),
                expires_at: t + AUTH_CODE_TTL_SECS,
            },
        );
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", st.issuer.as_str()));
    redirect_with(redirect_uri, &params)
}

/// `POST /mint` body: `{"claims": {...}, "alg": "RS256", "kid": "...",
/// "header": {...}, "raw": false}`.
async fn mint_endpoint(State(st): State<Arc<IdpState>>, body: Bytes) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return bad_request("invalid_request", "body must be a JSON object"),
    };
    let alg = match req.get("alg") {
        None | Some(Value::Null) => "RS256",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return bad_request("invalid_request", "alg must be a string"),
    };
    let mut claims = match req.get("claims") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return bad_request("invalid_request", "claims must be an object"),
    };
    let raw = req.get("raw").and_then(Value::as_bool).unwrap_or(false);
    if !raw {
        st.fill_defaults(&mut claims);
    }
    let ring = st.ring();
    let key = match req.get("kid") {
        None | Some(Value::Null) => ring.for_alg(alg),
        Some(Value::String(kid)) => ring.get(kid),
        Some(_) => return bad_request("invalid_request", "kid must be a string"),
    };
    let Some(key) = key else {
        return bad_request("invalid_request", &format!("no key for alg {alg} / kid"));
    };
    let mut header = match mint::default_header(key, alg) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    match req.get("header") {
        None | Some(Value::Null) => {}
        Some(Value::Object(extra)) => {
            for (k, v) in extra {
                if v.is_null() {
                    header.remove(k);
                } else {
                    header.insert(k.clone(), v.clone());
                }
            }
        }
        Some(_) => return bad_request("invalid_request", "header must be an object"),
    }
    match try_sign_jws(key, alg, &Value::Object(header), &Value::Object(claims)) {
        Ok(token) => json_response(StatusCode::OK, &json!({"token": token})),
        Err(e) => bad_request("invalid_request", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64url_decode;
    use crate::http;

    fn decode_part(token: &str, idx: usize) -> Value {
        let part = token.split('.').nth(idx).unwrap();
        serde_json::from_slice(&b64url_decode(part).unwrap()).unwrap()
    }

    fn verify_rs256(idp: &Idp, token: &str) -> bool {
        use rsa::signature::Verifier;
        let header = decode_part(token, 0);
        let key = idp.key(header["kid"].as_str().unwrap()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64url_decode(sig).unwrap();
        rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key.rsa_public().unwrap())
            .verify(input.as_bytes(), &sig.as_slice().try_into().unwrap())
            .is_ok()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn discovery_documents() {
        let idp = Idp::start_default();
        let base = idp.base_url();
        assert_eq!(idp.issuer(), base);
        for url in [idp.discovery_url(), idp.as_metadata_url()] {
            let resp = http::get(&url).unwrap();
            assert_eq!(resp.status, 200);
            assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
            let m = resp.json().unwrap();
            assert_eq!(m["issuer"], base);
            assert_eq!(m["jwks_uri"], format!("{base}/jwks"));
            assert_eq!(m["token_endpoint"], format!("{base}/token"));
            assert_eq!(m["authorization_endpoint"], format!("{base}/authorize"));
            assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(
                m["grant_types_supported"],
                json!(["client_credentials", "authorization_code"])
            );
            assert_eq!(m["scopes_supported"], json!(DEFAULT_SCOPES));
        }
        assert_eq!(idp.discovery_fetch_count(), 2);
    }

    #[test]
    fn issuer_and_public_url_overrides() {
        let idp = Idp::start(IdpConfig {
            issuer: Some("https://issuer.example".into()),
            public_base_url: Some("http://idp.internal:9000/".into()),
            ..IdpConfig::default()
        });
        let m = http::get(&idp.discovery_url()).unwrap().json().unwrap();
        assert_eq!(m["issuer"], "https://issuer.example");
        assert_eq!(m["jwks_uri"], "http://idp.internal:9000/jwks");
        let token = idp.mint("RS256", json!({"sub": "x"}));
        assert_eq!(decode_part(&token, 1)["iss"], "https://issuer.example");
    }

    #[test]
    fn jwks_counter_and_modes() {
        let idp = Idp::start_default();
        assert_eq!(idp.jwks_fetch_count(), 0);
        let resp = http::get(&idp.jwks_url()).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        let jwks = resp.json().unwrap();
        assert_eq!(jwks, idp.jwks_json());
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["rsa-1", "ec-1"]);
        assert_eq!(idp.jwks_fetch_count(), 1);
        http::get(&idp.jwks_url()).unwrap();
        assert_eq!(idp.jwks_fetch_count(), 2);

        idp.set_jwks_mode(JwksMode::Status500);
        assert_eq!(http::get(&idp.jwks_url()).unwrap().status, 500);
        idp.set_jwks_mode(JwksMode::Garbage);
        let resp = http::get(&idp.jwks_url()).unwrap();
        assert_eq!(resp.status, 200);
        assert!(resp.json().is_err());
        idp.set_jwks_mode(JwksMode::Oversized);
        let resp = http::get(&idp.jwks_url()).unwrap();
        assert!(resp.body.len() >= OVERSIZED_JWKS_BYTES);
        assert_eq!(resp.json().unwrap()["keys"], idp.jwks_json()["keys"]);
        idp.set_jwks_mode(JwksMode::Custom(r#"{"keys":[]}"#.into()));
        assert_eq!(
            http::get(&idp.jwks_url()).unwrap().json().unwrap(),
            json!({"keys": []})
        );
        idp.set_jwks_mode(JwksMode::Hang);
        let started = std::time::Instant::now();
        let r = http::request_with_timeout(
            "GET",
            &idp.jwks_url(),
            &[],
            b"",
            Duration::from_millis(300),
        );
        assert!(r.is_err());
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(idp.jwks_fetch_count(), 7);
        idp.set_jwks_mode(JwksMode::Normal);
        assert_eq!(http::get(&idp.jwks_url()).unwrap().status, 200);
        idp.reset_counts();
        assert_eq!(idp.jwks_fetch_count(), 0);
        // Dropping with a hung request still outstanding must not block.
        drop(idp);
    }

    #[test]
    fn rotation_changes_jwks_and_signing_key() {
        let idp = Idp::start_default();
        idp.rotate(SigningKey::cached(KeyKind::Rsa2048, "rsa-2"));
        assert_eq!(idp.keys().kids(), ["rsa-2", "rsa-1", "ec-1"]);
        let served = http::get(&idp.jwks_url()).unwrap().json().unwrap();
        assert_eq!(served["keys"].as_array().unwrap().len(), 3);
        let resp = http::post_form(
            &idp.token_url(),
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic("demo-client", "demo-secret"))],
        )
        .unwrap();
        let token = resp.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(decode_part(&token, 0)["kid"], "rsa-2");
        assert!(verify_rs256(&idp, &token));
        assert!(idp.remove_key("rsa-1").is_some());
        assert_eq!(idp.keys().kids(), ["rsa-2", "ec-1"]);
        idp.set_keys(KeyRing::default());
        assert_eq!(idp.jwks_json(), json!({"keys": []}));
    }

    #[test]
    fn client_credentials_basic_and_post() {
        let idp = Idp::start_default();
        let resp = http::post_form(
            &idp.token_url(),
            &[
                ("grant_type", "client_credentials"),
                ("scope", "mcp:tools mcp:read"),
                ("resource", "http://localhost:10000/mcp"),
            ],
            &[("Authorization", &basic("demo-client", "demo-secret"))],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.header("cache-control"), Some("no-store"));
        let body = resp.json().unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "mcp:tools mcp:read");
        let token = body["access_token"].as_str().unwrap();
        assert!(verify_rs256(&idp, token));
        let header = decode_part(token, 0);
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "at+jwt", "kid": "rsa-1"})
        );
        let c = decode_part(token, 1);
        assert_eq!(c["iss"], idp.issuer());
        assert_eq!(c["sub"], "demo-client");
        assert_eq!(c["aud"], "http://localhost:10000/mcp");
        assert_eq!(c["scp"], "mcp:tools mcp:read");
        assert_eq!(c["scope"], "mcp:tools mcp:read");
        assert_eq!(c["client_id"], "demo-client");
        assert_eq!(c["azp"], "demo-client");
        let iat = c["iat"].as_u64().unwrap();
        assert_eq!(c["nbf"].as_u64().unwrap(), iat);
        assert_eq!(c["exp"].as_u64().unwrap(), iat + 3600);
        assert!(c["jti"].as_str().unwrap().len() >= 16);

        // client_secret_post, no scope → all allowed scopes, default audience.
        let resp = http::post_form(
            &idp.token_url(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "demo-client"),
                ("client_secret", "demo-secret"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let token = resp.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        let c = decode_part(&token, 1);
        assert_eq!(c["aud"], "mcp-demo");
        assert_eq!(c["scp"], DEFAULT_SCOPES.join(" "));
        assert_eq!(idp.tokens_issued(), 2);
    }

    #[test]
    fn token_endpoint_errors() {
        let idp = Idp::start_default();
        let url = idp.token_url();
        let check = |form: &[(&str, &str)], headers: &[(&str, &str)], status: u16, err: &str| {
            let resp = http::post_form(&url, form, headers).unwrap();
            assert_eq!(resp.status, status, "{form:?}: {}", resp.text());
            assert_eq!(resp.json().unwrap()["error"], err, "{form:?}");
            resp
        };
        let good = basic("demo-client", "demo-secret");
        let resp = check(
            &[("grant_type", "client_credentials")],
            &[("Authorization", &basic("demo-client", "wrong"))],
            401,
            "invalid_client",
        );
        assert!(resp.header("www-authenticate").is_some());
        check(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", "x"),
            ],
            &[],
            401,
            "invalid_client",
        );
        check(
            &[("grant_type", "client_credentials")],
            &[],
            401,
            "invalid_client",
        );
        check(
            &[("grant_type", "password")],
            &[("Authorization", &good)],
            400,
            "unsupported_grant_type",
        );
        check(&[], &[("Authorization", &good)], 400, "invalid_request");
        check(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "mcp:tools admin"),
            ],
            &[("Authorization", &good)],
            400,
            "invalid_scope",
        );
        check(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "a"),
                ("scope", "b"),
            ],
            &[("Authorization", &good)],
            400,
            "invalid_request",
        );
        check(
            &[
                ("grant_type", "client_credentials"),
                ("resource", "not-a-uri"),
            ],
            &[("Authorization", &good)],
            400,
            "invalid_target",
        );
        check(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "demo-public"),
            ],
            &[],
            400,
            "unauthorized_client",
        );
        // Not a form body.
        let resp = http::post_json(
            &url,
            &json!({"grant_type": "client_credentials"}),
            &[("Authorization", &good)],
        )
        .unwrap();
        assert_eq!(resp.status, 400);
        assert_eq!(resp.json().unwrap()["error"], "invalid_request");
        assert_eq!(idp.tokens_issued(), 0);
    }

    struct Pkce {
        verifier: String,
        challenge: String,
    }

    fn pkce() -> Pkce {
        let verifier = random_token(32); // 43 chars
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        Pkce {
            verifier,
            challenge,
        }
    }

    fn authorize_code(idp: &Idp, client: &str, redirect: &str, p: &Pkce, extra: &str) -> String {
        let q = http::form_encode(&[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", redirect),
            ("code_challenge", &p.challenge),
            ("code_challenge_method", "S256"),
            ("state", "st-123"),
        ]);
        let resp = http::get(&format!("{}?{q}{extra}", idp.authorize_url())).unwrap();
        assert_eq!(resp.status, 302, "{}", resp.text());
        let loc = resp.header("location").unwrap().to_string();
        let (base, query) = loc.split_once('?').unwrap();
        assert_eq!(base, redirect);
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("state").as_deref(), Some("st-123"));
        assert_eq!(get("error"), None, "{loc}");
        get("code").unwrap()
    }

    #[test]
    fn authorization_code_with_pkce() {
        let idp = Idp::start_default();
        let redirect = "http://127.0.0.1:33418/callback";
        let p = pkce();
        let code = authorize_code(
            &idp,
            "demo-public",
            redirect,
            &p,
            "&scope=mcp%3Atools&resource=http%3A%2F%2Flocalhost%3A10000%2Fmcp",
        );
        let resp = http::post_form(
            &idp.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", "demo-public"),
                ("code_verifier", &p.verifier),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let body = resp.json().unwrap();
        assert_eq!(body["scope"], "mcp:tools");
        let token = body["access_token"].as_str().unwrap();
        assert!(verify_rs256(&idp, token));
        let c = decode_part(token, 1);
        assert_eq!(c["sub"], "test-user");
        assert_eq!(c["client_id"], "demo-public");
        assert_eq!(c["aud"], "http://localhost:10000/mcp");
        assert_eq!(c["scp"], "mcp:tools");

        // Codes are single use.
        let resp = http::post_form(
            &idp.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("client_id", "demo-public"),
                ("code_verifier", &p.verifier),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(resp.status, 400);
        assert_eq!(resp.json().unwrap()["error"], "invalid_grant");

        // Confidential client with Basic auth works too.
        let p2 = pkce();
        let code = authorize_code(&idp, "demo-client", redirect, &p2, "");
        let resp = http::post_form(
            &idp.token_url(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &p2.verifier),
            ],
            &[("Authorization", &basic("demo-client", "demo-secret"))],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let c = decode_part(resp.json().unwrap()["access_token"].as_str().unwrap(), 1);
        assert_eq!(c["aud"], "mcp-demo");
        assert_eq!(c["scp"], DEFAULT_SCOPES.join(" "));
    }

    #[test]
    fn authorization_code_pkce_failures() {
        let idp = Idp::start_default();
        let redirect = "http://127.0.0.1:33418/cb";
        let redeem = |code: &str, verifier: Option<&str>, redirect_uri: &str, client: &str| {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect_uri),
                ("client_id", client),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            let resp = http::post_form(&idp.token_url(), &form, &[]).unwrap();
            (resp.status, resp.json().unwrap()["error"].clone())
        };

        // Wrong verifier.
        let p = pkce();
        let code = authorize_code(&idp, "demo-public", redirect, &p, "");
        let other = pkce();
        assert_eq!(
            redeem(&code, Some(&other.verifier), redirect, "demo-public"),
            (400, json!("invalid_grant"))
        );
        // The failed attempt consumed the code.
        assert_eq!(
            redeem(&code, Some(&p.verifier), redirect, "demo-public"),
            (400, json!("invalid_grant"))
        );
        // Missing verifier.
        let code = authorize_code(&idp, "demo-public", redirect, &p, "");
        assert_eq!(
            redeem(&code, None, redirect, "demo-public"),
            (400, json!("invalid_request"))
        );
        // Plain-method verifier (verifier == challenge) is rejected.
        let code = authorize_code(&idp, "demo-public", redirect, &p, "");
        assert_eq!(
            redeem(&code, Some(&p.challenge), redirect, "demo-public"),
            (400, json!("invalid_grant"))
        );
        // Redirect URI mismatch.
        let code = authorize_code(&idp, "demo-public", redirect, &p, "");
        assert_eq!(
            redeem(
                &code,
                Some(&p.verifier),
                "http://127.0.0.1:1/other",
                "demo-public"
            ),
            (400, json!("invalid_grant"))
        );
        // Code issued to another client.
        let code = authorize_code(&idp, "demo-client", redirect, &p, "");
        assert_eq!(
            redeem(&code, Some(&p.verifier), redirect, "demo-public"),
            (400, json!("invalid_grant"))
        );
        // Confidential client without its secret.
        let code = authorize_code(&idp, "demo-client", redirect, &p, "");
        assert_eq!(
            redeem(&code, Some(&p.verifier), redirect, "demo-client"),
            (401, json!("invalid_client"))
        );
        // Unknown code.
        assert_eq!(
            redeem("nope", Some(&p.verifier), redirect, "demo-public"),
            (400, json!("invalid_grant"))
        );

        // /authorize refuses plain and missing PKCE, redirecting with an error.
        for extra in [
            format!(
                "&code_challenge={}&code_challenge_method=plain",
                p.challenge
            ),
            format!("&code_challenge={}", p.challenge),
            String::new(),
        ] {
            let q = http::form_encode(&[
                ("response_type", "code"),
                ("client_id", "demo-public"),
                ("redirect_uri", redirect),
                ("state", "s1"),
            ]);
            let resp = http::get(&format!("{}?{q}{extra}", idp.authorize_url())).unwrap();
            assert_eq!(resp.status, 302);
            let loc = resp.header("location").unwrap();
            assert!(loc.starts_with(redirect), "{loc}");
            assert!(loc.contains("error=invalid_request"), "{loc}");
            assert!(loc.contains("state=s1"), "{loc}");
            assert!(!loc.contains("code="), "{loc}");
        }
        // Unknown client: no redirect.
        let resp = http::get(&format!(
            "{}?response_type=code&client_id=evil&redirect_uri=http%3A%2F%2Fx%2Fcb",
            idp.authorize_url()
        ))
        .unwrap();
        assert_eq!(resp.status, 400);
        assert_eq!(idp.tokens_issued(), 0);
    }

    #[test]
    fn mint_endpoint_and_in_process_mint() {
        let idp = Idp::start_default();
        let url = format!("{}/mint", idp.base_url());
        let resp = http::post_json(&url, &json!({"claims": {"sub": "alice"}}), &[]).unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let token = resp.json().unwrap()["token"].as_str().unwrap().to_string();
        assert!(verify_rs256(&idp, &token));
        assert_eq!(
            decode_part(&token, 0),
            json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})
        );
        let c = decode_part(&token, 1);
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["iss"], idp.issuer());
        assert_eq!(c["aud"], "mcp-demo");
        assert!(c["exp"].as_u64().unwrap() > now());

        // ES256, header merge (null removes), raw claims.
        let resp = http::post_json(
            &url,
            &json!({"alg": "ES256", "claims": {"sub": "bob"}, "raw": true,
                    "header": {"typ": null, "x5u": "http://evil"}}),
            &[],
        )
        .unwrap();
        let token = resp.json().unwrap()["token"].as_str().unwrap().to_string();
        assert_eq!(
            decode_part(&token, 0),
            json!({"alg": "ES256", "kid": "ec-1", "x5u": "http://evil"})
        );
        assert_eq!(decode_part(&token, 1), json!({"sub": "bob"}));

        // Explicit kid whose key cannot do the alg → 400.
        let resp = http::post_json(&url, &json!({"alg": "ES256", "kid": "rsa-1"}), &[]).unwrap();
        assert_eq!(resp.status, 400);
        let resp = http::post_json(&url, &json!({"alg": "EdDSA"}), &[]).unwrap();
        assert_eq!(resp.status, 400);

        // In-process.
        let t = idp.mint("ES256", json!({"sub": "carol"}));
        assert_eq!(decode_part(&t, 0)["kid"], "ec-1");
        assert_eq!(decode_part(&t, 1)["aud"], "mcp-demo");
        let t = idp.mint_raw("RS256", json!({"sub": "dave"}));
        assert_eq!(decode_part(&t, 1), json!({"sub": "dave"}));
        let c = idp.claims_for("erin", "mcp:read");
        assert_eq!(c["scp"], "mcp:read");
        assert!(verify_rs256(&idp, &idp.mint_raw("RS256", c)));
    }
}
