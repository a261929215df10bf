//! `mcp.trust_headers`: per-tool rules decided from the MCP 2026-07-28 `Mcp-Method` /
//! `Mcp-Name` headers, without the body, through the real Envoy with the built module:
//!
//! - the configuration an Istio WasmPlugin or Envoy Gateway gives (no
//!   `allow_on_headers_stop_iteration`, so the body never reaches the filter) enforces
//!   per-tool scopes from the headers, and refuses requests without them with a clear 400;
//! - where the body is reachable, requests with the headers are still decided from them
//!   alone (no buffering: a body over `max_body_bytes` and a lying body both pass), and
//!   requests without them are checked on the body as before;
//! - a backend that enforces header/body agreement (the devstack demo MCP server, as an
//!   MCP 2026-07-28 server must) refuses the lying request the edge let through.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::mcp_demo::{McpClient, McpDemo, McpDemoConfig, HEADER_MISMATCH};
use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

const ISS: &str = "https://idp.test/";
const AUD: &str = "api://mcp";

fn key() -> SigningKey {
    SigningKey::cached(KeyKind::Rsa2048, "trust-key-1")
}

fn config() -> Value {
    json!({
        "providers": {"idp": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![key()]).jwks().to_string()},
            "algorithms": ["RS256"],
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}]
        }},
        "rules": [{
            "match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
            "mcp": {
                "tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"],
                          "whoami": [], "headers": []},
                "methods": {"resources/read": ["files.read"]},
                "max_body_bytes": 4096,
                "body_timeout": "1s",
                "trust_headers": true
            }
        }]
    })
}

/// What an Istio WasmPlugin or Envoy Gateway's EnvoyExtensionPolicy produces: the Wasm
/// filter without `allow_on_headers_stop_iteration`.
fn wasmplugin_shaped(yaml: String) -> String {
    assert!(yaml.contains("allow_on_headers_stop_iteration: true"));
    yaml.lines()
        .filter(|l| l.trim() != "allow_on_headers_stop_iteration: true")
        .map(|l| format!("{l}\n"))
        .collect()
}

fn envoy(backend_port: u16, body_reachable: bool) -> Envoy {
    let b = EnvoyBuilder::new(&config().to_string()).backend_port(backend_port);
    let b = if body_reachable {
        b
    } else {
        b.map_yaml(wasmplugin_shaped)
    };
    b.start().unwrap()
}

fn bearer(scp: &str) -> String {
    let now = devstack::now();
    let k = key();
    let claims = json!({"iss": ISS, "aud": AUD, "sub": "user-1", "scp": scp,
                        "iat": now - 10, "nbf": now - 10, "exp": now + 3600});
    let t = sign_jws(
        &k,
        "RS256",
        &json!({"alg": "RS256", "kid": k.kid, "typ": "JWT"}),
        &claims,
    );
    format!("Bearer {t}")
}

fn call(tool: &str, id: u64) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": tool, "arguments": {"a": 2, "b": 3}}})
    .to_string()
    .into_bytes()
}

fn post(envoy: &Envoy, scp: &str, body: &[u8], extra: &[(&str, &str)], marker: &str) -> Response {
    let auth = bearer(scp);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("x-test-id", marker),
    ];
    headers.extend_from_slice(extra);
    http::request(envoy.port(), "POST", "/mcp", &headers, body)
}

fn seen(backend: &Recorder, marker: &str) -> Vec<devstack::recorder::RecordedRequest> {
    backend
        .requests()
        .into_iter()
        .filter(|r| r.header("x-test-id") == Some(marker))
        .collect()
}

const ADD: [(&str, &str); 2] = [("mcp-method", "tools/call"), ("mcp-name", "add")];
const SUBTRACT: [(&str, &str); 2] = [("mcp-method", "tools/call"), ("mcp-name", "subtract")];

#[test]
fn the_wasmplugin_shaped_config_enforces_per_tool_scopes_from_the_headers() {
    let backend = Recorder::start();
    let e = envoy(backend.port(), false);
    assert!(!e.config_yaml().contains("allow_on_headers_stop_iteration"));

    // Allowed from the headers: the backend gets the body byte for byte, with claim headers.
    let body = call("add", 1);
    let r = post(&e, "calculator.add", &body, &ADD, "add");
    assert_eq!(r.status, 200, "{}", r.text());
    let got = seen(&backend, "add");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body);
    assert_eq!(got[0].header("x-mcp-subject"), Some("user-1"));
    assert!(got[0].header("authorization").is_none());

    // A tool the token has no scope for: 403 step-up naming the tool's scope.
    let r = post(&e, "calculator.add", &call("subtract", 2), &SUBTRACT, "sub");
    assert_eq!(r.status, 403, "{}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer error=\"insufficient_scope\"")
            && www.contains("scope=\"calculator.subtract\""),
        "{www}"
    );
    // The same tool named in the =?base64?…?= form.
    let b64 = [
        ("mcp-method", "tools/call"),
        ("mcp-name", "=?base64?c3VidHJhY3Q=?="),
    ];
    let r = post(&e, "calculator.add", &call("subtract", 3), &b64, "sub-b64");
    assert_eq!(r.status, 403, "{}", r.text());
    // An unlisted tool; a method that needs a scope.
    let rm = [("mcp-method", "tools/call"), ("mcp-name", "rm_rf")];
    let r = post(&e, "calculator.add", &call("rm_rf", 4), &rm, "unlisted");
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (403, json!("access_denied"))
    );
    let read = [("mcp-method", "resources/read"), ("mcp-name", "file:///a")];
    let body =
        br#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///a"}}"#;
    assert_eq!(post(&e, "calculator.add", body, &read, "read").status, 403);
    // With the scope, subtract passes.
    let r = post(
        &e,
        "calculator.add calculator.subtract",
        &call("subtract", 6),
        &SUBTRACT,
        "sub-ok",
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // Without the headers the body would decide, but it never reaches the filter here:
    // a clear 400 (after body_timeout), never the backend.
    for (marker, extra) in [
        ("none", &[][..]),
        ("no-name", &[("mcp-method", "tools/call")][..]),
    ] {
        let r = post(&e, "calculator.add", &call("add", 7), extra, marker);
        assert_eq!(r.status, 400, "{marker}: {}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], HEADER_MISMATCH, "{marker}");
        let text = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains("Mcp-Method") && text.contains("Mcp-Name"),
            "{text}"
        );
    }
    for m in ["sub", "sub-b64", "unlisted", "read", "none", "no-name"] {
        assert!(seen(&backend, m).is_empty(), "{m} reached the backend");
    }
    assert_eq!(e.filter_stat_at_least("denied.mcp_headers_missing", 2), 2);
    assert!(
        e.logs().contains("mcp.trust_headers"),
        "the log names the setting"
    );
}

#[test]
fn with_the_body_reachable_the_headers_decide_and_the_body_is_not_held() {
    let backend = Recorder::start();
    let e = envoy(backend.port(), true);

    // Decided from the headers: a body over max_body_bytes passes (never buffered) ...
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "add", "arguments": {"pad": "x".repeat(6000)}}})
    .to_string()
    .into_bytes();
    let r = post(&e, "calculator.add", &big, &ADD, "big");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(seen(&backend, "big")[0].body, big);
    // ... and so does a body that disagrees with them: agreement is the backend's job.
    let r = post(&e, "calculator.add", &call("subtract", 2), &ADD, "lie");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(seen(&backend, "lie").len(), 1);

    // Without the headers the body decides, as on any mcp rule.
    let r = post(&e, "calculator.add", &call("subtract", 3), &[], "body-sub");
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post(&e, "calculator.add", &call("add", 4), &[], "body-add");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&e, "calculator.add", &big, &[], "body-big");
    assert_eq!(r.status, 413, "{}", r.text());
    for m in ["body-sub", "body-big"] {
        assert!(seen(&backend, m).is_empty(), "{m} reached the backend");
    }
}

#[test]
fn a_backend_that_enforces_agreement_refuses_the_lying_request_the_edge_let_through() {
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let e = envoy(mcp.port(), false);
    let auth = bearer("calculator.add");

    // An honest client sending the MCP headers works end to end through the WasmPlugin
    // shape (initialize and the initialized notification carry Mcp-Method too).
    let mut c = McpClient::new(&e.url("/mcp"))
        .with_header("authorization", &auth)
        .with_mcp_headers();
    c.initialize().unwrap();
    assert_eq!(
        c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
        "5"
    );
    let session = c.session_id().unwrap().to_string();
    let headers = |name: &'static str| {
        vec![
            ("authorization", auth.clone()),
            ("content-type", "application/json".to_string()),
            ("accept", "application/json, text/event-stream".to_string()),
            ("mcp-session-id", session.clone()),
            ("mcp-protocol-version", "2025-06-18".to_string()),
            ("mcp-method", "tools/call".to_string()),
            ("mcp-name", name.to_string()),
        ]
    };
    let send = |h: Vec<(&str, String)>, body: &[u8]| {
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        http::request(e.port(), "POST", "/mcp", &h, body)
    };

    // Honest headers for a tool the token lacks: the edge refuses.
    let r = send(headers("subtract"), &call("subtract", 10));
    assert_eq!(r.status, 403, "{}", r.text());
    // The lie: headers name `add`, the body calls `subtract`. The edge allows it from the
    // headers; the demo server, comparing them with the body, refuses it.
    let r = send(headers("add"), &call("subtract", 11));
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], HEADER_MISMATCH, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("subtract"),
        "{v}"
    );
}
