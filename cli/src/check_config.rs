//! `check-config FILE`: `Config::parse` (the filter's own validation, same messages), then
//! the rule table and, for each protected path, the metadata URL and document the filter
//! serves — obtained by asking `decide` for it, as a client would. The environment
//! variables an `authorization_server` section names (sealing keys, client secret) are read
//! from this process's environment, as the filter reads the VM's: set them to check it.

use mcp_edge_auth::authz::policy::{ScopeMap, Unlisted};
use mcp_edge_auth::authz::rules::{PathMatch, Unmatched};
use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{self, ConfiguredKeys, Decision, Request};
use mcp_edge_auth::http::prm;
use mcp_edge_auth::keys::source::{KeySource, RemoteKind};
use mcp_edge_auth::token::provider::IssuerPattern;

use crate::args::Args;
use crate::{Report, EXIT_DENIED, EXIT_OK};

pub fn run(argv: &[String]) -> Report {
    let mut report = Report::default();
    let args = match Args::parse(argv, &["origin"]) {
        Ok(a) => a,
        Err(e) => return report.usage(e),
    };
    let [file] = args.positional.as_slice() else {
        return report.usage("check-config takes one FILE (the plugin configuration JSON)");
    };
    let bytes = match crate::read_input(file) {
        Ok(b) => b,
        Err(e) => return report.usage(e),
    };
    let cfg = match Config::parse_with_env(&bytes, &|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            report.err(e.to_string());
            report.code = EXIT_DENIED;
            return report;
        }
    };
    report.out(format!("{file}: configuration is valid"));
    report.out("");
    providers(&mut report, &cfg);
    report.out("");
    rules(&mut report, &cfg);
    report.out("");
    metadata(&mut report, &cfg, args.get("origin"));
    if let Some(f) = &cfg.facade {
        report.out("");
        facade(&mut report, f);
    }
    report.code = EXIT_OK;
    report
}

pub fn issuer_text(p: &IssuerPattern) -> String {
    match p {
        IssuerPattern::Exact(s) => s.clone(),
        IssuerPattern::Tenant { before, after } => format!("{before}{{tenantid}}{after}"),
    }
}

fn providers(report: &mut Report, cfg: &Config) {
    report.out("providers:");
    for p in &cfg.providers {
        let issuers: Vec<String> = p.issuers.iter().map(issuer_text).collect();
        let keys = match &p.keys {
            KeySource::Local(set) => format!("local_jwks ({})", set.summary()),
            KeySource::Remote(r) => match &r.kind {
                RemoteKind::Jwks => format!("remote_jwks {} (cluster {})", r.uri, r.cluster),
                RemoteKind::Discovery { jwks_cluster } => format!(
                    "discovery {} (cluster {}, jwks cluster {jwks_cluster})",
                    r.uri, r.cluster
                ),
            },
        };
        let algs: Vec<&str> = p.algorithms.iter().map(|a| a.name()).collect();
        report.out(format!("  {}", p.name));
        report.out(format!("    issuers       {}", issuers.join(", ")));
        if !p.allowed_tenants.is_empty() {
            report.out(format!(
                "    tenants       {}",
                p.allowed_tenants.join(", ")
            ));
        }
        report.out(format!("    audiences     {}", p.audiences.join(", ")));
        report.out(format!("    keys          {keys}"));
        report.out(format!("    algorithms    {}", algs.join(", ")));
        report.out(format!(
            "    scope claims  {}{}",
            p.scope_claims.join(", "),
            p.scope_prefix
                .as_deref()
                .map(|s| format!(" (scope_prefix {s})"))
                .unwrap_or_default()
        ));
        report.out(format!(
            "    clock skew    {}s{}",
            p.clock_skew_seconds,
            p.require_typ
                .as_deref()
                .map(|t| format!("; require_typ {t}"))
                .unwrap_or_default()
        ));
    }
}

fn map_text(kind: &str, map: &ScopeMap, default_unlisted: Unlisted) -> String {
    let entries: Vec<String> = map
        .entries
        .iter()
        .map(|(name, scopes)| {
            if scopes.is_empty() {
                format!("{name}: (none)")
            } else {
                format!("{name}: {}", scopes.join(" "))
            }
        })
        .collect();
    let unlisted = match map.unlisted.unwrap_or(default_unlisted) {
        Unlisted::Allow => "allow",
        Unlisted::Deny => "deny",
    };
    if entries.is_empty() {
        format!("{kind} {{unlisted {unlisted}}}")
    } else {
        format!("{kind} {{{}; unlisted {unlisted}}}", entries.join(", "))
    }
}

fn rules(report: &mut Report, cfg: &Config) {
    let unmatched = match cfg.unmatched {
        Unmatched::Deny => "deny (403)",
        Unmatched::Allow => "allow (no token needed)",
    };
    report.out(format!(
        "rules (first match wins; unmatched paths: {unmatched}):"
    ));
    let mut rows: Vec<[String; 5]> = vec![[
        "#".into(),
        "match".into(),
        "provider".into(),
        "required scopes".into(),
        "mcp".into(),
    ]];
    for (i, r) in cfg.rules.iter().enumerate() {
        let matcher = match &r.matcher {
            PathMatch::Prefix(p) => format!("prefix {p}"),
            PathMatch::Exact(p) => format!("path {p}"),
        };
        let provider = r
            .requires
            .and_then(|i| cfg.providers.get(i))
            .map_or("(none: no token)".to_string(), |p| p.name.clone());
        let scopes = if r.required_scopes.is_empty() {
            "-".to_string()
        } else {
            r.required_scopes.join(" ")
        };
        let mcp = match &r.mcp {
            None => "-".to_string(),
            Some(m) => {
                let mut parts = vec![map_text("methods", &m.methods, Unlisted::Allow)];
                for (kind, map) in [
                    ("tools", &m.tools),
                    ("prompts", &m.prompts),
                    ("resources", &m.resources),
                ] {
                    if let Some(map) = map {
                        parts.push(map_text(kind, map, Unlisted::Deny));
                    }
                }
                parts.push(format!("max body {} bytes", m.max_body_bytes));
                if m.trust_headers {
                    parts.push("decided from Mcp-Method/Mcp-Name when sent".to_string());
                }
                parts.join("; ")
            }
        };
        rows.push([i.to_string(), matcher, provider, scopes, mcp]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(widths.iter()).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        report.out(line.trim_end());
    }
}

/// Splits `scheme://authority` of an absolute URL.
fn scheme_authority(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, rest.get(..end)?))
}

fn metadata(report: &mut Report, cfg: &Config, origin_flag: Option<&str>) {
    report.out("protected resource metadata (RFC 9728):");
    // A rule's own protected_resource, else the top-level one.
    let origin_of = |pr: &prm::ProtectedResource| match (origin_flag, &pr.resource) {
        (Some(o), _) => Some(o.trim_end_matches('/').to_string()),
        (None, Some(r)) => scheme_authority(r).map(|(s, a)| format!("{s}://{a}")),
        (None, None) => None,
    };
    let derived = cfg
        .rules
        .iter()
        .enumerate()
        .any(|(i, r)| r.requires.is_some() && origin_of(cfg.resource_for(i)).is_none());
    if derived {
        report.out(
            "  (no protected_resource.resource: URLs follow the request's host; shown for \
             https://mcp.example.com, pass --origin to choose)",
        );
    }
    let mut seen: Vec<String> = Vec::new();
    let mut any = false;
    for (i, rule) in cfg.rules.iter().enumerate() {
        if rule.requires.is_none() {
            continue;
        }
        any = true;
        let path = rule.matcher.pattern();
        let pr = cfg.resource_for(i);
        let origin = origin_of(pr).unwrap_or_else(|| "https://mcp.example.com".to_string());
        let Some(url) = prm::metadata_url(pr, Some(&origin), path).map(|u| u.into_owned()) else {
            continue;
        };
        report.out(format!(
            "  rules[{i}] {path}: 401 challenges point to {url}"
        ));
        if seen.contains(&url) {
            report.out("    (same document as above)");
            continue;
        }
        seen.push(url.clone());
        serve(report, cfg, &url);
    }
    if !any {
        report.out("  no rule requires a token: no metadata is served");
    }
}

/// Asks `decide` for the document at `url` and prints what the filter would answer.
fn serve(report: &mut Report, cfg: &Config, url: &str) {
    let Some((scheme, authority)) = scheme_authority(url) else {
        report.out(format!("    {url} is not an absolute URL"));
        return;
    };
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').and_then(|i| rest.get(i..)))
        .unwrap_or("/");
    let req = Request {
        method: "GET",
        path,
        scheme: Some(scheme),
        authority: Some(authority),
        ..Request::default()
    };
    match decide::decide(cfg, &req, &ConfiguredKeys, 0) {
        Decision::Respond { response, .. } if response.status == 200 => {
            report.out(format!("    GET {url} -> 200"));
            let body = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok())
                .unwrap_or_else(|| String::from_utf8_lossy(&response.body).into_owned());
            for line in body.lines() {
                report.out(format!("    {line}"));
            }
        }
        Decision::Respond { response, .. } => report.out(format!(
            "    warning: GET {url} -> {} (the filter serves no document there: the path \
             after the well-known prefix must be one a rule protects)",
            response.status
        )),
        _ => report.out(format!(
            "    warning: GET {url} is not answered by the filter"
        )),
    }
}

/// The sign-in façade's endpoints and upstream (never a secret: only whether one is set).
fn facade(report: &mut Report, f: &mcp_edge_auth::config::Facade) {
    let s = &f.settings;
    let up = &s.spec.upstream;
    report.out(format!(
        "sign-in façade (authorization_server): issuer {}",
        s.spec.issuer
    ));
    report.out(format!(
        "  serves {}/.well-known/oauth-authorization-server, {}, {}, {}, {}, callback {}",
        s.origin,
        s.endpoint_path("/register"),
        s.endpoint_path("/authorize"),
        s.endpoint_path("/consent"),
        s.endpoint_path("/token"),
        s.spec.callback_path
    ));
    report.out(format!(
        "  register this redirect URI at the IdP: {}",
        s.callback_url
    ));
    let secret = if up.client_secret.is_some() {
        "confidential: secret set"
    } else {
        "public: no secret"
    };
    match &f.discovery {
        None => report.out(format!(
            "  upstream: client {} ({secret}), authorize {}, token {} via cluster {} (timeout {} ms)",
            up.client_id,
            up.authorization_endpoint,
            up.token_endpoint,
            f.token_cluster,
            f.token_timeout_ms
        )),
        Some(d) => report.out(format!(
            "  upstream: client {} ({secret}), authorize and token endpoints from the metadata \
             at {} via cluster {} (fetched by the filter; issuer {}), token callouts via \
             cluster {} (timeout {} ms); /authorize and /token answer 503 until it is fetched",
            up.client_id,
            d.uri,
            d.cluster,
            d.issuer.as_deref().unwrap_or("not checked"),
            f.token_cluster,
            f.token_timeout_ms
        )),
    }
    report.out(format!(
        "  client redirect URIs allowed: {}; consent {:?}; {} sealing key(s)",
        s.spec.redirect_uris.join(", "),
        s.spec.consent,
        f.keys.len()
    ));
}
