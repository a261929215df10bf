//! Issue "Authorization": scopes, per-tool MCP rules, step-up challenges and Entra ID
//! specifics, through the real Envoy with the built module and a recording backend.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const OTHER_TID: &str = "11111111-2222-3333-4444-555555555555";
const APP: &str = "6e8a3c4b-1f2d-4c5e-9a7b-0d1e2f3a4b5c";

fn key() -> SigningKey {
    SigningKey::cached(KeyKind::Rsa2048, "entra-key-1")
}

fn provider(scope_claims: Value) -> Value {
    json!({
        "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
        "issuers": ["https://sts.windows.net/{tenantid}/"],
        "allowed_tenants": [TID],
        "audiences": [APP, format!("api://{APP}")],
        "local_jwks": {"inline_string": KeyRing::new(vec![key()]).jwks().to_string()},
        "algorithms": ["RS256"],
        "scope_claims": scope_claims,
        "scope_prefix": format!("api://{APP}/"),
        "claim_to_headers": [
            {"claim_name": "sub", "header_name": "x-mcp-subject"},
            {"claim_name": "oid", "header_name": "x-mcp-oid"},
            {"claim_name": "tid", "header_name": "x-mcp-tenant"}
        ]
    })
}

fn mcp_block() -> Value {
    json!({
        "tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]},
        "methods": {"resources/read": ["files.read"]},
        "max_body_bytes": 4096,
        "body_timeout": "2s"
    })
}

struct Stack {
    backend: Recorder,
    envoy: Envoy,
}

fn start_with(edit: impl Fn(String) -> String + 'static) -> Stack {
    let backend = Recorder::start();
    let cfg = json!({
        "providers": {
            "entra": provider(json!(["scp", "roles"])),
            "entra_scp_only": provider(json!(["scp"]))
        },
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"}, "mcp": mcp_block()},
            {"match": {"prefix": "/strict/mcp"}, "requires": {"provider_name": "entra_scp_only"}, "mcp": mcp_block()}
        ]
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .map_yaml(edit)
        .start()
        .unwrap();
    Stack { backend, envoy }
}

fn start() -> Stack {
    start_with(|y| y)
}

fn now() -> u64 {
    devstack::now()
}

/// A v2 delegated token as Entra issues it (aud = client id GUID, scp short names).
fn v2(scp: &str) -> Value {
    json!({"iss": format!("https://login.microsoftonline.com/{TID}/v2.0"), "aud": APP,
           "tid": TID, "oid": "00000000-0000-0000-0000-0000000000aa", "sub": "user-sub",
           "azp": "client-app", "scp": scp, "ver": "2.0",
           "iat": now() - 10, "nbf": now() - 10, "exp": now() + 3600})
}

/// A v1 token (accessTokenAcceptedVersion null/1): sts.windows.net issuer, aud App ID URI.
fn v1(scp: &str) -> Value {
    json!({"iss": format!("https://sts.windows.net/{TID}/"), "aud": format!("api://{APP}"),
           "tid": TID, "oid": "00000000-0000-0000-0000-0000000000bb", "sub": "user-v1",
           "appid": "client-app", "scp": scp, "ver": "1.0",
           "iat": now() - 10, "nbf": now() - 10, "exp": now() + 3600})
}

/// An application token (client credentials, api://<app>/.default): roles, no scp.
fn app(roles: &[&str]) -> Value {
    json!({"iss": format!("https://login.microsoftonline.com/{TID}/v2.0"), "aud": APP,
           "tid": TID, "oid": "00000000-0000-0000-0000-0000000000cc", "sub": "app-sub",
           "azp": "daemon", "roles": roles, "ver": "2.0",
           "iat": now() - 10, "nbf": now() - 10, "exp": now() + 3600})
}

fn sign(claims: &Value) -> String {
    let k = key();
    sign_jws(
        &k,
        "RS256",
        &json!({"alg": "RS256", "kid": k.kid, "typ": "JWT"}),
        claims,
    )
}

fn call(tool: &str, id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {"a": 2, "b": 3}}})
}

impl Stack {
    fn post(
        &self,
        path: &str,
        claims: &Value,
        body: &[u8],
        extra: &[(&str, &str)],
        marker: &str,
    ) -> Response {
        let auth = format!("Bearer {}", sign(claims));
        let mut headers = vec![
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("x-test-id", marker),
        ];
        headers.extend_from_slice(extra);
        http::request(self.envoy.port(), "POST", path, &headers, body)
    }

    fn seen(&self, marker: &str) -> Vec<devstack::recorder::RecordedRequest> {
        self.backend
            .requests()
            .into_iter()
            .filter(|r| r.header("x-test-id") == Some(marker))
            .collect()
    }
}

#[test]
fn delegated_scp_token_calls_add_but_gets_403_step_up_on_subtract() {
    let s = start();
    let body = serde_json::to_vec_pretty(&call("add", 1)).unwrap();
    let r = s.post("/mcp", &v2("calculator.add"), &body, &[], "add");
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = s.seen("add");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].body, body,
        "the backend sees the body byte for byte"
    );
    assert_eq!(seen[0].header("x-mcp-subject"), Some("user-sub"));
    assert_eq!(seen[0].header("x-mcp-tenant"), Some(TID));
    assert!(seen[0].header("authorization").is_none());

    let r = s.post(
        "/mcp",
        &v2("calculator.add"),
        call("subtract", 2).to_string().as_bytes(),
        &[],
        "sub",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer error=\"insufficient_scope\""),
        "{www}"
    );
    assert!(
        www.contains(&format!("scope=\"api://{APP}/calculator.subtract\"")),
        "requestable form: {www}"
    );
    assert!(www.contains("resource_metadata=\""), "{www}");
    assert_eq!(r.json()["error"], "insufficient_scope");
    assert!(s.seen("sub").is_empty());

    // After step-up (both scopes) the same call passes.
    let r = s.post(
        "/mcp",
        &v2("calculator.add calculator.subtract"),
        call("subtract", 3).to_string().as_bytes(),
        &[],
        "sub2",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        s.envoy.filter_stat_at_least("denied.insufficient_scope", 1),
        1
    );
}

#[test]
fn app_roles_count_as_scopes_only_where_enabled() {
    let s = start();
    let body = call("add", 1).to_string();
    let r = s.post(
        "/mcp",
        &app(&["calculator.add"]),
        body.as_bytes(),
        &[],
        "roles",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(
        "/strict/mcp",
        &app(&["calculator.add"]),
        body.as_bytes(),
        &[],
        "roles-off",
    );
    assert_eq!(r.status, 403, "roles are not scopes for this provider");
    assert!(s.seen("roles-off").is_empty());
}

#[test]
fn batches_bodies_and_headers_are_checked_before_anything_reaches_the_backend() {
    let s = start();
    let t = v2("calculator.add");
    // A batch with one forbidden call → 403 naming the missing scope.
    let batch = json!([call("add", 1), call("subtract", 2), {"jsonrpc":"2.0","method":"notifications/progress"}]);
    let r = s.post("/mcp", &t, batch.to_string().as_bytes(), &[], "batch");
    assert_eq!(r.status, 403);
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("calculator.subtract"));
    // An unlisted tool is denied outright.
    let r = s.post(
        "/mcp",
        &t,
        call("format_disk", 3).to_string().as_bytes(),
        &[],
        "unlisted",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "access_denied");
    // Malformed JSON → 400 with a JSON-RPC error body.
    let r = s.post("/mcp", &t, b"{\"jsonrpc\": \"2.0\", ", &[], "malformed");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    let r = s.post(
        "/mcp",
        &t,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
        &[],
        "no-name",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32600);
    // Oversized → 413.
    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{"pad":"x".repeat(5000)}}});
    let r = s.post("/mcp", &t, big.to_string().as_bytes(), &[], "big");
    assert_eq!(r.status, 413, "{}", r.text());
    // Mcp-Method / Mcp-Name must agree with the body.
    let r = s.post(
        "/mcp",
        &t,
        call("add", 4).to_string().as_bytes(),
        &[("mcp-method", "tools/call"), ("mcp-name", "subtract")],
        "mismatch",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["id"], 4);
    let r = s.post(
        "/mcp",
        &t,
        call("add", 5).to_string().as_bytes(),
        &[("mcp-method", "tools/call"), ("mcp-name", "add")],
        "match",
    );
    assert_eq!(r.status, 200);
    for m in [
        "batch",
        "unlisted",
        "malformed",
        "no-name",
        "big",
        "mismatch",
    ] {
        assert!(s.seen(m).is_empty(), "{m} reached the backend");
    }
    // GET (SSE stream) and DELETE need a valid token, no body check.
    let auth = format!("Bearer {}", sign(&t));
    let r = http::request(
        s.envoy.port(),
        "GET",
        "/mcp",
        &[("authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = http::request(s.envoy.port(), "DELETE", "/mcp", &[], b"");
    assert_eq!(r.status, 401);
}

#[test]
fn entra_v1_and_v2_tokens_tenants_and_graph_tokens() {
    let s = start();
    let body = call("add", 1).to_string();
    assert_eq!(
        s.post("/mcp", &v2("calculator.add"), body.as_bytes(), &[], "v2")
            .status,
        200
    );
    assert_eq!(
        s.post("/mcp", &v1("calculator.add"), body.as_bytes(), &[], "v1")
            .status,
        200
    );
    assert_eq!(s.seen("v1")[0].header("x-mcp-subject"), Some("user-v1"));

    // A tenant outside allowed_tenants, and a tid that does not match the issuer.
    let mut other = v2("calculator.add");
    other["iss"] = json!(format!(
        "https://login.microsoftonline.com/{OTHER_TID}/v2.0"
    ));
    other["tid"] = json!(OTHER_TID);
    let r = s.post("/mcp", &other, body.as_bytes(), &[], "tenant");
    assert_eq!(r.status, 401);
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("tenant"));
    let mut forged = v2("calculator.add");
    forged["tid"] = json!(OTHER_TID);
    assert_eq!(
        s.post("/mcp", &forged, body.as_bytes(), &[], "tid-mismatch")
            .status,
        401
    );

    // A Microsoft Graph token (the client asked for no scope of this API).
    let mut graph = v2("User.Read");
    graph["aud"] = json!("00000003-0000-0000-c000-000000000000");
    let r = s.post("/mcp", &graph, body.as_bytes(), &[], "graph");
    assert_eq!(r.status, 401);
    let d = r.json()["error_description"].as_str().unwrap().to_string();
    assert!(
        d.contains("Microsoft Graph token") && d.contains("no scope of this API"),
        "{d}"
    );
    for m in ["tenant", "tid-mismatch", "graph"] {
        assert!(s.seen(m).is_empty(), "{m} reached the backend");
    }
}

#[test]
fn without_allow_on_headers_stop_iteration_the_body_check_fails_closed() {
    let s = start_with(|y| {
        y.replace(
            "allow_on_headers_stop_iteration: true",
            "allow_on_headers_stop_iteration: false",
        )
    });
    let r = s.post(
        "/mcp",
        &v2("calculator.add"),
        call("add", 1).to_string().as_bytes(),
        &[],
        "no-stop",
    );
    assert_eq!(r.status, 408, "{}", r.text());
    assert!(
        s.seen("no-stop").is_empty(),
        "an unchecked body reached the backend"
    );
    assert!(
        s.envoy
            .logs()
            .contains("allow_on_headers_stop_iteration: true"),
        "the log says how to fix it"
    );
}
