//! `providers.<name>`: a provider's issuers, audiences, algorithms, key source (inline JWKS,
//! remote JWKS or discovery, with fetch timing) and claim headers, validated into
//! [`Provider`] and [`KeySource`].

use super::*;

impl RawProvider {
    #[inline(never)]
    pub(super) fn validate(self, name: &str) -> Result<Provider, ConfigError> {
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

#[inline(never)]
pub(super) fn duration_ms(
    field: &str,
    value: Option<&str>,
    default: u64,
) -> Result<u64, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => crate::util::duration::parse(v)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .map_err(|e| ConfigError::new(field, e)),
    }
}

impl RawRemote {
    #[inline(never)]
    pub(super) fn validate(
        self,
        field: &str,
        discovery: bool,
    ) -> Result<RemoteSource, ConfigError> {
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

#[inline(never)]
pub(super) fn check_scopes(field: &str, scopes: Vec<String>) -> Result<Vec<String>, ConfigError> {
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

#[inline(never)]
pub(super) fn unlisted(
    field: &str,
    v: Option<String>,
) -> Result<Option<crate::authz::policy::Unlisted>, ConfigError> {
    use crate::authz::policy::Unlisted;
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

/// Headers a claim may never be written to.
pub(super) const RESERVED_HEADERS: [&str; 10] = [
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

#[inline(never)]
pub(super) fn check_header_name(h: &str) -> Result<(), String> {
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
            crate::util::text::printable(h)
        ));
    }
    if RESERVED_HEADERS.contains(&h) {
        return Err(format!("{h:?} is reserved"));
    }
    Ok(())
}
