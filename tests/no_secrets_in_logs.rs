//! No token or Authorization value appears in any line the filter logs, at any log level
//! (Envoy at `trace`, the Wasm component at `trace`), for accepted, refused and malformed
//! requests and the configuration log lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::json;
use support::http;
use support::EnvoyBuilder;

#[test]
fn tokens_never_reach_the_filters_log_lines() {
    let key = SigningKey::cached(KeyKind::Rsa2048, "logs-1");
    let cfg = json!({
        "providers": {"p": {"issuer": "https://idp.test/", "audiences": ["api"],
            "local_jwks": {"inline_string": KeyRing::new(vec![key.clone()]).jwks().to_string()}}},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "p"},
                   "mcp": {"tools": {"add": ["x"]}}}]
    });
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .log_level("trace")
        .start()
        .unwrap();
    let claims = |aud: &str, exp: u64| json!({"iss": "https://idp.test/", "aud": aud, "exp": exp, "scp": "x"});
    let now = devstack::now();
    let sign =
        |c: &serde_json::Value| sign_jws(&key, "RS256", &json!({"alg":"RS256","kid":"logs-1"}), c);
    let tokens = vec![
        sign(&claims("api", now + 600)),
        sign(&claims("api", now - 600)),
        sign(&claims("other", now + 600)),
        format!("{}x", sign(&claims("api", now + 600))),
        "garbage.token.value".to_string(),
    ];
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}).to_string();
    for t in &tokens {
        for (m, b) in [("GET", ""), ("POST", body.as_str())] {
            let auth = format!("Bearer {t}");
            http::request(
                envoy.port(),
                m,
                "/mcp",
                &[("authorization", &auth)],
                b.as_bytes(),
            );
            http::request(
                envoy.port(),
                m,
                &format!("/mcp?access_token={t}"),
                &[],
                b.as_bytes(),
            );
        }
    }
    let logs = envoy.logs();
    let filter_lines: Vec<&str> = logs.lines().filter(|l| l.contains("wasm log")).collect();
    assert!(
        filter_lines.iter().any(|l| l.contains("denied")),
        "denials were logged at debug"
    );
    for t in &tokens {
        // Any of the token's three segments would be a leak.
        for part in t.split('.').filter(|p| p.len() >= 8) {
            for l in &filter_lines {
                assert!(
                    !l.contains(part),
                    "token material in a filter log line: {l}"
                );
            }
        }
    }
    for t in &tokens {
        let prefix = format!("Bearer {}", &t[..t.len().min(12)]);
        for l in &filter_lines {
            assert!(
                !l.contains(&prefix),
                "an Authorization value was logged: {l}"
            );
        }
    }
}
