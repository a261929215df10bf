//! `authorization_server`: the sign-in façade's section, built into the `oauth` part's
//! [`Settings`] and its sealing [`Keys`].
//!
//! Pure: the VM environment comes in as a lookup function (the glue passes `std::env::var`,
//! which under Envoy reads `vm_config.environment_variables`). Secrets (the sealing keys,
//! the upstream client secret) only ever come from there, and no error names a value: only
//! the field and the variable's name.

use super::*;
use crate::oauth::seal::{KeyError, Keys};
use crate::oauth::settings::{ClientAuth, ConsentMode, Secret, Settings, Spec, Ttls, Upstream};

/// Reads one VM environment variable (`None`: not set).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Largest request body a façade endpoint reads (registration JSON, consent and token forms).
pub const DEFAULT_FACADE_BODY_BYTES: usize = 16 * 1024;
/// How long a façade endpoint waits for its request body.
pub const DEFAULT_FACADE_BODY_TIMEOUT_MS: u64 = 15_000;
/// Upstream token endpoint callout timeout when `token_endpoint.timeout` is not set.
pub const DEFAULT_TOKEN_TIMEOUT_MS: u64 = 10_000;

/// How often the upstream's metadata document is fetched again when
/// `upstream.discovery.cache_duration` is not set.
pub const DEFAULT_UPSTREAM_METADATA_REFRESH_MS: u64 = 24 * 3600 * 1000;

/// `upstream.discovery`: where the upstream's metadata document is and how to fetch it.
#[derive(Debug, Clone)]
pub struct UpstreamDiscovery {
    /// The document's URL.
    pub uri: String,
    /// `uri` split for the callout.
    pub target: crate::keys::fetch::Target,
    /// The cluster the document's callout goes to, and its timeout.
    pub cluster: String,
    pub timeout_ms: u64,
    /// The `issuer` the document must name, if configured.
    pub issuer: Option<String>,
    /// Whether `token_cluster` was set (the token endpoint may then be on another host).
    pub token_cluster_set: bool,
    /// Fetched again this long after a success.
    pub refresh_ms: u64,
    pub max_response_bytes: usize,
}

/// The validated façade: what the glue needs besides the pure core's settings.
///
/// With `upstream.discovery`, `settings.spec.upstream`'s two endpoints are placeholders (the
/// document's URL) until the document is fetched: the glue builds the settings it uses from
/// the fetched endpoints and never sends anyone to these.
#[derive(Debug)]
pub struct Facade {
    pub settings: Settings,
    pub keys: Keys,
    /// The provider that verifies the tokens the façade hands out.
    pub provider: usize,
    /// The Envoy cluster that reaches the upstream token endpoint, and the callout's
    /// timeout.
    pub token_cluster: String,
    pub token_timeout_ms: u64,
    /// The token callout's `:authority` and `:path` (empty with `discovery`: they come from
    /// the fetched document).
    pub token_authority: String,
    pub token_path: String,
    /// `upstream.discovery`, when the endpoints come from the upstream's metadata.
    pub discovery: Option<UpstreamDiscovery>,
    pub max_body_bytes: usize,
    pub body_timeout_ms: u64,
}

const F: &str = "authorization_server";

fn err(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("{F}.{field}"), message)
}

/// `scheme://authority` of an absolute http(s) URL (checked before).
pub(super) fn origin_of(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    let end = url
        .get(after..)
        .and_then(|r| r.find(['/', '?', '#']))
        .map_or(url.len(), |i| after + i);
    url.get(..end).unwrap_or(url)
}

/// The issuer the façade will have: `issuer`, else the origin of the protected resource.
/// `Err` when neither says where the façade lives.
pub(super) fn issuer(
    raw: &RawAuthorizationServer,
    resource: Option<&str>,
) -> Result<String, ConfigError> {
    match (&raw.issuer, resource) {
        (Some(i), _) => {
            check_url(&format!("{F}.issuer"), i)?;
            Ok(i.trim_end_matches('/').to_string())
        }
        (None, Some(r)) => Ok(origin_of(r).to_string()),
        (None, None) => Err(err(
            "issuer",
            "set authorization_server.issuer or protected_resource.resource (the façade's \
             base URL is derived from the resource)",
        )),
    }
}

fn ttl(field: &str, v: Option<&str>, default: u64) -> Result<u64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) => crate::util::duration::parse(v)
            .map(|d| d.as_secs())
            .map_err(|e| err(field, e)),
    }
}

/// Builds the façade. `resource` and `default_scopes` come from the top-level
/// `protected_resource`; `providers` are the validated providers.
pub(super) fn build(
    raw: RawAuthorizationServer,
    issuer: String,
    resource: Option<&str>,
    default_scopes: &[String],
    providers: &[Provider],
    env: EnvLookup<'_>,
) -> Result<Facade, ConfigError> {
    let Some(resource) = resource else {
        return Err(ConfigError::new(
            "protected_resource.resource",
            "the authorization_server needs the protected resource's URL (clients must send it \
             as `resource`)",
        ));
    };
    let provider = providers
        .iter()
        .position(|p| p.name == raw.provider_name)
        .ok_or_else(|| {
            err(
                "provider_name",
                format!("no provider named {:?}", raw.provider_name),
            )
        })?;

    // Sealing keys: each variable must be set; values are never echoed.
    if raw.sealing_keys_env.is_empty() {
        return Err(err(
            "sealing_keys_env",
            "name at least one VM environment variable holding a sealing key",
        ));
    }
    let mut values = Vec::with_capacity(raw.sealing_keys_env.len());
    for (i, name) in raw.sealing_keys_env.iter().enumerate() {
        match env(name) {
            Some(v) if !v.trim().is_empty() => values.push(v),
            _ => {
                return Err(err(
                    &format!("sealing_keys_env[{i}]"),
                    format!(
                        "the VM environment variable {:?} is not set (Envoy \
                         vm_config.environment_variables, Istio vmConfig.env)",
                        crate::util::text::printable(name)
                    ),
                ))
            }
        }
    }
    let keys = Keys::from_base64(&values).map_err(|e| {
        let index = match e {
            KeyError::NoKeys => 0,
            KeyError::TooShort { index } | KeyError::NotBase64 { index } => index,
        };
        err(&format!("sealing_keys_env[{index}]"), e.to_string())
    })?;
    drop(values);

    let up = raw.upstream;
    if up.client_id.trim().is_empty() {
        return Err(err(
            "upstream.client_id",
            "must be the façade's client id at the IdP",
        ));
    }
    let endpoints = match (up.discovery, up.authorization_endpoint, up.token_endpoint) {
        (Some(d), None, None) => Endpoints::Discovered(upstream_discovery(d)?),
        (Some(_), _, _) => {
            return Err(err(
                "upstream.discovery",
                "set either upstream.discovery or upstream.authorization_endpoint and \
                 upstream.token_endpoint, not both",
            ))
        }
        (None, a, t) => Endpoints::Static(static_endpoints(a, t)?),
    };
    let (authorization_endpoint, token_uri, token_cluster, token_timeout_ms, discovery) =
        match endpoints {
            Endpoints::Static(s) => (s.authorization, s.token_uri, s.cluster, s.timeout_ms, None),
            Endpoints::Discovered((d, cluster, timeout_ms)) => {
                // Placeholders until the document is fetched (see `Facade`).
                let placeholder = d.uri.split('?').next().unwrap_or(&d.uri).to_string();
                (
                    placeholder.clone(),
                    placeholder,
                    cluster,
                    timeout_ms,
                    Some(d),
                )
            }
        };
    let (token_authority, token_path) = if discovery.is_some() {
        (String::new(), String::new())
    } else {
        authority_and_path(&token_uri)
    };

    let client_secret = match &up.client_secret_env {
        None => None,
        Some(name) => match env(name) {
            Some(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                return Err(err(
                    "upstream.client_secret_env",
                    format!(
                        "the VM environment variable {:?} is not set",
                        crate::util::text::printable(name)
                    ),
                ))
            }
        },
    };
    let client_auth = match up.client_auth.as_deref() {
        None | Some("client_secret_post") => ClientAuth::Post,
        Some("client_secret_basic") => ClientAuth::Basic,
        Some(other) => {
            return Err(err(
                "upstream.client_auth",
                format!(
                    "{:?} is not \"client_secret_post\" or \"client_secret_basic\"",
                    crate::util::text::printable(other)
                ),
            ))
        }
    };
    let consent = match raw.consent.as_deref() {
        None | Some("always") => ConsentMode::Always,
        Some("remember") => ConsentMode::Remember,
        Some(other) => {
            return Err(err(
                "consent",
                format!(
                    "{:?} is not \"always\" or \"remember\"",
                    crate::util::text::printable(other)
                ),
            ))
        }
    };
    let d = Ttls::default();
    let ttl = Ttls {
        state: ttl("state_ttl", raw.state_ttl.as_deref(), d.state)?,
        code: ttl("code_ttl", raw.code_ttl.as_deref(), d.code)?,
        refresh: ttl("refresh_ttl", raw.refresh_ttl.as_deref(), d.refresh)?,
        approval: ttl("approval_ttl", raw.approval_ttl.as_deref(), d.approval)?,
    };
    let scope_prefix = up
        .scope_prefix
        .or_else(|| providers.get(provider).and_then(|p| p.scope_prefix.clone()));
    let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_FACADE_BODY_BYTES);
    if !(1024..=1 << 20).contains(&max_body_bytes) {
        return Err(err("max_body_bytes", "must be between 1024 and 1048576"));
    }
    let body_timeout_ms = duration_ms(
        &format!("{F}.body_timeout"),
        raw.body_timeout.as_deref(),
        DEFAULT_FACADE_BODY_TIMEOUT_MS,
    )?;
    let spec = Spec {
        issuer,
        resource: resource.to_string(),
        callback_path: raw
            .callback_path
            .unwrap_or_else(|| Spec::default().callback_path),
        scopes_supported: raw
            .scopes_supported
            .unwrap_or_else(|| default_scopes.to_vec()),
        redirect_uris: raw.redirect_uris,
        consent,
        ttl,
        upstream: Upstream {
            authorization_endpoint,
            token_endpoint: token_uri,
            client_id: up.client_id,
            client_secret,
            client_auth,
            scope_prefix,
            extra_scopes: up.extra_scopes,
            send_resource: up.send_resource,
            authorize_params: up.authorize_params.into_iter().collect(),
        },
    };
    // The core's own checks (URLs, redirect allow-list, scopes, lifetimes); its messages
    // name the setting and never carry a secret.
    let settings = Settings::new(spec).map_err(|m| ConfigError::new(F, m))?;
    Ok(Facade {
        settings,
        keys,
        provider,
        token_cluster,
        token_timeout_ms,
        token_authority,
        token_path,
        discovery,
        max_body_bytes,
        body_timeout_ms,
    })
}

/// `:authority` and `:path` of the token callout for an absolute URL (checked before).
pub fn authority_and_path(uri: &str) -> (String, String) {
    let origin = origin_of(uri);
    let authority = origin.split_once("://").map_or("", |(_, a)| a).to_string();
    let path = match uri.get(origin.len()..) {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => "/".to_string(),
    };
    (authority, path)
}

struct StaticEndpoints {
    authorization: String,
    token_uri: String,
    cluster: String,
    timeout_ms: u64,
}

enum Endpoints {
    Static(StaticEndpoints),
    /// The discovery settings, the token callout's cluster and timeout.
    Discovered((UpstreamDiscovery, String, u64)),
}

fn token_timeout(field: &str, v: Option<&str>) -> Result<u64, ConfigError> {
    let ms = duration_ms(&format!("{F}.{field}"), v, DEFAULT_TOKEN_TIMEOUT_MS)?;
    if !(100..=60_000).contains(&ms) {
        return Err(err(field, "must be between 100ms and 60s"));
    }
    Ok(ms)
}

fn static_endpoints(
    authorization_endpoint: Option<String>,
    token_endpoint: Option<RawHttpUri>,
) -> Result<StaticEndpoints, ConfigError> {
    let Some(authorization_endpoint) = authorization_endpoint else {
        return Err(err(
            "upstream.authorization_endpoint",
            "is required (the IdP's authorization endpoint URL), unless upstream.discovery \
             names the IdP's metadata document",
        ));
    };
    check_url(
        &format!("{F}.upstream.authorization_endpoint"),
        &authorization_endpoint,
    )?;
    let Some(token) = token_endpoint else {
        return Err(err(
            "upstream.token_endpoint",
            "is required ({uri, cluster, timeout}: the IdP's token endpoint and the Envoy \
             cluster that reaches it), unless upstream.discovery names the IdP's metadata \
             document",
        ));
    };
    check_url(&format!("{F}.upstream.token_endpoint.uri"), &token.uri)?;
    if token.uri.contains('?') {
        return Err(err("upstream.token_endpoint.uri", "must not have a query"));
    }
    let cluster = token.cluster.trim().to_string();
    if cluster.is_empty() {
        return Err(err(
            "upstream.token_endpoint.cluster",
            "must name the Envoy cluster that reaches the identity provider",
        ));
    }
    let timeout_ms = token_timeout("upstream.token_endpoint.timeout", token.timeout.as_deref())?;
    Ok(StaticEndpoints {
        authorization: authorization_endpoint,
        token_uri: token.uri,
        cluster,
        timeout_ms,
    })
}

fn upstream_discovery(
    d: RawUpstreamDiscovery,
) -> Result<(UpstreamDiscovery, String, u64), ConfigError> {
    let target = crate::keys::fetch::Target::parse(&d.http_uri.uri)
        .map_err(|e| err("upstream.discovery.http_uri.uri", e))?;
    let cluster = d.http_uri.cluster.trim().to_string();
    if cluster.is_empty() {
        return Err(err(
            "upstream.discovery.http_uri.cluster",
            "must name the Envoy cluster that reaches the identity provider",
        ));
    }
    let timeout_ms = duration_ms(
        &format!("{F}.upstream.discovery.http_uri.timeout"),
        d.http_uri.timeout.as_deref(),
        crate::config::DEFAULT_FETCH_TIMEOUT_MS,
    )?;
    if !(100..=60_000).contains(&timeout_ms) {
        return Err(err(
            "upstream.discovery.http_uri.timeout",
            "must be between 100ms and 60s",
        ));
    }
    if let Some(i) = &d.issuer {
        check_url(&format!("{F}.upstream.discovery.issuer"), i)?;
    }
    let token_cluster = match d.token_cluster.as_deref().map(str::trim) {
        None => None,
        Some("") => {
            return Err(err(
                "upstream.discovery.token_cluster",
                "must name an Envoy cluster (or leave it out to use http_uri.cluster)",
            ))
        }
        Some(c) => Some(c.to_string()),
    };
    let token_timeout_ms = token_timeout(
        "upstream.discovery.token_timeout",
        d.token_timeout.as_deref(),
    )?;
    let refresh_ms = duration_ms(
        &format!("{F}.upstream.discovery.cache_duration"),
        d.cache_duration.as_deref(),
        DEFAULT_UPSTREAM_METADATA_REFRESH_MS,
    )?;
    if refresh_ms < 60_000 {
        return Err(err(
            "upstream.discovery.cache_duration",
            "must be at least 60s",
        ));
    }
    let max_response_bytes = d
        .max_response_bytes
        .unwrap_or(crate::keys::fetch::DEFAULT_MAX_RESPONSE_BYTES);
    if !(1024..=16 * 1024 * 1024).contains(&max_response_bytes) {
        return Err(err(
            "upstream.discovery.max_response_bytes",
            "must be between 1024 and 16777216",
        ));
    }
    let token_cluster_set = token_cluster.is_some();
    let token_cluster = token_cluster.unwrap_or_else(|| cluster.clone());
    Ok((
        UpstreamDiscovery {
            uri: d.http_uri.uri,
            target,
            cluster,
            timeout_ms,
            issuer: d.issuer.map(|i| i.to_string()),
            token_cluster_set,
            refresh_ms,
            max_response_bytes,
        },
        token_cluster,
        token_timeout_ms,
    ))
}
