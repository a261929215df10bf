//! Issue "Real MCP clients end to end": the official MCP TypeScript SDK (client
//! credentials, authorization code + PKCE, step-up on 403) and the official Python SDK
//! (client credentials) complete the whole authorization dance against the demo MCP server
//! behind the real Envoy and the filter, with no client-side special-casing: 401 →
//! `resource_metadata` → PRM → AS metadata (dev IdP) → token with `resource` → MCP calls,
//! session ids and SSE responses flowing through.
//!
//! A real headless Chromium does the same from a page of another origin (CORS, exposed
//! headers, `allowed_origins`).
//!
//! The clients are installed by `make test` (`scripts/deps.sh`: npm packages pinned in
//! tests/clients/package-lock.json, `mcp` pinned in the project venv).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpDemo, McpDemoConfig};
use serde_json::{json, Value};
use support::envoy::{free_port, repo_root};
use support::{Envoy, EnvoyBuilder};

const SCOPES: [&str; 3] = ["mcp.tools", "calculator.add", "calculator.subtract"];

struct Stack {
    idp: Idp,
    _mcp: McpDemo,
    envoy: Envoy,
    url: String,
}

/// Dev IdP + demo MCP server + Envoy with the filter. `base_scope`: the rule's
/// `required_scopes` (the 401 then asks for just that, and tools step up).
/// `extra`: more top-level plugin settings (e.g. `allowed_origins`).
fn start(base_scope: Option<&str>, extra: Value) -> Stack {
    let scopes: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
    let idp = Idp::start(IdpConfig {
        clients: vec![
            ("demo-client".into(), "demo-secret".into(), scopes.clone()),
            ("demo-public".into(), String::new(), scopes.clone()),
        ],
        ..IdpConfig::default()
    });
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let mut rule = json!({
        "match": {"prefix": "/mcp"},
        "requires": {"provider_name": "idp"},
        "mcp": {"tools": {
            "add": ["calculator.add"],
            "subtract": ["calculator.subtract"],
            "whoami": [],
            "headers": []
        }}
    });
    if let Some(s) = base_scope {
        rule["required_scopes"] = json!([s]);
    }
    let cfg = json!({
        "providers": {"idp": {
            "issuer": idp.issuer(),
            // The clients send `resource` (RFC 8707); the IdP puts it in `aud`.
            "audiences": [url],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
            "algorithms": ["RS256", "ES256"],
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}]
        }},
        "rules": [rule],
        "protected_resource": {
            "authorization_servers": [idp.issuer()],
            "scopes_supported": SCOPES,
            "resource_name": "Demo MCP server"
        }
    });
    let mut cfg = cfg;
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(mcp.port())
        .extra_cluster("idp", idp.port())
        .listen_port(port)
        .start()
        .unwrap();
    assert_eq!(envoy.port(), port);
    Stack {
        idp,
        _mcp: mcp,
        envoy,
        url,
    }
}

/// Runs a client program; returns its JSON report (panics with its output on failure).
fn run(program: &str, args: &[&str], envoy: &Envoy) -> Value {
    support::clients::run_client(program, args, &|| {
        format!("Envoy log tail:\n{}", tail(&envoy.logs(), 40))
    })
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn node(args: &[&str], envoy: &Envoy) -> Value {
    let mut all = vec!["ts_client.mjs"];
    all.extend_from_slice(args);
    run("node", &all, envoy)
}

fn python() -> String {
    repo_root()
        .join(".venv/bin/python")
        .to_string_lossy()
        .into_owned()
}

fn exchanges(r: &Value) -> Vec<(String, String, u64)> {
    r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["method"].as_str().unwrap().to_string(),
                e["url"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The discovery dance, in order: a 401 from the MCP endpoint naming the metadata, the
/// metadata, the AS metadata from the dev IdP, a token, then a successful MCP call.
fn assert_discovery_dance(r: &Value, s: &Stack) {
    let ex = exchanges(r);
    let first = &r["exchanges"][0];
    assert_eq!((ex[0].1.as_str(), ex[0].2), (s.url.as_str(), 401), "{ex:?}");
    let www = first["www_authenticate"].as_str().unwrap();
    let prm = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        s.envoy.port()
    );
    assert!(
        www.contains(&format!("resource_metadata=\"{prm}\"")),
        "{www}"
    );
    let pos = |pred: &dyn Fn(&(String, String, u64)) -> bool| {
        ex.iter().position(pred).unwrap_or_else(|| panic!("{ex:?}"))
    };
    let prm_at = pos(&|e| e.1 == prm && e.2 == 200);
    let as_at =
        pos(&|e| e.1.starts_with(&s.idp.issuer()) && e.1.contains("/.well-known/") && e.2 == 200);
    let token_at = pos(&|e| e.1 == format!("{}/token", s.idp.base_url()) && e.2 == 200);
    let ok_at = pos(&|e| e.1 == s.url && (200..300).contains(&e.2));
    assert!(
        prm_at < as_at && as_at < token_at && token_at < ok_at,
        "{ex:?}"
    );
}

fn assert_mcp_worked(r: &Value) {
    // The demo server answers requests as SSE streams (and the client opens the GET
    // stream): they came through the filter intact, or the calls below would have failed.
    let sse = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["content_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("text/event-stream"))
        })
        .count();
    assert!(sse >= 2, "no SSE responses seen: {r}");
    assert_eq!(
        r["tools"],
        json!(["add", "headers", "subtract", "whoami"]),
        "{r}"
    );
    assert_eq!(r["add"], "5", "{r}");
    // The session id minted by the demo server came back through Envoy and was reused.
    let sid = r["session_id"].as_str().unwrap_or("");
    assert!(!sid.is_empty(), "no Mcp-Session-Id: {r}");
    let seen = &r["backend_headers"];
    assert_eq!(seen["mcp-session-id"], json!([sid]), "{seen}");
    // The backend never sees the client's token (forward: false) and gets the subject.
    assert!(seen.get("authorization").is_none(), "token leaked: {seen}");
    assert_eq!(
        seen["x-mcp-subject"].as_array().map(Vec::len),
        Some(1),
        "{seen}"
    );
}

#[test]
fn typescript_sdk_client_credentials_completes_discovery_and_calls_tools() {
    let s = start(None, json!({}));
    let r = node(&["m2m", &s.url, &s.idp.issuer()], &s.envoy);
    assert_discovery_dance(&r, &s);
    assert_mcp_worked(&r);
    // The token asked for this resource (RFC 8707) and got it as its audience.
    let token = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.get("token_aud").is_some())
        .unwrap();
    assert_eq!(token["token_aud"], s.url.as_str());
    assert_eq!(
        r["backend_headers"]["x-mcp-subject"],
        json!(["demo-client"])
    );
    assert_eq!(r["whoami"], "demo-client");
}

#[test]
fn typescript_sdk_authorization_code_with_pkce_completes_and_token_carries_scp() {
    let s = start(None, json!({}));
    let r = node(&["authcode", &s.url, &s.idp.issuer()], &s.envoy);
    assert_discovery_dance(&r, &s);
    assert_mcp_worked(&r);
    let auth = &r["authorization_requests"];
    assert_eq!(auth.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(auth[0]["code_challenge_method"], "S256");
    assert_eq!(auth[0]["resource"], s.url.as_str());
    let token = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e.get("token_scp").is_some())
        .unwrap();
    let scp = token["token_scp"].as_str().unwrap();
    assert!(scp.contains("calculator.add"), "{scp}");
    assert_eq!(r["backend_headers"]["x-mcp-subject"], json!(["test-user"]));
}

#[test]
fn typescript_sdk_steps_up_on_insufficient_scope() {
    let s = start(Some("mcp.tools"), json!({}));
    let r = node(&["stepup", &s.url, &s.idp.issuer()], &s.envoy);
    assert_mcp_worked(&r);
    let set = |v: &Value| -> Vec<String> {
        let mut v: Vec<String> = v
            .as_str()
            .unwrap_or("")
            .split(' ')
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    // First authorization: just what the 401 asked for (the route's base scope).
    let auth = r["authorization_requests"].as_array().unwrap();
    assert_eq!(auth.len(), 2, "{r}");
    assert_eq!(set(&auth[0]["scope"]), ["mcp.tools"], "{r}");
    // tools/call add → 403 naming every scope the call needs …
    let forbidden = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == 403)
        .unwrap_or_else(|| panic!("no 403: {r}"));
    let www = forbidden["www_authenticate"].as_str().unwrap();
    assert!(
        www.starts_with("Bearer error=\"insufficient_scope\""),
        "{www}"
    );
    assert!(www.contains("scope=\"calculator.add mcp.tools\""), "{www}");
    // … → a second authorization for that union → a token with it → the call succeeds.
    assert_eq!(
        set(&auth[1]["scope"]),
        ["calculator.add", "mcp.tools"],
        "{r}"
    );
    let scopes = r["token_scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 2, "{r}");
    assert_eq!(set(&scopes[1]), ["calculator.add", "mcp.tools"], "{r}");
}

#[test]
fn python_sdk_client_credentials_completes_discovery_and_calls_a_tool() {
    let s = start(None, json!({}));
    let py = python();
    let r = run(&py, &["py_client.py", &s.url, &s.idp.issuer()], &s.envoy);
    assert_eq!(
        r["tools"],
        json!(["add", "headers", "subtract", "whoami"]),
        "{r}"
    );
    assert_eq!(r["add"], "42", "{r}");
    assert_eq!(r["is_error"], false, "{r}");
    assert!(
        r["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{r}"
    );
    let ex = exchanges(&r);
    assert_eq!((ex[0].1.as_str(), ex[0].2), (s.url.as_str(), 401), "{ex:?}");
    let prm = format!(
        "http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp",
        s.envoy.port()
    );
    assert!(ex.iter().any(|e| e.1 == prm && e.2 == 200), "{ex:?}");
    assert!(
        ex.iter()
            .any(|e| e.1 == format!("{}/token", s.idp.base_url()) && e.2 == 200),
        "{ex:?}"
    );
}

/// A real access token from the dev IdP (client_credentials, `resource` = the MCP URL).
fn client_token(s: &Stack) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret&resource={}",
        s.url.replace(':', "%3A").replace('/', "%2F")
    );
    let r = support::http::request(
        s.idp.port(),
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_string()
}

#[test]
fn browser_on_another_origin_discovers_reads_challenges_and_calls_with_cors() {
    let page = free_port();
    let other = free_port();
    let s = start(
        None,
        json!({"allowed_origins": [format!("http://localhost:{page}")]}),
    );
    let token = client_token(&s);
    let r = run(
        "node",
        &[
            "browser.mjs",
            &page.to_string(),
            &other.to_string(),
            &s.url,
            &token,
        ],
        &s.envoy,
    );
    let a = &r["allowed"];
    // The PRM document, cross-origin.
    assert_eq!(a["prm"]["status"], 200, "{r}");
    assert_eq!(a["prm"]["body"]["resource"], s.url.as_str(), "{r}");
    // The 401's WWW-Authenticate is readable (exposed) and names the metadata.
    assert_eq!(a["no_token"]["status"], 401, "{r}");
    let www = a["no_token"]["www_authenticate"].as_str().unwrap_or("");
    assert!(
        www.starts_with("Bearer resource_metadata=\"http://127.0.0.1:"),
        "{r}"
    );
    // With the token: initialize (after a preflight for Authorization, Content-Type,
    // MCP-Protocol-Version), Mcp-Session-Id readable, then a tools/call in that session.
    assert_eq!(a["initialize"]["status"], 200, "{r}");
    let sid = a["initialize"]["session_id"].as_str().unwrap_or("");
    assert!(!sid.is_empty(), "Mcp-Session-Id not readable: {r}");
    assert_eq!(a["initialized"]["status"], 202, "{r}");
    assert_eq!(a["tools_call"]["status"], 200, "{r}");
    assert!(
        a["tools_call"]["body"]
            .as_str()
            .unwrap_or("")
            .contains("42"),
        "{r}"
    );
    // The preflights were answered at the edge, without a token.
    let preflights = s.envoy.filter_stat_at_least("preflight", 2);
    assert!(
        preflights >= 2,
        "preflights answered by the filter: {preflights}"
    );
    // The page from the other origin gets nothing readable; Envoy refused it with 403.
    assert_eq!(r["denied"]["readable"], false, "{r}");
    let refused = s
        .envoy
        .stat("wasmcustom.mcp_edge_auth.denied.origin_not_allowed")
        .unwrap_or(0);
    assert!(refused >= 1, "{refused}");
    let direct = support::http::request(
        s.envoy.port(),
        "POST",
        "/mcp",
        &[
            ("origin", &format!("http://localhost:{other}")),
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
        ],
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    assert_eq!(direct.status, 403);
    assert_eq!(direct.json()["error"], "access_denied");
}
