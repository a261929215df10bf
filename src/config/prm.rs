//! `protected_resource`: the RFC 9728 document's values, checked as absolute URLs and
//! built into [`ProtectedResource`].

use super::*;

pub(super) fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
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
                crate::util::text::printable(url)
            ),
        ))
    }
}

pub(super) fn validate_prm(
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
