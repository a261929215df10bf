//! The plugin configuration: JSON in, a validated [`Config`] out.
//!
//! Field names mirror Envoy's `jwt_authn` where the concept is the same. Every problem is a
//! [`ConfigError`] naming the field, and a configuration with any problem is refused as a
//! whole: the filter never falls back to allowing everything.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::fetch::{Target, DEFAULT_MAX_RESPONSE_BYTES};
use crate::jwks::KeySet;
use crate::keys::FetchPolicy;
use crate::rules::{PathMatch, Rule, Unmatched};
use crate::signature::Alg;

pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;
pub const DEFAULT_ALGORITHMS: [Alg; 2] = [Alg::Rs256, Alg::Es256];

/// A refused configuration: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() || self.field == "." {
            write!(f, "invalid plugin configuration: {}", self.message)
        } else {
            write!(
                f,
                "invalid plugin configuration: {}: {}",
                self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------
// The JSON shape (serde). Unknown fields are errors everywhere.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers: BTreeMap<String, RawProvider>,
    rules: Vec<RawRule>,
    #[serde(default)]
    protected_resource: Option<RawProtectedResource>,
    #[serde(default)]
    unmatched: Option<String>,
    #[serde(default)]
    max_token_bytes: Option<usize>,
    #[serde(default)]
    token_cache: Option<RawTokenCache>,
    #[serde(default)]
    allowed_origins: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenCache {
    #[serde(default)]
    max_entries: Option<usize>,
    #[serde(default)]
    max_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    issuer: String,
    audiences: Vec<String>,
    #[serde(default)]
    local_jwks: Option<RawLocalJwks>,
    #[serde(default)]
    remote_jwks: Option<RawRemote>,
    #[serde(default)]
    discovery: Option<RawRemote>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    clock_skew_seconds: Option<u64>,
    #[serde(default)]
    forward: bool,
    #[serde(default)]
    claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    require_typ: Option<String>,
    #[serde(default)]
    issuers: Vec<String>,
    #[serde(default)]
    allowed_tenants: Vec<String>,
    #[serde(default)]
    scope_claims: Option<Vec<String>>,
    #[serde(default)]
    scope_prefix: Option<String>,
    #[serde(default)]
    forward_identity: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocalJwks {
    inline_string: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpUri {
    uri: String,
    cluster: String,
    #[serde(default)]
    timeout: Option<String>,
}

/// `remote_jwks` and `discovery` share their knobs; `jwks_cluster` is discovery-only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    http_uri: RawHttpUri,
    #[serde(default)]
    jwks_cluster: Option<String>,
    #[serde(default)]
    cache_duration: Option<String>,
    #[serde(default)]
    max_stale: Option<String>,
    #[serde(default)]
    unknown_kid_refetch_interval: Option<String>,
    #[serde(default)]
    cold_start_wait: Option<String>,
    #[serde(default)]
    max_response_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimToHeader {
    claim_name: String,
    header_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    requires: Option<RawRequires>,
    #[serde(default)]
    required_scopes: Vec<String>,
    #[serde(default)]
    mcp: Option<RawMcp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcp {
    #[serde(default)]
    methods: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    tools: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    prompts: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    resources: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    unlisted_methods: Option<String>,
    #[serde(default)]
    unlisted_tools: Option<String>,
    #[serde(default)]
    unlisted_prompts: Option<String>,
    #[serde(default)]
    unlisted_resources: Option<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    body_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    provider_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtectedResource {
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    scopes_supported: Vec<String>,
    #[serde(default)]
    resource_name: Option<String>,
    #[serde(default)]
    resource_documentation: Option<String>,
    #[serde(default)]
    resource_policy_uri: Option<String>,
    #[serde(default)]
    resource_tos_uri: Option<String>,
}

// ---------------------------------------------------------------------------------------
// The validated configuration.

/// Where a provider's verification keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `local_jwks.inline_string`, parsed once at configuration time.
    Local(Arc<KeySet>),
    /// `remote_jwks` or `discovery`: fetched by callouts, shared across workers.
    Remote(RemoteSource),
}

/// Whether the URI is the JWKS itself or an OIDC discovery document pointing to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteKind {
    Jwks,
    /// `jwks_cluster`: the cluster for the discovered `jwks_uri`.
    Discovery {
        jwks_cluster: String,
    },
}

/// A remote key source (`remote_jwks` / `discovery`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub kind: RemoteKind,
    pub uri: String,
    pub target: Target,
    pub cluster: String,
    pub policy: FetchPolicy,
    /// How long a request waits for keys on a cold start (ms).
    pub cold_start_wait: u64,
    pub max_response_bytes: usize,
}

pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_CACHE_DURATION_MS: u64 = 600_000;
pub const DEFAULT_MAX_STALE_MS: u64 = 86_400_000;
pub const DEFAULT_UNKNOWN_KID_INTERVAL_MS: u64 = 30_000;

/// One `claim_to_headers` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Dotted path into the claims (`realm_access.roles`).
    pub claim_name: String,
    /// Lower-cased header name.
    pub header_name: String,
}

/// A token issuer the filter trusts.
#[derive(Clone, Debug)]
pub struct Provider {
    pub name: String,
    /// The first configured issuer (used for discovery and default PRM values).
    pub issuer: String,
    /// Every accepted issuer: `issuer` then `issuers`; `{tenantid}` templates allowed.
    pub issuers: Vec<IssuerPattern>,
    /// With a `{tenantid}` template: the tenants accepted (empty: any).
    pub allowed_tenants: Vec<String>,
    /// Claims that carry scopes (default `scope`, `scp`).
    pub scope_claims: Vec<String>,
    /// Prefix that makes a configured scope requestable (`api://<id>/`).
    pub scope_prefix: Option<String>,
    /// Write the standard identity headers ([`IDENTITY_HEADERS`]).
    pub forward_identity: bool,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub algorithms: Vec<Alg>,
    pub clock_skew_seconds: u64,
    pub forward: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub require_typ: Option<String>,
}

/// What the RFC 9728 document says (values the operator set, or defaults).
#[derive(Clone, Debug, Default)]
pub struct ProtectedResource {
    /// Absolute URL of the protected resource; derived from the request when absent.
    pub resource: Option<String>,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    pub resource_policy_uri: Option<String>,
    pub resource_tos_uri: Option<String>,
    /// Derived once when `resource` is configured (every answer would compute the same):
    /// the challenges' `resource_metadata` URL and the metadata document's JSON bytes.
    pub metadata_url: Option<String>,
    pub document: Option<Vec<u8>>,
}

impl ProtectedResource {
    /// Fills the derived fields from `resource`.
    pub fn prepared(mut self) -> ProtectedResource {
        self.metadata_url = self
            .resource
            .as_deref()
            .map(crate::prm::metadata_url_for_resource);
        self.document = self
            .resource
            .as_deref()
            .and_then(|r| serde_json::to_vec(&crate::prm::document(&self, r)).ok());
        self
    }
}

/// A validated plugin configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    pub protected_resource: ProtectedResource,
    pub unmatched: Unmatched,
    pub max_token_bytes: usize,
    /// Verified-token cache bounds per VM (`max_entries` 0 disables it).
    pub token_cache_entries: usize,
    pub token_cache_bytes: usize,
    /// Every claim header name of every provider (`claim_to_headers`, and the identity
    /// headers when a provider has `forward_identity`): stripped from every request that
    /// goes on, so a client can never supply them. Shared by every decision (no copy per
    /// request).
    pub strip_unprotected: Arc<[String]>,
    /// Per provider: what a request it allowed loses, `strip_unprotected` plus
    /// `authorization` unless the provider has `forward: true`.
    pub strip_allowed: Vec<Arc<[String]>>,
    /// `allowed_origins`: which browser origins may call (CORS, DNS-rebinding check).
    pub origins: crate::cors::Origins,
}

impl Config {
    /// Parses and validates the plugin configuration JSON.
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "",
                "the plugin configuration is empty; it must be a JSON object with \"providers\" and \"rules\"",
            ));
        }
        // Syntax and duplicate members first, then shape: typing from a parsed Value keeps
        // one copy of the JSON parser instead of one inlined into every config type's
        // deserializer (module size).
        let value = crate::json::parse_strict(json)
            .map_err(|(field, msg)| ConfigError::new(field, strip_position(&msg)))?;
        let raw: RawConfig = serde_path_to_error::deserialize(&value).map_err(|e| {
            let field = e.path().to_string();
            ConfigError::new(field, strip_position(&e.inner().to_string()))
        })?;
        raw.validate()
    }

    pub fn provider_by_name(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// serde_json appends "at line 1 column 17"; for one-line JSON in YAML that is noise.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_string(),
        None => msg.to_string(),
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
        let mut providers = Vec::with_capacity(self.providers.len());
        for (name, raw) in self.providers {
            providers.push(raw.validate(&name)?);
        }

        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, raw) in self.rules.into_iter().enumerate() {
            let field = format!("rules[{i}]");
            let matcher = match (raw.matcher.prefix, raw.matcher.path) {
                (Some(p), None) => PathMatch::Prefix(p),
                (None, Some(p)) => PathMatch::Exact(p),
                _ => {
                    return Err(ConfigError::new(
                        format!("{field}.match"),
                        "set exactly one of \"prefix\" or \"path\"",
                    ))
                }
            };
            if !matcher.pattern().starts_with('/') {
                return Err(ConfigError::new(
                    format!("{field}.match"),
                    format!("{:?} must start with '/'", matcher.pattern()),
                ));
            }
            let requires = match raw.requires {
                None => None,
                Some(req) => Some(
                    providers
                        .iter()
                        .position(|p| p.name == req.provider_name)
                        .ok_or_else(|| {
                            ConfigError::new(
                                format!("{field}.requires.provider_name"),
                                format!("no provider named {:?}", req.provider_name),
                            )
                        })?,
                ),
            };
            let required_scopes =
                check_scopes(&format!("{field}.required_scopes"), raw.required_scopes)?;
            let mcp = match raw.mcp {
                None => None,
                Some(_) if requires.is_none() => {
                    return Err(ConfigError::new(
                        format!("{field}.mcp"),
                        "MCP checks need a token: add requires.provider_name",
                    ))
                }
                Some(m) => Some(m.validate(&format!("{field}.mcp"))?),
            };
            if !required_scopes.is_empty() && requires.is_none() {
                return Err(ConfigError::new(
                    format!("{field}.required_scopes"),
                    "scopes need a token: add requires.provider_name",
                ));
            }
            rules.push(Rule {
                matcher,
                requires,
                required_scopes,
                mcp,
                challenge_scope: String::new(),
            });
        }

        let unmatched = match self.unmatched.as_deref() {
            None | Some("deny") => Unmatched::Deny,
            Some("allow") => Unmatched::Allow,
            Some(other) => {
                return Err(ConfigError::new(
                    "unmatched",
                    format!("{other:?} is not \"deny\" or \"allow\""),
                ))
            }
        };

        let max_token_bytes = self.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
        if !(256..=65536).contains(&max_token_bytes) {
            return Err(ConfigError::new(
                "max_token_bytes",
                "must be between 256 and 65536",
            ));
        }

        let protected_resource = validate_prm(self.protected_resource, &providers)?;
        let (token_cache_entries, token_cache_bytes) = match self.token_cache {
            None => (
                crate::token_cache::DEFAULT_MAX_ENTRIES,
                crate::token_cache::DEFAULT_MAX_BYTES,
            ),
            Some(t) => {
                let entries = t
                    .max_entries
                    .unwrap_or(crate::token_cache::DEFAULT_MAX_ENTRIES);
                let bytes = t.max_bytes.unwrap_or(crate::token_cache::DEFAULT_MAX_BYTES);
                if entries > 1_000_000 {
                    return Err(ConfigError::new(
                        "token_cache.max_entries",
                        "must be at most 1000000",
                    ));
                }
                if bytes > 1 << 30 {
                    return Err(ConfigError::new(
                        "token_cache.max_bytes",
                        "must be at most 1073741824",
                    ));
                }
                (entries, bytes)
            }
        };

        let origins = crate::cors::Origins::parse(self.allowed_origins.as_deref())
            .map_err(|(field, m)| ConfigError::new(field, m))?;

        let mut config = Config {
            strip_unprotected: Arc::from(Vec::new()),
            strip_allowed: Vec::new(),
            providers,
            rules,
            protected_resource,
            unmatched,
            max_token_bytes,
            token_cache_entries,
            token_cache_bytes,
            origins,
        };
        config.derive();
        Ok(config)
    }
}

impl Config {
    /// Fills in what is derived from the rest, once, so no request recomputes it: the
    /// strip lists, each rule's challenge `scope`, and the
    /// metadata URL and document of a configured `resource`. `parse` calls it; code that
    /// edits a `Config` (tests) calls it again.
    pub fn derive(&mut self) {
        let mut names: Vec<String> = Vec::new();
        if self.providers.iter().any(|p| p.forward_identity) {
            names.extend(IDENTITY_HEADERS.iter().map(|(h, _)| h.to_string()));
        }
        for p in &self.providers {
            for c in &p.claim_to_headers {
                if !names.contains(&c.header_name) {
                    names.push(c.header_name.clone());
                }
            }
        }
        self.strip_allowed = self
            .providers
            .iter()
            .map(|p| {
                let mut list = names.clone();
                if !p.forward {
                    list.push("authorization".to_string());
                }
                Arc::<[String]>::from(list)
            })
            .collect();
        self.strip_unprotected = names.into();
        for rule in &mut self.rules {
            let prefix = rule
                .requires
                .and_then(|i| self.providers.get(i))
                .and_then(|p| p.scope_prefix.as_deref());
            rule.challenge_scope = crate::rules::challenge_scope(
                rule,
                prefix,
                &self.protected_resource.scopes_supported,
            );
        }
        self.protected_resource = std::mem::take(&mut self.protected_resource).prepared();
    }
}

impl RawProvider {
    fn validate(self, name: &str) -> Result<Provider, ConfigError> {
        let field = |f: &str| format!("providers.{name}.{f}");
        if name.is_empty() {
            return Err(ConfigError::new(
                "providers",
                "provider names must not be empty",
            ));
        }
        if self.issuer.trim().is_empty() {
            return Err(ConfigError::new(field("issuer"), "must not be empty"));
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::new(
                field("audiences"),
                "must list at least one audience (the tokens' \"aud\" for this API)",
            ));
        }
        if let Some(i) = self.audiences.iter().position(|a| a.trim().is_empty()) {
            return Err(ConfigError::new(
                format!("{}[{i}]", field("audiences")),
                "must not be empty",
            ));
        }

        let keys =
            match (self.local_jwks, self.remote_jwks, self.discovery) {
                (Some(local), None, None) => {
                    let set = KeySet::parse(local.inline_string.as_bytes()).map_err(|e| {
                        ConfigError::new(field("local_jwks.inline_string"), e.to_string())
                    })?;
                    if set.is_empty() {
                        return Err(ConfigError::new(
                            field("local_jwks.inline_string"),
                            format!("JWKS has no usable key ({})", set.summary()),
                        ));
                    }
                    KeySource::Local(Arc::new(set))
                }
                (None, Some(remote), None) => {
                    KeySource::Remote(remote.validate(&field("remote_jwks"), false)?)
                }
                (None, None, Some(disc)) => {
                    KeySource::Remote(disc.validate(&field("discovery"), true)?)
                }
                (None, None, None) => {
                    return Err(ConfigError::new(
                        format!("providers.{name}"),
                        "a key source is required: set one of local_jwks, remote_jwks or discovery",
                    ))
                }
                _ => return Err(ConfigError::new(
                    format!("providers.{name}"),
                    "local_jwks, remote_jwks and discovery are mutually exclusive; set exactly one",
                )),
            };

        let algorithms = match self.algorithms {
            None => DEFAULT_ALGORITHMS.to_vec(),
            Some(list) => {
                if list.is_empty() {
                    return Err(ConfigError::new(
                        field("algorithms"),
                        "must not be empty (omit it for the default RS256, ES256)",
                    ));
                }
                let mut algs = Vec::new();
                for (i, a) in list.iter().enumerate() {
                    let alg = Alg::parse(a).map_err(|e| {
                        ConfigError::new(
                            format!("{}[{i}]", field("algorithms")),
                            format!(
                                "{e}; supported: RS256 RS384 RS512 PS256 PS384 PS512 ES256 EdDSA"
                            ),
                        )
                    })?;
                    if !algs.contains(&alg) {
                        algs.push(alg);
                    }
                }
                algs
            }
        };

        let clock_skew_seconds = self
            .clock_skew_seconds
            .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
        if clock_skew_seconds > 600 {
            return Err(ConfigError::new(
                field("clock_skew_seconds"),
                "must be at most 600",
            ));
        }

        let mut claim_to_headers: Vec<ClaimToHeader> = Vec::new();
        for (i, c) in self.claim_to_headers.into_iter().enumerate() {
            let f = format!("{}[{i}]", field("claim_to_headers"));
            if c.claim_name.is_empty() || c.claim_name.split('.').any(str::is_empty) {
                return Err(ConfigError::new(
                    format!("{f}.claim_name"),
                    "must be a claim name or a dotted path like \"realm_access.roles\"",
                ));
            }
            let header = c.header_name.to_ascii_lowercase();
            check_header_name(&header)
                .map_err(|m| ConfigError::new(format!("{f}.header_name"), m))?;
            if claim_to_headers.iter().any(|x| x.header_name == header) {
                return Err(ConfigError::new(
                    format!("{f}.header_name"),
                    format!("{header:?} is used twice"),
                ));
            }
            claim_to_headers.push(ClaimToHeader {
                claim_name: c.claim_name,
                header_name: header,
            });
        }

        if let Some(t) = &self.require_typ {
            if t.trim().is_empty() {
                return Err(ConfigError::new(field("require_typ"), "must not be empty"));
            }
        }

        let mut issuers = vec![IssuerPattern::parse(&self.issuer)];
        for (i, iss) in self.issuers.iter().enumerate() {
            if iss.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("{}[{i}]", field("issuers")),
                    "must not be empty",
                ));
            }
            let p = IssuerPattern::parse(iss);
            if !issuers.contains(&p) {
                issuers.push(p);
            }
        }
        if let Some(i) = self.allowed_tenants.iter().position(|t| !is_guid(t)) {
            return Err(ConfigError::new(
                format!("{}[{i}]", field("allowed_tenants")),
                "a tenant id is a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47",
            ));
        }
        if !self.allowed_tenants.is_empty()
            && !issuers
                .iter()
                .any(|i| matches!(i, IssuerPattern::Tenant { .. }))
        {
            return Err(ConfigError::new(
                field("allowed_tenants"),
                "only applies to an issuer with a {tenantid} placeholder",
            ));
        }
        let scope_claims = match self.scope_claims {
            None => vec!["scope".to_string(), "scp".to_string()],
            Some(list) if list.is_empty() || list.iter().any(|c| c.is_empty()) => {
                return Err(ConfigError::new(
                    field("scope_claims"),
                    "list the claims that carry scopes, e.g. [\"scope\", \"scp\", \"roles\"]",
                ))
            }
            Some(list) => list,
        };
        if self
            .scope_prefix
            .as_deref()
            .is_some_and(|p| p.is_empty() || p.contains(' '))
        {
            return Err(ConfigError::new(
                field("scope_prefix"),
                "must be non-empty, without spaces",
            ));
        }
        Ok(Provider {
            name: name.to_string(),
            issuers,
            allowed_tenants: self.allowed_tenants,
            scope_claims,
            scope_prefix: self.scope_prefix,
            forward_identity: self.forward_identity,
            issuer: self.issuer,
            audiences: self.audiences,
            keys,
            algorithms,
            clock_skew_seconds,
            forward: self.forward,
            claim_to_headers,
            require_typ: self.require_typ,
        })
    }
}

fn duration_ms(field: &str, value: Option<&str>, default: u64) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => crate::duration::parse(v)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .map_err(|e| ConfigError::new(field, e)),
    }
}

impl RawRemote {
    fn validate(self, field: &str, discovery: bool) -> Result<RemoteSource, ConfigError> {
        let f = |x: &str| format!("{field}.{x}");
        let target = Target::parse(&self.http_uri.uri)
            .map_err(|e| ConfigError::new(f("http_uri.uri"), e))?;
        let cluster = self.http_uri.cluster.trim().to_string();
        if cluster.is_empty() {
            return Err(ConfigError::new(
                f("http_uri.cluster"),
                "must name the Envoy cluster that reaches the identity provider",
            ));
        }
        let timeout = duration_ms(
            &f("http_uri.timeout"),
            self.http_uri.timeout.as_deref(),
            DEFAULT_FETCH_TIMEOUT_MS,
        )?;
        if !(100..=60_000).contains(&timeout) {
            return Err(ConfigError::new(
                f("http_uri.timeout"),
                "must be between 0.1s and 60s",
            ));
        }
        let cache_duration = duration_ms(
            &f("cache_duration"),
            self.cache_duration.as_deref(),
            DEFAULT_CACHE_DURATION_MS,
        )?;
        if cache_duration < 1_000 {
            return Err(ConfigError::new(f("cache_duration"), "must be at least 1s"));
        }
        let max_stale = duration_ms(
            &f("max_stale"),
            self.max_stale.as_deref(),
            DEFAULT_MAX_STALE_MS,
        )?;
        let unknown_kid_interval = duration_ms(
            &f("unknown_kid_refetch_interval"),
            self.unknown_kid_refetch_interval.as_deref(),
            DEFAULT_UNKNOWN_KID_INTERVAL_MS,
        )?;
        let cold_start_wait = duration_ms(
            &f("cold_start_wait"),
            self.cold_start_wait.as_deref(),
            timeout,
        )?;
        if cold_start_wait > 60_000 {
            return Err(ConfigError::new(
                f("cold_start_wait"),
                "must be at most 60s",
            ));
        }
        let max_response_bytes = self
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        if !(1024..=16 * 1024 * 1024).contains(&max_response_bytes) {
            return Err(ConfigError::new(
                f("max_response_bytes"),
                "must be between 1024 and 16777216",
            ));
        }
        let kind = match (discovery, self.jwks_cluster) {
            (false, None) => RemoteKind::Jwks,
            (false, Some(_)) => {
                return Err(ConfigError::new(
                    f("jwks_cluster"),
                    "only applies to discovery (remote_jwks names its cluster in http_uri)",
                ))
            }
            (true, c) => RemoteKind::Discovery {
                jwks_cluster: c
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .unwrap_or_else(|| cluster.clone()),
            },
        };
        Ok(RemoteSource {
            kind,
            uri: self.http_uri.uri,
            target,
            cluster,
            policy: FetchPolicy {
                cache_duration,
                max_stale,
                unknown_kid_interval,
                timeout,
                backoff_initial: 1_000,
                backoff_max: 300_000,
            },
            cold_start_wait,
            max_response_bytes,
        })
    }
}

/// An accepted `iss` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerPattern {
    Exact(String),
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`: the token's `tid` (a GUID)
    /// fills the placeholder.
    Tenant {
        before: String,
        after: String,
    },
}

impl IssuerPattern {
    fn parse(s: &str) -> IssuerPattern {
        match s.split_once("{tenantid}") {
            Some((before, after)) => IssuerPattern::Tenant {
                before: before.to_string(),
                after: after.to_string(),
            },
            None => IssuerPattern::Exact(s.to_string()),
        }
    }
}

/// Whether `s` looks like a GUID (8-4-4-4-12 hex digits), the form of an Entra tenant id.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_scopes(field: &str, scopes: Vec<String>) -> Result<Vec<String>, ConfigError> {
    for (i, s) in scopes.iter().enumerate() {
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "a scope is one or more visible ASCII characters without '\"' or '\\'",
            ));
        }
    }
    Ok(scopes)
}

fn unlisted(
    field: &str,
    v: Option<String>,
) -> Result<Option<crate::policy::Unlisted>, ConfigError> {
    use crate::policy::Unlisted;
    match v.as_deref() {
        None => Ok(None),
        Some("allow") => Ok(Some(Unlisted::Allow)),
        Some("deny") => Ok(Some(Unlisted::Deny)),
        Some(other) => Err(ConfigError::new(
            field,
            format!("{other:?} is not \"allow\" or \"deny\""),
        )),
    }
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl RawMcp {
    fn validate(self, field: &str) -> Result<crate::policy::McpRule, ConfigError> {
        use crate::policy::{McpRule, ScopeMap};
        let map = |name: &str,
                   entries: BTreeMap<String, Vec<String>>,
                   u: Option<String>|
         -> Result<ScopeMap, ConfigError> {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                if k.is_empty() {
                    return Err(ConfigError::new(
                        format!("{field}.{name}"),
                        "names must not be empty",
                    ));
                }
                let scopes = check_scopes(&format!("{field}.{name}.{k}"), v)?;
                out.insert(k, scopes);
            }
            Ok(ScopeMap {
                entries: out,
                unlisted: unlisted(&format!("{field}.unlisted_{name}"), u)?,
            })
        };
        let optional = |name: &str,
                        entries: Option<BTreeMap<String, Vec<String>>>,
                        u: Option<String>|
         -> Result<Option<ScopeMap>, ConfigError> {
            match (entries, u) {
                (None, None) => Ok(None),
                (e, u) => map(name, e.unwrap_or_default(), u).map(Some),
            }
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::new(
                format!("{field}.max_body_bytes"),
                "must be between 1024 and 67108864",
            ));
        }
        let body_timeout_ms = duration_ms(
            &format!("{field}.body_timeout"),
            self.body_timeout.as_deref(),
            15_000,
        )?;
        if !(100..=300_000).contains(&body_timeout_ms) {
            return Err(ConfigError::new(
                format!("{field}.body_timeout"),
                "must be between 0.1s and 300s",
            ));
        }
        Ok(McpRule {
            body_timeout_ms,
            methods: map("methods", self.methods, self.unlisted_methods)?,
            tools: optional("tools", self.tools, self.unlisted_tools)?,
            prompts: optional("prompts", self.prompts, self.unlisted_prompts)?,
            resources: optional("resources", self.resources, self.unlisted_resources)?,
            max_body_bytes,
        })
    }
}

/// `forward_identity: true` writes these headers (header, claims tried in order); the
/// last one carries the granted scopes, space-separated.
pub const IDENTITY_HEADERS: [(&str, &[&str]); 5] = [
    ("x-mcp-subject", &["sub"]),
    ("x-mcp-object-id", &["oid"]),
    ("x-mcp-tenant-id", &["tid"]),
    ("x-mcp-client-id", &["azp", "appid", "client_id", "cid"]),
    ("x-mcp-scopes", &[]),
];

/// Headers a claim may never be written to.
const RESERVED_HEADERS: [&str; 10] = [
    "authorization",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "cookie",
    "mcp-session-id",
];

fn check_header_name(h: &str) -> Result<(), String> {
    if h.is_empty() {
        return Err("must not be empty".into());
    }
    if h.starts_with(':') {
        return Err(format!("{h:?} is a pseudo-header"));
    }
    if !h
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(format!(
            "{:?} is not a valid header name (letters, digits, '-', '_', '.')",
            crate::signature::printable(h)
        ));
    }
    if RESERVED_HEADERS.contains(&h) {
        return Err(format!("{h:?} is reserved"));
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = match rest {
        Some(rest) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            !host.is_empty()
                && !url.contains('#')
                && url.bytes().all(|b| b.is_ascii_graphic())
                && !url.contains('"')
                && !url.contains('\\')
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!(
                "{:?} is not an absolute http(s) URL without fragment",
                crate::signature::printable(url)
            ),
        ))
    }
}

fn validate_prm(
    raw: Option<RawProtectedResource>,
    providers: &[Provider],
) -> Result<ProtectedResource, ConfigError> {
    let default_servers = || {
        let mut v: Vec<String> = Vec::new();
        for p in providers {
            if !v.contains(&p.issuer) {
                v.push(p.issuer.clone());
            }
        }
        v
    };
    let Some(raw) = raw else {
        return Ok(ProtectedResource {
            authorization_servers: default_servers(),
            ..ProtectedResource::default()
        });
    };
    if let Some(r) = &raw.resource {
        check_url("protected_resource.resource", r)?;
    }
    let authorization_servers = match raw.authorization_servers {
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(
                "protected_resource.authorization_servers",
                "must list at least one authorization server (MCP requires it); omit it to use the providers' issuers",
            ))
        }
        Some(list) => list,
        None => default_servers(),
    };
    for (i, s) in authorization_servers.iter().enumerate() {
        check_url(&format!("protected_resource.authorization_servers[{i}]"), s)?;
    }
    let mut seen = HashSet::new();
    for (i, s) in raw.scopes_supported.iter().enumerate() {
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid {
            return Err(ConfigError::new(
                format!("protected_resource.scopes_supported[{i}]"),
                "a scope is one or more visible ASCII characters without '\"' or '\\'",
            ));
        }
        if !seen.insert(s) {
            return Err(ConfigError::new(
                format!("protected_resource.scopes_supported[{i}]"),
                format!("{s:?} is listed twice"),
            ));
        }
    }
    for (name, v) in [
        ("resource_documentation", &raw.resource_documentation),
        ("resource_policy_uri", &raw.resource_policy_uri),
        ("resource_tos_uri", &raw.resource_tos_uri),
    ] {
        if let Some(u) = v {
            check_url(&format!("protected_resource.{name}"), u)?;
        }
    }
    Ok(ProtectedResource {
        resource: raw.resource,
        authorization_servers,
        scopes_supported: raw.scopes_supported,
        resource_name: raw.resource_name.filter(|s| !s.is_empty()),
        resource_documentation: raw.resource_documentation,
        resource_policy_uri: raw.resource_policy_uri,
        resource_tos_uri: raw.resource_tos_uri,
        metadata_url: None,
        document: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwks() -> String {
        json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x": crate::b64::encode(&[9u8;32])}]})
            .to_string()
    }

    fn base() -> serde_json::Value {
        json!({
            "providers": {"entra": {
                "issuer": "https://login.example.com/t/v2.0",
                "audiences": ["api://x"],
                "local_jwks": {"inline_string": jwks()},
                "algorithms": ["EdDSA"],
                "claim_to_headers": [{"claim_name":"sub","header_name":"X-MCP-Subject"}]
            }},
            "rules": [
                {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"}},
                {"match": {"path": "/healthz"}}
            ]
        })
    }

    fn err(v: serde_json::Value) -> ConfigError {
        Config::parse(v.to_string().as_bytes()).expect_err("must be refused")
    }

    #[test]
    fn valid_config_parses_with_defaults() {
        let c = Config::parse(base().to_string().as_bytes()).expect("valid");
        assert_eq!(c.providers.len(), 1);
        let p = &c.providers[0];
        assert_eq!(p.clock_skew_seconds, 60);
        assert_eq!(p.algorithms, vec![Alg::EdDsa]);
        assert_eq!(p.claim_to_headers[0].header_name, "x-mcp-subject");
        assert_eq!(&*c.strip_unprotected, ["x-mcp-subject"]);
        assert_eq!(
            &*c.strip_allowed,
            [Arc::from([
                "x-mcp-subject".to_string(),
                "authorization".to_string()
            ])]
        );
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].requires, Some(0));
        assert_eq!(c.unmatched, Unmatched::Deny);
        assert_eq!(c.max_token_bytes, 8192);
        assert_eq!(
            c.protected_resource.authorization_servers,
            vec!["https://login.example.com/t/v2.0"]
        );
    }

    #[test]
    fn duplicate_members_are_refused_with_their_path() {
        // serde_json keeps the last of two equal keys; a config must never mean that.
        let text = base().to_string();
        let twice = text.replacen(
            "\"issuer\":",
            "\"issuer\":\"https://evil.example.com\",\"issuer\":",
            1,
        );
        let e = Config::parse(twice.as_bytes()).expect_err("duplicate issuer");
        assert_eq!(e.field, "providers.entra.issuer");
        assert_eq!(
            e.to_string(),
            "invalid plugin configuration: providers.entra.issuer: duplicate member \"issuer\""
        );
        let two_providers = text.replacen("\"providers\":{", "\"providers\":{\"entra\":{},", 1);
        let e = Config::parse(two_providers.as_bytes()).expect_err("provider named twice");
        assert_eq!(e.field, "providers.entra");
        let e = Config::parse(br#"{"providers":{"a":{"issuer":}}}"#).expect_err("syntax");
        assert_eq!(e.field, "providers.a.issuer");
    }

    #[test]
    fn default_algorithms_are_rs256_and_es256() {
        let mut v = base();
        v["providers"]["entra"]
            .as_object_mut()
            .unwrap()
            .remove("algorithms");
        let c = Config::parse(v.to_string().as_bytes()).unwrap();
        assert_eq!(c.providers[0].algorithms, vec![Alg::Rs256, Alg::Es256]);
    }

    #[test]
    fn refusals_name_the_field() {
        type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Mutation, &str, &str)> = vec![
            (
                Box::new(|v| v["bogus"] = json!(1)),
                "bogus",
                "unknown field `bogus`",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["audience"] = json!("x")),
                "providers.entra.audience",
                "unknown field `audience`",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["audiences"] = json!([])),
                "providers.entra.audiences",
                "at least one audience",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["audiences"] = json!("api://x")),
                "providers.entra.audiences",
                "invalid type",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["RS256", "HS256"])),
                "providers.entra.algorithms[1]",
                "symmetric algorithm HS256",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["none"])),
                "providers.entra.algorithms[0]",
                "alg \"none\"",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["ES512"])),
                "providers.entra.algorithms[0]",
                "unsupported algorithm ES512",
            ),
            (
                Box::new(|v| v["rules"][0]["requires"]["provider_name"] = json!("okta")),
                "rules[0].requires.provider_name",
                "no provider named \"okta\"",
            ),
            (
                Box::new(|v| {
                    v["providers"]["entra"]["local_jwks"]["inline_string"] = json!("{not json")
                }),
                "providers.entra.local_jwks.inline_string",
                "JWKS is not valid JSON",
            ),
            (
                Box::new(|v| {
                    v["providers"]["entra"]["local_jwks"]["inline_string"] = json!("{\"keys\":[]}")
                }),
                "providers.entra.local_jwks.inline_string",
                "no usable key",
            ),
            (
                Box::new(|v| {
                    v["providers"]["entra"]
                        .as_object_mut()
                        .unwrap()
                        .remove("local_jwks");
                }),
                "providers.entra",
                "a key source is required",
            ),
            (
                Box::new(|v| v["rules"][0]["match"] = json!({"prefix":"/a","path":"/b"})),
                "rules[0].match",
                "exactly one",
            ),
            (
                Box::new(|v| v["rules"][0]["match"] = json!({"prefix":"mcp"})),
                "rules[0].match",
                "must start with '/'",
            ),
            (
                Box::new(|v| {
                    v["providers"]["entra"]["claim_to_headers"][0]["header_name"] =
                        json!("Authorization")
                }),
                "providers.entra.claim_to_headers[0].header_name",
                "reserved",
            ),
            (
                Box::new(|v| {
                    v["providers"]["entra"]["claim_to_headers"][0]["header_name"] = json!("x y")
                }),
                "providers.entra.claim_to_headers[0].header_name",
                "not a valid header name",
            ),
            (
                Box::new(|v| v["unmatched"] = json!("maybe")),
                "unmatched",
                "not \"deny\" or \"allow\"",
            ),
            (
                Box::new(|v| v["protected_resource"] = json!({"authorization_servers": []})),
                "protected_resource.authorization_servers",
                "at least one authorization server",
            ),
            (
                Box::new(|v| v["protected_resource"] = json!({"resource": "mcp.example.com"})),
                "protected_resource.resource",
                "not an absolute http(s) URL",
            ),
            (
                Box::new(|v| v["protected_resource"] = json!({"scopes_supported": ["a", "a"]})),
                "protected_resource.scopes_supported[1]",
                "listed twice",
            ),
            (
                Box::new(|v| v["providers"]["entra"]["clock_skew_seconds"] = json!(-1)),
                "providers.entra.clock_skew_seconds",
                "invalid value",
            ),
            (
                Box::new(|v| v["max_token_bytes"] = json!(10)),
                "max_token_bytes",
                "between 256 and 65536",
            ),
        ];
        for (mutate, field, msg) in cases {
            let mut v = base();
            mutate(&mut v);
            let e = err(v);
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(msg), "{e} should contain {msg:?}");
            assert!(e.to_string().starts_with("invalid plugin configuration: "));
        }
    }

    fn remote(v: serde_json::Value) -> serde_json::Value {
        let mut c = base();
        let p = c["providers"]["entra"].as_object_mut().unwrap();
        p.remove("local_jwks");
        for (k, val) in v.as_object().unwrap() {
            p.insert(k.clone(), val.clone());
        }
        c
    }

    #[test]
    fn remote_sources_parse_with_defaults() {
        let c = Config::parse(
            remote(json!({"remote_jwks": {"http_uri": {"uri": "https://idp.example.com/keys", "cluster": "idp"}}}))
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let KeySource::Remote(r) = &c.providers[0].keys else {
            panic!("expected remote");
        };
        assert_eq!(r.kind, RemoteKind::Jwks);
        assert_eq!(r.target.authority, "idp.example.com");
        assert_eq!(r.target.path, "/keys");
        assert_eq!(r.cluster, "idp");
        assert_eq!(r.policy.timeout, 5_000);
        assert_eq!(r.policy.cache_duration, 600_000);
        assert_eq!(r.policy.max_stale, 86_400_000);
        assert_eq!(r.policy.unknown_kid_interval, 30_000);
        assert_eq!(r.cold_start_wait, 5_000);
        assert_eq!(r.max_response_bytes, 512 * 1024);

        let c = Config::parse(
            remote(json!({"discovery": {
                "http_uri": {"uri": "https://idp.example.com/.well-known/openid-configuration", "cluster": "idp", "timeout": "2s"},
                "jwks_cluster": "idp_keys", "cache_duration": "60s", "max_stale": "3600s",
                "unknown_kid_refetch_interval": "5s", "cold_start_wait": "1.5s", "max_response_bytes": 2048
            }}))
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let KeySource::Remote(r) = &c.providers[0].keys else {
            panic!("expected remote");
        };
        assert_eq!(
            r.kind,
            RemoteKind::Discovery {
                jwks_cluster: "idp_keys".into()
            }
        );
        assert_eq!(
            (
                r.policy.timeout,
                r.policy.cache_duration,
                r.policy.max_stale
            ),
            (2_000, 60_000, 3_600_000)
        );
        assert_eq!(
            (r.policy.unknown_kid_interval, r.cold_start_wait),
            (5_000, 1_500)
        );
    }

    #[test]
    fn remote_source_refusals() {
        let uri = json!({"uri": "https://idp/keys", "cluster": "idp"});
        let cases = vec![
            (
                json!({"remote_jwks": {"http_uri": uri}, "local_jwks": {"inline_string": jwks()}}),
                "providers.entra",
                "mutually exclusive",
            ),
            (
                json!({"remote_jwks": {"http_uri": uri}, "discovery": {"http_uri": uri}}),
                "providers.entra",
                "mutually exclusive",
            ),
            (
                json!({"remote_jwks": {"http_uri": {"uri": "idp/keys", "cluster": "idp"}}}),
                "providers.entra.remote_jwks.http_uri.uri",
                "not an absolute http(s) URI",
            ),
            (
                json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys", "cluster": " "}}}),
                "providers.entra.remote_jwks.http_uri.cluster",
                "Envoy cluster",
            ),
            (
                json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys"}}}),
                "providers.entra.remote_jwks.http_uri",
                "missing field `cluster`",
            ),
            (
                json!({"remote_jwks": {"http_uri": uri, "cache_duration": "10m"}}),
                "providers.entra.remote_jwks.cache_duration",
                "not a duration",
            ),
            (
                json!({"remote_jwks": {"http_uri": uri, "jwks_cluster": "x"}}),
                "providers.entra.remote_jwks.jwks_cluster",
                "only applies to discovery",
            ),
            (
                json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys", "cluster": "idp", "timeout": "0s"}}}),
                "providers.entra.remote_jwks.http_uri.timeout",
                "between 0.1s and 60s",
            ),
            (
                json!({"discovery": {"http_uri": uri, "max_response_bytes": 10}}),
                "providers.entra.discovery.max_response_bytes",
                "between 1024",
            ),
        ];
        for (v, field, msg) in cases {
            let e = err(remote(v));
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(msg), "{e} should contain {msg:?}");
        }
    }

    #[test]
    fn empty_or_non_object_config_is_refused() {
        assert!(Config::parse(b"").is_err());
        assert!(Config::parse(b"  ").is_err());
        assert!(Config::parse(b"[]").is_err());
        assert!(Config::parse(b"{}").is_err());
        assert!(Config::parse(b"{\"providers\":{},\"rules\":[]} x").is_err());
    }
}
