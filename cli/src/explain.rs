//! `explain`: every check the filter runs on a request, in its order, one line each, with
//! a fix for the one that fails. The step-by-step trace uses the core's own checks
//! (`rules`, `extract`, `verify::verify_traced`, `policy`, `mcp`); the verdict is
//! `decide::decide` (+ `decide_body`) itself, so it cannot disagree with the filter.

use std::collections::BTreeSet;
use std::sync::Arc;

use mcp_edge_auth::authz::mcp::{self, Message};
use mcp_edge_auth::authz::policy::{self, Needs, Verdict};
use mcp_edge_auth::authz::rules::{self, PathMatch, Rule};
use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{self, Decision, KeyStore, Outcome, Request, Retry};
use mcp_edge_auth::http::extract::{self, Authorization};
use mcp_edge_auth::http::prm;
use mcp_edge_auth::keys::jwks::KeySet;
use mcp_edge_auth::keys::source::KeySource;
use mcp_edge_auth::token::provider::Provider;
use mcp_edge_auth::token::verify::{self, Check, VerifiedToken, VerifyError};
use mcp_edge_auth::util::text::printable;
use serde_json::{Map, Value};

use crate::args::Args;
use crate::hints::{self, Ctx};
use crate::{shown, Report, EXIT_DENIED, EXIT_OK};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Skip,
    /// Not a check: what the token says (claims).
    Info,
}

/// One printed check.
#[derive(Clone, Debug)]
pub struct Line {
    pub status: Status,
    pub check: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

/// What the filter does with the request (from `decide`).
#[derive(Clone, Debug)]
pub struct FinalVerdict {
    pub denied: bool,
    pub text: String,
    /// `reason` label of a denial (the metric label), e.g. `issuer`.
    pub reason: Option<&'static str>,
    pub www_authenticate: Option<String>,
    pub notes: Vec<String>,
}

/// The whole explanation.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub lines: Vec<Line>,
    pub verdict: FinalVerdict,
}

impl Explanation {
    /// Whether the step-by-step trace found a failing check.
    pub fn trace_denied(&self) -> bool {
        self.lines.iter().any(|l| l.status == Status::Fail)
    }
}

/// The request to explain.
pub struct Input<'a> {
    pub token: &'a str,
    /// Keys for a `remote_jwks`/`discovery` provider (`--jwks`).
    pub fetched_keys: Option<Arc<KeySet>>,
    pub path: &'a str,
    pub method: &'a str,
    pub body: Option<&'a [u8]>,
    pub mcp_method: Option<&'a str>,
    pub mcp_name: Option<&'a str>,
    pub now: u64,
}

/// The keys the filter would have: `local_jwks` from the configuration, else `--jwks`.
struct CliKeys(Option<Arc<KeySet>>);

impl KeyStore for CliKeys {
    fn key_set(&self, _index: usize, provider: &Provider) -> Option<Arc<KeySet>> {
        match &provider.keys {
            KeySource::Local(set) => Some(Arc::clone(set)),
            KeySource::Remote(_) => self.0.clone(),
        }
    }
}

struct Trace {
    lines: Vec<Line>,
}

impl Trace {
    fn push(&mut self, status: Status, check: &'static str, detail: impl Into<String>) {
        self.lines.push(Line {
            status,
            check,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, check: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(Line {
            status: Status::Fail,
            check,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }

    fn skip_rest(&mut self, from: usize, why: &str) {
        for name in ALL_CHECKS.iter().skip(from) {
            self.push(Status::Skip, name, why);
        }
    }
}

/// Every printed check, in order.
const ALL_CHECKS: [&str; 15] = [
    "rule",
    "token",
    "keys",
    "structure",
    "algorithm",
    "header",
    "typ",
    "not-graph",
    "times",
    "issuer",
    "audience",
    "key",
    "signature",
    "scopes",
    "mcp-body",
];

const VERIFY_CHECKS: [(Check, &str); 10] = [
    (Check::Structure, "structure"),
    (Check::Algorithm, "algorithm"),
    (Check::Header, "header"),
    (Check::Typ, "typ"),
    (Check::NotGraph, "not-graph"),
    (Check::Times, "times"),
    (Check::Issuer, "issuer"),
    (Check::Audience, "audience"),
    (Check::Key, "key"),
    (Check::Signature, "signature"),
];

/// The first rule that requires a token: the default `--path`.
pub fn default_path(cfg: &Config) -> Option<String> {
    cfg.rules
        .iter()
        .find(|r| r.requires.is_some())
        .map(|r| r.matcher.pattern().to_string())
}

fn rule_text(i: usize, rule: &Rule, cfg: &Config) -> String {
    let m = match &rule.matcher {
        PathMatch::Prefix(p) => format!("prefix {p}"),
        PathMatch::Exact(p) => format!("path {p}"),
    };
    let mut s = format!("rules[{i}] ({m})");
    match rule.requires.and_then(|p| cfg.providers.get(p)) {
        Some(p) => s.push_str(&format!(" requires provider {:?}", p.name)),
        None => s.push_str(" needs no token"),
    }
    if !rule.required_scopes.is_empty() {
        s.push_str(&format!(", scopes {}", rule.required_scopes.join(" ")));
    }
    if rule.mcp.is_some() {
        s.push_str(", MCP body checks");
    }
    s
}

/// Runs the trace and the filter's decision.
pub fn explain(cfg: &Config, input: &Input<'_>) -> Explanation {
    let mut t = Trace { lines: Vec::new() };
    trace(cfg, input, &mut t);
    Explanation {
        lines: t.lines,
        verdict: verdict(cfg, input),
    }
}

fn trace(cfg: &Config, input: &Input<'_>, t: &mut Trace) {
    let path = rules::path_only(input.path);
    if rules::is_suspicious(path) {
        t.fail(
            "rule",
            "the path has dot segments or encoded separators (400)",
            "send the normalized path; Envoy should normalize paths before the filter (normalize_path, merge_slashes)",
        );
        t.skip_rest(1, "not reached");
        return;
    }
    let Some((rule_index, rule)) = rules::first_match(&cfg.rules, path) else {
        match cfg.unmatched {
            rules::Unmatched::Deny => {
                t.fail(
                    "rule",
                    format!("no rule matches {path:?} and unmatched paths are denied (403)"),
                    format!(
                        "add a rule whose match covers {path:?}, or pick --path from the rules (check-config lists them)"
                    ),
                );
                t.skip_rest(1, "not reached");
            }
            rules::Unmatched::Allow => {
                t.push(
                    Status::Pass,
                    "rule",
                    format!("no rule matches {path:?}; unmatched: allow (no token needed)"),
                );
                t.skip_rest(1, "no token needed");
            }
        }
        return;
    };
    let Some((_, provider)) = rule
        .requires
        .and_then(|i| cfg.providers.get(i).map(|p| (i, p)))
    else {
        t.push(Status::Pass, "rule", rule_text(rule_index, rule, cfg));
        t.skip_rest(1, "no token needed");
        return;
    };
    t.push(Status::Pass, "rule", rule_text(rule_index, rule, cfg));

    let auth = format!("Bearer {}", input.token);
    let token = match extract::bearer_token(&[auth.as_str()], input.path, cfg.max_token_bytes) {
        Ok(Some(tok)) => {
            t.push(
                Status::Pass,
                "token",
                format!(
                    "one Authorization: Bearer token, {} bytes (limit {})",
                    tok.len(),
                    cfg.max_token_bytes
                ),
            );
            tok
        }
        Ok(None) => {
            t.fail("token", "no bearer token", "pass the token with --token");
            t.skip_rest(2, "not reached");
            return;
        }
        Err(e) => {
            let fix = match e {
                extract::ExtractError::TooLarge { .. } => {
                    "raise max_token_bytes (at most 65536) if such large tokens are expected"
                }
                extract::ExtractError::TokenInQuery => {
                    "send the token in the Authorization header only"
                }
                _ => {
                    "pass exactly the token: base64url parts separated by dots, no spaces or quotes"
                }
            };
            t.fail("token", e.to_string(), fix);
            t.skip_rest(2, "not reached");
            return;
        }
    };

    let keys = CliKeys(input.fetched_keys.clone());
    let local = matches!(provider.keys, KeySource::Local(_));
    let Some(key_set) = keys.key_set(0, provider) else {
        t.fail(
            "keys",
            format!("no keys for provider {:?}", provider.name),
            "pass --jwks FILE|URL with the issuer's key set",
        );
        t.skip_rest(3, "not reached");
        return;
    };
    t.push(
        Status::Pass,
        "keys",
        format!(
            "{}: {}",
            if local { "local_jwks" } else { "--jwks" },
            key_set.summary()
        ),
    );

    let mut started: Vec<Check> = Vec::new();
    let result = verify::verify_traced(token, provider, &key_set, input.now, |c| started.push(c));
    let peeked = verify::peek(token).ok();
    let empty = Map::new();
    let (header, claims) = peeked.as_ref().map_or((&empty, &empty), |(h, c)| (h, c));
    if peeked.is_some() {
        t.push(
            Status::Info,
            "claims",
            Value::Object(claims.clone()).to_string(),
        );
    }
    // When verification fails, the last check it announced is the one that failed.
    let failed: Option<(Check, &VerifyError)> = match (&result, started.last()) {
        (Err(e), Some(c)) => Some((*c, e)),
        _ => None,
    };
    for (check, name) in VERIFY_CHECKS {
        if check == Check::Typ && provider.require_typ.is_none() {
            t.push(Status::Skip, name, "require_typ is not set");
            continue;
        }
        if let Some((_, e)) = failed.filter(|(c, _)| *c == check) {
            let ctx = Ctx {
                claims,
                provider,
                keys: &key_set,
                local_keys: local,
            };
            t.fail(name, e.to_string(), hints::verify_fix(e, &ctx));
        } else if started.contains(&check) {
            t.push(
                Status::Pass,
                name,
                pass_detail(
                    check,
                    header,
                    claims,
                    provider,
                    &key_set,
                    input.now,
                    result.as_ref().ok(),
                ),
            );
        } else {
            t.push(Status::Skip, name, "not reached");
        }
    }
    let Ok(verified) = result else {
        t.push(Status::Skip, "scopes", "not reached");
        t.push(Status::Skip, "mcp-body", "not reached");
        return;
    };

    let granted = policy::granted_scopes(&verified.claims, &provider.scope_claims);
    let prefix = provider.scope_prefix.as_deref();
    let mut needs = Needs::default();
    needs.add(&rule.required_scopes);
    let granted_text = if granted.is_empty() {
        "none".to_string()
    } else {
        granted
            .iter()
            .map(|g| g.escape_debug().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    match needs.check(&granted, prefix) {
        Verdict::Allow => t.push(
            Status::Pass,
            "scopes",
            format!(
                "rule requires {}; granted: {granted_text} (from {})",
                if rule.required_scopes.is_empty() {
                    "no scope".to_string()
                } else {
                    rule.required_scopes.join(" ")
                },
                provider.scope_claims.join(", ")
            ),
        ),
        Verdict::InsufficientScope { missing, .. } => {
            t.fail(
                "scopes",
                format!("the token lacks scope {} (403)", missing.join(" ")),
                hints::scope_fix(&missing, &granted, &verified.claims, provider),
            );
            t.push(Status::Skip, "mcp-body", "not reached");
            return;
        }
        Verdict::Forbidden(text) => {
            t.fail("scopes", text, "check the rule's scopes");
            t.push(Status::Skip, "mcp-body", "not reached");
            return;
        }
    }
    body_check(
        rule,
        rule_index,
        provider,
        &granted,
        &verified.claims,
        input,
        t,
    );
}

fn body_check(
    rule: &Rule,
    rule_index: usize,
    provider: &Provider,
    granted: &BTreeSet<String>,
    claims: &Map<String, Value>,
    input: &Input<'_>,
    t: &mut Trace,
) {
    let Some(mcp_rule) = &rule.mcp else {
        t.push(Status::Skip, "mcp-body", "the rule has no mcp section");
        return;
    };
    if input.method != "POST" {
        t.push(
            Status::Skip,
            "mcp-body",
            format!("{}: only POST bodies are checked", input.method),
        );
        return;
    }
    let Some(body) = input.body else {
        t.push(
            Status::Skip,
            "mcp-body",
            "the filter reads the JSON-RPC body here: pass --body FILE|- to check per-method/tool scopes",
        );
        return;
    };
    if body.len() > mcp_rule.max_body_bytes {
        t.fail(
            "mcp-body",
            format!(
                "request body of {} bytes exceeds the {}-byte limit (413)",
                body.len(),
                mcp_rule.max_body_bytes
            ),
            format!("raise rules[{rule_index}].mcp.max_body_bytes if such bodies are expected"),
        );
        return;
    }
    let messages = match mcp::parse_body(body) {
        Ok(m) => m,
        Err(e) => {
            t.fail(
                "mcp-body",
                format!("{e} (400)"),
                "send a JSON-RPC 2.0 request, notification or batch",
            );
            return;
        }
    };
    if let Some(text) = mcp::header_mismatch(&messages, input.mcp_method, input.mcp_name) {
        t.fail(
            "mcp-body",
            format!("{text} (400)"),
            "Mcp-Method/Mcp-Name must name the body's single method and tool",
        );
        return;
    }
    let calls: Vec<String> = messages
        .iter()
        .map(|m| match m {
            Message::Request {
                method,
                target: Some(name),
                ..
            } => format!("{} {}", printable(method), shown(name)),
            Message::Request { method, .. } => printable(method),
            Message::Notification { method } => format!("{} (notification)", printable(method)),
            Message::Response => "(response)".to_string(),
        })
        .collect();
    let mut needs = Needs::default();
    needs.add(&rule.required_scopes);
    needs.add_messages(mcp_rule, &messages);
    match needs.check(granted, provider.scope_prefix.as_deref()) {
        Verdict::Allow => t.push(
            Status::Pass,
            "mcp-body",
            format!("{}: allowed", calls.join(", ")),
        ),
        Verdict::InsufficientScope { needed, missing } => t.fail(
            "mcp-body",
            format!(
                "{} needs {}; the token lacks scope {} (403)",
                calls.join(", "),
                needed.join(" "),
                missing.join(" ")
            ),
            hints::scope_fix(&missing, granted, claims, provider),
        ),
        Verdict::Forbidden(text) => t.fail(
            "mcp-body",
            format!("{}: {text} (403)", calls.join(", ")),
            format!(
                "list it in rules[{rule_index}].mcp (methods/tools/prompts/resources) with its scopes, or set \
                 the matching unlisted_* to \"allow\""
            ),
        ),
    }
}

fn aud_text(claims: &Map<String, Value>) -> String {
    let auds = hints::audiences(claims);
    if auds.is_empty() {
        "(none)".into()
    } else {
        auds.iter().map(|a| shown(a)).collect::<Vec<_>>().join(", ")
    }
}

fn relative(t: f64, now: u64) -> String {
    let d = t - now as f64;
    if d >= 0.0 {
        format!("in {}s", d.floor())
    } else {
        format!("{}s ago", (-d).floor())
    }
}

fn pass_detail(
    check: Check,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
    provider: &Provider,
    keys: &KeySet,
    now: u64,
    verified: Option<&VerifiedToken>,
) -> String {
    let kid = header.get("kid").and_then(Value::as_str);
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("?");
    match check {
        Check::Structure => format!("header {}", Value::Object(header.clone())),
        Check::Algorithm => {
            let allowed: Vec<&str> = provider.algorithms.iter().map(|a| a.name()).collect();
            format!("{} is allowed ({})", printable(alg), allowed.join(", "))
        }
        Check::Header => match kid {
            Some(k) => format!("no crit; kid {}", shown(k)),
            None => "no crit; no kid".into(),
        },
        Check::Typ => format!(
            "typ {} matches require_typ {:?}",
            shown(
                header
                    .get("typ")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ),
            provider.require_typ.as_deref().unwrap_or("")
        ),
        Check::NotGraph => format!("aud {} is not Microsoft Graph", aud_text(claims)),
        Check::Times => {
            let mut parts = Vec::new();
            for name in ["exp", "nbf", "iat"] {
                if let Some(v) = claims.get(name).and_then(Value::as_f64) {
                    parts.push(format!("{name} {}", relative(v, now)));
                }
            }
            format!(
                "{} (now {now}, skew {}s)",
                parts.join(", "),
                provider.clock_skew_seconds
            )
        }
        Check::Issuer => format!(
            "iss {} is accepted",
            shown(
                claims
                    .get("iss")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            )
        ),
        Check::Audience => {
            let auds = hints::audiences(claims);
            let matched = auds
                .iter()
                .find(|a| provider.audiences.contains(a))
                .cloned()
                .unwrap_or_default();
            format!("aud {} includes {matched:?}", aud_text(claims))
        }
        Check::Key => {
            let kind = verified.map_or("?", |v| v.key.kind());
            match kid {
                Some(k) => format!("kid {} found: {kind} key", shown(k)),
                None => format!(
                    "no kid: the only {kind} key for {} in the set ({} keys)",
                    printable(alg),
                    keys.keys.len()
                ),
            }
        }
        Check::Signature => match verified {
            Some(v) => format!("{} signature verified with the {} key", v.alg, v.key.kind()),
            None => "verified".into(),
        },
    }
}

/// The authority used for the request (only shapes the challenge's metadata URL).
fn authority(cfg: &Config) -> (String, String) {
    cfg.protected_resource
        .resource
        .as_deref()
        .and_then(|r| {
            let (scheme, rest) = r.split_once("://")?;
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            Some((scheme.to_string(), rest.get(..end)?.to_string()))
        })
        .unwrap_or_else(|| ("https".into(), "localhost".into()))
}

/// The filter's verdict: `decide`, then `decide_body` when it holds the request for its
/// body.
pub fn verdict(cfg: &Config, input: &Input<'_>) -> FinalVerdict {
    let auth = format!("Bearer {}", input.token);
    let (scheme, authority) = authority(cfg);
    let req = Request {
        method: input.method,
        path: input.path,
        scheme: Some(&scheme),
        authority: Some(&authority),
        authorization: Authorization::from_values(&[auth.as_str()]),
        mcp_method: input.mcp_method,
        mcp_name: input.mcp_name,
        ..Request::default()
    };
    let keys = CliKeys(input.fetched_keys.clone());
    let mut notes = Vec::new();
    let mut decision = decide::decide(cfg, &req, &keys, input.now);
    if let Decision::NeedBody { check, .. } = &decision {
        match input.body {
            Some(body) => decision = decide::decide_body(cfg, check, body),
            None => notes.push(
                "the token passes; the filter now holds the request and checks its JSON-RPC body \
                 (pass --body to include that check)"
                    .to_string(),
            ),
        }
    }
    match decision {
        Decision::Continue { outcome, .. } | Decision::NeedBody { outcome, .. } => FinalVerdict {
            denied: false,
            text: match outcome {
                Outcome::Allowed { provider } => {
                    let name = cfg.providers.get(provider).map_or("?", |p| p.name.as_str());
                    format!("ALLOWED: a valid token for provider {name:?}; the request goes on")
                }
                _ => "ALLOWED: no token needed on this path".to_string(),
            },
            reason: None,
            www_authenticate: None,
            notes,
        },
        Decision::Respond {
            response,
            outcome,
            retry,
            ..
        } => {
            if matches!(retry, Some(Retry::UnknownKid(_))) {
                notes.push(
                    "before answering, the filter refetches the key set once (unknown kid) and decides again"
                        .to_string(),
                );
            }
            let www = response.get_header("www-authenticate").map(str::to_string);
            match outcome {
                // `detail` is the filter's log text for the denial (never token material).
                Outcome::Denied { reason, detail } => FinalVerdict {
                    denied: true,
                    text: format!("DENIED {} ({reason}): {detail}", response.status),
                    reason: Some(reason),
                    www_authenticate: www,
                    notes,
                },
                other => FinalVerdict {
                    denied: false,
                    text: format!(
                        "answered by the filter itself: {} ({other:?})",
                        response.status
                    ),
                    reason: None,
                    www_authenticate: www,
                    notes,
                },
            }
        }
    }
}

/// Renders an explanation.
pub fn render(report: &mut Report, e: &Explanation) {
    for l in &e.lines {
        let status = match l.status {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
            Status::Info => "    ",
        };
        report.out(format!("{status}  {:<10} {}", l.check, l.detail));
        if let Some(fix) = &l.fix {
            report.out(format!("      fix: {fix}"));
        }
    }
    report.out(format!("verdict: {}", e.verdict.text));
    if let Some(w) = &e.verdict.www_authenticate {
        report.out(format!("  WWW-Authenticate: {w}"));
    }
    for n in &e.verdict.notes {
        report.out(format!("  note: {n}"));
    }
    if e.trace_denied() != e.verdict.denied {
        report.out(
            "  warning: the step-by-step trace and the filter's decision disagree; the verdict above is the filter's (please report this)",
        );
    }
}

fn read_token(source: &str) -> Result<String, String> {
    let raw = if source == "-" {
        String::from_utf8(crate::read_input("-")?)
            .map_err(|_| "the token is not UTF-8".to_string())?
    } else if let Some(file) = source.strip_prefix('@') {
        String::from_utf8(crate::read_input(file)?)
            .map_err(|_| "the token is not UTF-8".to_string())?
    } else {
        source.to_string()
    };
    let t = raw.trim();
    // Accept a pasted "Bearer <token>" or "Authorization: Bearer <token>".
    let t = t
        .strip_prefix("Authorization:")
        .or_else(|| t.strip_prefix("authorization:"))
        .map_or(t, str::trim);
    let t = match t.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => t,
    };
    Ok(t.to_string())
}

pub fn run(argv: &[String]) -> Report {
    let mut report = Report::default();
    let args = match Args::parse(
        argv,
        &[
            "config",
            "token",
            "jwks",
            "path",
            "method",
            "body",
            "now",
            "mcp-method",
            "mcp-name",
        ],
    ) {
        Ok(a) => a,
        Err(e) => return report.usage(e),
    };
    if !args.positional.is_empty() {
        return report.usage(format!("unexpected argument {:?}", args.positional));
    }
    let (Some(config_file), Some(token_source)) = (args.get("config"), args.get("token")) else {
        return report.usage("explain needs --config FILE and --token TOKEN|-|@FILE");
    };
    let cfg = match crate::read_input(config_file)
        .and_then(|b| Config::parse(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => return report.usage(e),
    };
    let token = match read_token(token_source) {
        Ok(t) => t,
        Err(e) => return report.usage(e),
    };
    let now = match args.get("now").map(str::parse::<u64>) {
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        Some(Ok(n)) => n,
        Some(Err(_)) => return report.usage("--now takes UNIX seconds"),
    };
    let path = match args
        .get("path")
        .map(str::to_string)
        .or_else(|| default_path(&cfg))
    {
        Some(p) => p,
        None => return report.usage("no rule requires a token; pass --path"),
    };
    if prm::resource_path(rules::path_only(&path)).is_some() || path.starts_with("/.well-known/") {
        return report.usage(format!(
            "{path} is a well-known path the filter answers itself; explain checks tokens on protected paths"
        ));
    }
    let method = args.get("method").unwrap_or("POST").to_ascii_uppercase();
    let body = match args.get("body").map(crate::read_input) {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return report.usage(e),
    };

    // Keys for a provider that fetches them: --jwks (file or URL, discovery followed).
    let provider = rules::first_match(&cfg.rules, rules::path_only(&path))
        .and_then(|(_, r)| r.requires)
        .and_then(|i| cfg.providers.get(i));
    let mut fetched_keys = None;
    match (provider.map(|p| &p.keys), args.get("jwks")) {
        (Some(KeySource::Remote(remote)), None) => {
            return report.usage(format!(
                "provider {:?} fetches its keys from {}; pass --jwks FILE|URL (e.g. --jwks {})",
                provider.map(|p| p.name.as_str()).unwrap_or(""),
                remote.uri,
                remote.uri
            ))
        }
        (Some(KeySource::Remote(remote)), Some(src)) => {
            let issuer = provider.map(|p| p.issuer.as_str());
            match crate::http::load_key_set(src, remote.max_response_bytes, issuer) {
                Ok((set, from)) => {
                    report.out(format!("keys: {from}"));
                    fetched_keys = Some(Arc::new(set));
                }
                Err(e) => return report.usage(format!("--jwks: {e}")),
            }
        }
        (Some(KeySource::Local(_)), Some(_)) => {
            report.out("note: the provider uses local_jwks; --jwks is ignored");
        }
        _ => {}
    }

    report.out(format!(
        "explain: {method} {path} (now {now}), checks in the filter's order"
    ));
    let input = Input {
        token: &token,
        fetched_keys,
        path: &path,
        method: &method,
        body: body.as_deref(),
        mcp_method: args.get("mcp-method"),
        mcp_name: args.get("mcp-name"),
        now,
    };
    let e = explain(&cfg, &input);
    render(&mut report, &e);
    report.code = if e.verdict.denied {
        EXIT_DENIED
    } else {
        EXIT_OK
    };
    report
}
