//! The plugin configuration: JSON in, a validated [`Config`] out.
//!
//! Field names mirror Envoy's `jwt_authn` where the concept is the same. Every problem is a
//! [`ConfigError`] naming the field, and a configuration with any problem is refused as a
//! whole: the filter never falls back to allowing everything.
//!
//! Each part defines its own settings types (a provider's expectations in `token/`, key
//! sources in `keys/`, rules in `authz/`, the metadata document in `http/`); this module
//! reads the JSON and builds them. No part reads this module's types except [`Config`],
//! the bundle the pipeline (`decide`) and the host glue take.
//!
//! Uses: every part below it (`authz`, `token`, `keys`, `http`, `crypto`, `util`).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::authz::rules::{PathMatch, Rule, Unmatched};
use crate::http::prm::ProtectedResource;
use crate::keys::alg::Alg;
use crate::keys::fetch::{Target, DEFAULT_MAX_RESPONSE_BYTES};
use crate::keys::jwks::KeySet;
use crate::keys::source::{
    KeySource, RemoteKind, RemoteSource, DEFAULT_CACHE_DURATION_MS, DEFAULT_FETCH_TIMEOUT_MS,
    DEFAULT_MAX_STALE_MS, DEFAULT_UNKNOWN_KID_INTERVAL_MS,
};
use crate::keys::state::FetchPolicy;
use crate::token::provider::{is_guid, ClaimToHeader, IssuerPattern, Provider, IDENTITY_HEADERS};

// Without the cargo feature `facade` the section is parsed but refused (Config::facade).
#[cfg_attr(not(feature = "facade"), allow(dead_code))]
mod facade;
mod prm;
mod provider;
mod raw;
mod rules;

pub use facade::{authority_and_path, EnvLookup, Facade, UpstreamDiscovery};
use prm::*;
use provider::*;
use raw::*;
pub use rules::DEFAULT_MAX_BODY_BYTES;

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
    #[inline(never)]
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
// The validated configuration.

/// A validated plugin configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub rules: Vec<Rule>,
    /// The top-level `protected_resource`: the root document, and the metadata of every
    /// rule without its own. Without `authorization_servers` (no top-level one while rules
    /// carry theirs) it describes nothing: the root form is 404.
    pub protected_resource: ProtectedResource,
    /// By rule index: the rule's own `protected_resource`, `None` for the top-level one
    /// ([`Config::resource_for`]).
    pub rule_resources: Vec<Option<ProtectedResource>>,
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
    pub origins: crate::http::cors::Origins,
    /// `filter_state`: which values each decision publishes as Envoy filter state (none by
    /// default: each is a host call per request).
    pub filter_state: crate::http::filter_state::Published,
    /// `host_crypto`: RS* and ES256 signatures checked by the host's `verify_signature` when it passes
    /// the self-check (`"auto"`, the default), or always by the module (`"off"`).
    pub host_crypto: bool,
    /// `authorization_server`: the sign-in façade, when configured.
    pub facade: Option<Arc<Facade>>,
}

impl Config {
    /// The sign-in façade, when configured. Always `None` in a module built without the
    /// cargo feature `facade`, so that none of the façade's code is linked into it.
    #[inline]
    pub fn facade(&self) -> Option<&Facade> {
        #[cfg(feature = "facade")]
        {
            self.facade.as_deref()
        }
        #[cfg(not(feature = "facade"))]
        {
            None
        }
    }

    /// Parses and validates the plugin configuration JSON with no VM environment (an
    /// `authorization_server` section, which needs its keys from there, is refused).
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with_env(json, &|_| None)
    }

    /// Parses and validates the plugin configuration JSON; `env` reads the VM environment
    /// variables the configuration names (`authorization_server` secrets).
    pub fn parse_with_env(json: &[u8], env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Err(ConfigError::new(
                "",
                "the plugin configuration is empty; it must be a JSON object with \"providers\" and \"rules\"",
            ));
        }
        // Syntax and duplicate members first, then shape (raw.rs reads the parsed Value).
        let value = crate::util::json::parse_strict(json)
            .map_err(|(field, msg)| ConfigError::new(field, strip_position(&msg)))?;
        let mut errs = raw::Errs::default();
        let raw = RawConfig::read(&value, &mut errs);
        match errs.0 {
            Some(e) => Err(e),
            None => raw.validate(env),
        }
    }

    pub fn provider_by_name(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The metadata of rule `rule`'s paths: its own `protected_resource`, else the
    /// top-level one.
    pub fn resource_for(&self, rule: usize) -> &ProtectedResource {
        match self.rule_resources.get(rule) {
            Some(Some(own)) => own,
            _ => &self.protected_resource,
        }
    }
}

/// serde_json appends "at line 1 column 17"; for one-line JSON in YAML that is noise.
#[inline(never)]
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg.get(..i).unwrap_or(msg).to_string(),
        None => msg.to_string(),
    }
}

impl RawConfig {
    fn validate(self, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let mut providers = Vec::with_capacity(self.providers.len());
        for (name, raw) in self.providers {
            providers.push(raw.validate(&name)?);
        }

        // The façade's issuer, known before the metadata documents: with the façade on,
        // they name it as the authorization server.
        let top_resource = self
            .protected_resource
            .as_ref()
            .and_then(|p| p.resource.clone());
        #[cfg(feature = "facade")]
        let facade_issuer = match &self.authorization_server {
            Some(raw) => Some(facade::issuer(raw, top_resource.as_deref())?),
            None => None,
        };
        #[cfg(not(feature = "facade"))]
        let facade_issuer: Option<String> = match self.authorization_server {
            Some(_) => {
                return Err(ConfigError::new(
                    "authorization_server",
                    "this build leaves out the sign-in façade (cargo feature `facade`); \
                     load the module `make build` writes, target/wasm/mcp_edge_auth.wasm",
                ))
            }
            None => None,
        };
        let servers = |default: Vec<String>| match &facade_issuer {
            Some(i) => vec![i.clone()],
            None => default,
        };
        // A rule's own document names the façade only when the façade's provider verifies
        // the rule's tokens (another provider's rule keeps its issuer).
        #[cfg(feature = "facade")]
        let facade_provider = self
            .authorization_server
            .as_ref()
            .map(|a| a.provider_name.clone());
        #[cfg(not(feature = "facade"))]
        let facade_provider: Option<String> = None;

        let mut rules = Vec::with_capacity(self.rules.len());
        let mut rule_resources = Vec::with_capacity(self.rules.len());
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
            let own = match (raw.protected_resource, requires) {
                (None, _) => None,
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        format!("{field}.protected_resource"),
                        "metadata describes a protected path: add requires.provider_name",
                    ))
                }
                (Some(pr), Some(p)) => Some(validate_prm(
                    Some(pr),
                    &format!("{field}.protected_resource"),
                    match providers.get(p) {
                        Some(pv) if facade_provider.as_deref() == Some(pv.name.as_str()) => {
                            servers(issuers(providers.get(p)))
                        }
                        other => issuers(other),
                    },
                )?),
            };
            rule_resources.push(own);
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

        let host_crypto = match self.host_crypto.as_deref() {
            None | Some("auto") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "host_crypto",
                    format!("{other:?} is not \"auto\" or \"off\""),
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

        // Without a top-level document while rules carry their own, there is none: the
        // providers' issuers together describe no one resource.
        let top_configured = self.protected_resource.is_some();
        let protected_resource = if top_configured || rule_resources.iter().all(Option::is_none) {
            validate_prm(
                self.protected_resource,
                "protected_resource",
                servers(issuers(&providers)),
            )?
        } else {
            ProtectedResource::default()
        };
        let (token_cache_entries, token_cache_bytes) = match self.token_cache {
            None => (
                crate::token::cache::DEFAULT_MAX_ENTRIES,
                crate::token::cache::DEFAULT_MAX_BYTES,
            ),
            Some(t) => {
                let entries = t
                    .max_entries
                    .unwrap_or(crate::token::cache::DEFAULT_MAX_ENTRIES);
                let bytes = t
                    .max_bytes
                    .unwrap_or(crate::token::cache::DEFAULT_MAX_BYTES);
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

        let origins = crate::http::cors::Origins::parse(self.allowed_origins.as_deref())
            .map_err(|(field, m)| ConfigError::new(field, m))?;
        let filter_state = crate::http::filter_state::Published::parse(
            self.filter_state.as_deref().unwrap_or(&[]),
        )
        .map_err(|m| ConfigError::new("filter_state", m))?;

        #[cfg(not(feature = "facade"))]
        let facade = {
            let _ = (env, facade_issuer, top_resource);
            None
        };
        #[cfg(feature = "facade")]
        let facade = match (self.authorization_server, facade_issuer) {
            (Some(raw), Some(issuer)) => {
                if !protected_resource.authorization_servers.contains(&issuer) {
                    return Err(ConfigError::new(
                        "protected_resource.authorization_servers",
                        format!(
                            "must name the authorization_server's issuer {issuer:?} (or be \
                             left out): clients sign in through the façade"
                        ),
                    ));
                }
                Some(Arc::new(facade::build(
                    raw,
                    issuer,
                    top_resource.as_deref(),
                    &protected_resource.scopes_supported,
                    &providers,
                    env,
                )?))
            }
            _ => None,
        };

        let mut config = Config {
            facade,
            strip_unprotected: Arc::from(Vec::new()),
            strip_allowed: Vec::new(),
            providers,
            rules,
            protected_resource,
            rule_resources,
            unmatched,
            max_token_bytes,
            token_cache_entries,
            token_cache_bytes,
            origins,
            filter_state,
            host_crypto,
        };
        config.derive();
        // On the derived documents (compared as the bytes each answer sends).
        check_rule_resources(
            &config.rules,
            &config.rule_resources,
            &config.protected_resource,
            top_configured,
        )?;
        Ok(config)
    }
}

impl Config {
    /// Fills in what is derived from the rest, once, so no request recomputes it: the
    /// strip lists, each rule's challenge `scope`, and the
    /// metadata URL and document of each configured `resource` (top level and rules). `parse` calls it; code that
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
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let prefix = rule
                .requires
                .and_then(|i| self.providers.get(i))
                .and_then(|p| p.scope_prefix.as_deref());
            let resource = match self.rule_resources.get(i) {
                Some(Some(own)) => own,
                _ => &self.protected_resource,
            };
            rule.challenge_scope =
                crate::authz::rules::challenge_scope(rule, prefix, &resource.scopes_supported);
        }
        self.protected_resource = std::mem::take(&mut self.protected_resource).prepared();
        for own in self.rule_resources.iter_mut().flatten() {
            *own = std::mem::take(own).prepared();
        }
    }
}

#[cfg(test)]
mod tests;
