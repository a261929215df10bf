//! The resource-server obligations of the MCP authorization spec (and the RFCs it builds
//! on), one test each, named after the rule, through the real Envoy with the built module.
//! docs/CONFORMANCE.md lists them with the spec section each one covers.

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

const ISS: &str = "https://as.example.test";
const AUD: &str = "api://mcp";

struct Stack {
    backend: Recorder,
    envoy: Envoy,
    key: SigningKey,
}

/// The filter in front of a recording backend; `edit` adjusts the plugin configuration.
fn start(edit: impl FnOnce(&mut Value)) -> Stack {
    let key = SigningKey::cached(KeyKind::EcP256, "ec-1");
    let mut cfg = json!({
        "providers": {"as": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![key.clone()]).jwks().to_string()},
            "algorithms": ["ES256"]
        }},
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "as"},
             "required_scopes": ["mcp.tools"],
             "mcp": {"tools": {"add": ["calculator.add"], "admin": ["admin.write", "calculator.add"]}}},
            {"match": {"path": "/healthz"}}
        ],
        "protected_resource": {
            "authorization_servers": [ISS],
            "scopes_supported": ["mcp.tools", "calculator.add", "admin.write"]
        }
    });
    edit(&mut cfg);
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .start()
        .unwrap();
    Stack {
        backend,
        envoy,
        key,
    }
}

impl Stack {
    fn token(&self, claims: Value) -> String {
        let now = devstack::now();
        let mut c = json!({"iss": ISS, "aud": AUD, "sub": "u1", "exp": now + 600, "iat": now,
                           "scope": "mcp.tools"});
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign_jws(
            &self.key,
            "ES256",
            &json!({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt"}),
            &c,
        )
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        http::request(self.envoy.port(), method, path, headers, body)
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port())
    }
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn www(r: &Response) -> &str {
    r.header("www-authenticate").unwrap_or("")
}

/// `name="value"` pairs of a `Bearer` challenge; panics unless every parameter is a quoted
/// string (RFC 6750 §3).
fn params(challenge: &str) -> Vec<(String, String)> {
    let rest = challenge.strip_prefix("Bearer ").unwrap_or_else(|| {
        assert_eq!(challenge, "Bearer", "not a Bearer challenge");
        ""
    });
    let mut out = Vec::new();
    let mut s = rest;
    while !s.is_empty() {
        let (name, after) = s.split_once('=').unwrap();
        assert!(
            after.starts_with('"'),
            "unquoted parameter {name} in {challenge}"
        );
        let mut value = String::new();
        let mut chars = after[1..].char_indices();
        let end = loop {
            let (i, c) = chars
                .next()
                .unwrap_or_else(|| panic!("unterminated: {challenge}"));
            match c {
                '\\' => value.push(chars.next().unwrap().1),
                '"' => break i + 2,
                c => value.push(c),
            }
        };
        out.push((name.trim().to_string(), value));
        s = after[end..].trim_start_matches(',').trim_start();
    }
    out
}

const INIT: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

impl Stack {
    /// A call without a token to `called` must name the metadata at `metadata_path` (a path on
    /// this Envoy), and fetching `fetched` must give a document whose `resource` is `resource`
    /// (a path on this Envoy).
    fn assert_discovery(&self, called: &str, metadata_path: &str, fetched: &str, resource: &str) {
        let r = self.send("POST", called, &[], INIT);
        assert_eq!(r.status, 401);
        let metadata = format!("{}{metadata_path}", self.base());
        assert!(
            www(&r).contains(&format!("resource_metadata=\"{metadata}\"")),
            "{called}: {}",
            www(&r)
        );
        let doc = self.send("GET", fetched, &[], b"").json();
        assert_eq!(
            doc["resource"],
            format!("{}{resource}", self.base()),
            "{called}"
        );
    }
}

#[test]
fn prm_resource_is_the_url_the_client_used() {
    let s = start(|_| {});
    let m = "/.well-known/oauth-protected-resource/mcp";
    s.assert_discovery("/mcp", m, m, "/mcp");
}

#[test]
fn prm_resource_keeps_the_trailing_slash_the_client_used() {
    let s = start(|_| {});
    let m = "/.well-known/oauth-protected-resource/mcp/";
    s.assert_discovery("/mcp/", m, m, "/mcp/");
}

#[test]
fn prm_resource_ignores_the_query_string_of_the_request() {
    let s = start(|_| {});
    let m = "/.well-known/oauth-protected-resource/mcp";
    s.assert_discovery("/mcp?tenant=a", m, &format!("{m}?x=1"), "/mcp");
}

#[test]
fn prm_configured_resource_is_served_verbatim() {
    let s = start(|c| c["protected_resource"]["resource"] = json!("https://mcp.example.com/mcp"));
    let doc = s
        .send("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"")
        .json();
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
}

#[test]
fn prm_authorization_servers_is_present_and_non_empty() {
    let s = start(|_| {});
    let doc = s
        .send("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"")
        .json();
    assert_eq!(doc["authorization_servers"], json!([ISS]));
    // A configuration that would serve an empty list is refused.
    let bad = EnvoyBuilder::new(
        &json!({"providers": {}, "rules": [],
                "protected_resource": {"authorization_servers": []}})
        .to_string(),
    )
    .start_expect_rejected();
    assert!(
        bad.contains("protected_resource.authorization_servers"),
        "{bad}"
    );
}

#[test]
fn prm_has_no_empty_arrays() {
    let s = start(|c| {
        c["protected_resource"]
            .as_object_mut()
            .unwrap()
            .remove("scopes_supported");
    });
    let doc = s
        .send("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"")
        .json();
    for (k, v) in doc.as_object().unwrap() {
        assert!(
            v.as_array().is_none_or(|a| !a.is_empty()),
            "{k} is empty: {doc}"
        );
    }
    assert!(doc.get("scopes_supported").is_none(), "{doc}");
}

#[test]
fn prm_is_served_in_root_and_path_aware_forms() {
    let s = start(|_| {});
    let root = s.send("GET", "/.well-known/oauth-protected-resource", &[], b"");
    assert_eq!(root.status, 200);
    assert_eq!(root.json()["resource"], s.base());
    let path = s.send("GET", "/.well-known/oauth-protected-resource/mcp", &[], b"");
    assert_eq!(path.status, 200);
    assert_eq!(path.header("content-type"), Some("application/json"));
}

#[test]
fn prm_answers_get_and_options_only() {
    let s = start(|_| {});
    let p = "/.well-known/oauth-protected-resource/mcp";
    let pre = s.send(
        "OPTIONS",
        p,
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "GET"),
        ],
        b"",
    );
    assert_eq!(pre.status, 204);
    for m in ["POST", "PUT", "DELETE"] {
        let r = s.send(m, p, &[], b"{}");
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert!(s.backend.requests().is_empty());
}

#[test]
fn unknown_well_known_paths_are_404() {
    let s = start(|_| {});
    for p in [
        "/.well-known/oauth-protected-resource/nothing-here",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        assert_eq!(s.send("GET", p, &[], b"").status, 404, "{p}");
    }
    assert!(s.backend.requests().is_empty());
}

#[test]
fn missing_token_is_401_without_an_error_code() {
    let s = start(|_| {});
    let r = s.send("POST", "/mcp", &[], INIT);
    assert_eq!(r.status, 401);
    let p = params(www(&r));
    assert!(p.iter().all(|(k, _)| k != "error"), "{p:?}");
    assert!(p.iter().any(|(k, _)| k == "resource_metadata"), "{p:?}");
}

#[test]
fn invalid_or_expired_token_is_401_invalid_token_with_a_description() {
    let s = start(|_| {});
    let expired = s.token(json!({"exp": devstack::now() - 3600}));
    let mut forged = s.token(json!({}));
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    for (t, words) in [(expired, "expired"), (forged, "signature")] {
        let r = s.send("POST", "/mcp", &[("authorization", &bearer(&t))], INIT);
        assert_eq!(r.status, 401);
        let p = params(www(&r));
        let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(get("error").as_deref(), Some("invalid_token"));
        assert!(get("error_description").unwrap().contains(words), "{p:?}");
        assert!(get("resource_metadata").is_some());
    }
    assert!(s.backend.requests().is_empty());
}

#[test]
fn token_for_another_audience_is_refused() {
    let s = start(|_| {});
    let t = s.token(json!({"aud": "https://other-resource.example"}));
    let r = s.send("POST", "/mcp", &[("authorization", &bearer(&t))], INIT);
    assert_eq!(r.status, 401);
    assert!(www(&r).contains("error=\"invalid_token\""));
    assert!(s.backend.requests().is_empty());
}

#[test]
fn insufficient_scope_is_403_naming_every_needed_scope() {
    let s = start(|_| {});
    let t = s.token(json!({"scope": "mcp.tools calculator.add"}));
    let body = br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"admin","arguments":{}}}"#;
    let r = s.send(
        "POST",
        "/mcp",
        &[
            ("authorization", &bearer(&t)),
            ("content-type", "application/json"),
        ],
        body,
    );
    assert_eq!(r.status, 403);
    let p = params(www(&r));
    let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("error").as_deref(), Some("insufficient_scope"));
    // Every scope the operation needs (held ones too), so one re-authorization suffices.
    let mut scopes: Vec<String> = get("scope")
        .unwrap()
        .split(' ')
        .map(str::to_string)
        .collect();
    scopes.sort();
    assert_eq!(scopes, ["admin.write", "calculator.add", "mcp.tools"]);
    assert!(s.backend.requests().is_empty());
}

#[test]
fn token_in_the_query_string_is_rejected() {
    let s = start(|_| {});
    let t = s.token(json!({}));
    // RFC 6750 §2.3's parameter name, also percent-encoded and after other parameters.
    for q in ["access_token", "access%5Ftoken", "a=1&access_token"] {
        let path = format!("/mcp?{q}={t}");
        let r = s.send("POST", &path, &[], INIT);
        assert!(r.status == 400 || r.status == 401, "{q}: {}", r.status);
        assert!(!r.text().contains(&t));
        // Even alongside a valid header token.
        let r = s.send("POST", &path, &[("authorization", &bearer(&t))], INIT);
        assert_eq!(r.status, 400, "{q}");
    }
    assert!(s.backend.requests().is_empty());
}

#[test]
fn token_is_required_on_post_get_and_delete() {
    let s = start(|_| {});
    for m in ["POST", "GET", "DELETE"] {
        let r = s.send(m, "/mcp", &[("accept", "text/event-stream")], b"");
        assert_eq!(r.status, 401, "{m}");
        assert!(www(&r).starts_with("Bearer "), "{m}");
    }
    assert!(s.backend.requests().is_empty());
    let t = s.token(json!({}));
    for m in ["GET", "DELETE"] {
        let r = s.send(m, "/mcp", &[("authorization", &bearer(&t))], b"");
        assert_eq!(r.status, 200, "{m}");
    }
}

#[test]
fn cors_preflight_passes_without_a_token() {
    let s = start(|_| {});
    let r = s.send(
        "OPTIONS",
        "/mcp",
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, mcp-session-id, mcp-protocol-version",
            ),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-session-id",
        "mcp-protocol-version",
    ] {
        assert!(allowed.contains(h), "{h} not allowed: {allowed}");
    }
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"));
}

#[test]
fn backend_never_receives_the_token_unless_forward_is_set() {
    let s = start(|_| {});
    let t = s.token(json!({}));
    let r = s.send(
        "GET",
        "/mcp",
        &[("authorization", &bearer(&t)), ("x-test-id", "noforward")],
        b"",
    );
    assert_eq!(r.status, 200);
    let seen = s.backend.requests();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].has_header("authorization"));
    assert!(seen[0].headers.iter().all(|(_, v)| !v.contains(&t)));

    let s = start(|c| c["providers"]["as"]["forward"] = json!(true));
    let t = s.token(json!({}));
    let r = s.send("GET", "/mcp", &[("authorization", &bearer(&t))], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        s.backend.requests()[0].header("authorization"),
        Some(bearer(&t).as_str())
    );
}

#[test]
fn every_challenge_parameter_is_quoted_and_present_once() {
    let s = start(|_| {});
    let good = s.token(json!({}));
    let expired = s.token(json!({"exp": devstack::now() - 3600}));
    let call =
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"add","arguments":{}}}"#;
    let cases: Vec<(String, &[u8])> = vec![
        (String::new(), INIT),
        (bearer(&expired), INIT),
        ("Bearer a.b".into(), INIT),
        (bearer(&good), call),
    ];
    for (auth, body) in cases {
        let mut h = vec![("content-type", "application/json")];
        if !auth.is_empty() {
            h.push(("authorization", &auth));
        }
        let r = s.send("POST", "/mcp", &h, body);
        assert!(r.status == 401 || r.status == 403, "{}", r.status);
        assert_eq!(r.header_all("www-authenticate").len(), 1);
        let p = params(www(&r));
        let mut names: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "repeated parameter in {}", www(&r));
        assert!(names.contains(&"resource_metadata"));
    }
}

#[test]
fn disallowed_origin_is_refused_at_the_edge() {
    let s = start(|c| c["allowed_origins"] = json!(["https://app.example.com"]));
    let t = s.token(json!({}));
    let r = s.send(
        "GET",
        "/mcp",
        &[
            ("authorization", &bearer(&t)),
            ("origin", "https://evil.example"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let ok = s.send(
        "GET",
        "/mcp",
        &[
            ("authorization", &bearer(&t)),
            ("origin", "https://app.example.com"),
        ],
        b"",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(ok
        .header("access-control-expose-headers")
        .unwrap_or("")
        .contains("Mcp-Session-Id"));
    assert_eq!(s.backend.requests().len(), 1);
}
