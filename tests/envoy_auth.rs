//! Issue "Foundation": the real Envoy (V8) with the built module, a recording backend and
//! real signed tokens. Every denial is checked for status, challenge, body and metric, and
//! the backend is checked to never have seen it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::recorder::Recorder;
use devstack::{sign_jws, sign_raw, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

const ISS: &str = "https://idp.test/tenant/v2.0";
const AUD: &str = "api://mcp-demo";

struct Keys {
    rsa: SigningKey,
    ec: SigningKey,
    ed: SigningKey,
}

fn keys() -> Keys {
    Keys {
        rsa: SigningKey::cached(KeyKind::Rsa2048, "rsa-1"),
        ec: SigningKey::cached(KeyKind::EcP256, "ec-1"),
        ed: SigningKey::cached(KeyKind::Ed25519, "ed-1"),
    }
}

fn jwks(k: &Keys) -> String {
    KeyRing::new(vec![k.rsa.clone(), k.ec.clone(), k.ed.clone()])
        .jwks()
        .to_string()
}

fn plugin_config(k: &Keys) -> Value {
    json!({
        "providers": {"dev": {
            "issuer": ISS,
            "audiences": [AUD, "00000000-1111-2222-3333-444444444444"],
            "local_jwks": {"inline_string": jwks(k)},
            "algorithms": ["RS256", "PS256", "ES256", "EdDSA"],
            "claim_to_headers": [
                {"claim_name": "sub", "header_name": "x-mcp-subject"},
                {"claim_name": "roles", "header_name": "x-mcp-roles"},
                {"claim_name": "scp", "header_name": "x-mcp-scope"}
            ]
        }},
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "dev"}},
            {"match": {"path": "/healthz"}}
        ],
        "protected_resource": {
            "scopes_supported": ["mcp.tools", "mcp.admin"],
            "resource_name": "Demo MCP server"
        }
    })
}

fn now() -> u64 {
    devstack::now()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "user-42", "exp": now() + 600, "iat": now() - 5,
           "nbf": now() - 5, "roles": ["reader", "writer"], "scp": "mcp.tools"})
}

fn token(key: &SigningKey, alg: &str, claims: &Value) -> String {
    sign_jws(
        key,
        alg,
        &json!({"alg": alg, "kid": key.kid, "typ": "JWT"}),
        claims,
    )
}

struct Stack {
    backend: Recorder,
    envoy: Envoy,
    keys: Keys,
}

fn start() -> Stack {
    let backend = Recorder::start();
    let keys = keys();
    let envoy = EnvoyBuilder::new(&plugin_config(&keys).to_string())
        .backend_port(backend.port())
        .start()
        .unwrap();
    Stack {
        backend,
        envoy,
        keys,
    }
}

impl Stack {
    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http::request(self.envoy.port(), method, path, headers, b"")
    }

    /// Requests the backend received carrying this test marker.
    fn seen(&self, marker: &str) -> Vec<devstack::recorder::RecordedRequest> {
        self.backend
            .requests()
            .into_iter()
            .filter(|r| {
                r.headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("x-test-id") && v == marker)
            })
            .collect()
    }

    fn stat(&self, name: &str) -> u64 {
        self.envoy.filter_stat(name)
    }

    fn stat_at_least(&self, name: &str, min: u64) -> u64 {
        self.envoy.filter_stat_at_least(name, min)
    }
}

fn header_values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn valid_tokens_of_each_algorithm_pass_and_the_backend_sees_claims_not_the_token() {
    let s = start();
    let cases = [
        ("RS256", &s.keys.rsa),
        ("PS256", &s.keys.rsa),
        ("ES256", &s.keys.ec),
        ("EdDSA", &s.keys.ed),
    ];
    for (alg, key) in cases {
        let t = token(key, alg, &claims());
        let auth = format!("Bearer {t}");
        let marker = format!("valid-{alg}");
        let r = s.send(
            "POST",
            "/mcp",
            &[("authorization", &auth), ("x-test-id", &marker)],
        );
        assert_eq!(r.status, 200, "{alg}: {}", r.text());
        let seen = s.seen(&marker);
        assert_eq!(seen.len(), 1, "{alg}: backend saw {} requests", seen.len());
        let h = &seen[0].headers;
        assert_eq!(header_values(h, "x-mcp-subject"), vec!["user-42"], "{alg}");
        assert_eq!(
            header_values(h, "x-mcp-roles"),
            vec!["[\"reader\",\"writer\"]"]
        );
        assert_eq!(header_values(h, "x-mcp-scope"), vec!["mcp.tools"]);
        assert!(
            header_values(h, "authorization").is_empty(),
            "{alg}: the token reached the backend"
        );
    }
    // No kid: accepted because exactly one key in the set fits ES256.
    let t = sign_jws(&s.keys.ec, "ES256", &json!({"alg": "ES256"}), &claims());
    let auth = format!("Bearer {t}");
    assert_eq!(
        s.send("GET", "/mcp", &[("authorization", &auth)]).status,
        200
    );
    // Scheme is case-insensitive; aud may be an array containing one accepted value.
    let mut c = claims();
    c["aud"] = json!([
        "https://graph.example",
        "00000000-1111-2222-3333-444444444444"
    ]);
    let t = token(&s.keys.rsa, "RS256", &c);
    for scheme in ["bearer", "BEARER"] {
        let auth = format!("{scheme} {t}");
        let r = s.send("GET", "/mcp", &[("authorization", &auth)]);
        assert_eq!(r.status, 200, "{scheme}");
    }
    assert!(s.stat_at_least("allowed", 6) >= 6);
    // The same token again: on a worker that saw it before the signature check is skipped
    // (3 requests over 2 workers: some worker sees it twice).
    let t = token(&s.keys.rsa, "RS256", &claims());
    let auth = format!("Bearer {t}");
    let hits = s.stat("token_cache_hit");
    for _ in 0..3 {
        assert_eq!(
            s.send("GET", "/mcp", &[("authorization", &auth)]).status,
            200
        );
    }
    assert!(
        s.stat_at_least("token_cache_hit", hits + 1) > hits,
        "second use came from the cache"
    );
}

#[test]
fn every_failure_class_has_its_status_challenge_reason_and_never_reaches_the_backend() {
    let s = start();
    let k = &s.keys;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        token(&k.rsa, "RS256", &c)
    };
    let header_only = |h: Value| sign_jws(&k.rsa, "RS256", &h, &claims());
    let hs256 = {
        // HS256 "signed" with the RSA public key bytes: classic key confusion.
        let h = devstack::b64url(br#"{"alg":"HS256","kid":"rsa-1"}"#);
        let p = devstack::b64url(claims().to_string().as_bytes());
        format!("{h}.{p}.{}", devstack::b64url(&[7u8; 32]))
    };
    let unsigned = {
        let h = devstack::b64url(br#"{"alg":"none"}"#);
        let p = devstack::b64url(claims().to_string().as_bytes());
        format!("{h}.{p}.")
    };
    let tampered = {
        let t = token(&k.rsa, "RS256", &claims());
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims();
        c["sub"] = json!("admin");
        format!(
            "{}.{}.{}",
            parts[0],
            devstack::b64url(c.to_string().as_bytes()),
            parts[2]
        )
    };
    let dup_exp = sign_raw(
        &k.rsa,
        "RS256",
        br#"{"alg":"RS256","kid":"rsa-1"}"#,
        format!(
            r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"exp":{}}}"#,
            now() + 600,
            now() + 9_999_999
        )
        .as_bytes(),
    );

    // (name, token or None, status, metric reason, text in error_description)
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 120)),
            401,
            "expired",
            "expired",
        ),
        (
            "nbf-future",
            with(&|c| c["nbf"] = json!(now() + 3600)),
            401,
            "not_yet_valid",
            "not valid for another",
        ),
        (
            "iat-future",
            with(&|c| c["iat"] = json!(now() + 3600)),
            401,
            "not_yet_valid",
            "in the future",
        ),
        (
            "no-exp",
            with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
            401,
            "malformed",
            "no exp claim",
        ),
        (
            "exp-string",
            with(&|c| c["exp"] = json!("9999999999")),
            401,
            "malformed",
            "exp has the wrong type",
        ),
        (
            "issuer-slash",
            with(&|c| c["iss"] = json!(format!("{ISS}/"))),
            401,
            "issuer",
            "is not accepted",
        ),
        (
            "issuer-case",
            with(&|c| c["iss"] = json!(ISS.to_uppercase())),
            401,
            "issuer",
            "is not accepted",
        ),
        (
            "audience",
            with(&|c| c["aud"] = json!("api://other")),
            401,
            "audience",
            "audience is not accepted",
        ),
        (
            "audience-empty",
            with(&|c| c["aud"] = json!([])),
            401,
            "audience",
            "audience is not accepted",
        ),
        (
            "bad-signature",
            token(
                &SigningKey::cached(KeyKind::Rsa2048, "rsa-other").with_kid("rsa-1"),
                "RS256",
                &claims(),
            ),
            401,
            "bad_signature",
            "signature verification failed",
        ),
        (
            "tampered",
            tampered,
            401,
            "bad_signature",
            "signature verification failed",
        ),
        (
            "unknown-kid",
            header_only(json!({"alg":"RS256","kid":"nope"})),
            401,
            "unknown_kid",
            "no key with kid",
        ),
        (
            "kid-wrong-type",
            header_only(json!({"alg":"RS256","kid":"ec-1"})),
            401,
            "algorithm",
            "cannot verify RS256",
        ),
        ("alg-none", unsigned, 401, "algorithm", "alg none"),
        (
            "hs256",
            hs256,
            401,
            "algorithm",
            "symmetric algorithm HS256",
        ),
        (
            "alg-not-allowed",
            token(&k.rsa, "RS384", &claims()),
            401,
            "algorithm",
            "RS384 is not allowed",
        ),
        (
            "crit",
            header_only(json!({"alg":"RS256","kid":"rsa-1","crit":["exp"]})),
            401,
            "malformed",
            "critical header",
        ),
        (
            "two-segments",
            "abc.def".into(),
            401,
            "malformed",
            "3 dot-separated parts",
        ),
        ("jwe", "a.b.c.d.e".into(), 401, "malformed", "JWE"),
        (
            "duplicate-exp",
            dup_exp,
            401,
            "malformed",
            "duplicate member",
        ),
        (
            "oversize",
            "a".repeat(9000),
            401,
            "too_large",
            "over the 8192-byte limit",
        ),
    ];
    for (name, tok, status, reason, text) in &cases {
        let before = s.stat(&format!("denied.{reason}"));
        let auth = format!("Bearer {tok}");
        let marker = format!("fail-{name}");
        let r = s.send(
            "POST",
            "/mcp",
            &[("authorization", &auth), ("x-test-id", &marker)],
        );
        assert_eq!(r.status, *status, "{name}: {}", r.text());
        let www = r.header("www-authenticate").unwrap_or_default().to_string();
        assert!(
            www.starts_with("Bearer error=\"invalid_token\", error_description=\""),
            "{name}: {www}"
        );
        assert!(
            www.contains(&format!(
            "resource_metadata=\"http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp\"",
            s.envoy.port()
        )),
            "{name}: {www}"
        );
        assert!(
            www.contains("scope=\"mcp.tools mcp.admin\""),
            "{name}: {www}"
        );
        let body = r.json();
        assert_eq!(body["error"], "invalid_token", "{name}");
        let desc = body["error_description"].as_str().unwrap_or_default();
        assert!(
            desc.contains(text),
            "{name}: {desc:?} should contain {text:?}"
        );
        assert!(
            www.contains(&format!("error_description=\"{desc}\"")),
            "{name}"
        );
        assert_eq!(
            r.header("access-control-expose-headers"),
            Some("WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version")
        );
        assert_eq!(
            s.stat_at_least(&format!("denied.{reason}"), before + 1),
            before + 1,
            "{name}: metric {reason}"
        );
        assert!(s.seen(&marker).is_empty(), "{name}: reached the backend");
        if tok.len() > 20 {
            assert!(
                !s.envoy.logs().contains(tok.as_str()),
                "{name}: token logged"
            );
        }
    }

    // Missing token: 401 without an error code.
    let r = s.send("POST", "/mcp", &[("x-test-id", "missing")]);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(
            "Bearer resource_metadata=\"http://127.0.0.1:{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp.tools mcp.admin\"",
            s.envoy.port()
        ).as_str())
    );
    let r = s.send(
        "GET",
        "/mcp",
        &[
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("x-test-id", "missing"),
        ],
    );
    assert_eq!(r.status, 401);
    assert!(!r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error="));
    assert!(s.seen("missing").is_empty());

    // Ambiguous credentials: 400 invalid_request.
    let good = format!("Bearer {}", token(&k.rsa, "RS256", &claims()));
    let raw = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {good}\r\nAuthorization: {good}\r\nx-test-id: two-headers\r\nConnection: close\r\n\r\n"
    );
    let r = http::raw(s.envoy.port(), raw.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("error=\"invalid_request\""));
    let r = s.send(
        "GET",
        "/mcp?access_token=abc",
        &[("authorization", &good), ("x-test-id", "query")],
    );
    assert_eq!(r.status, 400);
    let r = s.send("GET", "/mcp?access_token=abc", &[("x-test-id", "query")]);
    assert_eq!(r.status, 400, "a query-only token is never accepted");
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(s.seen("two-headers").is_empty() && s.seen("query").is_empty());

    // No rule: fail closed with 403.
    let r = s.send(
        "GET",
        "/admin",
        &[("authorization", &good), ("x-test-id", "no-rule")],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"], "access_denied");
    assert!(s.seen("no-rule").is_empty());

    // Nothing denied above reached the backend at all.
    assert!(
        s.backend.requests().is_empty(),
        "backend saw {:?}",
        s.backend.requests().len()
    );
    let logs = s.envoy.logs();
    assert!(
        !logs.contains(&good["Bearer ".len()..]),
        "a token was logged"
    );
}

/// Envoy picks the route before the filter runs; each request-header edit of a Wasm filter
/// makes it pick again. So a route may match on a claim header (as with jwt_authn's
/// `claim_to_headers` and `clear_route_cache`), and a spoofed claim header cannot choose a route:
/// the filter strips it, and the route is matched again without it.
#[test]
fn routes_are_matched_again_on_the_claim_headers_the_filter_writes() {
    let backend = Recorder::start();
    let keys = keys();
    let envoy = EnvoyBuilder::new(&plugin_config(&keys).to_string())
        .backend_port(backend.port())
        .map_yaml(|y| {
            let default = "              - match: { prefix: \"/\" }\n                route: { cluster: backend, timeout: 0s }\n";
            assert!(y.contains(default), "route block moved: {y}");
            y.replace(
                default,
                "              - match:\n                  prefix: \"/\"\n                  headers:\n                  - name: x-mcp-subject\n                    string_match: { exact: user-42 }\n                route: { cluster: backend, timeout: 0s }\n              - match: { prefix: \"/\" }\n                direct_response: { status: 418, body: { inline_string: \"no claim route\" } }\n",
            )
        })
        .start()
        .unwrap();
    let send = |path: &str, headers: &[(&str, &str)]| {
        http::request(envoy.port(), "GET", path, headers, b"")
    };
    let t = format!("Bearer {}", token(&keys.rsa, "RS256", &claims()));
    // The header the filter wrote chose the backend route.
    let r = send(
        "/mcp",
        &[("authorization", &t), ("x-test-id", "claim-route")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Another subject: the same filter, the other route.
    let mut other = claims();
    other["sub"] = json!("user-7");
    let t7 = format!("Bearer {}", token(&keys.rsa, "RS256", &other));
    let r = send("/mcp", &[("authorization", &t7)]);
    assert_eq!((r.status, r.text().as_str()), (418, "no claim route"));
    // A spoofed claim header matched the backend route first; the filter removed it, and
    // the route was matched again.
    let r = send(
        "/healthz",
        &[("x-mcp-subject", "user-42"), ("x-test-id", "spoof-route")],
    );
    assert_eq!((r.status, r.text().as_str()), (418, "no claim route"));
    let r = send(
        "/mcp",
        &[
            ("authorization", &t7),
            ("x-mcp-subject", "user-42"),
            ("x-test-id", "spoof-route"),
        ],
    );
    assert_eq!((r.status, r.text().as_str()), (418, "no claim route"));
    let seen: Vec<_> = backend
        .requests()
        .into_iter()
        .filter(|r| {
            r.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("x-test-id"))
        })
        .collect();
    assert_eq!(
        seen.len(),
        1,
        "only the claim-routed request reaches the backend"
    );
    assert_eq!(
        header_values(&seen[0].headers, "x-test-id"),
        vec!["claim-route"]
    );
    assert_eq!(
        header_values(&seen[0].headers, "x-mcp-subject"),
        vec!["user-42"]
    );
}

#[test]
fn spoofed_claim_headers_never_reach_the_backend() {
    let s = start();
    let t = format!("Bearer {}", token(&s.keys.ed, "EdDSA", &claims()));
    let r = s.send(
        "POST",
        "/mcp",
        &[
            ("authorization", &t),
            ("x-mcp-subject", "admin"),
            ("X-MCP-Roles", "[\"root\"]"),
            ("x-test-id", "spoof-protected"),
        ],
    );
    assert_eq!(r.status, 200);
    let seen = s.seen("spoof-protected");
    assert_eq!(
        header_values(&seen[0].headers, "x-mcp-subject"),
        vec!["user-42"]
    );
    assert_eq!(
        header_values(&seen[0].headers, "x-mcp-roles"),
        vec!["[\"reader\",\"writer\"]"]
    );
    // A token without the claim: the spoofed header is removed, not kept.
    let mut c = claims();
    c.as_object_mut().unwrap().remove("roles");
    let t = format!("Bearer {}", token(&s.keys.ed, "EdDSA", &c));
    s.send(
        "POST",
        "/mcp",
        &[
            ("authorization", &t),
            ("x-mcp-roles", "[\"root\"]"),
            ("x-test-id", "spoof-absent"),
        ],
    );
    assert!(header_values(&s.seen("spoof-absent")[0].headers, "x-mcp-roles").is_empty());
    // Unprotected routes strip them too.
    let r = s.send(
        "GET",
        "/healthz",
        &[("x-mcp-subject", "admin"), ("x-test-id", "spoof-open")],
    );
    assert_eq!(r.status, 200);
    assert!(header_values(&s.seen("spoof-open")[0].headers, "x-mcp-subject").is_empty());
}

#[test]
fn protected_resource_metadata_is_served_at_the_edge() {
    let s = start();
    let port = s.envoy.port();
    let r = s.send("GET", "/.well-known/oauth-protected-resource/mcp", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r
        .header("cache-control")
        .unwrap_or_default()
        .contains("max-age"));
    let doc = r.json();
    assert_eq!(doc["resource"], format!("http://127.0.0.1:{port}/mcp"));
    assert_eq!(doc["authorization_servers"], json!([ISS]));
    assert_eq!(doc["scopes_supported"], json!(["mcp.tools", "mcp.admin"]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["resource_name"], "Demo MCP server");
    assert!(
        doc.get("resource_documentation").is_none(),
        "empty values are omitted"
    );

    let root = s
        .send("GET", "/.well-known/oauth-protected-resource", &[])
        .json();
    assert_eq!(root["resource"], format!("http://127.0.0.1:{port}"));

    let fwd = s
        .send(
            "GET",
            "/.well-known/oauth-protected-resource/mcp",
            &[("x-forwarded-proto", "https")],
        )
        .json();
    assert!(
        fwd["resource"]
            .as_str()
            .unwrap_or_default()
            .starts_with("http"),
        "{fwd}"
    );

    let pre = s.send(
        "OPTIONS",
        "/.well-known/oauth-protected-resource/mcp",
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));
    assert!(pre
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .contains("GET"));

    assert_eq!(
        s.send("POST", "/.well-known/oauth-protected-resource/mcp", &[])
            .status,
        405
    );
    for unknown in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource/healthz",
        "/.well-known/oauth-protected-resource/nothing",
    ] {
        let r = s.send("GET", unknown, &[]);
        assert_eq!(r.status, 404, "{unknown}");
        assert!(r.header("www-authenticate").is_none(), "{unknown}");
    }
    // Preflight on the MCP endpoint is answered at the edge, without a token.
    let pre = s.send(
        "OPTIONS",
        "/mcp",
        &[
            ("origin", "http://app.test"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, mcp-session-id",
            ),
            ("x-test-id", "preflight"),
        ],
    );
    assert_eq!(pre.status, 204);
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .contains("Authorization"));
    assert!(s.seen("preflight").is_empty());
    assert!(s.stat_at_least("prm_served", 3) >= 3);
    assert!(s.backend.requests().is_empty());
}

#[test]
fn configured_resource_drives_metadata_and_challenges() {
    let backend = Recorder::start();
    let keys = keys();
    let mut cfg = plugin_config(&keys);
    cfg["protected_resource"]["resource"] = json!("https://mcp.example.com/mcp");
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .start()
        .unwrap();
    let doc = http::get(envoy.port(), "/.well-known/oauth-protected-resource/mcp").json();
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
    let r = http::get(envoy.port(), "/mcp");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap_or_default().contains(
        "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    ));
}

#[test]
fn invalid_configurations_are_refused_and_name_the_field() {
    let keys = keys();
    let base = plugin_config(&keys);
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (
            mutate(&|v| v["surprise"] = json!(true)),
            "surprise: unknown field",
        ),
        (
            mutate(&|v| v["providers"]["dev"]["audiences"] = json!([])),
            "providers.dev.audiences: must list at least one audience",
        ),
        (
            mutate(&|v| v["providers"]["dev"]["algorithms"] = json!(["HS256"])),
            "providers.dev.algorithms[0]: symmetric algorithm HS256",
        ),
        (
            mutate(&|v| v["rules"][0]["requires"]["provider_name"] = json!("okta")),
            "rules[0].requires.provider_name: no provider named",
        ),
        (
            mutate(&|v| {
                v["providers"]["dev"]["local_jwks"]["inline_string"] = json!("{\"keys\": 1}")
            }),
            "providers.dev.local_jwks.inline_string: JWKS must be",
        ),
        (
            mutate(&|v| v["providers"]["dev"]["clock_skew_seconds"] = json!("60")),
            "providers.dev.clock_skew_seconds: invalid type",
        ),
        ("not json".to_string(), "invalid plugin configuration"),
    ];
    // Envoy starts take ~1 s each; run them two at a time.
    std::thread::scope(|scope| {
        for chunk in cases.chunks(2) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(cfg, expect)| {
                    scope.spawn(move || {
                        let log = EnvoyBuilder::new(cfg).start_expect_rejected();
                        assert!(
                            log.contains(expect),
                            "expected {expect:?} in the log:\n{log}"
                        );
                        assert!(log.contains("invalid plugin configuration"), "{log}");
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    });
}
