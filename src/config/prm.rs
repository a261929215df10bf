//! `protected_resource`: the RFC 9728 document's values, checked as absolute URLs and
//! built into [`ProtectedResource`].

use super::*;

#[inline(never)]
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

/// The issuers of `providers`, each once: what `authorization_servers` says when it is
/// not set.
#[inline(never)]
pub(super) fn issuers<'a>(providers: impl IntoIterator<Item = &'a Provider>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for p in providers {
        if !v.contains(&p.issuer) {
            v.push(p.issuer.clone());
        }
    }
    v
}

/// The top-level `protected_resource` (`field` = `"protected_resource"`) or a rule's
/// (`"rules[i].protected_resource"`); `default_servers` when `authorization_servers` is
/// not set.
#[inline(never)]
pub(super) fn validate_prm(
    raw: Option<RawProtectedResource>,
    field: &str,
    default_servers: Vec<String>,
) -> Result<ProtectedResource, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ProtectedResource {
            authorization_servers: default_servers,
            ..ProtectedResource::default()
        });
    };
    if let Some(r) = &raw.resource {
        check_url(&format!("{field}.resource"), r)?;
    }
    let authorization_servers = match raw.authorization_servers {
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(
                format!("{field}.authorization_servers"),
                "must list at least one authorization server (MCP requires it); omit it to use the providers' issuers",
            ))
        }
        Some(list) => list,
        None => default_servers,
    };
    for (i, s) in authorization_servers.iter().enumerate() {
        check_url(&format!("{field}.authorization_servers[{i}]"), s)?;
    }
    let mut seen = HashSet::new();
    for (i, s) in raw.scopes_supported.iter().enumerate() {
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !valid {
            return Err(ConfigError::new(
                format!("{field}.scopes_supported[{i}]"),
                "a scope is one or more visible ASCII characters without '\"' or '\\'",
            ));
        }
        if !seen.insert(s) {
            return Err(ConfigError::new(
                format!("{field}.scopes_supported[{i}]"),
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
            check_url(&format!("{field}.{name}"), u)?;
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

/// Checks rules that carry their own `protected_resource` (`own`, by rule index, prepared)
/// against each other and the top level (`top`; `top_configured`: `protected_resource` was
/// set).
///
/// A client derives the metadata URL from the resource (RFC 9728 §3.3) and the filter
/// answers `/.well-known/oauth-protected-resource<path>` with the document of the first
/// rule matching `<path>`; so a rule's `resource` must have a path this rule matches, and
/// the rule answering that path must serve the same document (so two rules may share a
/// resource only with the same document). Without a top-level `protected_resource`, every
/// rule that requires a token needs its own (there is nothing else to point clients to).
#[inline(never)]
pub(super) fn check_rule_resources(
    rules: &[Rule],
    own: &[Option<ProtectedResource>],
    top: &ProtectedResource,
    top_configured: bool,
) -> Result<(), ConfigError> {
    use crate::authz::rules::first_match;
    use crate::http::prm::{metadata_url_for_resource, resource_url_path};
    if own.iter().all(Option::is_none) {
        return Ok(());
    }
    // The document a rule's path is answered with, if any.
    let served = |j: usize| -> Option<&ProtectedResource> {
        let rule = rules.get(j)?;
        rule.requires?;
        Some(own.get(j).and_then(Option::as_ref).unwrap_or(top))
    };
    // Whether `b` answers with exactly `a`'s document for `a`'s configured resource (the
    // documents are prepared: `Config::derive` ran).
    let same = |a: &ProtectedResource, b: &ProtectedResource| {
        a.resource.is_some() && a.resource == b.resource && a.document == b.document
    };
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("rules[{i}].protected_resource");
        let Some(pr) = own.get(i).and_then(Option::as_ref) else {
            if rule.requires.is_some() && !top_configured {
                return Err(ConfigError::new(
                    format!("rules[{i}]"),
                    "requires a token but has no protected_resource, and there is no top-level \
                     protected_resource to point clients to (other rules have their own): add \
                     one to this rule or at the top level",
                ));
            }
            continue;
        };
        let Some(resource) = &pr.resource else {
            continue;
        };
        let path = resource_url_path(resource);
        let metadata = metadata_url_for_resource(resource);
        // A resource without a path has the root metadata URL, which no rule answers.
        if !rule.matcher.matches(path) {
            return Err(ConfigError::new(
                format!("{field}.resource"),
                format!(
                    "{resource:?} must end in the path this rule protects ({:?}): clients fetch \
                     its metadata from {metadata} (RFC 9728 §3.3)",
                    rule.matcher.pattern()
                ),
            ));
        }
        // Another rule answers that URL first (so, claiming the same resource, it must say
        // the same).
        if let Some((j, _)) = first_match(rules, path).filter(|(j, _)| *j != i) {
            let answer = served(j);
            if !answer.is_some_and(|b| same(pr, b)) {
                let what = if answer.is_some_and(|b| b.resource == pr.resource) {
                    "claims the same resource with a different document"
                } else {
                    "matches that path first and serves another document"
                };
                return Err(ConfigError::new(
                    field,
                    format!(
                        "clients fetch its metadata from {metadata} (RFC 9728 §3.3), but \
                         rules[{j}] {what}"
                    ),
                ));
            }
        }
    }
    if let Some(resource) = top.resource.as_ref().filter(|_| top_configured) {
        let path = resource_url_path(resource);
        if let Some((j, _)) = first_match(rules, path).filter(|_| !path.is_empty()) {
            if let Some(pr) = own.get(j).and_then(Option::as_ref) {
                if rules.get(j).is_some_and(|r| r.requires.is_some()) && !same(top, pr) {
                    return Err(ConfigError::new(
                        "protected_resource.resource",
                        format!(
                            "clients fetch its metadata from {} (RFC 9728 §3.3), but that path \
                             is rules[{j}]'s, which has its own protected_resource",
                            metadata_url_for_resource(resource)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
