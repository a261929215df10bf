//! Issue 21, part 1: one edge in front of several MCP servers. Three demo MCP servers behind
//! one Envoy listener (routes `/a/mcp`, `/b/mcp`, `/open/mcp`, each to its own cluster), two
//! dev IdPs with their own keys, one open server. Each protected rule carries its own
//! `protected_resource`; there is no top-level one.
//!
//! Proves, on the real Envoy with the built module: each server's RFC 9728 document is its
//! own (resource, authorization server, scopes, name) and the root form is 404; each 401
//! points at its own document and asks for its own scopes; a token of server A is refused
//! on server B (issuer, and a B token made out to A by audience); the open server is
//! reached without a token and has no metadata; the official TypeScript and Python MCP
//! SDKs complete discovery → token → tool calls against both protected servers through the
//! same Envoy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpDemo, McpDemoConfig};
use devstack::{KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::envoy::{free_port, repo_root};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

const SCOPES_A: [&str; 3] = ["mcp.tools", "calculator.add", "calculator.subtract"];
const SCOPES_B: [&str; 1] = ["tickets.read"];
const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

struct Gateway {
    idp_a: Idp,
    idp_b: Idp,
    _servers: [McpDemo; 3],
    envoy: Envoy,
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        self.envoy.url(path)
    }

    fn metadata_url(&self, server: &str) -> String {
        self.url(&format!("{WELL_KNOWN}/{server}/mcp"))
    }

    fn post(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut all = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        all.extend_from_slice(headers);
        http::request(
            self.envoy.port(),
            "POST",
            path,
            &all,
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        )
    }
}

fn idp(scopes: &[&str], keys: Option<KeyRing>) -> Idp {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    Idp::start(IdpConfig {
        clients: vec![("demo-client".into(), "demo-secret".into(), scopes)],
        keys,
        ..IdpConfig::default()
    })
}

fn demo() -> McpDemo {
    McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap()
}

fn start() -> Gateway {
    let idp_a = idp(&SCOPES_A, None);
    // B's IdP signs with its own key (not the dev IdP's default ring).
    let idp_b = idp(
        &SCOPES_B,
        Some(KeyRing::new(vec![SigningKey::cached(
            KeyKind::Rsa2048,
            "b-rsa-1",
        )])),
    );
    let servers = [demo(), demo(), demo()];
    let port = free_port();
    let url = |s: &str| format!("http://127.0.0.1:{port}/{s}/mcp");
    let provider = |idp: &Idp, cluster: &str, aud: String| {
        json!({
            "issuer": idp.issuer(),
            // The clients send `resource` (RFC 8707); the dev IdP puts it in `aud`.
            "audiences": [aud],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": cluster, "timeout": "2s"}},
            "algorithms": ["RS256"],
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}]
        })
    };
    let cfg = json!({
        "providers": {
            "idp_a": provider(&idp_a, "idp_a", url("a")),
            "idp_b": provider(&idp_b, "idp_b", url("b"))
        },
        "rules": [
            {
                "match": {"prefix": "/a/mcp"},
                "requires": {"provider_name": "idp_a"},
                "mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"],
                                  "whoami": [], "headers": []}},
                "protected_resource": {"resource": url("a"), "scopes_supported": SCOPES_A,
                                       "resource_name": "Server A"}
            },
            {
                "match": {"prefix": "/b/mcp"},
                "requires": {"provider_name": "idp_b"},
                "mcp": {"tools": {"*": ["tickets.read"]}},
                "protected_resource": {"resource": url("b"), "scopes_supported": SCOPES_B,
                                       "resource_name": "Server B"}
            },
            {"match": {"prefix": "/open/mcp"}}
        ]
    });
    let routes = ["a", "b", "open"]
        .map(|s| {
            format!(
                "              - match: {{ prefix: \"/{s}/mcp\" }}\n                route: {{ cluster: mcp_{s}, prefix_rewrite: \"/mcp\", timeout: 0s }}\n"
            )
        })
        .concat();
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .extra_cluster("mcp_a", servers[0].port())
        .extra_cluster("mcp_b", servers[1].port())
        .extra_cluster("mcp_open", servers[2].port())
        .extra_cluster("idp_a", idp_a.port())
        .extra_cluster("idp_b", idp_b.port())
        .listen_port(port)
        .map_yaml(move |y| {
            let one = "              - match: { prefix: \"/\" }\n                route: { cluster: backend, timeout: 0s }\n";
            assert!(y.contains(one), "the harness's route changed");
            y.replacen(one, &routes, 1)
        })
        .start()
        .unwrap();
    assert_eq!(envoy.port(), port);
    Gateway {
        idp_a,
        idp_b,
        _servers: servers,
        envoy,
    }
}

/// A real access token from `idp` (client_credentials) for `resource`.
fn client_token(idp: &Idp, resource: &str) -> String {
    let body = format!(
        "grant_type=client_credentials&client_id=demo-client&client_secret=demo-secret&resource={}",
        resource.replace(':', "%3A").replace('/', "%2F")
    );
    let r = http::request(
        idp.port(),
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_string()
}

#[test]
fn three_servers_behind_one_listener_each_with_its_own_metadata_and_provider() {
    let g = start();

    // Each protected server's document is its own.
    for (server, idp, scopes, name) in [
        ("a", &g.idp_a, &SCOPES_A[..], "Server A"),
        ("b", &g.idp_b, &SCOPES_B[..], "Server B"),
    ] {
        let r = http::get(g.envoy.port(), &format!("{WELL_KNOWN}/{server}/mcp"));
        assert_eq!(r.status, 200, "{server}: {}", r.text());
        let doc = r.json();
        assert_eq!(doc["resource"], g.url(&format!("/{server}/mcp")), "{doc}");
        assert_eq!(doc["authorization_servers"], json!([idp.issuer()]), "{doc}");
        assert_eq!(doc["scopes_supported"], json!(scopes), "{doc}");
        assert_eq!(doc["resource_name"], name, "{doc}");
    }
    assert_ne!(g.idp_a.issuer(), g.idp_b.issuer());
    // No top-level protected_resource: no root document; the open server has none either.
    for path in [WELL_KNOWN.to_string(), format!("{WELL_KNOWN}/open/mcp")] {
        let r = http::get(g.envoy.port(), &path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(r.header("www-authenticate").is_none(), "{path}");
    }

    // Each 401 points at its own document and asks for its own scopes.
    for (server, scopes) in [("a", &SCOPES_A[..]), ("b", &SCOPES_B[..])] {
        let r = g.post(&format!("/{server}/mcp"), &[]);
        assert_eq!(r.status, 401, "{server}: {}", r.text());
        let www = r.header("www-authenticate").unwrap_or("");
        assert_eq!(
            www,
            format!(
                "Bearer resource_metadata=\"{}\", scope=\"{}\"",
                g.metadata_url(server),
                scopes.join(" ")
            ),
            "{server}"
        );
    }

    // The open server is reached without a token.
    let r = g.post("/open/mcp", &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("mcp-session-id").is_some_and(|s| !s.is_empty()));

    // A's token works on A …
    let a_token = client_token(&g.idp_a, &g.url("/a/mcp"));
    let a_auth = format!("Bearer {a_token}");
    let r = g.post("/a/mcp", &[("authorization", &a_auth)]);
    assert_eq!(r.status, 200, "{}", r.text());
    // … and is refused on B (another issuer, keys B's IdP never published), with B's
    // metadata in the challenge.
    let r = g.post("/b/mcp", &[("authorization", &a_auth)]);
    assert_eq!(r.status, 401, "{}", r.text());
    let www = r.header("www-authenticate").unwrap_or("");
    assert!(www.starts_with("Bearer error=\"invalid_token\""), "{www}");
    assert!(
        www.contains(&format!("resource_metadata=\"{}\"", g.metadata_url("b"))),
        "{www}"
    );
    // A token from B's own IdP made out to A (aud = A's URL) is refused on B by audience.
    let b_for_a = client_token(&g.idp_b, &g.url("/a/mcp"));
    let r = g.post("/b/mcp", &[("authorization", &format!("Bearer {b_for_a}"))]);
    assert_eq!(r.status, 401, "{}", r.text());
    let www = r.header("www-authenticate").unwrap_or("");
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert!(www.contains("audience"), "{www}");
    assert!(
        www.contains(&format!("resource_metadata=\"{}\"", g.metadata_url("b"))),
        "{www}"
    );
    assert!(g.envoy.filter_stat_at_least("denied.audience", 1) >= 1);
    // B's own token for B passes.
    let b_token = client_token(&g.idp_b, &g.url("/b/mcp"));
    let r = g.post("/b/mcp", &[("authorization", &format!("Bearer {b_token}"))]);
    assert_eq!(r.status, 200, "{}", r.text());

    // The official SDKs complete discovery against both protected servers, in this run.
    for (server, idp, add) in [("a", &g.idp_a, "5"), ("b", &g.idp_b, "5")] {
        let url = g.url(&format!("/{server}/mcp"));
        let r = run(
            "node",
            &["ts_client.mjs", "m2m", &url, &idp.issuer()],
            &g.envoy,
        );
        assert_discovery(&r, &g, server, idp);
        assert_eq!(r["add"], add, "{r}");
        assert_eq!(
            r["backend_headers"]["x-mcp-subject"],
            json!(["demo-client"])
        );
        assert!(r["backend_headers"].get("authorization").is_none(), "{r}");
    }
    for (server, idp) in [("a", &g.idp_a), ("b", &g.idp_b)] {
        let url = g.url(&format!("/{server}/mcp"));
        let py = repo_root().join(".venv/bin/python");
        let r = run(
            py.to_str().unwrap(),
            &["py_client.py", &url, &idp.issuer()],
            &g.envoy,
        );
        assert_discovery(&r, &g, server, idp);
        assert_eq!(r["add"], "42", "{r}");
        assert_eq!(r["is_error"], false, "{r}");
    }
}

/// The discovery dance against `server`: a 401 on its URL, its own metadata, its own IdP's
/// token endpoint, then a successful MCP call on its URL; never the other server's.
fn assert_discovery(r: &Value, g: &Gateway, server: &str, idp: &Idp) {
    let ex: Vec<(String, u64)> = r["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    let url = g.url(&format!("/{server}/mcp"));
    assert_eq!(ex[0], (url.clone(), 401), "{ex:?}");
    let pos = |pred: &dyn Fn(&(String, u64)) -> bool| {
        ex.iter()
            .position(pred)
            .unwrap_or_else(|| panic!("{server}: {ex:?}"))
    };
    let prm_at = pos(&|e| e.0 == g.metadata_url(server) && e.1 == 200);
    let token_at = pos(&|e| e.0 == format!("{}/token", idp.base_url()) && e.1 == 200);
    let ok_at = pos(&|e| e.0 == url && (200..300).contains(&e.1));
    assert!(prm_at < token_at && token_at < ok_at, "{server}: {ex:?}");
    let other = if server == "a" { "b" } else { "a" };
    assert!(
        !ex.iter().any(|e| e.0.contains(&format!("/{other}/mcp"))),
        "{server}: {ex:?}"
    );
}

/// Runs a client program in tests/clients; returns its JSON report (panics with its output
/// on failure).
fn run(program: &str, args: &[&str], envoy: &Envoy) -> Value {
    support::clients::run_client(program, args, &|| format!("Envoy log:\n{}", envoy.logs()))
}

#[test]
fn envoy_refuses_a_rule_resource_outside_its_path_and_names_the_rule() {
    let jwks = KeyRing::new(vec![SigningKey::cached(KeyKind::EcP256, "ec-1")])
        .jwks()
        .to_string();
    let provider = json!({"issuer": "https://idp.test/", "audiences": ["x"],
                          "local_jwks": {"inline_string": jwks}});
    let cfg = json!({
        "providers": {"p": provider},
        "rules": [
            {"match": {"prefix": "/a/mcp"}, "requires": {"provider_name": "p"},
             "protected_resource": {"resource": "https://mcp.example.com/a/mcp"}},
            {"match": {"prefix": "/b/mcp"}, "requires": {"provider_name": "p"},
             "protected_resource": {"resource": "https://mcp.example.com/a/mcp"}}
        ]
    });
    let log = EnvoyBuilder::new(&cfg.to_string()).start_expect_rejected();
    assert!(
        log.contains(
            "invalid plugin configuration: rules[1].protected_resource.resource: \"https://mcp.example.com/a/mcp\" must end in the path this rule protects (\"/b/mcp\")"
        ),
        "{log}"
    );
}
