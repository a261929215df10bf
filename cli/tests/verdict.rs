//! The explain trace never disagrees with `decide()`: over a set of good and hostile
//! tokens, requests and bodies, the trace fails exactly when the filter's decision denies,
//! the failing check matches the decision's reason, and a failing verify check carries the
//! very error_description the client gets.

// Test code: panicking on a broken fixture is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Arc;

use devstack::mint::{sign_hmac_raw, unsigned_jws};
use devstack::{mint, sign_jws, KeyKind, SigningKey};
use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{self, ConfiguredKeys, Decision, Outcome, Request};
use mcp_edge_auth::http::extract::Authorization;
use mcp_edge_auth_cli::explain::{explain, Input, Status};
use serde_json::{json, Value};
use support::*;

fn reasons_for(check: &str) -> &'static [&'static str] {
    match check {
        "rule" => &["no_rule", "invalid_request"],
        "token" => &["malformed", "too_large", "invalid_request", "missing"],
        "structure" | "header" => &["malformed"],
        "algorithm" => &["algorithm", "malformed"],
        "typ" => &["typ", "malformed"],
        "not-graph" | "audience" => &["audience", "malformed"],
        "times" => &["expired", "not_yet_valid", "malformed"],
        "issuer" => &["issuer", "malformed"],
        "key" => &["unknown_kid", "algorithm"],
        "signature" => &["bad_signature"],
        "scopes" => &["insufficient_scope", "forbidden"],
        "mcp-body" => &[
            "insufficient_scope",
            "forbidden",
            "invalid_jsonrpc",
            "body_too_large",
            "header_mismatch",
        ],
        _ => &[],
    }
}

fn cases() -> Vec<(String, String, Option<Vec<u8>>)> {
    let k = key();
    let good = entra_v2_claims();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let header = |h: Value| sign_jws(&k, "RS256", &h, &good);
    let other = SigningKey::cached(KeyKind::Rsa2048, "key-2");
    let ec = SigningKey::cached(KeyKind::EcP256, "key-1");
    let mut tokens = vec![
        token(good.clone()),
        token(with(&|c| c["exp"] = json!(NOW - 10))),
        token(with(&|c| c["exp"] = json!(NOW - 61))),
        token(with(&|c| c["nbf"] = json!(NOW + 120))),
        token(with(&|c| c["iat"] = json!(NOW + 120))),
        token(with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        })),
        token(with(&|c| c["exp"] = json!("soon"))),
        token(with(&|c| {
            c["iss"] = json!(format!("https://sts.windows.net/{TID}/"))
        })),
        token(with(&|c| {
            c.as_object_mut().unwrap().remove("iss");
        })),
        token(with(&|c| {
            c["aud"] = json!("00000003-0000-0000-c000-000000000000")
        })),
        token(with(&|c| c["aud"] = json!(["x", API_ID]))),
        token(with(&|c| c["aud"] = json!("account"))),
        token(with(&|c| c["aud"] = json!(5))),
        token(with(&|c| c["scp"] = json!("calculator.add"))),
        token(with(&|c| c["roles"] = json!(["Tools.Call"]))),
        token(with(&|c| c["scp"] = json!(["Tools.Call"]))),
        mint(&other, "RS256", good.clone()),
        mint(&other.with_kid("key-1"), "RS256", good.clone()),
        mint(&ec, "ES256", good.clone()),
        header(json!({"alg": "RS256", "typ": "JWT"})),
        header(json!({"alg": "RS256", "kid": "key-1", "crit": ["exp"]})),
        header(json!({"alg": "RS256", "kid": 7})),
        header(json!({"alg": "PS256", "kid": "key-1"})),
        header(json!({"alg": "RS256", "kid": "key-1", "typ": "at+jwt"})),
        header(json!({"alg": "RS256", "kid": "key-1", "nonce": "x"})),
        unsigned_jws(&json!({"alg": "none"}), &good),
        sign_hmac_raw(
            b"secret",
            "HS256",
            br#"{"alg":"HS256","kid":"key-1"}"#,
            good.to_string().as_bytes(),
        ),
        "a.b".to_string(),
        "a.b.c.d.e".to_string(),
        "not-a-jwt".to_string(),
        "x".repeat(9000),
        "has space".to_string(),
    ];
    let t = token(good.clone());
    let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
    parts[1] = devstack::b64url(
        with(&|c| c["scp"] = json!("everything"))
            .to_string()
            .as_bytes(),
    );
    tokens.push(parts.join("."));

    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}})
            .to_string()
            .into_bytes()
    };
    let bodies: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(call("add")),
        Some(call("subtract")),
        Some(call("rm_rf")),
        Some(b"{not json".to_vec()),
        Some(b"[]".to_vec()),
        Some(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec()),
    ];
    let mut out = Vec::new();
    for t in &tokens {
        for path in [
            "/mcp",
            "/admin",
            "/healthz",
            "/other",
            "/mcp/../x",
            "/mcp?access_token=x",
        ] {
            out.push((t.clone(), path.to_string(), None));
        }
        for b in &bodies {
            out.push((t.clone(), "/mcp".to_string(), b.clone()));
        }
    }
    out
}

fn configs() -> Vec<Config> {
    let mcp_rule = json!({"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"},
        "mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]}}});
    let mut out = Vec::new();
    for (extra, typ) in [
        (json!({}), false),
        (json!({"scope_claims": ["scp", "roles"]}), true),
    ] {
        let mut p = entra_provider();
        merge(&mut p, extra);
        p.as_object_mut().unwrap().remove("name");
        merge(
            &mut p,
            json!({"local_jwks": {"inline_string": jwks()}, "algorithms": ["RS256", "ES256"]}),
        );
        if typ {
            p["require_typ"] = json!("JWT");
        }
        let cfg = json!({
            "providers": {"entra": p},
            "rules": [
                mcp_rule,
                {"match": {"prefix": "/admin"}, "requires": {"provider_name": "entra"},
                 "required_scopes": ["Tools.Call"]},
                {"match": {"path": "/healthz"}}
            ]
        });
        out.push(Config::parse(cfg.to_string().as_bytes()).unwrap());
    }
    out
}

/// `decide` directly, exactly as the filter calls it (keys from the configuration).
fn filter_denies(cfg: &Config, token: &str, path: &str, body: Option<&[u8]>) -> (bool, String) {
    let auth = format!("Bearer {token}");
    let req = Request {
        method: "POST",
        path,
        scheme: Some("https"),
        authority: Some("localhost"),
        authorization: Authorization::from_values(&[auth.as_str()]),
        ..Request::default()
    };
    let mut d = decide::decide(cfg, &req, &ConfiguredKeys, NOW);
    if let (Decision::NeedBody { check, .. }, Some(b)) = (&d, body) {
        d = decide::decide_body(cfg, check, b);
    }
    match d.outcome() {
        Outcome::Denied { reason, .. } => (true, reason.to_string()),
        _ => (false, String::new()),
    }
}

#[test]
fn explain_trace_agrees_with_decide() {
    let mut checked = 0;
    let mut denied = 0;
    for cfg in configs() {
        for (token, path, body) in cases() {
            let input = Input {
                token: &token,
                fetched_keys: None::<Arc<_>>,
                path: &path,
                method: "POST",
                body: body.as_deref(),
                mcp_method: None,
                mcp_name: None,
                now: NOW,
            };
            let e = explain(&cfg, &input);
            let (filter_denied, reason) = filter_denies(&cfg, &token, &path, body.as_deref());
            let ctx = format!("token {token:.40}… path {path} body {body:?}: {e:#?}");
            assert_eq!(e.verdict.denied, filter_denied, "{ctx}");
            assert_eq!(e.trace_denied(), filter_denied, "{ctx}");
            assert_eq!(e.verdict.reason.unwrap_or(""), reason, "{ctx}");
            let fails: Vec<_> = e
                .lines
                .iter()
                .filter(|l| l.status == Status::Fail)
                .collect();
            assert!(fails.len() <= 1, "{ctx}");
            if let Some(f) = fails.first() {
                denied += 1;
                assert!(reasons_for(f.check).contains(&reason.as_str()), "{ctx}");
                assert!(f.fix.as_deref().is_some_and(|x| !x.is_empty()), "{ctx}");
                if !["rule", "token", "scopes", "mcp-body"].contains(&f.check) {
                    // A verify failure shows the filter's own error_description.
                    assert!(e.verdict.text.ends_with(&f.detail), "{ctx}");
                }
                // Everything after the failing check is skipped.
                let after = e
                    .lines
                    .iter()
                    .skip_while(|l| l.status != Status::Fail)
                    .skip(1);
                assert!(after.into_iter().all(|l| l.status == Status::Skip), "{ctx}");
            }
            checked += 1;
        }
    }
    assert!(
        checked > 500 && denied > 300,
        "{checked} cases, {denied} denied"
    );
}
