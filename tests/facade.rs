//! Issue 19: the sign-in façade (`authorization_server`) on the real Envoy with the built
//! module, in front of the dev IdP (confidential client, auto-approving `/authorize` with
//! PKCE) and the demo MCP server.
//!
//! A scripted client (plain HTTP, no browser) walks the whole flow through Envoy: RFC 8414
//! metadata and the PRM naming the façade → `POST /register` → `GET /authorize` (consent
//! page with framing protection) → `POST /consent` (CSRF cookie + field) → the dev IdP's
//! `/authorize` with the façade's own client id, callback and PKCE → the façade callback →
//! the client's redirect with the façade code, `state` and `iss` → `POST /token` (the
//! upstream code redeemed by the filter's callout) → an MCP `tools/call` with the access
//! token. Then the hostile cases: replayed code, wrong verifier, tampered client id,
//! unregistered redirect URI (a page, never a redirect), consent without the CSRF cookie,
//! and an unreachable token endpoint; and no secret in Envoy's log.
//!
//! `upstream.discovery`: the façade reads the Entra-mode dev IdP's metadata document and
//! signs in through the endpoints it names; with the document unreachable (or naming another
//! issuer) `/authorize` answers a 503 page and `/token` a 503 `temporarily_unavailable`,
//! with log lines saying why.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::entra::{EntraConfig, DEFAULT_APP_ID, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpClient, McpDemo, McpDemoConfig};
use serde_json::{json, Value};
use support::envoy::free_port;
use support::facade::{challenge, cookies, form, hidden, param, split_url};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

/// 32 bytes, base64 (a test key: never use a fixed key in production).
const SEAL_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const CLIENT_SECRET: &str = "facade-secret-do-not-log";
const CLIENT_REDIRECT: &str = "http://localhost:7777/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Stack {
    idp: Idp,
    _mcp: McpDemo,
    envoy: Envoy,
    base: String,
}

/// `token_port`: where the façade's token callout goes (`None`: the dev IdP).
fn start(token_port: Option<u16>) -> Stack {
    start_with(token_port, |b| b)
}

fn start_with(token_port: Option<u16>, edit: impl FnOnce(EnvoyBuilder) -> EnvoyBuilder) -> Stack {
    let idp = Idp::start(IdpConfig {
        clients: vec![(
            "facade-client".into(),
            CLIENT_SECRET.into(),
            vec!["mcp:tools".into(), "openid".into()],
        )],
        ..IdpConfig::default()
    });
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = json!({
        "providers": {"idp": {
            "issuer": idp.issuer(),
            // send_resource is off: the dev IdP then issues its default audience.
            "audiences": [idp.audience()],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
            "algorithms": ["RS256", "ES256"]
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}}],
        "protected_resource": {
            "resource": format!("{base}/mcp"),
            "scopes_supported": ["mcp:tools"]
        },
        "authorization_server": {
            "provider_name": "idp",
            "sealing_keys_env": ["FACADE_SEAL_KEY"],
            "redirect_uris": ["http://localhost/*"],
            "upstream": {
                "authorization_endpoint": idp.authorize_url(),
                "token_endpoint": {"uri": idp.token_url(), "cluster": "idp_token", "timeout": "2s"},
                "client_id": "facade-client",
                "client_secret_env": "FACADE_CLIENT_SECRET"
            },
            "body_timeout": "1s"
        }
    });
    let builder = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(mcp.port())
        .extra_cluster("idp", idp.port())
        .extra_cluster("idp_token", token_port.unwrap_or(idp.port()))
        .listen_port(port)
        .vm_env("FACADE_SEAL_KEY", SEAL_KEY)
        .vm_env("FACADE_CLIENT_SECRET", CLIENT_SECRET);
    let envoy = edit(builder).start().unwrap();
    Stack {
        idp,
        _mcp: mcp,
        envoy,
        base,
    }
}

impl Stack {
    fn port(&self) -> u16 {
        self.envoy.port()
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http::request(self.port(), "GET", path, headers, b"")
    }

    fn post_form(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        http::request(self.port(), "POST", path, &all, body.as_bytes())
    }

    fn register(&self) -> String {
        let body = json!({
            "client_name": "facade-test",
            "redirect_uris": [CLIENT_REDIRECT],
            "token_endpoint_auth_method": "none"
        })
        .to_string();
        let r = http::request(
            self.port(),
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["client_id"].as_str().unwrap().to_string()
    }

    fn authorize_path(&self, client_id: &str, redirect: &str, verifier: &str) -> String {
        format!(
            "/authorize?{}",
            form(&[
                ("client_id", client_id),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("state", "client-state"),
                ("code_challenge", &challenge(verifier)),
                ("code_challenge_method", "S256"),
                ("resource", &format!("{}/mcp", self.base)),
                ("scope", "mcp:tools"),
            ])
        )
    }

    /// Register → authorize → consent → IdP → callback: the client id and façade code.
    fn code(&self, verifier: &str) -> (String, String) {
        let client_id = self.register();
        let page = self.get(
            &self.authorize_path(&client_id, CLIENT_REDIRECT, verifier),
            &[],
        );
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        let body = form(&[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("action", "approve"),
        ]);
        let jar = cookies(&page);
        let approved = self.post_form(
            "/consent",
            &body,
            &[("cookie", &jar), ("origin", &self.base)],
        );
        assert_eq!(approved.status, 303, "{}", approved.text());
        let to_idp = approved.header("location").unwrap().to_string();
        let (idp_port, idp_path) = split_url(&to_idp);
        assert_eq!(idp_port, self.idp.port());
        let from_idp = http::get(idp_port, &idp_path);
        assert_eq!(from_idp.status, 302, "{}", from_idp.text());
        let back = from_idp.header("location").unwrap().to_string();
        assert!(
            back.starts_with(&format!("{}/auth/callback?", self.base)),
            "{back}"
        );
        let (_, callback_path) = split_url(&back);
        let done = self.get(&callback_path, &[("cookie", &cookies(&approved))]);
        assert_eq!(done.status, 302, "{}", done.text());
        let loc = done.header("location").unwrap();
        assert!(loc.starts_with(&format!("{CLIENT_REDIRECT}?")), "{loc}");
        assert_eq!(param(loc, "state").as_deref(), Some("client-state"));
        assert_eq!(param(loc, "iss").as_deref(), Some(self.base.as_str()));
        (client_id, param(loc, "code").unwrap())
    }

    fn token(&self, client_id: &str, code: &str, verifier: &str) -> Response {
        self.post_form(
            "/token",
            &form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", client_id),
                ("redirect_uri", CLIENT_REDIRECT),
                ("code_verifier", verifier),
                ("resource", &format!("{}/mcp", self.base)),
            ]),
            &[],
        )
    }
}

fn no_secret_in_log(envoy: &Envoy) {
    let log = envoy.logs();
    for secret in [CLIENT_SECRET, SEAL_KEY] {
        assert!(!log.contains(secret), "a secret is in Envoy's log");
    }
}

#[test]
fn sign_in_through_the_facade_then_call_a_tool() {
    let s = start(None);

    // RFC 8414 metadata, answered by the filter.
    let m = s.get("/.well-known/oauth-authorization-server", &[]);
    assert_eq!(m.status, 200, "{}", m.text());
    let m = m.json();
    assert_eq!(m["issuer"], s.base);
    assert_eq!(m["authorization_endpoint"], format!("{}/authorize", s.base));
    assert_eq!(m["token_endpoint"], format!("{}/token", s.base));
    assert_eq!(m["registration_endpoint"], format!("{}/register", s.base));
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);

    // The 401 points at the PRM, which names the façade.
    let r = http::request(
        s.port(),
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 401);
    let www = r.header("www-authenticate").unwrap().to_string();
    let prm_url = www
        .split("resource_metadata=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (_, prm_path) = split_url(&prm_url);
    let prm = s.get(&prm_path, &[]);
    assert_eq!(prm.status, 200);
    assert_eq!(prm.json()["authorization_servers"], json!([s.base]));

    // The consent page cannot be framed.
    let client_id = s.register();
    let page = s.get(
        &s.authorize_path(&client_id, CLIENT_REDIRECT, VERIFIER),
        &[],
    );
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));

    // Consent approved: to the IdP with the façade's own client, callback and PKCE.
    let html = page.text();
    let body = form(&[
        ("request", &hidden(&html, "request")),
        ("csrf", &hidden(&html, "csrf")),
        ("action", "approve"),
    ]);
    let approved = s.post_form(
        "/consent",
        &body,
        &[("cookie", &cookies(&page)), ("origin", &s.base)],
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    let to_idp = approved.header("location").unwrap();
    assert!(to_idp.starts_with(&s.idp.authorize_url()), "{to_idp}");
    assert_eq!(param(to_idp, "client_id").as_deref(), Some("facade-client"));
    assert_eq!(
        param(to_idp, "redirect_uri"),
        Some(format!("{}/auth/callback", s.base))
    );
    assert_eq!(
        param(to_idp, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_ne!(param(to_idp, "code_challenge"), Some(challenge(VERIFIER)));
    assert_eq!(param(to_idp, "resource"), None, "send_resource is off");

    // The whole flow, then the token through the callout.
    let (client_id, code) = s.code(VERIFIER);
    let t = s.token(&client_id, &code, VERIFIER);
    assert_eq!(t.status, 200, "{}\n{}", t.text(), s.envoy.logs());
    assert_eq!(t.header("cache-control"), Some("no-store"));
    let t = t.json();
    let access = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(s.idp.tokens_issued(), 1);

    // The token works for MCP through the same Envoy.
    let mut c = McpClient::new(&format!("{}/mcp", s.base))
        .with_header("authorization", &format!("Bearer {access}"));
    c.initialize().unwrap();
    assert_eq!(
        c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
        "5"
    );

    // The façade code is single-use.
    let replay = s.token(&client_id, &code, VERIFIER);
    assert_eq!(replay.status, 400, "{}", replay.text());
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert_eq!(s.idp.tokens_issued(), 1);

    // Counters per endpoint and outcome.
    assert!(s.envoy.filter_stat("facade.token.2xx") >= 1);
    assert!(s.envoy.filter_stat("facade.upstream_ok") >= 1);
    no_secret_in_log(&s.envoy);
}

#[test]
fn hostile_requests_are_refused() {
    let s = start(None);

    // Wrong PKCE verifier.
    let (client_id, code) = s.code(VERIFIER);
    let wrong = "A".repeat(43);
    let r = s.token(&client_id, &code, &wrong);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_grant");

    // Another client's id (tampered) at /token.
    let (client_id, code) = s.code(VERIFIER);
    let mut bytes = client_id.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let r = s.token(&tampered, &code, VERIFIER);
    assert!(matches!(r.status, 400 | 401), "{} {}", r.status, r.text());
    assert_eq!(s.idp.tokens_issued(), 0);

    // Tampered client id at /authorize: a page, never a redirect.
    let r = s.get(&s.authorize_path(&tampered, CLIENT_REDIRECT, VERIFIER), &[]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("location"), None);

    // A redirect URI the client did not register: a page, never a redirect.
    let client_id = s.register();
    for evil in [
        "https://evil.example/cb",
        "http://localhost@evil.example/cb",
    ] {
        let r = s.get(&s.authorize_path(&client_id, evil, VERIFIER), &[]);
        assert_eq!(r.status, 400, "{evil}: {}", r.text());
        assert_eq!(r.header("location"), None, "{evil}");
    }

    // Consent without the CSRF cookie.
    let page = s.get(
        &s.authorize_path(&client_id, CLIENT_REDIRECT, VERIFIER),
        &[],
    );
    assert_eq!(page.status, 200);
    let html = page.text();
    let body = form(&[
        ("request", &hidden(&html, "request")),
        ("csrf", &hidden(&html, "csrf")),
        ("action", "approve"),
    ]);
    let r = s.post_form("/consent", &body, &[("origin", &s.base)]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("location"), None);

    // Façade paths never reach the backend (the demo server would answer 404 JSON-RPC).
    let r = s.get("/register", &[]);
    assert_eq!(r.status, 405);
    no_secret_in_log(&s.envoy);
}

#[test]
fn unreachable_token_endpoint_is_a_clear_error() {
    // Nothing listens on this port.
    let dead = free_port();
    let s = start(Some(dead));
    let (client_id, code) = s.code(VERIFIER);
    let r = s.token(&client_id, &code, VERIFIER);
    assert!(matches!(r.status, 502..=504), "{} {}", r.status, r.text());
    let v: Value = r.json();
    assert_eq!(v["error"], "server_error", "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert_eq!(
        d, "the identity provider's token endpoint could not be reached",
        "{v}"
    );
    assert!(
        s.envoy.wait_for_log(
            "façade token: no answer from the upstream token endpoint (cluster idp_token)",
            std::time::Duration::from_secs(2)
        ) && s.envoy.logs().contains("connection failed"),
        "{}",
        s.envoy.logs()
    );
    assert!(s.envoy.filter_stat("facade.upstream_unreachable") >= 1);
    no_secret_in_log(&s.envoy);
}

#[test]
fn a_body_that_never_reaches_the_filter_fails_closed_naming_the_setting() {
    // Without allow_on_headers_stop_iteration the body of a POST paused in the header phase
    // never reaches the filter: /token must refuse (408), not hang or pass to the backend.
    let s = start_with(None, |b| {
        b.map_yaml(|y| {
            y.replace(
                "allow_on_headers_stop_iteration: true",
                "allow_on_headers_stop_iteration: false",
            )
        })
    });
    let r = s.post_form(
        "/token",
        &form(&[("grant_type", "authorization_code"), ("code", "x")]),
        &[],
    );
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(
        s.envoy.wait_for_log(
            "allow_on_headers_stop_iteration: true",
            std::time::Duration::from_secs(3)
        ),
        "{}",
        s.envoy.logs()
    );
}

// ---------------------------------------------------------------------------------------
// upstream.discovery: the upstream's endpoints from its metadata document

/// Envoy + the façade whose upstream endpoints come from `discovery_port`'s
/// `/.well-known/openid-configuration` (cluster `idp_meta`); the dev IdP in Entra mode
/// behind cluster `idp` for the keys.
fn start_discovery(
    discovery_port: Option<u16>,
    issuer: Option<&str>,
) -> (Idp, McpDemo, Envoy, String) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let app = DEFAULT_APP_ID;
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            redirect_uris: vec![format!("{base}/auth/callback")],
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let meta_port = discovery_port.unwrap_or(idp.port());
    let mut discovery = json!({"http_uri": {
        "uri": format!("http://127.0.0.1:{meta_port}/.well-known/openid-configuration"),
        "cluster": "idp_meta",
        "timeout": "1s"
    }});
    if let Some(i) = issuer {
        discovery["issuer"] = json!(i);
    }
    let cfg = json!({
        "providers": {"entra": {
            "issuer": idp.issuer(),
            "audiences": [app, format!("api://{app}")],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
            "algorithms": ["RS256"],
            "scope_claims": ["scp"],
            "scope_prefix": format!("api://{app}/")
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"}}],
        "protected_resource": {
            "resource": format!("{base}/mcp"),
            "scopes_supported": ["calculator.add"]
        },
        "authorization_server": {
            "provider_name": "entra",
            "sealing_keys_env": ["FACADE_SEAL_KEY"],
            "redirect_uris": ["http://localhost/*"],
            "upstream": {
                "discovery": discovery,
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret_env": "FACADE_CLIENT_SECRET",
                "scope_prefix": format!("api://{app}")
            },
            "body_timeout": "1s"
        }
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(mcp.port())
        .extra_cluster("idp", idp.port())
        .extra_cluster("idp_meta", meta_port)
        .listen_port(port)
        .vm_env("FACADE_SEAL_KEY", SEAL_KEY)
        .vm_env("FACADE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .start()
        .unwrap();
    (idp, mcp, envoy, base)
}

fn register_at(port: u16) -> String {
    let body = json!({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"});
    let r = http::request(
        port,
        "POST",
        "/register",
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["client_id"].as_str().unwrap().to_string()
}

fn authorize_at(base: &str, client_id: &str) -> String {
    format!(
        "/authorize?{}",
        form(&[
            ("client_id", client_id),
            ("redirect_uri", CLIENT_REDIRECT),
            ("response_type", "code"),
            ("state", "s1"),
            ("code_challenge", &challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("resource", &format!("{base}/mcp")),
            ("scope", "calculator.add"),
        ])
    )
}

fn token_form(base: &str, client_id: &str, code: &str) -> String {
    form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", CLIENT_REDIRECT),
        ("code_verifier", VERIFIER),
        ("resource", &format!("{base}/mcp")),
    ])
}

#[test]
fn upstream_discovery_finds_the_entra_endpoints_and_completes_a_sign_in() {
    let (idp, _mcp, envoy, base) = start_discovery(None, Some(&EntraConfig::default().issuer()));
    let port = envoy.port();
    assert!(
        envoy.wait_for_log(
            "sign-in façade: upstream metadata from",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        envoy.logs()
    );
    assert!(
        envoy
            .logs()
            .contains(&format!("authorization_endpoint {}", idp.authorize_url())),
        "{}",
        envoy.logs()
    );
    // Each worker VM fetches once; give the others their tick.
    std::thread::sleep(std::time::Duration::from_millis(500));

    let client_id = register_at(port);
    let page = http::get(port, &authorize_at(&base, &client_id));
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    let approved = http::request(
        port,
        "POST",
        "/consent",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", &cookies(&page)),
            ("origin", &base),
        ],
        form(&[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("action", "approve"),
        ])
        .as_bytes(),
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    // To the authorization endpoint the document named.
    let to_idp = approved.header("location").unwrap().to_string();
    assert!(to_idp.starts_with(&idp.authorize_url()), "{to_idp}");
    assert_eq!(
        param(&to_idp, "client_id").as_deref(),
        Some(DEFAULT_CLIENT_ID)
    );
    let (idp_port, idp_path) = split_url(&to_idp);
    let from_idp = http::get(idp_port, &idp_path);
    assert_eq!(from_idp.status, 302, "{}", from_idp.text());
    let (_, callback) = split_url(from_idp.header("location").unwrap());
    let done = http::request(
        port,
        "GET",
        &callback,
        &[("cookie", &cookies(&approved))],
        b"",
    );
    assert_eq!(done.status, 302, "{}", done.text());
    let code = param(done.header("location").unwrap(), "code").unwrap();

    // The code redeemed at the token endpoint the document named (the Entra-mode IdP
    // checks the client secret, the callback and PKCE).
    let t = http::request(
        port,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        token_form(&base, &client_id, &code).as_bytes(),
    );
    assert_eq!(t.status, 200, "{}\n{}", t.text(), envoy.logs());
    let access = t.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(idp.tokens_issued(), 1);
    let mut c = McpClient::new(&format!("{base}/mcp"))
        .with_header("authorization", &format!("Bearer {access}"));
    c.initialize().unwrap();
    assert_eq!(
        c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
        "5"
    );
    assert!(envoy.filter_stat_at_least("facade.upstream_metadata_ok", 1) >= 1);
    let log = envoy.logs();
    assert!(!log.contains(DEFAULT_CLIENT_SECRET) && !log.contains(SEAL_KEY));
}

#[test]
fn unreachable_upstream_metadata_is_503_with_a_page_a_json_error_and_a_log_line() {
    // Nothing listens where the metadata should be.
    let dead = free_port();
    let (_idp, _mcp, envoy, base) = start_discovery(Some(dead), None);
    let port = envoy.port();
    assert!(
        envoy.wait_for_log(
            "sign-in façade: upstream metadata http://127.0.0.1:",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        envoy.logs()
    );
    // What needs no upstream still works.
    let m = http::get(port, "/.well-known/oauth-authorization-server");
    assert_eq!(m.status, 200, "{}", m.text());
    let client_id = register_at(port);

    let page = http::get(port, &authorize_at(&base, &client_id));
    assert_eq!(page.status, 503, "{}", page.text());
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(
        page.text().contains("Sign-in temporarily unavailable"),
        "{}",
        page.text()
    );
    assert_eq!(page.header("location"), None);

    let t = http::request(
        port,
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        token_form(&base, &client_id, "whatever").as_bytes(),
    );
    assert_eq!(t.status, 503, "{}", t.text());
    let v = t.json();
    assert_eq!(v["error"], "temporarily_unavailable", "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("metadata (upstream.discovery) has not been fetched yet"),
        "{v}"
    );
    let log = envoy.logs();
    assert!(
        log.contains("façade authorize: answering 503: the upstream's metadata")
            && log.contains("façade token: answering 503"),
        "{log}"
    );
    assert!(
        log.contains("no response (timeout or connection failure)") && log.contains("retrying in"),
        "{log}"
    );
    assert!(envoy.filter_stat_at_least("facade.upstream_metadata_error", 1) >= 1);
    assert!(envoy.filter_stat_at_least("facade.upstream_metadata_missing", 2) >= 2);
}

#[test]
fn upstream_metadata_naming_another_issuer_is_refused_and_logged() {
    let (_idp, _mcp, envoy, base) = start_discovery(None, Some("https://other.example/v2.0"));
    assert!(
        envoy.wait_for_log(
            "differs from the configured upstream.discovery.issuer",
            std::time::Duration::from_secs(5)
        ),
        "{}",
        envoy.logs()
    );
    let client_id = register_at(envoy.port());
    let page = http::get(envoy.port(), &authorize_at(&base, &client_id));
    assert_eq!(page.status, 503, "{}", page.text());
}
