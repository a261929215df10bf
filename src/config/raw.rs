//! The plugin JSON's shape: every field optional where it has a default, unknown fields
//! refused. `mod.rs` and its siblings validate these into each part's settings.
//!
//! Read by hand from the parsed `serde_json::Value` (the `read` functions below), not by
//! serde's derive: the derived deserializers, with serde_path_to_error for the field paths,
//! cost about 70 KB of the module (the façade module 774,663 → 705,111 bytes) for code that
//! runs once per configuration (the module's budget, tests/module_size.rs). The messages keep serde's wording ("unknown field `x`,
//! expected one of ...", "missing field `x`", "invalid type: ..."), with the field's path.

use super::*;
use serde_json::{Map, Value};

// ---------------------------------------------------------------------------------------
// The JSON shape. Unknown fields are errors everywhere.

#[derive(Default)]
pub(super) struct RawConfig {
    pub(super) providers: BTreeMap<String, RawProvider>,
    pub(super) rules: Vec<RawRule>,
    pub(super) protected_resource: Option<RawProtectedResource>,
    pub(super) unmatched: Option<String>,
    pub(super) max_token_bytes: Option<usize>,
    pub(super) token_cache: Option<RawTokenCache>,
    pub(super) allowed_origins: Option<Vec<String>>,
    pub(super) filter_state: Option<Vec<String>>,
    pub(super) host_crypto: Option<String>,
    #[cfg(feature = "facade")]
    pub(super) authorization_server: Option<RawAuthorizationServer>,
    /// Built without the façade: only its presence matters (it is refused), and its parser
    /// stays out of the module.
    #[cfg(not(feature = "facade"))]
    pub(super) authorization_server: Option<()>,
}

#[derive(Default)]
pub(super) struct RawTokenCache {
    pub(super) max_entries: Option<usize>,
    pub(super) max_bytes: Option<usize>,
}

#[derive(Default)]
pub(super) struct RawProvider {
    pub(super) issuer: String,
    pub(super) audiences: Vec<String>,
    pub(super) local_jwks: Option<RawLocalJwks>,
    pub(super) remote_jwks: Option<RawRemote>,
    pub(super) discovery: Option<RawRemote>,
    pub(super) algorithms: Option<Vec<String>>,
    pub(super) clock_skew_seconds: Option<u64>,
    pub(super) forward: bool,
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    pub(super) require_typ: Option<String>,
    pub(super) issuers: Vec<String>,
    pub(super) allowed_tenants: Vec<String>,
    pub(super) scope_claims: Option<Vec<String>>,
    pub(super) scope_prefix: Option<String>,
    pub(super) forward_identity: bool,
}

#[derive(Default)]
pub(super) struct RawLocalJwks {
    pub(super) inline_string: String,
}

#[derive(Default)]
pub(super) struct RawHttpUri {
    pub(super) uri: String,
    pub(super) cluster: String,
    pub(super) timeout: Option<String>,
}

/// `remote_jwks` and `discovery` share their knobs; `jwks_cluster` is discovery-only.
#[derive(Default)]
pub(super) struct RawRemote {
    pub(super) http_uri: RawHttpUri,
    pub(super) jwks_cluster: Option<String>,
    pub(super) cache_duration: Option<String>,
    pub(super) max_stale: Option<String>,
    pub(super) unknown_kid_refetch_interval: Option<String>,
    pub(super) cold_start_wait: Option<String>,
    pub(super) max_response_bytes: Option<usize>,
}

#[derive(Default)]
pub(super) struct RawClaimToHeader {
    pub(super) claim_name: String,
    pub(super) header_name: String,
}

#[derive(Default)]
pub(super) struct RawRule {
    /// `match`
    pub(super) matcher: RawMatch,
    pub(super) requires: Option<RawRequires>,
    pub(super) required_scopes: Vec<String>,
    pub(super) mcp: Option<RawMcp>,
    pub(super) protected_resource: Option<RawProtectedResource>,
}

#[derive(Default)]
pub(super) struct RawMcp {
    pub(super) methods: BTreeMap<String, Vec<String>>,
    pub(super) tools: Option<BTreeMap<String, Vec<String>>>,
    pub(super) prompts: Option<BTreeMap<String, Vec<String>>>,
    pub(super) resources: Option<BTreeMap<String, Vec<String>>>,
    pub(super) unlisted_methods: Option<String>,
    pub(super) unlisted_tools: Option<String>,
    pub(super) unlisted_prompts: Option<String>,
    pub(super) unlisted_resources: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) body_timeout: Option<String>,
    pub(super) trust_headers: bool,
}

#[derive(Default)]
pub(super) struct RawMatch {
    pub(super) prefix: Option<String>,
    pub(super) path: Option<String>,
}

#[derive(Default)]
pub(super) struct RawRequires {
    pub(super) provider_name: String,
}

#[derive(Default)]
pub(super) struct RawProtectedResource {
    pub(super) resource: Option<String>,
    pub(super) authorization_servers: Option<Vec<String>>,
    pub(super) scopes_supported: Vec<String>,
    pub(super) resource_name: Option<String>,
    pub(super) resource_documentation: Option<String>,
    pub(super) resource_policy_uri: Option<String>,
    pub(super) resource_tos_uri: Option<String>,
}

/// `authorization_server.upstream.discovery`: the upstream's endpoints from its metadata.
#[derive(Default)]
pub(super) struct RawUpstreamDiscovery {
    pub(super) http_uri: RawHttpUri,
    pub(super) issuer: Option<String>,
    pub(super) token_cluster: Option<String>,
    pub(super) token_timeout: Option<String>,
    pub(super) cache_duration: Option<String>,
    pub(super) max_response_bytes: Option<usize>,
}

/// `authorization_server`: the sign-in façade (issue 19). Secrets are never here: only the
/// names of the VM environment variables that hold them.
#[derive(Default)]
pub(super) struct RawAuthorizationServer {
    pub(super) upstream: RawUpstream,
    pub(super) provider_name: String,
    pub(super) sealing_keys_env: Vec<String>,
    pub(super) redirect_uris: Vec<String>,
    pub(super) issuer: Option<String>,
    pub(super) callback_path: Option<String>,
    pub(super) scopes_supported: Option<Vec<String>>,
    pub(super) consent: Option<String>,
    pub(super) state_ttl: Option<String>,
    pub(super) code_ttl: Option<String>,
    pub(super) refresh_ttl: Option<String>,
    pub(super) approval_ttl: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) body_timeout: Option<String>,
}

#[derive(Default)]
pub(super) struct RawUpstream {
    pub(super) discovery: Option<RawUpstreamDiscovery>,
    pub(super) authorization_endpoint: Option<String>,
    pub(super) token_endpoint: Option<RawHttpUri>,
    pub(super) client_id: String,
    pub(super) client_secret_env: Option<String>,
    pub(super) client_auth: Option<String>,
    pub(super) scope_prefix: Option<String>,
    pub(super) extra_scopes: Vec<String>,
    pub(super) send_resource: bool,
    pub(super) authorize_params: BTreeMap<String, String>,
}

// ---------------------------------------------------------------------------------------
// Reading: one function per object. A reader never stops at a problem: it keeps the first
// one in `Errs` and goes on with defaults, so that each field costs one call and no exit
// path (the early returns of `?` in a struct literal, each dropping the fields read so far,
// were most of the readers' code).

/// The first problem met while reading (the one a caller sees).
#[derive(Default)]
pub(super) struct Errs(pub(super) Option<ConfigError>);

impl Errs {
    #[inline(never)]
    fn put(&mut self, e: ConfigError) {
        if self.0.is_none() {
            self.0 = Some(e);
        }
    }
}

type Reader<T> = fn(&Value, &str, &mut Errs) -> T;

/// `path.key`, or `key` at the top level.
#[inline(never)]
fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// What a JSON value is, in serde's words, for "invalid type" messages.
#[inline(never)]
fn found(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => format!("floating point `{n}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".to_string(),
        Value::Object(_) => "map".to_string(),
    }
}

#[inline(never)]
fn invalid_type(errs: &mut Errs, path: &str, v: &Value, expected: &str) {
    errs.put(ConfigError::new(
        path,
        format!("invalid type: {}, expected {expected}", found(v)),
    ));
}

fn string(v: &Value, path: &str, errs: &mut Errs) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => {
            invalid_type(errs, path, v, "a string");
            String::new()
        }
    }
}

fn boolean(v: &Value, path: &str, errs: &mut Errs) -> bool {
    match v {
        Value::Bool(b) => *b,
        _ => {
            invalid_type(errs, path, v, "a boolean");
            false
        }
    }
}

#[inline(never)]
fn unsigned(v: &Value, path: &str, errs: &mut Errs) -> u64 {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) => return u,
            None if n.is_f64() => invalid_type(errs, path, v, "a non-negative integer"),
            None => errs.put(ConfigError::new(
                path,
                format!("invalid value: integer `{n}`, expected a non-negative integer"),
            )),
        },
        _ => invalid_type(errs, path, v, "a non-negative integer"),
    }
    0
}

fn size(v: &Value, path: &str, errs: &mut Errs) -> usize {
    let u = unsigned(v, path, errs);
    usize::try_from(u).unwrap_or_else(|_| {
        errs.put(ConfigError::new(
            path,
            format!("invalid value: integer `{u}`, expected a size this module can hold"),
        ));
        0
    })
}

/// The items of a JSON array, each read by `item`.
#[inline(never)]
fn list<T>(v: &Value, path: &str, errs: &mut Errs, item: Reader<T>) -> Vec<T> {
    match v {
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| item(x, &format!("{path}[{i}]"), errs))
            .collect(),
        _ => {
            invalid_type(errs, path, v, "a sequence");
            Vec::new()
        }
    }
}

fn strings(v: &Value, path: &str, errs: &mut Errs) -> Vec<String> {
    list(v, path, errs, string)
}

#[inline(never)]
fn map<'v>(v: &'v Value, path: &str, errs: &mut Errs) -> Option<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        _ => {
            invalid_type(errs, path, v, "a map");
            None
        }
    }
}

/// A JSON object whose keys are names (providers, methods, tools): each value read by `item`.
#[inline(never)]
fn named<T>(v: &Value, path: &str, errs: &mut Errs, item: Reader<T>) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    for (k, x) in map(v, path, errs).into_iter().flatten() {
        let value = item(x, &child(path, k), errs);
        out.insert(k.clone(), value);
    }
    out
}

fn scope_lists(v: &Value, path: &str, errs: &mut Errs) -> BTreeMap<String, Vec<String>> {
    named(v, path, errs, strings)
}

/// One JSON object with a fixed set of fields: an unknown key is refused when it is opened.
struct Obj<'v> {
    map: Option<&'v Map<String, Value>>,
    path: &'v str,
}

impl<'v> Obj<'v> {
    #[inline(never)]
    fn open(v: &'v Value, path: &'v str, errs: &mut Errs, fields: &[&str]) -> Obj<'v> {
        let map = map(v, path, errs);
        let unknown = map.and_then(|m| m.keys().find(|k| !fields.contains(&k.as_str())));
        if let Some(k) = unknown {
            let names: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            let expected = match names.as_slice() {
                [one] => one.clone(),
                _ => format!("one of {}", names.join(", ")),
            };
            errs.put(ConfigError::new(
                child(path, k),
                format!("unknown field `{k}`, expected {expected}"),
            ));
        }
        Obj { map, path }
    }

    /// The field's value and path, when present and not null.
    #[inline(never)]
    fn get(&self, key: &str) -> Option<(&'v Value, String)> {
        match self.map?.get(key)? {
            Value::Null => None,
            v => Some((v, child(self.path, key))),
        }
    }

    /// A field that may be absent (or null).
    #[inline(never)]
    fn opt<T>(&self, key: &str, errs: &mut Errs, read: Reader<T>) -> Option<T> {
        let (v, path) = self.get(key)?;
        Some(read(v, &path, errs))
    }

    /// A field that must be present (null is read, and refused, as a value).
    #[inline(never)]
    fn req<T: Default>(&self, key: &str, errs: &mut Errs, read: Reader<T>) -> T {
        match self.map.map(|m| m.get(key)) {
            Some(Some(v)) => read(v, &child(self.path, key), errs),
            Some(None) => {
                // Named at the object that lacks it, as serde_path_to_error did.
                errs.put(ConfigError::new(
                    self.path,
                    format!("missing field `{key}`"),
                ));
                T::default()
            }
            None => T::default(),
        }
    }

    /// A field that takes its type's default when absent (null is read, and refused).
    #[inline(never)]
    fn or_default<T: Default>(&self, key: &str, errs: &mut Errs, read: Reader<T>) -> T {
        match self.map.and_then(|m| m.get(key)) {
            Some(v) => read(v, &child(self.path, key), errs),
            None => T::default(),
        }
    }
}

impl RawConfig {
    pub(super) fn read(v: &Value, errs: &mut Errs) -> RawConfig {
        let o = Obj::open(
            v,
            "",
            errs,
            &[
                "providers",
                "rules",
                "protected_resource",
                "unmatched",
                "max_token_bytes",
                "token_cache",
                "allowed_origins",
                "filter_state",
                "host_crypto",
                "authorization_server",
            ],
        );
        RawConfig {
            providers: o.req("providers", errs, |v, p, e| {
                named(v, p, e, RawProvider::read)
            }),
            rules: o.req("rules", errs, |v, p, e| list(v, p, e, RawRule::read)),
            protected_resource: o.opt("protected_resource", errs, RawProtectedResource::read),
            unmatched: o.opt("unmatched", errs, string),
            max_token_bytes: o.opt("max_token_bytes", errs, size),
            token_cache: o.opt("token_cache", errs, RawTokenCache::read),
            allowed_origins: o.opt("allowed_origins", errs, strings),
            filter_state: o.opt("filter_state", errs, strings),
            host_crypto: o.opt("host_crypto", errs, string),
            #[cfg(feature = "facade")]
            authorization_server: o.opt("authorization_server", errs, RawAuthorizationServer::read),
            #[cfg(not(feature = "facade"))]
            authorization_server: o.opt("authorization_server", errs, |_, _, _| ()),
        }
    }
}

impl RawTokenCache {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["max_entries", "max_bytes"]);
        RawTokenCache {
            max_entries: o.opt("max_entries", errs, size),
            max_bytes: o.opt("max_bytes", errs, size),
        }
    }
}

impl RawProvider {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "issuer",
                "audiences",
                "local_jwks",
                "remote_jwks",
                "discovery",
                "algorithms",
                "clock_skew_seconds",
                "forward",
                "claim_to_headers",
                "require_typ",
                "issuers",
                "allowed_tenants",
                "scope_claims",
                "scope_prefix",
                "forward_identity",
            ],
        );
        RawProvider {
            issuer: o.req("issuer", errs, string),
            audiences: o.req("audiences", errs, strings),
            local_jwks: o.opt("local_jwks", errs, RawLocalJwks::read),
            remote_jwks: o.opt("remote_jwks", errs, RawRemote::read),
            discovery: o.opt("discovery", errs, RawRemote::read),
            algorithms: o.opt("algorithms", errs, strings),
            clock_skew_seconds: o.opt("clock_skew_seconds", errs, unsigned),
            forward: o.or_default("forward", errs, boolean),
            claim_to_headers: o.or_default("claim_to_headers", errs, |v, p, e| {
                list(v, p, e, RawClaimToHeader::read)
            }),
            require_typ: o.opt("require_typ", errs, string),
            issuers: o.or_default("issuers", errs, strings),
            allowed_tenants: o.or_default("allowed_tenants", errs, strings),
            scope_claims: o.opt("scope_claims", errs, strings),
            scope_prefix: o.opt("scope_prefix", errs, string),
            forward_identity: o.or_default("forward_identity", errs, boolean),
        }
    }
}

impl RawLocalJwks {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["inline_string"]);
        RawLocalJwks {
            inline_string: o.req("inline_string", errs, string),
        }
    }
}

impl RawHttpUri {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["uri", "cluster", "timeout"]);
        RawHttpUri {
            uri: o.req("uri", errs, string),
            cluster: o.req("cluster", errs, string),
            timeout: o.opt("timeout", errs, string),
        }
    }
}

impl RawRemote {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "http_uri",
                "jwks_cluster",
                "cache_duration",
                "max_stale",
                "unknown_kid_refetch_interval",
                "cold_start_wait",
                "max_response_bytes",
            ],
        );
        RawRemote {
            http_uri: o.req("http_uri", errs, RawHttpUri::read),
            jwks_cluster: o.opt("jwks_cluster", errs, string),
            cache_duration: o.opt("cache_duration", errs, string),
            max_stale: o.opt("max_stale", errs, string),
            unknown_kid_refetch_interval: o.opt("unknown_kid_refetch_interval", errs, string),
            cold_start_wait: o.opt("cold_start_wait", errs, string),
            max_response_bytes: o.opt("max_response_bytes", errs, size),
        }
    }
}

impl RawClaimToHeader {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["claim_name", "header_name"]);
        RawClaimToHeader {
            claim_name: o.req("claim_name", errs, string),
            header_name: o.req("header_name", errs, string),
        }
    }
}

impl RawRule {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "match",
                "requires",
                "required_scopes",
                "mcp",
                "protected_resource",
            ],
        );
        RawRule {
            matcher: o.req("match", errs, RawMatch::read),
            requires: o.opt("requires", errs, RawRequires::read),
            required_scopes: o.or_default("required_scopes", errs, strings),
            mcp: o.opt("mcp", errs, RawMcp::read),
            protected_resource: o.opt("protected_resource", errs, RawProtectedResource::read),
        }
    }
}

impl RawMcp {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "methods",
                "tools",
                "prompts",
                "resources",
                "unlisted_methods",
                "unlisted_tools",
                "unlisted_prompts",
                "unlisted_resources",
                "max_body_bytes",
                "body_timeout",
                "trust_headers",
            ],
        );
        RawMcp {
            methods: o.or_default("methods", errs, scope_lists),
            tools: o.opt("tools", errs, scope_lists),
            prompts: o.opt("prompts", errs, scope_lists),
            resources: o.opt("resources", errs, scope_lists),
            unlisted_methods: o.opt("unlisted_methods", errs, string),
            unlisted_tools: o.opt("unlisted_tools", errs, string),
            unlisted_prompts: o.opt("unlisted_prompts", errs, string),
            unlisted_resources: o.opt("unlisted_resources", errs, string),
            max_body_bytes: o.opt("max_body_bytes", errs, size),
            body_timeout: o.opt("body_timeout", errs, string),
            trust_headers: o.or_default("trust_headers", errs, boolean),
        }
    }
}

impl RawMatch {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["prefix", "path"]);
        RawMatch {
            prefix: o.opt("prefix", errs, string),
            path: o.opt("path", errs, string),
        }
    }
}

impl RawRequires {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(v, path, errs, &["provider_name"]);
        RawRequires {
            provider_name: o.req("provider_name", errs, string),
        }
    }
}

impl RawProtectedResource {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "resource",
                "authorization_servers",
                "scopes_supported",
                "resource_name",
                "resource_documentation",
                "resource_policy_uri",
                "resource_tos_uri",
            ],
        );
        RawProtectedResource {
            resource: o.opt("resource", errs, string),
            authorization_servers: o.opt("authorization_servers", errs, strings),
            scopes_supported: o.or_default("scopes_supported", errs, strings),
            resource_name: o.opt("resource_name", errs, string),
            resource_documentation: o.opt("resource_documentation", errs, string),
            resource_policy_uri: o.opt("resource_policy_uri", errs, string),
            resource_tos_uri: o.opt("resource_tos_uri", errs, string),
        }
    }
}

#[cfg(feature = "facade")]
impl RawAuthorizationServer {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "upstream",
                "provider_name",
                "sealing_keys_env",
                "redirect_uris",
                "issuer",
                "callback_path",
                "scopes_supported",
                "consent",
                "state_ttl",
                "code_ttl",
                "refresh_ttl",
                "approval_ttl",
                "max_body_bytes",
                "body_timeout",
            ],
        );
        RawAuthorizationServer {
            upstream: o.req("upstream", errs, RawUpstream::read),
            provider_name: o.req("provider_name", errs, string),
            sealing_keys_env: o.req("sealing_keys_env", errs, strings),
            redirect_uris: o.req("redirect_uris", errs, strings),
            issuer: o.opt("issuer", errs, string),
            callback_path: o.opt("callback_path", errs, string),
            scopes_supported: o.opt("scopes_supported", errs, strings),
            consent: o.opt("consent", errs, string),
            state_ttl: o.opt("state_ttl", errs, string),
            code_ttl: o.opt("code_ttl", errs, string),
            refresh_ttl: o.opt("refresh_ttl", errs, string),
            approval_ttl: o.opt("approval_ttl", errs, string),
            max_body_bytes: o.opt("max_body_bytes", errs, size),
            body_timeout: o.opt("body_timeout", errs, string),
        }
    }
}

#[cfg(feature = "facade")]
impl RawUpstreamDiscovery {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "http_uri",
                "issuer",
                "token_cluster",
                "token_timeout",
                "cache_duration",
                "max_response_bytes",
            ],
        );
        RawUpstreamDiscovery {
            http_uri: o.req("http_uri", errs, RawHttpUri::read),
            issuer: o.opt("issuer", errs, string),
            token_cluster: o.opt("token_cluster", errs, string),
            token_timeout: o.opt("token_timeout", errs, string),
            cache_duration: o.opt("cache_duration", errs, string),
            max_response_bytes: o.opt("max_response_bytes", errs, size),
        }
    }
}

#[cfg(feature = "facade")]
impl RawUpstream {
    #[inline(never)]
    fn read(v: &Value, path: &str, errs: &mut Errs) -> Self {
        let o = Obj::open(
            v,
            path,
            errs,
            &[
                "discovery",
                "authorization_endpoint",
                "token_endpoint",
                "client_id",
                "client_secret_env",
                "client_auth",
                "scope_prefix",
                "extra_scopes",
                "send_resource",
                "authorize_params",
            ],
        );
        RawUpstream {
            discovery: o.opt("discovery", errs, RawUpstreamDiscovery::read),
            authorization_endpoint: o.opt("authorization_endpoint", errs, string),
            token_endpoint: o.opt("token_endpoint", errs, RawHttpUri::read),
            client_id: o.req("client_id", errs, string),
            client_secret_env: o.opt("client_secret_env", errs, string),
            client_auth: o.opt("client_auth", errs, string),
            scope_prefix: o.opt("scope_prefix", errs, string),
            extra_scopes: o.or_default("extra_scopes", errs, strings),
            send_resource: o.or_default("send_resource", errs, boolean),
            authorize_params: o
                .or_default("authorize_params", errs, |v, p, e| named(v, p, e, string)),
        }
    }
}
