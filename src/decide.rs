//! The whole request decision, sans-IO: request headers + time + keys in, a verdict out.
//!
//! Order: path sanity → well-known paths (PRM, 404) → first matching rule → CORS preflight
//! → token extraction → keys → verification → claim headers. Every "no" is a [`Response`]
//! the filter sends itself, so a denied request never reaches the backend.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::authz::mcp::{self, HeaderCall};
use crate::authz::policy::{self, Needs, Verdict};
use crate::authz::rules::{self, Unmatched};
use crate::config::Config;
use crate::http::challenge::{BearerError, Challenge};
use crate::http::cors;
use crate::http::decision_headers::NAMES;
use crate::http::extract::{self, Authorization, ExtractError};
pub use crate::http::filter_state as state;
use crate::http::headers::Headers;
use crate::http::prm;
use crate::http::response::{Response, EXPOSE_HEADERS, MCP_ALLOW_HEADERS};
use crate::keys::jwks::KeySet;
use crate::keys::source::KeySource;
use crate::token::cache::{SetHeaders, TokenCache};
use crate::token::host_signature::HostVerifier;
use crate::token::identity::{Identity, SharedIdentity};
use crate::token::provider::Provider;
use crate::token::verify::{self, claim_at, VerifyError};
use crate::util::clock::{Clock, Fixed, COARSE_MAX_LAG};

/// What the filter knows about a request after its headers arrived.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `:path`, query included.
    pub path: &'a str,
    pub scheme: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub forwarded_proto: Option<&'a str>,
    /// The `Authorization` header values (the first, and how many).
    pub authorization: Authorization<'a>,
    pub origin: Option<&'a str>,
    pub access_control_request_method: Option<&'a str>,
    /// MCP 2026-07-28 `Mcp-Method` / `Mcp-Name` headers (checked against the body).
    pub mcp_method: Option<&'a str>,
    pub mcp_name: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// The decision input from the request headers, in one pass over them (names compared
    /// ASCII case-insensitively; the first value counts, and `Authorization` values are also
    /// counted so that a second one can be refused).
    pub fn from_headers(headers: &'a Headers) -> Request<'a> {
        let mut found: [Option<&'a str>; 10] = [None; 10];
        let mut r = Request::default();
        for (name, value) in headers.iter() {
            let Some(i) = slot(name) else {
                continue;
            };
            if i == 5 {
                r.authorization.push(value);
            } else if let Some(slot @ None) = found.get_mut(i) {
                *slot = Some(value);
            }
        }
        let [method, path, scheme, authority, forwarded_proto, _, origin, acrm, mcp_method, mcp_name] =
            found;
        r.method = method.unwrap_or("");
        r.path = path.unwrap_or("");
        r.scheme = scheme;
        r.authority = authority;
        r.forwarded_proto = forwarded_proto;
        r.origin = origin;
        r.access_control_request_method = acrm;
        r.mcp_method = mcp_method;
        r.mcp_name = mcp_name;
        r
    }
}

/// The index in [`NAMES`] of a header the decision reads. The length (and for two lengths
/// one byte) picks the only candidate, so a header costs one jump and at most one compare.
fn slot(name: &str) -> Option<usize> {
    let second = || name.as_bytes().get(1).map(u8::to_ascii_lowercase);
    let i = match name.len() {
        5 => 1,
        6 => 6,
        7 if second() == Some(b'm') => 0,
        7 => 2,
        8 => 9,
        10 if second() == Some(b'a') => 3,
        10 => 8,
        13 => 5,
        17 => 4,
        29 => 7,
        _ => return None,
    };
    NAMES
        .get(i)
        .is_some_and(|n| crate::util::bytes::same_name(n.as_bytes(), name.as_bytes()))
        .then_some(i)
}

/// Where the current key set of a provider comes from at request time.
pub trait KeyStore {
    /// The keys of `cfg.providers[index]`. `None`: not available (not fetched yet, or
    /// too stale to trust).
    fn key_set(&self, index: usize, provider: &Provider) -> Option<Arc<KeySet>>;

    /// This VM's verified-token cache, if any.
    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        None
    }

    /// Told whether a valid token came from the cache (for metrics).
    fn note_cache(&self, _hit: bool) {}

    /// The host's RS* and ES256 signature check, when it passed the self-check
    /// (`token/host_signature.rs`); `None`: the module's own code checks every signature.
    fn host_verifier(&self) -> Option<&dyn HostVerifier> {
        None
    }
}

/// Keys that are part of the configuration (`local_jwks`).
pub struct ConfiguredKeys;

impl KeyStore for ConfiguredKeys {
    fn key_set(&self, _index: usize, provider: &Provider) -> Option<Arc<KeySet>> {
        match &provider.keys {
            KeySource::Local(set) => Some(Arc::clone(set)),
            KeySource::Remote(_) => None,
        }
    }
}

/// Configured keys with a verified-token cache of their own, as the filter decides with its
/// VM's cache (native measurements: `tests/decide_bench.rs`, the V8 decision bench).
pub struct ConfiguredKeysWithCache(pub RefCell<TokenCache>);

impl KeyStore for ConfiguredKeysWithCache {
    fn key_set(&self, index: usize, provider: &Provider) -> Option<Arc<KeySet>> {
        ConfiguredKeys.key_set(index, provider)
    }

    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        Some(&self.0)
    }
}

/// How a request ended, for metrics and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A valid token for the rule's provider.
    Allowed {
        /// Index into `Config::providers`.
        provider: usize,
    },
    /// A rule without `requires`, or an unmatched path with `unmatched: allow`.
    Unprotected,
    PrmServed,
    /// A CORS preflight answered at the edge.
    Preflight,
    /// Refused; `reason` is the metric label, `detail` the log text.
    Denied {
        reason: &'static str,
        detail: Cow<'static, str>,
    },
}

impl Outcome {
    /// The outcome's name, as in the metric `mcp_edge_auth.<label>`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Allowed { .. } => "allowed",
            Outcome::Unprotected => "unprotected",
            Outcome::PrmServed => "prm_served",
            Outcome::Preflight => "preflight",
            Outcome::Denied { .. } => "denied",
        }
    }

    /// The `decision` and (for a denial) `reason` filter state of this outcome.
    pub fn filter_state(&self, set: &mut dyn FnMut(&'static str, &str)) {
        set(state::DECISION, self.label());
        if let Outcome::Denied { reason, .. } = self {
            set(state::REASON, reason);
        }
    }
}

/// What a decision tells the rest of Envoy besides its outcome (filter state for access logs,
/// RBAC and rate limits; `filter/http.rs` sets one property per non-empty value). Never the
/// token or a claim of an unverified one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// The verified token's identity (rendered once per token, kept in its cache entry).
    /// `None` without a verified token, and in the body decision of an MCP POST (its header
    /// phase published it).
    pub identity: Option<SharedIdentity>,
    /// The JSON-RPC methods of an MCP body (a batch's distinct ones, comma-separated).
    pub mcp_method: Option<String>,
    /// The tools its `tools/call` messages name (distinct, comma-separated).
    pub tool: Option<String>,
}

impl Published {
    fn identity(identity: &SharedIdentity) -> Published {
        Published {
            identity: Some(Arc::clone(identity)),
            ..Published::default()
        }
    }

    /// Calls `set` for each non-empty value, with its name.
    pub fn filter_state(&self, set: &mut dyn FnMut(&'static str, &str)) {
        let mut put = |name: &'static str, value: &str| {
            if !value.is_empty() {
                set(name, value);
            }
        };
        if let Some(id) = &self.identity {
            put(state::SUBJECT, &id.subject);
            put(state::CLIENT_ID, &id.client_id);
            put(state::TENANT, &id.tenant);
            put(state::PROVIDER, &id.provider);
            put(state::SCOPES, &id.scopes);
        }
        put(state::MCP_METHOD, self.mcp_method.as_deref().unwrap_or(""));
        put(state::TOOL, self.tool.as_deref().unwrap_or(""));
    }
}

/// Changes to the request when it goes on to the backend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forward {
    /// Header names to delete (all copies) before adding `set_headers` (a list the
    /// configuration made once: `Config::strip_allowed`, `strip_unprotected`).
    pub remove_headers: Arc<[String]>,
    /// Rendered once per verified token (`claim_headers`), shared with its cache entry.
    pub set_headers: SetHeaders,
}

/// A refusal that newer keys could turn around: the filter may wait for a (re)fetch of the
/// provider's keys and decide again instead of answering at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// No keys at all for this provider (index into `Config::providers`).
    KeysMissing(usize),
    /// The token's `kid` is not in this provider's key set.
    UnknownKid(usize),
}

/// What the body check needs to know from the header phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCheck {
    pub rule: usize,
    pub provider: usize,
    pub granted: BTreeSet<String>,
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    pub resource_metadata: Option<String>,
    /// The request's `Origin`, for the CORS headers of a refusal.
    pub origin: Option<String>,
}

/// The verdict.
#[derive(Clone, Debug)]
pub enum Decision {
    Continue {
        forward: Forward,
        outcome: Outcome,
        published: Published,
    },
    /// The token is good; apply `forward` now, then hold the request until its body has
    /// been checked with [`decide_body`].
    NeedBody {
        forward: Forward,
        check: BodyCheck,
        outcome: Outcome,
        published: Published,
    },
    Respond {
        response: Response,
        outcome: Outcome,
        retry: Option<Retry>,
        published: Published,
    },
}

impl Decision {
    pub fn outcome(&self) -> &Outcome {
        match self {
            Decision::Continue { outcome, .. }
            | Decision::NeedBody { outcome, .. }
            | Decision::Respond { outcome, .. } => outcome,
        }
    }

    /// What this decision publishes as filter state, each non-empty value once with its name
    /// ([`state`]): the identity and MCP call it carries, then (unless the body still has to
    /// decide) the outcome.
    pub fn filter_state(&self, set: &mut dyn FnMut(&'static str, &str)) {
        match self {
            Decision::Continue {
                outcome, published, ..
            }
            | Decision::Respond {
                outcome, published, ..
            } => {
                published.filter_state(set);
                outcome.filter_state(set);
            }
            Decision::NeedBody { published, .. } => published.filter_state(set),
        }
    }
}

fn denied(
    response: Response,
    reason: &'static str,
    detail: impl Into<Cow<'static, str>>,
) -> Decision {
    Decision::Respond {
        response,
        outcome: Outcome::Denied {
            reason,
            detail: detail.into(),
        },
        retry: None,
        published: Published::default(),
    }
}

/// `d` with what it publishes set to `p`.
fn publishing(mut d: Decision, p: Published) -> Decision {
    match &mut d {
        Decision::Continue { published, .. }
        | Decision::NeedBody { published, .. }
        | Decision::Respond { published, .. } => *published = p,
    }
    d
}

/// Decides what to do with a request. `now` is seconds since the epoch.
pub fn decide(cfg: &Config, req: &Request<'_>, keys: &dyn KeyStore, now: u64) -> Decision {
    decide_at(cfg, req, keys, &Fixed(now))
}

/// [`decide`] reading `clock` only when the decision needs the time: never for metadata,
/// preflights or a missing token; for a cached token the coarse time when its answer cannot
/// depend on the difference (`verified_claims`); else the exact time, once.
pub fn decide_at(
    cfg: &Config,
    req: &Request<'_>,
    keys: &dyn KeyStore,
    clock: &dyn Clock,
) -> Decision {
    // Origin first (MCP Streamable HTTP, DNS rebinding): a browser page from an origin not
    // in `allowed_origins` gets nothing, not even metadata.
    if let Some(origin) = req.origin {
        if !cfg.origins.allows(origin) {
            let shown: String = origin
                .chars()
                .take(200)
                .filter(|c| !c.is_control())
                .collect();
            return denied(
                cors::refused(),
                "origin_not_allowed",
                format!("Origin {shown:?} is not in allowed_origins"),
            );
        }
    }
    let mut d = decide_headers(cfg, req, keys, clock);
    if let Decision::Respond { response, .. } = &mut d {
        cfg.origins.apply(req.origin, response);
    }
    d
}

fn decide_headers(
    cfg: &Config,
    req: &Request<'_>,
    keys: &dyn KeyStore,
    clock: &dyn Clock,
) -> Decision {
    let path = rules::path_only(req.path);

    if rules::is_suspicious(path) {
        let r = Response::new(400).error_body(
            "invalid_request",
            "the path has dot segments or encoded separators",
        );
        return denied(r, "invalid_request", "path is not normalized");
    }

    // Well-known paths: metadata we serve, or 404 unless a rule names the path explicitly.
    if let Some(resource_path) = prm::resource_path(path) {
        return serve_prm(cfg, req, resource_path);
    }
    let rule = rules::first_match(&cfg.rules, path);
    if path.starts_with("/.well-known/")
        && !rule.is_some_and(|(_, r)| r.matcher.pattern().starts_with("/.well-known/"))
    {
        return denied(prm::not_found(path), "not_found", "unknown well-known path");
    }

    let strip_claim_headers = || Forward {
        remove_headers: Arc::clone(&cfg.strip_unprotected),
        set_headers: Arc::from([]),
    };
    let Some((rule_index, rule)) = rule else {
        return match cfg.unmatched {
            Unmatched::Allow => Decision::Continue {
                forward: strip_claim_headers(),
                outcome: Outcome::Unprotected,
                published: Published::default(),
            },
            Unmatched::Deny => denied(
                Response::new(403).error_body("access_denied", "no rule allows this path"),
                "no_rule",
                "no rule matches the path",
            ),
        };
    };
    let Some((provider_index, provider)) = rule
        .requires
        .and_then(|i| cfg.providers.get(i).map(|p| (i, p)))
    else {
        return Decision::Continue {
            forward: strip_claim_headers(),
            outcome: Outcome::Unprotected,
            published: Published::default(),
        };
    };

    if req.method == "OPTIONS"
        && req.origin.is_some()
        && req.access_control_request_method.is_some()
    {
        return Decision::Respond {
            response: mcp_preflight(),
            outcome: Outcome::Preflight,
            retry: None,
            published: Published::default(),
        };
    }

    // Built only when an answer needs them (not on the allowed path): the rule's own
    // metadata, else the top-level one.
    let metadata = || {
        let pr = cfg.resource_for(rule_index);
        prm::metadata_url(pr, request_origin(pr, req).as_deref(), path)
    };
    // The 401's `scope` was worked out with the configuration (`rules::challenge_scope`).
    let challenge = |error: Option<BearerError>, description: Option<&str>| {
        let metadata = metadata();
        let scope = rule.challenge_scope.as_str();
        Challenge {
            error,
            description,
            resource_metadata: metadata.as_deref(),
            scope: (!scope.is_empty()).then_some(scope),
        }
        .response()
    };

    let malformed = |e: ExtractError| {
        let (code, reason) = match &e {
            e if e.is_invalid_request() => (BearerError::InvalidRequest, "invalid_request"),
            ExtractError::TooLarge { .. } => (BearerError::InvalidToken, "too_large"),
            _ => (BearerError::InvalidToken, "malformed"),
        };
        let text = e.to_string();
        denied(challenge(Some(code), Some(&text)), reason, text)
    };
    let token = match extract::bearer_credential(req.authorization, req.path, cfg.max_token_bytes) {
        Ok(Some(t)) => t,
        Ok(None) => return denied(challenge(None, None), "missing", "no bearer token"),
        Err(e) => return malformed(e),
    };

    let key_set = keys.key_set(provider_index, provider);
    // The exact time, read at most once per decision (`verified_claims`).
    let exact = std::cell::OnceCell::new();
    let now = || *exact.get_or_init(|| clock.now());
    // A token the cache holds passed the character check before it was verified: the check
    // runs on a miss only.
    let cached = key_set
        .as_ref()
        .and_then(|ks| cached_claims(token, provider_index, provider, ks, keys, clock, &now));
    let verified = match cached {
        Some(v) => v,
        None => {
            if let Err(e) = extract::check_token_chars(token) {
                return malformed(e);
            }
            let Some(key_set) = key_set else {
                let r = Response::new(503)
                    .header("retry-after", "5")
                    .header("access-control-allow-origin", "*")
                    .error_body(
                        "temporarily_unavailable",
                        "the issuer's signing keys are not available yet; retry shortly",
                    );
                return with_retry(
                    denied(
                        r,
                        "keys_unavailable",
                        format!("no keys for provider {}", provider.name),
                    ),
                    Retry::KeysMissing(provider_index),
                );
            };
            verified_claims(token, provider_index, provider, &key_set, keys, now())
        }
    };
    let (claims, set_headers, identity) = match verified {
        Ok(v) => v,
        Err(e) => {
            let text = e.to_string();
            let d = denied(
                challenge(Some(BearerError::InvalidToken), Some(&text)),
                e.reason(),
                verify_detail(&e, provider),
            );
            return match e {
                VerifyError::UnknownKid(_) => with_retry(d, Retry::UnknownKid(provider_index)),
                _ => d,
            };
        }
    };
    // The granted scopes, only when something reads them (most routes check none).
    let is_mcp_post = rule.mcp.is_some() && req.method == "POST";
    let granted = if !rule.required_scopes.is_empty() || is_mcp_post {
        policy::granted_scopes(&claims, &provider.scope_claims)
    } else {
        BTreeSet::new()
    };
    if !rule.required_scopes.is_empty() {
        let mut needs = Needs::default();
        needs.add(&rule.required_scopes);
        let prefix = provider.scope_prefix.as_deref();
        let metadata = || metadata().map(Cow::into_owned);
        if let Some(refusal) = refuse(&needs, &granted, prefix, &metadata) {
            return publishing(refusal, Published::identity(&identity));
        }
    }
    let forward = Forward {
        remove_headers: cfg
            .strip_allowed
            .get(provider_index)
            .map_or_else(|| Arc::clone(&cfg.strip_unprotected), Arc::clone),
        set_headers,
    };
    let outcome = Outcome::Allowed {
        provider: provider_index,
    };
    // `mcp.trust_headers`: a POST that carries its MCP headers is decided from them alone;
    // its body is never held (the backend must refuse a body that disagrees with them).
    // Without them the body decides, as on any `mcp` rule.
    if let Some(m) = rule.mcp.as_ref().filter(|m| is_mcp_post && m.trust_headers) {
        match mcp::header_call(req.mcp_method, req.mcp_name) {
            HeaderCall::Call(call) => {
                let calls = std::slice::from_ref(&call);
                let published = Published {
                    identity: Some(Arc::clone(&identity)),
                    ..mcp_call(calls)
                };
                let mut needs = Needs::default();
                needs.add_messages(m, calls);
                let prefix = provider.scope_prefix.as_deref();
                let metadata = || metadata().map(Cow::into_owned);
                if let Some(refusal) = refuse(&needs, &granted, prefix, &metadata) {
                    return publishing(refusal, published);
                }
                return Decision::Continue {
                    forward,
                    outcome,
                    published,
                };
            }
            HeaderCall::Malformed(text) => {
                let d = jsonrpc_error(
                    400,
                    &Value::Null,
                    mcp::HEADER_MISMATCH,
                    &format!("Invalid Request: {text}"),
                    "header_mismatch",
                );
                return publishing(d, Published::identity(&identity));
            }
            HeaderCall::Incomplete => {}
        }
    }
    match &rule.mcp {
        Some(_) if is_mcp_post => Decision::NeedBody {
            forward,
            check: BodyCheck {
                rule: rule_index,
                provider: provider_index,
                granted,
                mcp_method: req.mcp_method.map(str::to_string),
                mcp_name: req.mcp_name.map(str::to_string),
                resource_metadata: metadata().map(Cow::into_owned),
                origin: req.origin.map(str::to_string),
            },
            outcome,
            published: Published::identity(&identity),
        },
        _ => Decision::Continue {
            forward,
            outcome,
            published: Published::identity(&identity),
        },
    }
}

/// A valid token's claims, the headers and the identity they render to.
type Claims = (
    Arc<serde_json::Map<String, Value>>,
    SetHeaders,
    SharedIdentity,
);

/// The verified-token cache's answer for `token`: `None` on a miss (or without a cache),
/// else the entry judged again (signature skipped; time, issuer and audience checked).
///
/// A cached token is judged on the coarse time when its time checks come out the same for
/// every moment from the coarse time to [`COARSE_MAX_LAG`] later (they pass on an interval,
/// so both ends decide it): then the exact time cannot change the answer. Otherwise `now`
/// is asked for the exact time.
fn cached_claims(
    token: &str,
    index: usize,
    provider: &Provider,
    key_set: &Arc<KeySet>,
    keys: &dyn KeyStore,
    clock: &dyn Clock,
    now: &dyn Fn() -> u64,
) -> Option<Result<Claims, VerifyError>> {
    let cache = keys.token_cache()?;
    let skew = provider.clock_skew_seconds;
    // Only a cache hit can be judged on the coarse time (asking uses one of its reads).
    let coarse = clock.coarse();
    // Looked up at the latest the exact time can be: an entry that might have expired by
    // then is not used (it is verified again, on the exact time).
    let latest = coarse.map_or_else(now, |c| c.saturating_add(COARSE_MAX_LAG));
    let hit = cache
        .borrow_mut()
        .get(token, index, key_set, latest, skew)
        .ok()?;
    let judged = (|| {
        let times = hit.times;
        let settled = coarse
            .is_some_and(|c| times.check(c, skew).is_ok() && times.check(latest, skew).is_ok());
        if !settled {
            times.check(now(), skew)?;
        }
        verify::check_issuer(&hit.claims, &provider.issuers, &provider.allowed_tenants)?;
        verify::check_audience(&hit.claims, &provider.audiences)?;
        keys.note_cache(true);
        Ok((hit.claims, hit.set_headers, hit.identity))
    })();
    Some(judged)
}

/// A full verification at `now` (the signature too), remembered in the cache if it passes.
fn verified_claims(
    token: &str,
    index: usize,
    provider: &Provider,
    key_set: &Arc<KeySet>,
    keys: &dyn KeyStore,
    now: u64,
) -> Result<Claims, VerifyError> {
    let verified = verify::verify_on(token, provider, key_set, now, keys.host_verifier())?;
    let claims = Arc::new(verified.claims.clone());
    let set_headers = claim_headers(provider, &claims);
    let identity = identity(provider, &claims);
    if let Some(cache) = keys.token_cache() {
        keys.note_cache(false);
        cache.borrow_mut().insert(
            token,
            index,
            key_set,
            &verified,
            Arc::clone(&claims),
            Arc::clone(&set_headers),
            Arc::clone(&identity),
        );
    }
    Ok((claims, set_headers, identity))
}

/// A 403 if `needs` are not met by `granted`.
fn refuse(
    needs: &Needs,
    granted: &BTreeSet<String>,
    prefix: Option<&str>,
    metadata: &dyn Fn() -> Option<String>,
) -> Option<Decision> {
    match needs.check(granted, prefix) {
        Verdict::Allow => None,
        Verdict::InsufficientScope { needed, missing } => {
            let text = format!("the token lacks scope {}", missing.join(" "));
            let scope = needed.join(" ");
            let metadata = metadata();
            let r = Challenge {
                error: Some(BearerError::InsufficientScope),
                description: Some(&text),
                resource_metadata: metadata.as_deref(),
                scope: Some(&scope),
            }
            .response();
            Some(denied(r, "insufficient_scope", text))
        }
        Verdict::Forbidden(text) => {
            let r = Response::new(403)
                .header("access-control-allow-origin", "*")
                .header("access-control-expose-headers", EXPOSE_HEADERS)
                .error_body("access_denied", &text);
            Some(denied(r, "forbidden", text))
        }
    }
}

/// A 400/413 answer with a JSON-RPC error body.
pub fn jsonrpc_error(
    status: u16,
    id: &Value,
    code: i64,
    message: &str,
    reason: &'static str,
) -> Decision {
    let r = Response::new(status)
        .header("access-control-allow-origin", "*")
        .header("access-control-expose-headers", EXPOSE_HEADERS)
        .json(&mcp::error_body(id, code, message));
    denied(r, reason, message.to_string())
}

/// The body check of an MCP POST: JSON-RPC shape, `Mcp-Method`/`Mcp-Name` agreement, and the
/// scopes every message needs (union over a batch).
pub fn decide_body(cfg: &Config, check: &BodyCheck, body: &[u8]) -> Decision {
    let mut d = check_body(cfg, check, body);
    if let Decision::Respond { response, .. } = &mut d {
        cfg.origins.apply(check.origin.as_deref(), response);
    }
    d
}

fn check_body(cfg: &Config, check: &BodyCheck, body: &[u8]) -> Decision {
    let (Some(rule), Some(provider)) =
        (cfg.rules.get(check.rule), cfg.providers.get(check.provider))
    else {
        return jsonrpc_error(500, &Value::Null, -32603, "filter state lost", "internal");
    };
    let Some(mcp_rule) = &rule.mcp else {
        return Decision::Continue {
            forward: Forward::default(),
            outcome: Outcome::Allowed {
                provider: check.provider,
            },
            published: Published::default(),
        };
    };
    if body.len() > mcp_rule.max_body_bytes {
        let text = format!(
            "request body of {} bytes exceeds the {}-byte limit",
            body.len(),
            mcp_rule.max_body_bytes
        );
        return jsonrpc_error(413, &Value::Null, -32600, &text, "body_too_large");
    }
    let messages = match mcp::parse_body(body) {
        Ok(m) => m,
        Err(e) => {
            return jsonrpc_error(
                400,
                &Value::Null,
                e.code(),
                &e.to_string(),
                "invalid_jsonrpc",
            )
        }
    };
    let id = mcp::reply_id(&messages);
    // Rendered only when the configuration publishes them (most publish nothing).
    let wanted = cfg.filter_state;
    let published = if wanted.contains(state::MCP_METHOD) || wanted.contains(state::TOOL) {
        mcp_call(&messages)
    } else {
        Published::default()
    };
    if let Some(text) = mcp::header_mismatch(
        &messages,
        check.mcp_method.as_deref(),
        check.mcp_name.as_deref(),
    ) {
        let d = jsonrpc_error(
            400,
            &id,
            -32600,
            &format!("Invalid Request: {text}"),
            "header_mismatch",
        );
        return publishing(d, published);
    }
    let mut needs = Needs::default();
    needs.add(&rule.required_scopes);
    needs.add_messages(mcp_rule, &messages);
    let prefix = provider.scope_prefix.as_deref();
    let metadata = || check.resource_metadata.clone();
    if let Some(refusal) = refuse(&needs, &check.granted, prefix, &metadata) {
        return publishing(refusal, published);
    }
    Decision::Continue {
        forward: Forward::default(),
        outcome: Outcome::Allowed {
            provider: check.provider,
        },
        published,
    }
}

/// At most this many bytes of a published method or tool list (client-chosen text).
const MAX_PUBLISHED: usize = 256;

/// The methods and tools an MCP body calls, as published: each distinct one once, in order,
/// comma-separated, control characters dropped, at most [`MAX_PUBLISHED`] bytes.
fn mcp_call(messages: &[mcp::Message]) -> Published {
    let mut methods = String::new();
    let mut tools = String::new();
    for m in messages {
        let (method, target) = match m {
            mcp::Message::Request { method, target, .. } => (method, target.as_deref()),
            mcp::Message::Notification { method } => (method, None),
            mcp::Message::Response => continue,
        };
        append_distinct(&mut methods, method);
        if let (Some(tool), "tools/call") = (target, method.as_str()) {
            append_distinct(&mut tools, tool);
        }
    }
    Published {
        identity: None,
        mcp_method: (!methods.is_empty()).then_some(methods),
        tool: (!tools.is_empty()).then_some(tools),
    }
}

fn append_distinct(list: &mut String, item: &str) {
    let clean: String = item.chars().filter(|c| !c.is_control()).collect();
    if clean.is_empty() || list.split(',').any(|x| x == clean) {
        return;
    }
    let extra = clean.len() + usize::from(!list.is_empty());
    if list.len() + extra > MAX_PUBLISHED {
        return;
    }
    if !list.is_empty() {
        list.push(',');
    }
    list.push_str(&clean);
}

/// The answer to an MCP POST whose body did not reach the filter within `mcp.body_timeout`
/// (Envoy never hands the body to a Wasm filter without `allow_on_headers_stop_iteration`).
/// On a rule with `mcp.trust_headers` the request was held only because it lacked the MCP
/// headers that decide it without the body: 400 saying so. Otherwise 408.
pub fn body_not_arrived(cfg: &Config, check: Option<&BodyCheck>) -> Decision {
    let trusting = check
        .and_then(|c| cfg.rules.get(c.rule))
        .and_then(|r| r.mcp.as_ref())
        .is_some_and(|m| m.trust_headers);
    if !trusting {
        let r = Response::new(408)
            .error_body("invalid_request", "the request body did not arrive in time");
        return denied(r, "body_timeout", "body never arrived");
    }
    let mut d = jsonrpc_error(
        400,
        &Value::Null,
        mcp::HEADER_MISMATCH,
        "Invalid Request: this endpoint authorizes MCP requests from the Mcp-Method header \
         and, for tools/call, prompts/get and resources/read, the Mcp-Name header; this \
         request lacks them and its body did not reach the authorization filter",
        "mcp_headers_missing",
    );
    if let Decision::Respond { response, .. } = &mut d {
        cfg.origins
            .apply(check.and_then(|c| c.origin.as_deref()), response);
    }
    d
}

fn with_retry(d: Decision, r: Retry) -> Decision {
    match d {
        Decision::Respond {
            response,
            outcome,
            published,
            ..
        } => Decision::Respond {
            response,
            outcome,
            retry: Some(r),
            published,
        },
        other => other,
    }
}

fn verify_detail(e: &VerifyError, provider: &Provider) -> String {
    format!("provider {}: {e}", provider.name)
}

/// The headers a verified token's claims give the request (`forward_identity`, then
/// `claim_to_headers`, a later one replacing an earlier of the same name). Rendered once per
/// token: the verified-token cache keeps them. The request first loses every claim header
/// and (unless `forward`) the token: `Config::strip_allowed`.
fn claim_headers(provider: &Provider, claims: &serde_json::Map<String, Value>) -> SetHeaders {
    let mut set: Vec<(String, String)> = Vec::new();
    if provider.forward_identity {
        for (header, names) in crate::token::provider::IDENTITY_HEADERS {
            let value = if names.is_empty() {
                let granted = policy::granted_scopes(claims, &provider.scope_claims);
                let scopes: Vec<&str> = granted.iter().map(String::as_str).collect();
                (!scopes.is_empty()).then(|| scopes.join(" "))
            } else {
                names
                    .iter()
                    .find_map(|n| claims.get(*n).and_then(header_value))
            };
            if let Some(v) = value {
                set.push((header.to_string(), v));
            }
        }
    }
    for c in &provider.claim_to_headers {
        if let Some(v) = claim_at(claims, &c.claim_name).and_then(header_value) {
            set.retain(|(h, _)| h != &c.header_name);
            set.push((c.header_name.clone(), v));
        }
    }
    set.into()
}

/// The identity a verified token's claims give the filter state (`Published`): `sub`, the
/// client (as `x-mcp-client-id`), `tid`, the provider's name and the granted scopes. Rendered
/// once per token: the verified-token cache keeps it.
fn identity(provider: &Provider, claims: &serde_json::Map<String, Value>) -> SharedIdentity {
    let first = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| claims.get(*n).and_then(header_value))
            .unwrap_or_default()
    };
    let granted = policy::granted_scopes(claims, &provider.scope_claims);
    let scopes: Vec<&str> = granted.iter().map(String::as_str).collect();
    Arc::new(Identity {
        subject: first(&["sub"]),
        client_id: first(&["azp", "appid", "client_id", "cid"]),
        tenant: first(&["tid"]),
        provider: provider.name.clone(),
        scopes: scopes.join(" "),
    })
}

/// A claim as a header value: strings as they are, numbers and booleans as JSON text,
/// arrays and objects as compact JSON. `None` for null or for strings with control
/// characters (which could not be sent safely).
pub fn header_value(v: &Value) -> Option<String> {
    let s = match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().any(char::is_control) {
        return None;
    }
    Some(s)
}

fn mcp_preflight() -> Response {
    Response::new(204)
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", "GET, POST, DELETE, OPTIONS")
        .header("access-control-allow-headers", MCP_ALLOW_HEADERS)
        .header("access-control-expose-headers", EXPOSE_HEADERS)
        .header("access-control-max-age", "86400")
}

/// The request's own origin, read only when `pr` has no `resource`: a configured one names
/// both the metadata URL and the document's resource (http/prm.rs).
fn request_origin(pr: &prm::ProtectedResource, req: &Request<'_>) -> Option<String> {
    if pr.resource.is_some() {
        None
    } else {
        prm::request_origin(req.forwarded_proto, req.scheme, req.authority)
    }
}

fn serve_prm(cfg: &Config, req: &Request<'_>, resource_path: &str) -> Decision {
    let path = rules::path_only(req.path);
    // The root form is the top-level document; a path form is the document of the rule that
    // protects the path (its own, else the top-level one), if a rule protects it.
    let pr = if resource_path.is_empty() {
        Some(&cfg.protected_resource)
    } else {
        rules::first_match(&cfg.rules, resource_path)
            .filter(|(_, r)| r.requires.is_some())
            .map(|(i, _)| cfg.resource_for(i))
    };
    let Some(pr) = pr.filter(|pr| !pr.authorization_servers.is_empty()) else {
        return denied(
            prm::not_found(path),
            "not_found",
            "no metadata for this path",
        );
    };
    match req.method {
        "GET" | "HEAD" => {}
        "OPTIONS" => {
            return Decision::Respond {
                response: prm::preflight(),
                outcome: Outcome::Preflight,
                retry: None,
                published: Published::default(),
            }
        }
        _ => return denied(prm::method_not_allowed(), "invalid_request", "PRM method"),
    }
    let resource = match (&pr.resource, request_origin(pr, req)) {
        (Some(r), _) => r.clone(),
        (None, Some(o)) => format!("{o}{resource_path}"),
        (None, None) => {
            let r = Response::new(400)
                .error_body("invalid_request", "the request has no usable :authority");
            return denied(r, "invalid_request", "no authority for PRM");
        }
    };
    Decision::Respond {
        response: prm::ok(pr, &resource),
        outcome: Outcome::PrmServed,
        retry: None,
        published: Published::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64;
    use serde_json::json;

    const ISS: &str = "https://idp.example.com/t/v2.0";
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn request_from_headers_in_one_pass() {
        let h = Headers::from_pairs([
            (":Method", "POST"),
            (":path", "/mcp?x=1"),
            (":path", "/second"),
            (":scheme", "https"),
            (":authority", "mcp.example.com"),
            ("x-forwarded-proto", "http"),
            ("Authorization", "Bearer a"),
            ("content-type", "application/json"),
            ("authorization", "Bearer b"),
            ("ORIGIN", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "add"),
            ("mcp-names", "ignored"),
        ]);
        let r = Request::from_headers(&h);
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/mcp?x=1", "the first value counts");
        assert_eq!(r.scheme, Some("https"));
        assert_eq!(r.authority, Some("mcp.example.com"));
        assert_eq!(r.forwarded_proto, Some("http"));
        assert_eq!(
            r.authorization,
            Authorization {
                first: Some("Bearer a"),
                count: 2
            }
        );
        assert_eq!(r.origin, Some("https://app.example"));
        assert_eq!(r.access_control_request_method, Some("POST"));
        assert_eq!(r.mcp_method, Some("tools/call"));
        assert_eq!(r.mcp_name, Some("add"));

        let empty = Headers::default();
        let r = Request::from_headers(&empty);
        assert_eq!((r.method, r.path), ("", ""));
        assert!(r.authorization.count == 0 && r.origin.is_none());
    }

    #[test]
    fn only_the_decision_headers_have_a_slot() {
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(slot(n), Some(i), "{n}");
            assert_eq!(slot(&n.to_ascii_uppercase()), Some(i), "{n}");
        }
        // Same lengths as names the decision reads, other names.
        for other in [
            ":paths",
            ":path",
            "accept",
            ":status",
            "x-other",
            "mcp-namx",
            ":authorit",
            "mcp-methox",
            "x-authority",
            "authorizatiox",
            "x-forwarded-prot",
            "x-forwarded-for",
            "access-control-request-headers",
            "",
            "a",
        ] {
            let want = NAMES.iter().position(|n| n.eq_ignore_ascii_case(other));
            assert_eq!(slot(other), want, "{other}");
        }
    }

    #[test]
    fn every_request_header_is_found_whatever_its_case() {
        let upper: Vec<String> = NAMES.iter().map(|n| n.to_ascii_uppercase()).collect();
        let h = Headers::from_pairs(
            upper
                .iter()
                .map(|n| (n.as_str(), n.as_str()))
                .chain([("x-request-id", "x"), ("user-agent", "y")]),
        );
        let r = Request::from_headers(&h);
        let got = [
            Some(r.method),
            Some(r.path),
            r.scheme,
            r.authority,
            r.forwarded_proto,
            r.authorization.first,
            r.origin,
            r.access_control_request_method,
            r.mcp_method,
            r.mcp_name,
        ];
        for (want, got) in upper.iter().zip(got) {
            assert_eq!(got, Some(want.as_str()));
        }
    }

    fn keypair(seed: u8) -> ed25519_compact::KeyPair {
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32]))
    }

    fn jwks() -> String {
        let pk = keypair(1).pk;
        json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x": b64::encode(pk.as_ref())}]})
            .to_string()
    }

    fn token_with(seed: u8, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string().as_bytes()),
            b64::encode(claims.to_string().as_bytes())
        );
        let sig = keypair(seed).sk.sign(input.as_bytes(), None);
        format!("{input}.{}", b64::encode(sig.as_ref()))
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": "api://demo", "sub": "user-1", "exp": NOW + 300,
               "iat": NOW - 10, "roles": ["a", "b"], "n": 5})
    }

    fn token(claims: Value) -> String {
        token_with(1, json!({"alg":"EdDSA","kid":"k1","typ":"JWT"}), claims)
    }

    fn config(extra: Value) -> Config {
        let mut v = json!({
            "providers": {"idp": {
                "issuer": ISS,
                "audiences": ["api://demo"],
                "local_jwks": {"inline_string": jwks()},
                "algorithms": ["EdDSA"],
                "claim_to_headers": [
                    {"claim_name":"sub","header_name":"x-mcp-subject"},
                    {"claim_name":"roles","header_name":"x-mcp-roles"},
                    {"claim_name":"n","header_name":"x-mcp-n"}
                ]
            }},
            "rules": [
                {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}},
                {"match": {"path": "/healthz"}}
            ],
            "protected_resource": {"scopes_supported": ["mcp.tools"], "resource_name": "Demo"}
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in e {
                o.insert(k.clone(), val.clone());
            }
        }
        Config::parse(v.to_string().as_bytes()).expect("valid test config")
    }

    fn req<'a>(method: &'a str, path: &'a str, auth: Vec<&'a str>) -> Request<'a> {
        Request {
            method,
            path,
            scheme: Some("http"),
            authority: Some("mcp.local:10000"),
            authorization: Authorization::from_values(&auth),
            ..Request::default()
        }
    }

    fn run(cfg: &Config, r: &Request<'_>) -> Decision {
        decide(cfg, r, &ConfiguredKeys, NOW)
    }

    fn respond(d: Decision) -> (Response, Outcome) {
        match d {
            Decision::Respond {
                response, outcome, ..
            } => (response, outcome),
            other => panic!("expected a local response, got {other:?}"),
        }
    }

    fn reason(o: &Outcome) -> &'static str {
        match o {
            Outcome::Denied { reason, .. } => reason,
            _ => "not denied",
        }
    }

    #[test]
    fn valid_token_continues_with_claim_headers_and_no_token() {
        let cfg = config(json!({}));
        let t = format!("Bearer {}", token(claims()));
        match run(&cfg, &req("POST", "/mcp", vec![&t])) {
            Decision::Continue {
                forward, outcome, ..
            } => {
                assert_eq!(outcome, Outcome::Allowed { provider: 0 });
                assert!(forward
                    .remove_headers
                    .contains(&"authorization".to_string()));
                for h in ["x-mcp-subject", "x-mcp-roles", "x-mcp-n"] {
                    assert!(forward.remove_headers.contains(&h.to_string()), "{h}");
                }
                assert_eq!(
                    forward.set_headers.to_vec(),
                    vec![
                        ("x-mcp-subject".into(), "user-1".into()),
                        ("x-mcp-roles".into(), "[\"a\",\"b\"]".into()),
                        ("x-mcp-n".into(), "5".into()),
                    ]
                );
            }
            other => panic!("expected continue, got {other:?}"),
        }
    }

    #[test]
    fn forward_true_keeps_the_token() {
        let mut cfg = config(json!({}));
        cfg.providers[0].forward = true;
        cfg.derive();
        let t = format!("Bearer {}", token(claims()));
        match run(&cfg, &req("GET", "/mcp", vec![&t])) {
            Decision::Continue { forward, .. } => {
                assert!(!forward
                    .remove_headers
                    .contains(&"authorization".to_string()))
            }
            other => panic!("expected continue, got {other:?}"),
        }
    }

    #[test]
    fn missing_token_gets_challenge_without_error() {
        let cfg = config(json!({}));
        let (r, o) = respond(run(&cfg, &req("POST", "/mcp", vec![])));
        assert_eq!(r.status, 401);
        assert_eq!(reason(&o), "missing");
        assert_eq!(
            r.get_header("www-authenticate"),
            Some("Bearer resource_metadata=\"http://mcp.local:10000/.well-known/oauth-protected-resource/mcp\", scope=\"mcp.tools\"")
        );
    }

    #[test]
    fn each_failure_has_its_status_and_reason() {
        let cfg = config(json!({}));
        let mut c = claims();
        let cases: Vec<(String, u16, &str, &str)> = vec![
            (
                token_with(2, json!({"alg":"EdDSA","kid":"k1"}), claims()),
                401,
                "bad_signature",
                "signature verification failed",
            ),
            (
                {
                    c["exp"] = json!(NOW - 120);
                    token(c.clone())
                },
                401,
                "expired",
                "expired",
            ),
            (
                {
                    c = claims();
                    c["iss"] = json!(format!("{ISS}/"));
                    token(c.clone())
                },
                401,
                "issuer",
                "is not accepted",
            ),
            (
                {
                    c = claims();
                    c["aud"] = json!(["other"]);
                    token(c.clone())
                },
                401,
                "audience",
                "audience",
            ),
            (
                {
                    c = claims();
                    c["nbf"] = json!(NOW + 3600);
                    token(c.clone())
                },
                401,
                "not_yet_valid",
                "not valid for another",
            ),
            (
                token_with(1, json!({"alg":"EdDSA","kid":"nope"}), claims()),
                401,
                "unknown_kid",
                "no key with kid",
            ),
            (
                token_with(1, json!({"alg":"RS256","kid":"k1"}), claims()),
                401,
                "algorithm",
                "not allowed",
            ),
            (
                token_with(1, json!({"alg":"none"}), claims()),
                401,
                "algorithm",
                "alg none",
            ),
            (
                token_with(1, json!({"alg":"HS256"}), claims()),
                401,
                "algorithm",
                "symmetric",
            ),
            ("a.b".into(), 401, "malformed", "3 dot-separated parts"),
        ];
        for (t, status, why, text) in cases {
            let h = format!("Bearer {t}");
            let (r, o) = respond(run(&cfg, &req("POST", "/mcp", vec![&h])));
            assert_eq!(r.status, status, "{why}");
            assert_eq!(reason(&o), why);
            let www = r.get_header("www-authenticate").unwrap_or("");
            assert!(
                www.starts_with("Bearer error=\"invalid_token\", error_description=\""),
                "{www}"
            );
            assert!(www.contains("resource_metadata=\"http://mcp.local:10000/.well-known/oauth-protected-resource/mcp\""));
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["error"], "invalid_token");
            assert!(body.to_string().contains(text), "{why}: {body}");
        }
    }

    #[test]
    fn ambiguous_credentials_are_400() {
        let cfg = config(json!({}));
        let t = format!("Bearer {}", token(claims()));
        let (r, o) = respond(run(&cfg, &req("POST", "/mcp", vec![&t, &t])));
        assert_eq!((r.status, reason(&o)), (400, "invalid_request"));
        assert!(r
            .get_header("www-authenticate")
            .unwrap_or("")
            .contains("error=\"invalid_request\""));
        let (r, _) = respond(run(&cfg, &req("POST", "/mcp?access_token=x", vec![&t])));
        assert_eq!(r.status, 400);
        let (r, _) = respond(run(&cfg, &req("POST", "/mcp?access_token=x", vec![])));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn rules_unprotected_and_unmatched() {
        let cfg = config(json!({}));
        match run(&cfg, &req("GET", "/healthz", vec![])) {
            Decision::Continue {
                forward, outcome, ..
            } => {
                assert_eq!(outcome, Outcome::Unprotected);
                assert_eq!(forward.remove_headers.len(), 3);
                assert!(forward.set_headers.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let (r, o) = respond(run(&cfg, &req("GET", "/other", vec![])));
        assert_eq!((r.status, reason(&o)), (403, "no_rule"));
        let open = config(json!({"unmatched": "allow"}));
        assert!(matches!(
            run(&open, &req("GET", "/other", vec![])),
            Decision::Continue { .. }
        ));
        let (r, _) = respond(run(&cfg, &req("GET", "/healthz/../mcp", vec![])));
        assert_eq!(r.status, 400);
    }

    #[test]
    fn prm_path_aware_root_and_errors() {
        let cfg = config(json!({}));
        let (r, o) = respond(run(
            &cfg,
            &req("GET", "/.well-known/oauth-protected-resource/mcp", vec![]),
        ));
        assert_eq!((r.status, &o), (200, &Outcome::PrmServed));
        let doc: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(doc["resource"], "http://mcp.local:10000/mcp");
        assert_eq!(doc["authorization_servers"], json!([ISS]));
        assert_eq!(doc["scopes_supported"], json!(["mcp.tools"]));
        assert_eq!(r.get_header("access-control-allow-origin"), Some("*"));
        assert_eq!(r.get_header("content-type"), Some("application/json"));

        let (r, _) = respond(run(
            &cfg,
            &req("GET", "/.well-known/oauth-protected-resource", vec![]),
        ));
        let doc: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (r.status, doc["resource"].as_str()),
            (200, Some("http://mcp.local:10000"))
        );

        let (r, o) = respond(run(
            &cfg,
            &req(
                "OPTIONS",
                "/.well-known/oauth-protected-resource/mcp",
                vec![],
            ),
        ));
        assert_eq!((r.status, o), (204, Outcome::Preflight));
        let (r, _) = respond(run(
            &cfg,
            &req("POST", "/.well-known/oauth-protected-resource/mcp", vec![]),
        ));
        assert_eq!(r.status, 405);
        let (r, _) = respond(run(
            &cfg,
            &req(
                "GET",
                "/.well-known/oauth-protected-resource/healthz",
                vec![],
            ),
        ));
        assert_eq!(r.status, 404);
        let (r, _) = respond(run(
            &cfg,
            &req("GET", "/.well-known/openid-configuration", vec![]),
        ));
        assert_eq!(r.status, 404);

        let fixed =
            config(json!({"protected_resource": {"resource": "https://mcp.example.com/mcp"}}));
        let (r, _) = respond(run(
            &fixed,
            &req("GET", "/.well-known/oauth-protected-resource/mcp", vec![]),
        ));
        let doc: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
        assert!(doc.get("scopes_supported").is_none());
        let (r, _) = respond(run(&fixed, &req("POST", "/mcp", vec![])));
        assert_eq!(
            r.get_header("www-authenticate"),
            Some("Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"")
        );
    }

    #[test]
    fn each_rule_with_its_own_protected_resource_answers_and_challenges_for_itself() {
        const ISS_B: &str = "https://okta.example.com/oauth2/default";
        const A: &str = "https://mcp.example.com/a/mcp";
        const B: &str = "https://mcp.example.com/b/mcp";
        let v = json!({
            "providers": {
                "idp": {"issuer": ISS, "audiences": [A], "algorithms": ["EdDSA"],
                        "local_jwks": {"inline_string": jwks()}},
                "okta": {"issuer": ISS_B, "audiences": [B], "algorithms": ["EdDSA"],
                         "local_jwks": {"inline_string": jwks()}, "scope_claims": ["scp"]}
            },
            "rules": [
                {"match": {"prefix": "/a/mcp"}, "requires": {"provider_name": "idp"},
                 "protected_resource": {"resource": A, "scopes_supported": ["a.read"]}},
                {"match": {"prefix": "/b/mcp"}, "requires": {"provider_name": "okta"},
                 "required_scopes": ["b.use"],
                 "protected_resource": {"resource": B, "resource_name": "B"}},
                {"match": {"prefix": "/open"}}
            ]
        });
        let cfg = Config::parse(v.to_string().as_bytes()).unwrap();
        let doc = |path: &str| {
            let (r, o) = respond(run(&cfg, &req("GET", path, vec![])));
            let body = serde_json::from_slice::<Value>(&r.body).unwrap_or(Value::Null);
            (r.status, reason(&o), body)
        };
        let (status, _, a) = doc("/.well-known/oauth-protected-resource/a/mcp");
        assert_eq!(status, 200);
        assert_eq!(a["resource"], A);
        assert_eq!(a["authorization_servers"], json!([ISS]));
        assert_eq!(a["scopes_supported"], json!(["a.read"]));
        let (status, _, b) = doc("/.well-known/oauth-protected-resource/b/mcp");
        assert_eq!(status, 200);
        assert_eq!(b["resource"], B);
        assert_eq!(b["authorization_servers"], json!([ISS_B]));
        assert_eq!(b["resource_name"], "B");
        assert!(b.get("scopes_supported").is_none(), "{b}");
        // No top-level protected_resource: no root document; the open path has none.
        assert_eq!(doc("/.well-known/oauth-protected-resource").0, 404);
        assert_eq!(doc("/.well-known/oauth-protected-resource/open").0, 404);

        let www = |d: Decision| {
            let (r, o) = respond(d);
            let h = r.get_header("www-authenticate").unwrap_or("").to_string();
            (r.status, reason(&o), h)
        };
        let meta = |r: &str| {
            format!(
                "resource_metadata=\"{}\"",
                prm::metadata_url_for_resource(r)
            )
        };
        let (status, _, h) = www(run(&cfg, &req("POST", "/a/mcp", vec![])));
        assert_eq!(status, 401);
        assert!(
            h.contains(&meta(A)) && h.contains("scope=\"a.read\""),
            "{h}"
        );
        let (status, _, h) = www(run(&cfg, &req("POST", "/b/mcp/x", vec![])));
        assert_eq!(status, 401);
        assert!(h.contains(&meta(B)) && h.contains("scope=\"b.use\""), "{h}");

        // A's token is A's only: on B it fails B's issuer check, and a token from B's
        // issuer made out to A fails B's audience check; both point at B's metadata.
        let claims_for = |iss: &str, aud: &str, scp: &str| {
            json!({"iss": iss, "aud": aud, "sub": "u", "exp": NOW + 300, "iat": NOW - 10,
                   "scp": scp})
        };
        let a_token = format!("Bearer {}", token(claims_for(ISS, A, "")));
        assert!(matches!(
            run(&cfg, &req("GET", "/a/mcp", vec![&a_token])),
            Decision::Continue { .. }
        ));
        let (status, why, h) = www(run(&cfg, &req("GET", "/b/mcp", vec![&a_token])));
        assert_eq!((status, why), (401, "issuer"), "{h}");
        assert!(h.contains(&meta(B)), "{h}");
        let for_a = format!("Bearer {}", token(claims_for(ISS_B, A, "b.use")));
        let (status, why, h) = www(run(&cfg, &req("GET", "/b/mcp", vec![&for_a])));
        assert_eq!((status, why), (401, "audience"), "{h}");
        assert!(h.contains(&meta(B)), "{h}");
        // B's 403 points at B's metadata too.
        let no_scope = format!("Bearer {}", token(claims_for(ISS_B, B, "other")));
        let (status, why, h) = www(run(&cfg, &req("GET", "/b/mcp", vec![&no_scope])));
        assert_eq!((status, why), (403, "insufficient_scope"), "{h}");
        assert!(h.contains(&meta(B)), "{h}");
        let b_token = format!("Bearer {}", token(claims_for(ISS_B, B, "b.use")));
        assert!(matches!(
            run(&cfg, &req("GET", "/b/mcp", vec![&b_token])),
            Decision::Continue { .. }
        ));
    }

    #[test]
    fn preflight_on_protected_path_is_answered_at_the_edge() {
        let cfg = config(json!({}));
        let mut r = req("OPTIONS", "/mcp", vec![]);
        r.origin = Some("http://app.local");
        r.access_control_request_method = Some("POST");
        let (resp, o) = respond(run(&cfg, &r));
        assert_eq!((resp.status, o), (204, Outcome::Preflight));
        assert!(resp
            .get_header("access-control-allow-headers")
            .unwrap_or("")
            .contains("Mcp-Session-Id"));
        // OPTIONS without the CORS headers still needs a token.
        let (resp, _) = respond(run(&cfg, &req("OPTIONS", "/mcp", vec![])));
        assert_eq!(resp.status, 401);
    }

    #[test]
    fn allowed_origins_refuse_other_origins_and_echo_listed_ones() {
        let cfg = config(json!({"allowed_origins": ["http://app.local"]}));
        // A listed origin: the challenge is readable by exactly that origin.
        let mut r = req("POST", "/mcp", vec![]);
        r.origin = Some("http://app.local");
        let (resp, _) = respond(run(&cfg, &r));
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.get_header("access-control-allow-origin"),
            Some("http://app.local")
        );
        assert_eq!(resp.get_header("vary"), Some("Origin"));
        // Another origin: 403 at the edge, on protected, open and metadata paths alike.
        for path in [
            "/mcp",
            "/healthz",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let mut r = req("GET", path, vec![]);
            r.origin = Some("http://evil.local");
            let (resp, o) = respond(run(&cfg, &r));
            assert_eq!(
                (resp.status, reason(&o)),
                (403, "origin_not_allowed"),
                "{path}"
            );
            assert_eq!(resp.get_header("access-control-allow-origin"), None);
        }
        // No Origin (not a browser): unaffected.
        let (resp, _) = respond(run(&cfg, &req("GET", "/mcp", vec![])));
        assert_eq!(resp.status, 401);
        // Preflight from the listed origin echoes it.
        let mut r = req("OPTIONS", "/mcp", vec![]);
        r.origin = Some("http://app.local");
        r.access_control_request_method = Some("POST");
        let (resp, _) = respond(run(&cfg, &r));
        assert_eq!(resp.status, 204);
        assert_eq!(
            resp.get_header("access-control-allow-origin"),
            Some("http://app.local")
        );
        // A bad entry is a config error naming it.
        let bad = json!({"providers": {}, "rules": [], "allowed_origins": ["http://a.local/"]});
        let e = Config::parse(bad.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, "allowed_origins[0]");
    }

    #[test]
    fn the_401_scope_is_what_the_route_needs_else_every_supported_scope() {
        let www = |cfg: &Config| {
            let (resp, _) = respond(run(cfg, &req("POST", "/mcp", vec![])));
            resp.get_header("www-authenticate")
                .unwrap_or("")
                .to_string()
        };
        let cfg = config(json!({}));
        assert!(www(&cfg).contains("scope=\"mcp.tools\""), "{}", www(&cfg));
        let mut v = json!({
            "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
                       "required_scopes": ["mcp.base"]}]
        });
        let cfg = config(v.clone());
        assert!(www(&cfg).contains("scope=\"mcp.base\""), "{}", www(&cfg));
        v["providers"] = json!({"idp": {
            "issuer": ISS, "audiences": ["api://demo"], "scope_prefix": "api://demo/",
            "local_jwks": {"inline_string": jwks()}, "algorithms": ["EdDSA"]
        }});
        let cfg = config(v);
        assert!(
            www(&cfg).contains("scope=\"api://demo/mcp.base\""),
            "{}",
            www(&cfg)
        );
    }

    /// A store that has the test keys for nobody, or for everybody.
    struct Store(Option<Arc<KeySet>>);
    impl KeyStore for Store {
        fn key_set(&self, _: usize, _: &Provider) -> Option<Arc<KeySet>> {
            self.0.clone()
        }
    }

    #[test]
    fn the_character_check_comes_before_the_keys_and_a_cache_cannot_skip_it() {
        let cfg = config(json!({}));
        let bad = "Bearer abc!def";
        // No keys: still a malformed token (401), not a retryable 503.
        let (r, o) = respond(decide(
            &cfg,
            &req("GET", "/mcp", vec![bad]),
            &Store(None),
            NOW,
        ));
        assert_eq!((r.status, reason(&o)), (401, "malformed"));
        // With a cache full of valid tokens the check still runs for a token it lacks.
        let store = Cached {
            cache: RefCell::new(TokenCache::new(16, 1 << 20)),
            notes: RefCell::new(Vec::new()),
        };
        let good = format!("Bearer {}", token(claims()));
        assert!(matches!(
            decide(&cfg, &req("GET", "/mcp", vec![&good]), &store, NOW),
            Decision::Continue { .. }
        ));
        for (value, status, why) in [
            (bad.to_string(), 401, "malformed"),
            (format!("{good}\u{1}"), 401, "malformed"),
            (format!("{good},{good}"), 400, "invalid_request"),
        ] {
            let (r, o) = respond(decide(&cfg, &req("GET", "/mcp", vec![&value]), &store, NOW));
            assert_eq!((r.status, reason(&o)), (status, why), "{value:?}");
        }
        assert_eq!(store.cache.borrow().len(), 1);
    }

    #[test]
    fn missing_keys_and_unknown_kid_can_be_retried() {
        let cfg = config(json!({}));
        let t = format!("Bearer {}", token(claims()));
        match decide(&cfg, &req("POST", "/mcp", vec![&t]), &Store(None), NOW) {
            Decision::Respond {
                response,
                outcome,
                retry,
                ..
            } => {
                assert_eq!(response.status, 503);
                assert_eq!(response.get_header("retry-after"), Some("5"));
                assert_eq!(reason(&outcome), "keys_unavailable");
                assert_eq!(retry, Some(Retry::KeysMissing(0)));
            }
            other => panic!("{other:?}"),
        }
        let keys = ConfiguredKeys.key_set(0, &cfg.providers[0]);
        let other_kid = format!(
            "Bearer {}",
            token_with(1, json!({"alg":"EdDSA","kid":"rotated"}), claims())
        );
        match decide(
            &cfg,
            &req("POST", "/mcp", vec![&other_kid]),
            &Store(keys.clone()),
            NOW,
        ) {
            Decision::Respond { retry, .. } => assert_eq!(retry, Some(Retry::UnknownKid(0))),
            other => panic!("{other:?}"),
        }
        // Other failures are final.
        let bad = format!(
            "Bearer {}",
            token_with(2, json!({"alg":"EdDSA","kid":"k1"}), claims())
        );
        match decide(&cfg, &req("POST", "/mcp", vec![&bad]), &Store(keys), NOW) {
            Decision::Respond { retry, .. } => assert_eq!(retry, None),
            other => panic!("{other:?}"),
        }
    }

    fn mcp_config() -> Config {
        config(json!({
            "rules": [
                {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
                 "required_scopes": ["mcp.use"],
                 "mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]},
                         "methods": {"resources/read": ["files.read"]}}}
            ]
        }))
    }

    fn scoped(scp: &str) -> String {
        let mut c = claims();
        c["scp"] = json!(scp);
        format!("Bearer {}", token(c))
    }

    fn need_body(d: Decision) -> BodyCheck {
        match d {
            Decision::NeedBody { check, .. } => check,
            other => panic!("expected NeedBody, got {other:?}"),
        }
    }

    fn call(tool: &str, id: u32) -> Value {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":{}}})
    }

    #[test]
    fn required_scopes_are_checked_in_the_header_phase() {
        let cfg = mcp_config();
        let t = scoped("calculator.add");
        let (r, o) = respond(run(&cfg, &req("GET", "/mcp", vec![&t])));
        assert_eq!((r.status, reason(&o)), (403, "insufficient_scope"));
        let www = r.get_header("www-authenticate").unwrap_or("");
        assert!(www.starts_with("Bearer error=\"insufficient_scope\", error_description=\"the token lacks scope mcp.use\""), "{www}");
        assert!(www.contains("scope=\"mcp.use\""), "{www}");
        // GET (SSE) with the rule's scope passes without a body check.
        let t = scoped("mcp.use");
        assert!(matches!(
            run(&cfg, &req("GET", "/mcp", vec![&t])),
            Decision::Continue { .. }
        ));
        // An expired token is 401 even when scopes are short too.
        let mut c = claims();
        c["exp"] = json!(NOW - 600);
        let t = format!("Bearer {}", token(c));
        let (r, _) = respond(run(&cfg, &req("POST", "/mcp", vec![&t])));
        assert_eq!(r.status, 401);
    }

    #[test]
    fn mcp_bodies_are_checked_per_tool() {
        let cfg = mcp_config();
        let t = scoped("mcp.use calculator.add");
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        let body = |v: Value| v.to_string().into_bytes();

        assert!(matches!(
            decide_body(&cfg, &check, &body(call("add", 1))),
            Decision::Continue { .. }
        ));
        let (r, o) = respond(decide_body(&cfg, &check, &body(call("subtract", 2))));
        assert_eq!((r.status, reason(&o)), (403, "insufficient_scope"));
        let www = r.get_header("www-authenticate").unwrap_or("");
        assert!(
            www.contains("scope=\"calculator.subtract mcp.use\""),
            "{www}"
        );
        assert!(www.contains("lacks scope calculator.subtract"), "{www}");
        assert!(www.contains("resource_metadata="), "{www}");

        // A batch with one forbidden call is refused as a whole.
        let batch = json!([call("add", 1), call("subtract", 2)]);
        let (r, _) = respond(decide_body(&cfg, &check, &body(batch)));
        assert_eq!(r.status, 403);
        // Unlisted tools are denied when a tools map exists.
        let (r, o) = respond(decide_body(&cfg, &check, &body(call("rm", 3))));
        assert_eq!((r.status, reason(&o)), (403, "forbidden"));
        // Methods not listed pass; notifications and responses pass.
        let list = json!({"jsonrpc":"2.0","id":4,"method":"tools/list"});
        assert!(matches!(
            decide_body(&cfg, &check, &body(list)),
            Decision::Continue { .. }
        ));
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        assert!(matches!(
            decide_body(&cfg, &check, &body(note)),
            Decision::Continue { .. }
        ));
        // resources/read needs files.read.
        let read =
            json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///x"}});
        let (r, _) = respond(decide_body(&cfg, &check, &body(read)));
        assert_eq!(r.status, 403);
    }

    #[test]
    fn malformed_bodies_and_header_mismatch_are_400_with_jsonrpc_errors() {
        let cfg = mcp_config();
        let t = scoped("mcp.use calculator.add");
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        let (r, o) = respond(decide_body(&cfg, &check, b"{not json"));
        assert_eq!((r.status, reason(&o)), (400, "invalid_jsonrpc"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["error"]["code"], -32700);
        assert_eq!(b["jsonrpc"], "2.0");
        let (r, _) = respond(decide_body(&cfg, &check, br#"{"jsonrpc":"2.0","id":9}"#));
        assert_eq!(r.status, 400);

        let mut rq = req("POST", "/mcp", vec![&t]);
        rq.mcp_method = Some("tools/call");
        rq.mcp_name = Some("subtract");
        let check = need_body(run(&cfg, &rq));
        let (r, o) = respond(decide_body(
            &cfg,
            &check,
            call("add", 7).to_string().as_bytes(),
        ));
        assert_eq!((r.status, reason(&o)), (400, "header_mismatch"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["id"], 7);
        rq.mcp_name = Some("add");
        let check = need_body(run(&cfg, &rq));
        assert!(matches!(
            decide_body(&cfg, &check, call("add", 7).to_string().as_bytes()),
            Decision::Continue { .. }
        ));
        // Oversized bodies.
        let big = vec![b' '; 2 * 1024 * 1024];
        let (r, _) = respond(decide_body(&cfg, &check, &big));
        assert_eq!(r.status, 413);
    }

    fn trusting_config() -> Config {
        config(json!({
            "rules": [
                {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
                 "mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]},
                         "methods": {"resources/read": ["files.read"]},
                         "trust_headers": true}}
            ]
        }))
    }

    #[test]
    fn trust_headers_decides_from_the_mcp_headers_without_the_body() {
        let cfg = trusting_config();
        let t = scoped("calculator.add");
        let post = |method: Option<&'static str>, name: Option<&'static str>| {
            let mut r = req("POST", "/mcp", vec![&t]);
            r.mcp_method = method;
            r.mcp_name = name;
            run(&cfg, &r)
        };
        // Allowed at header time: no body is held, claim headers are written.
        match post(Some("tools/call"), Some("add")) {
            Decision::Continue {
                forward, outcome, ..
            } => {
                assert_eq!(outcome, Outcome::Allowed { provider: 0 });
                assert!(forward
                    .set_headers
                    .iter()
                    .any(|(n, _)| n == "x-mcp-subject"));
            }
            other => panic!("expected Continue, got {other:?}"),
        }
        assert!(matches!(
            post(Some("tools/list"), None),
            Decision::Continue { .. }
        ));
        // A name sent with a method that has none decides nothing (the backend judges it).
        assert!(matches!(
            post(Some("tools/list"), Some("subtract")),
            Decision::Continue { .. }
        ));
        // Per-tool and per-method scopes, unlisted tools, the base64 name form.
        let (r, o) = respond(post(Some("tools/call"), Some("subtract")));
        assert_eq!((r.status, reason(&o)), (403, "insufficient_scope"));
        let www = r.get_header("www-authenticate").unwrap_or("");
        assert!(www.contains("scope=\"calculator.subtract\""), "{www}");
        let (r, o) = respond(post(Some("tools/call"), Some("=?base64?c3VidHJhY3Q=?=")));
        assert_eq!((r.status, reason(&o)), (403, "insufficient_scope"));
        let (r, o) = respond(post(Some("tools/call"), Some("rm")));
        assert_eq!((r.status, reason(&o)), (403, "forbidden"));
        let (r, _) = respond(post(Some("resources/read"), Some("file:///x")));
        assert_eq!(r.status, 403);
        let (r, o) = respond(post(Some("tools/call"), Some("=?base64?%%?=")));
        assert_eq!((r.status, reason(&o)), (400, "header_mismatch"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["error"]["code"], mcp::HEADER_MISMATCH);
        // Without the headers the method needs, the body decides, as without trust_headers.
        for (m, n) in [
            (None, None),
            (None, Some("subtract")),
            (Some("tools/call"), None),
        ] {
            let check = need_body(post(m, n));
            assert_eq!(check.mcp_method.as_deref(), m);
            let (r, _) = respond(decide_body(
                &cfg,
                &check,
                call("subtract", 1).to_string().as_bytes(),
            ));
            assert_eq!(r.status, 403, "{m:?} {n:?}");
        }
        // GET and DELETE are not MCP calls: no body, no headers needed.
        assert!(matches!(
            run(&cfg, &req("GET", "/mcp", vec![&t])),
            Decision::Continue { .. }
        ));
        // The same headers on a rule without trust_headers still hold the body.
        let cfg = mcp_config();
        let t = scoped("mcp.use calculator.add");
        let mut r = req("POST", "/mcp", vec![&t]);
        r.mcp_method = Some("tools/call");
        r.mcp_name = Some("add");
        need_body(run(&cfg, &r));
    }

    #[test]
    fn a_body_that_never_arrives_is_400_on_a_trusting_rule_and_408_otherwise() {
        let cfg = trusting_config();
        let t = scoped("calculator.add");
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        let (r, o) = respond(body_not_arrived(&cfg, Some(&check)));
        assert_eq!((r.status, reason(&o)), (400, "mcp_headers_missing"));
        let b: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(b["error"]["code"], mcp::HEADER_MISMATCH);
        let text = b["error"]["message"].as_str().unwrap_or("");
        assert!(
            text.contains("Mcp-Method") && text.contains("Mcp-Name"),
            "{text}"
        );
        let cfg = mcp_config();
        let t = scoped("mcp.use calculator.add");
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        let (r, o) = respond(body_not_arrived(&cfg, Some(&check)));
        assert_eq!((r.status, reason(&o)), (408, "body_timeout"));
        let (r, _) = respond(body_not_arrived(&cfg, None));
        assert_eq!(r.status, 408);
    }

    #[test]
    fn scope_prefix_and_roles() {
        let mut cfg = mcp_config();
        cfg.providers[0].scope_prefix = Some("api://demo/".into());
        cfg.providers[0].scope_claims = vec!["scp".into(), "roles".into()];
        cfg.derive();
        let mut c = claims();
        c["roles"] = json!(["api://demo/mcp.use", "calculator.add"]);
        let t = format!("Bearer {}", token(c));
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        assert!(matches!(
            decide_body(&cfg, &check, call("add", 1).to_string().as_bytes()),
            Decision::Continue { .. }
        ));
        let (r, _) = respond(decide_body(
            &cfg,
            &check,
            call("subtract", 1).to_string().as_bytes(),
        ));
        let www = r.get_header("www-authenticate").unwrap_or("");
        assert!(
            www.contains("scope=\"api://demo/calculator.subtract api://demo/mcp.use\""),
            "{www}"
        );
    }

    #[test]
    fn forward_identity_writes_the_standard_headers() {
        let mut cfg = config(json!({}));
        cfg.providers[0].forward_identity = true;
        cfg.providers[0].claim_to_headers.clear();
        cfg.providers[0].scope_claims = vec!["scp".into(), "roles".into()];
        cfg.derive();
        assert_eq!(
            cfg.strip_unprotected.to_vec(),
            crate::token::provider::IDENTITY_HEADERS
                .iter()
                .map(|(h, _)| h.to_string())
                .collect::<Vec<_>>()
        );
        let mut c = claims();
        c["oid"] = json!("oid-1");
        c["tid"] = json!("tid-1");
        c["appid"] = json!("app-1");
        c["scp"] = json!("b a");
        let t = format!("Bearer {}", token(c));
        match run(&cfg, &req("GET", "/mcp", vec![&t])) {
            Decision::Continue { forward, .. } => {
                assert_eq!(
                    forward.set_headers.to_vec(),
                    vec![
                        ("x-mcp-subject".into(), "user-1".into()),
                        ("x-mcp-object-id".into(), "oid-1".into()),
                        ("x-mcp-tenant-id".into(), "tid-1".into()),
                        ("x-mcp-client-id".into(), "app-1".into()),
                        ("x-mcp-scopes".into(), "a b".into()),
                    ]
                );
                assert!(forward.remove_headers.contains(&"x-mcp-scopes".to_string()));
            }
            other => panic!("{other:?}"),
        }
    }

    struct Cached {
        cache: RefCell<TokenCache>,
        notes: RefCell<Vec<bool>>,
    }
    impl KeyStore for Cached {
        fn key_set(&self, i: usize, p: &Provider) -> Option<Arc<KeySet>> {
            ConfiguredKeys.key_set(i, p)
        }
        fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
            Some(&self.cache)
        }
        fn note_cache(&self, hit: bool) {
            self.notes.borrow_mut().push(hit);
        }
    }

    #[test]
    fn verified_tokens_are_cached_but_time_is_checked_on_every_hit() {
        let cfg = config(json!({}));
        let store = Cached {
            cache: RefCell::new(TokenCache::new(16, 1 << 20)),
            notes: RefCell::new(Vec::new()),
        };
        let mut c = claims();
        c["exp"] = json!(NOW + 100);
        let t = format!("Bearer {}", token(c));
        let mut forwards = Vec::new();
        for _ in 0..3 {
            match decide(&cfg, &req("GET", "/mcp", vec![&t]), &store, NOW) {
                Decision::Continue { forward, .. } => forwards.push(forward.set_headers.to_vec()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(*store.notes.borrow(), vec![false, true, true]);
        // A hit gives the request the headers the full verification rendered.
        assert!(!forwards[0].is_empty());
        assert!(forwards.iter().all(|f| *f == forwards[0]), "{forwards:?}");
        // Past exp + skew the cached entry is not used and the token is refused.
        let (r, o) = respond(decide(
            &cfg,
            &req("GET", "/mcp", vec![&t]),
            &store,
            NOW + 161,
        ));
        assert_eq!((r.status, reason(&o)), (401, "expired"));
        // A bad signature is never cached.
        let bad = format!(
            "Bearer {}",
            token_with(2, json!({"alg":"EdDSA","kid":"k1"}), claims())
        );
        for _ in 0..2 {
            let (r, _) = respond(decide(&cfg, &req("GET", "/mcp", vec![&bad]), &store, NOW));
            assert_eq!(r.status, 401);
        }
        assert_eq!(store.cache.borrow().len(), 0);
    }

    /// A clock with a coarse time, counting exact reads.
    struct TestClock {
        exact: u64,
        coarse: Option<u64>,
        reads: std::cell::Cell<u32>,
    }
    impl Clock for TestClock {
        fn now(&self) -> u64 {
            self.reads.set(self.reads.get() + 1);
            self.exact
        }
        fn coarse(&self) -> Option<u64> {
            self.coarse
        }
    }

    fn verdict(d: Decision) -> (u16, &'static str) {
        match d {
            Decision::Continue { .. } => (200, "allowed"),
            other => {
                let (r, o) = respond(other);
                (r.status, reason(&o))
            }
        }
    }

    #[test]
    fn the_coarse_time_is_used_only_where_it_cannot_change_the_answer() {
        let cfg = config(json!({}));
        let skew = cfg.providers[0].clock_skew_seconds;
        let primed = |t: &str| {
            let store = Cached {
                cache: RefCell::new(TokenCache::new(16, 1 << 20)),
                notes: RefCell::new(Vec::new()),
            };
            assert_eq!(
                verdict(decide(&cfg, &req("GET", "/mcp", vec![t]), &store, NOW)),
                (200, "allowed")
            );
            store
        };
        // exp 100 s ahead, and a token not valid before NOW + 70 (nbf beyond the 60 s skew
        // only from NOW + 10 on): both limits get crossed in the sweep.
        let mut c = claims();
        c["exp"] = json!(NOW + 100);
        let expiring = format!("Bearer {}", token(c));
        let mut c = claims();
        c["nbf"] = json!(NOW + 70);
        let early = format!("Bearer {}", token(c));

        // A cached token far from its limits: no clock read at all.
        let store = primed(&expiring);
        let clock = TestClock {
            exact: NOW + 1,
            coarse: Some(NOW),
            reads: std::cell::Cell::new(0),
        };
        let d = decide_at(&cfg, &req("GET", "/mcp", vec![&expiring]), &store, &clock);
        assert_eq!((verdict(d), clock.reads.get()), ((200, "allowed"), 0));

        // Around each limit, for every lag the coarse time may have, the answer is the one the
        // exact time gives; near a limit the exact time was read.
        for (t, limit) in [(&expiring, NOW + 100 + skew), (&early, NOW + 70 - skew)] {
            for real in limit - 12..limit + 12 {
                // The exact answer: a full verification at the exact time.
                let fresh = Cached {
                    cache: RefCell::new(TokenCache::new(16, 1 << 20)),
                    notes: RefCell::new(Vec::new()),
                };
                let want = verdict(decide(&cfg, &req("GET", "/mcp", vec![t]), &fresh, real));
                for lag in 0..=COARSE_MAX_LAG {
                    let store = if t == &early {
                        // Never valid at NOW: nothing to prime, every decision is a full check.
                        Cached {
                            cache: RefCell::new(TokenCache::new(16, 1 << 20)),
                            notes: RefCell::new(Vec::new()),
                        }
                    } else {
                        primed(t)
                    };
                    let clock = TestClock {
                        exact: real,
                        coarse: Some(real - lag),
                        reads: std::cell::Cell::new(0),
                    };
                    let got = verdict(decide_at(
                        &cfg,
                        &req("GET", "/mcp", vec![t]),
                        &store,
                        &clock,
                    ));
                    assert_eq!(got, want, "real {real}, lag {lag}");
                    assert!(
                        clock.reads.get() <= 1,
                        "the exact time is read at most once"
                    );
                    if want != (200, "allowed") || t == &early {
                        // Refusals, and full verifications, are decided on the exact time.
                        assert_eq!(clock.reads.get(), 1, "real {real}, lag {lag}");
                    }
                }
            }
        }
    }

    /// The filter state a decision publishes, as (name, value) pairs in order.
    fn state_of(d: &Decision) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        d.filter_state(&mut |n, v| out.push((n, v.to_string())));
        out
    }

    #[test]
    fn an_allowed_request_publishes_the_verified_identity_and_never_the_token() {
        let mut cfg = mcp_config();
        cfg.providers[0].scope_claims = vec!["scp".into()];
        cfg.derive();
        let mut c = claims();
        c["azp"] = json!("client-9");
        c["tid"] = json!("tenant-3");
        c["scp"] = json!("mcp.use calculator.add");
        let raw = token(c);
        let t = format!("Bearer {raw}");
        let d = run(&cfg, &req("GET", "/mcp", vec![&t]));
        let got = state_of(&d);
        assert_eq!(
            got,
            vec![
                (state::SUBJECT, "user-1".into()),
                (state::CLIENT_ID, "client-9".into()),
                (state::TENANT, "tenant-3".into()),
                (state::PROVIDER, "idp".into()),
                (state::SCOPES, "calculator.add mcp.use".into()),
                (state::DECISION, "allowed".into()),
            ]
        );
        let signature = raw.rsplit('.').next().unwrap_or("");
        assert!(got.iter().all(|(_, v)| !v.contains(signature)), "{got:?}");

        // A cache hit publishes the same identity, rendered once (the entry's own).
        let store = ConfiguredKeysWithCache(RefCell::new(TokenCache::new(16, 1 << 20)));
        let first = decide(&cfg, &req("GET", "/mcp", vec![&t]), &store, NOW);
        let again = decide(&cfg, &req("GET", "/mcp", vec![&t]), &store, NOW);
        assert_eq!(state_of(&first), got);
        assert_eq!(state_of(&again), got);
        match (first, again) {
            (Decision::Continue { published: a, .. }, Decision::Continue { published: b, .. }) => {
                assert!(Arc::ptr_eq(
                    a.identity.as_ref().unwrap(),
                    b.identity.as_ref().unwrap()
                ))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn denials_publish_the_reason_and_only_a_verified_identity() {
        let cfg = mcp_config();
        // Not verified (expired): no claim of it is published, only why it was refused.
        let mut c = claims();
        c["exp"] = json!(NOW - 600);
        let t = format!("Bearer {}", token(c));
        assert_eq!(
            state_of(&run(&cfg, &req("GET", "/mcp", vec![&t]))),
            vec![
                (state::DECISION, "denied".into()),
                (state::REASON, "expired".into())
            ]
        );
        assert_eq!(
            state_of(&run(&cfg, &req("GET", "/mcp", vec![]))),
            vec![
                (state::DECISION, "denied".into()),
                (state::REASON, "missing".into())
            ]
        );
        // Verified but short of the rule's scopes: who it was, and why not.
        let t = scoped("calculator.add");
        let got = state_of(&run(&cfg, &req("GET", "/mcp", vec![&t])));
        assert_eq!(got.first(), Some(&(state::SUBJECT, "user-1".into())));
        assert_eq!(
            got.get(got.len() - 2..),
            Some(
                &[
                    (state::DECISION, "denied".into()),
                    (state::REASON, "insufficient_scope".into())
                ][..]
            )
        );
        // Other outcomes name themselves.
        let prm = run(
            &cfg,
            &req("GET", "/.well-known/oauth-protected-resource/mcp", vec![]),
        );
        assert_eq!(state_of(&prm), vec![(state::DECISION, "prm_served".into())]);
    }

    #[test]
    fn the_body_decision_publishes_the_method_and_tool() {
        let mut cfg = mcp_config();
        let t = scoped("mcp.use calculator.add");
        // A configuration that publishes nothing gets the method and tool not even rendered.
        let check = need_body(run(&cfg, &req("POST", "/mcp", vec![&t])));
        let call_add = call("add", 1).to_string().into_bytes();
        assert_eq!(
            state_of(&decide_body(&cfg, &check, &call_add)),
            vec![(state::DECISION, "allowed".into())]
        );
        cfg.filter_state = state::Published::EVERY;
        let head = run(&cfg, &req("POST", "/mcp", vec![&t]));
        // The header phase publishes who; the body decides, so no decision yet.
        let got = state_of(&head);
        assert_eq!(got.first(), Some(&(state::SUBJECT, "user-1".into())));
        assert!(got.iter().all(|(n, _)| *n != state::DECISION), "{got:?}");
        let check = need_body(head);
        let body = |v: Value| v.to_string().into_bytes();

        assert_eq!(
            state_of(&decide_body(&cfg, &check, &body(call("add", 1)))),
            vec![
                (state::MCP_METHOD, "tools/call".into()),
                (state::TOOL, "add".into()),
                (state::DECISION, "allowed".into()),
            ]
        );
        assert_eq!(
            state_of(&decide_body(&cfg, &check, &body(call("subtract", 2)))),
            vec![
                (state::MCP_METHOD, "tools/call".into()),
                (state::TOOL, "subtract".into()),
                (state::DECISION, "denied".into()),
                (state::REASON, "insufficient_scope".into()),
            ]
        );
        // A batch: each method and tool once, in order; notifications count, responses not.
        let batch = json!([
            call("add", 1),
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            call("add", 2),
            {"jsonrpc":"2.0","id":3,"method":"tools/list"},
            {"jsonrpc":"2.0","id":9,"result":{}}
        ]);
        let got = state_of(&decide_body(&cfg, &check, &body(batch)));
        assert_eq!(
            got.get(..2),
            Some(
                &[
                    (
                        state::MCP_METHOD,
                        "tools/call,notifications/initialized,tools/list".into()
                    ),
                    (state::TOOL, "add".into())
                ][..]
            )
        );
        // Not JSON: nothing read, only the reason.
        assert_eq!(
            state_of(&decide_body(&cfg, &check, b"{not json")),
            vec![
                (state::DECISION, "denied".into()),
                (state::REASON, "invalid_jsonrpc".into())
            ]
        );
    }

    #[test]
    fn published_tool_names_are_printable_and_bounded() {
        let msg = |name: &str| mcp::Message::Request {
            id: json!(1),
            method: "tools/call".into(),
            target: Some(name.into()),
        };
        let p = mcp_call(&[msg("a\r\nb\u{7}c"), msg(""), msg("abc")]);
        assert_eq!(p.tool.as_deref(), Some("abc"));
        let many: Vec<mcp::Message> = (0..200).map(|i| msg(&format!("tool{i}"))).collect();
        let p = mcp_call(&many);
        let tools = p.tool.unwrap_or_default();
        assert!(
            tools.len() <= MAX_PUBLISHED && tools.starts_with("tool0,tool1,"),
            "{tools}"
        );
        assert!(mcp_call(&[mcp::Message::Response]) == Published::default());
    }

    #[test]
    fn claim_header_values() {
        assert_eq!(header_value(&json!("a b")), Some("a b".into()));
        assert_eq!(header_value(&json!(true)), Some("true".into()));
        assert_eq!(header_value(&json!(1.5)), Some("1.5".into()));
        assert_eq!(header_value(&json!({"a":[1]})), Some("{\"a\":[1]}".into()));
        assert_eq!(header_value(&json!(null)), None);
        assert_eq!(header_value(&json!("a\r\nb")), None);
    }
}
