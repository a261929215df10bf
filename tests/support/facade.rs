//! A sign-in façade stack for Envoy-level tests (tests/facade_hostile.rs): Envoy with the
//! façade module, the dev IdP (plain, or in Entra mode for refresh tokens) and the demo MCP
//! server, and a scripted browser/client that walks the flow in plain HTTP.

use base64::Engine as _;
use devstack::entra::{EntraConfig, DEFAULT_APP_ID, DEFAULT_CLIENT_ID};
use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpDemo, McpDemoConfig};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::envoy::free_port;
use super::http::{self, Response};
use super::{Envoy, EnvoyBuilder};

/// 32 bytes, base64 (a test key: never use a fixed key in production).
pub const SEAL_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
/// The façade's client secret at the plain dev IdP.
pub const CLIENT_SECRET: &str = "facade-secret-do-not-log";
pub const CLIENT_REDIRECT: &str = "http://localhost:7777/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// How to start the stack.
pub struct Options {
    /// `consent` of `authorization_server` (`always`, `remember`).
    pub consent: &'static str,
    pub state_ttl: Option<&'static str>,
    pub code_ttl: Option<&'static str>,
    /// The dev IdP in Entra mode (refresh tokens with `offline_access`).
    pub entra: bool,
    pub log_level: &'static str,
    pub concurrency: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            consent: "always",
            state_ttl: None,
            code_ttl: None,
            entra: false,
            log_level: "info",
            concurrency: 2,
        }
    }
}

pub struct Stack {
    pub idp: Idp,
    _mcp: McpDemo,
    pub envoy: Envoy,
    pub base: String,
    /// The scope a client asks for.
    pub scope: &'static str,
    /// The façade's client secret at the IdP.
    pub secret: String,
}

pub fn start(o: Options) -> Stack {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let (idp, secret) = if o.entra {
        let idp = Idp::start(IdpConfig {
            entra: Some(EntraConfig {
                redirect_uris: vec![format!("{base}/auth/callback")],
                client_secret: "entra-secret-do-not-log".into(),
                ..EntraConfig::default()
            }),
            ..IdpConfig::default()
        });
        (idp, "entra-secret-do-not-log".to_string())
    } else {
        let idp = Idp::start(IdpConfig {
            clients: vec![(
                "facade-client".into(),
                CLIENT_SECRET.into(),
                vec!["mcp:tools".into(), "openid".into()],
            )],
            ..IdpConfig::default()
        });
        (idp, CLIENT_SECRET.to_string())
    };
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let app = DEFAULT_APP_ID;
    let (provider, upstream, scopes) = if o.entra {
        (
            json!({
                "issuer": idp.issuer(),
                "audiences": [app, format!("api://{app}")],
                "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
                "algorithms": ["RS256"],
                "scope_prefix": format!("api://{app}/")
            }),
            json!({
                "authorization_endpoint": idp.authorize_url(),
                "token_endpoint": {"uri": idp.token_url(), "cluster": "idp_token", "timeout": "2s"},
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret_env": "FACADE_CLIENT_SECRET",
                "scope_prefix": format!("api://{app}"),
                "extra_scopes": ["openid", "offline_access"]
            }),
            json!(["calculator.add"]),
        )
    } else {
        (
            json!({
                "issuer": idp.issuer(),
                "audiences": [idp.audience()],
                "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
                "algorithms": ["RS256", "ES256"]
            }),
            json!({
                "authorization_endpoint": idp.authorize_url(),
                "token_endpoint": {"uri": idp.token_url(), "cluster": "idp_token", "timeout": "2s"},
                "client_id": "facade-client",
                "client_secret_env": "FACADE_CLIENT_SECRET"
            }),
            json!(["mcp:tools"]),
        )
    };
    let mut server = json!({
        "provider_name": "idp",
        "sealing_keys_env": ["FACADE_SEAL_KEY"],
        "redirect_uris": ["http://localhost/*", "https://app.example.com/cb"],
        "upstream": upstream,
        "consent": o.consent,
        "body_timeout": "2s"
    });
    if let Some(t) = o.state_ttl {
        server["state_ttl"] = json!(t);
    }
    if let Some(t) = o.code_ttl {
        server["code_ttl"] = json!(t);
    }
    let cfg = json!({
        "providers": {"idp": provider},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}}],
        "protected_resource": {"resource": format!("{base}/mcp"), "scopes_supported": scopes},
        "authorization_server": server
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(mcp.port())
        .extra_cluster("idp", idp.port())
        .extra_cluster("idp_token", idp.port())
        .listen_port(port)
        .log_level(o.log_level)
        .concurrency(o.concurrency)
        .vm_env("FACADE_SEAL_KEY", SEAL_KEY)
        .vm_env("FACADE_CLIENT_SECRET", &secret)
        .start()
        .unwrap();
    Stack {
        idp,
        _mcp: mcp,
        envoy,
        base,
        scope: if o.entra {
            "calculator.add"
        } else {
            "mcp:tools"
        },
        secret,
    }
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// One query parameter of a URL or path.
pub fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (dec(k) == name).then(|| dec(v))
    })
}

/// `(port, path with query)` of an `http://127.0.0.1:<port>/…` URL.
pub fn split_url(url: &str) -> (u16, String) {
    let rest = url
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("not a local URL: {url}"));
    let slash = rest.find('/').unwrap_or(rest.len());
    let (port, path) = rest.split_at(slash);
    let path = if path.is_empty() { "/" } else { path };
    (port.parse().unwrap(), path.to_string())
}

pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// `name=value` of each Set-Cookie (deletions dropped), joined as a Cookie header.
pub fn cookies(r: &Response) -> String {
    r.header_all("set-cookie")
        .into_iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What one sign-in produced, for tests that look for these values afterwards.
pub struct SignIn {
    pub client_id: String,
    /// The consent page's CSRF token and the façade's binding cookie jar.
    pub page: Response,
    pub approved: Response,
    /// The IdP's redirect to the façade callback (holds the upstream code and `state`).
    pub to_callback: String,
    /// The façade's redirect to the client.
    pub to_client: String,
    pub code: String,
}

impl Stack {
    pub fn port(&self) -> u16 {
        self.envoy.port()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        http::request(self.port(), "GET", path, headers, b"")
    }

    pub fn post_form(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        http::request(self.port(), "POST", path, &all, body.as_bytes())
    }

    /// `POST /register` with these redirect URIs: the raw answer.
    pub fn register_uris(&self, uris: &[&str]) -> Response {
        let body = json!({
            "client_name": "facade-test",
            "redirect_uris": uris,
            "token_endpoint_auth_method": "none"
        })
        .to_string();
        http::request(
            self.port(),
            "POST",
            "/register",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
    }

    pub fn register(&self) -> String {
        let r = self.register_uris(&[CLIENT_REDIRECT]);
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["client_id"].as_str().unwrap().to_string()
    }

    /// `/authorize?…` with these parameters (each given as is; `None` leaves it out).
    pub fn authorize_with(&self, pairs: &[(&str, Option<&str>)]) -> String {
        let present: Vec<(&str, &str)> = pairs
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v)))
            .collect();
        format!("/authorize?{}", form(&present))
    }

    pub fn authorize_path(&self, client_id: &str, redirect: &str, verifier: &str) -> String {
        let ch = challenge(verifier);
        let resource = format!("{}/mcp", self.base);
        self.authorize_with(&[
            ("client_id", Some(client_id)),
            ("redirect_uri", Some(redirect)),
            ("response_type", Some("code")),
            ("state", Some("client-state")),
            ("code_challenge", Some(&ch)),
            ("code_challenge_method", Some("S256")),
            ("resource", Some(&resource)),
            ("scope", Some(self.scope)),
        ])
    }

    /// The consent page for a registered client.
    pub fn consent_page(&self, client_id: &str, verifier: &str) -> Response {
        let page = self.get(
            &self.authorize_path(client_id, CLIENT_REDIRECT, verifier),
            &[],
        );
        assert_eq!(page.status, 200, "{}", page.text());
        page
    }

    /// Approves (or denies) on a consent page as its browser would.
    pub fn consent(&self, page: &Response, action: &str) -> Response {
        let html = page.text();
        let body = form(&[
            ("request", &hidden(&html, "request")),
            ("csrf", &hidden(&html, "csrf")),
            ("action", action),
        ]);
        self.post_form(
            "/consent",
            &body,
            &[("cookie", &cookies(page)), ("origin", &self.base)],
        )
    }

    /// Follows the façade's redirect to the IdP: the IdP's redirect back to the callback.
    pub fn via_idp(&self, to_idp: &str) -> String {
        let (idp_port, idp_path) = split_url(to_idp);
        assert_eq!(idp_port, self.idp.port());
        let from_idp = http::get(idp_port, &idp_path);
        assert_eq!(from_idp.status, 302, "{}", from_idp.text());
        let back = from_idp.header("location").unwrap().to_string();
        assert!(
            back.starts_with(&format!("{}/auth/callback?", self.base)),
            "{back}"
        );
        back
    }

    /// Register → authorize → consent → IdP → callback.
    pub fn sign_in(&self, verifier: &str) -> SignIn {
        let client_id = self.register();
        let page = self.consent_page(&client_id, verifier);
        let approved = self.consent(&page, "approve");
        assert_eq!(approved.status, 303, "{}", approved.text());
        let to_callback = self.via_idp(approved.header("location").unwrap());
        let (_, callback_path) = split_url(&to_callback);
        let done = self.get(&callback_path, &[("cookie", &cookies(&approved))]);
        assert_eq!(done.status, 302, "{}", done.text());
        let to_client = done.header("location").unwrap().to_string();
        assert!(
            to_client.starts_with(&format!("{CLIENT_REDIRECT}?")),
            "{to_client}"
        );
        assert_eq!(param(&to_client, "state").as_deref(), Some("client-state"));
        assert_eq!(
            param(&to_client, "iss").as_deref(),
            Some(self.base.as_str())
        );
        let code = param(&to_client, "code").unwrap();
        SignIn {
            client_id,
            page,
            approved,
            to_callback,
            to_client,
            code,
        }
    }

    /// The client id and façade code of a whole sign-in.
    pub fn code(&self, verifier: &str) -> (String, String) {
        let s = self.sign_in(verifier);
        (s.client_id, s.code)
    }

    pub fn token_body(&self, client_id: &str, code: &str, verifier: &str) -> String {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", CLIENT_REDIRECT),
            ("code_verifier", verifier),
            ("resource", &format!("{}/mcp", self.base)),
        ])
    }

    pub fn token(&self, client_id: &str, code: &str, verifier: &str) -> Response {
        self.post_form("/token", &self.token_body(client_id, code, verifier), &[])
    }

    pub fn refresh(&self, client_id: &str, refresh_token: &str) -> Response {
        self.post_form(
            "/token",
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", client_id),
            ]),
            &[],
        )
    }
}
