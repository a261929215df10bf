//! Issue 19, "Tests": real MCP clients sign in through the filter's sign-in façade, the
//! browser step done by a real headless Chromium (playwright-core) that clicks Approve on the
//! consent page:
//!
//! - the TypeScript SDK (authorization code + PKCE with DCR, then a refresh through the
//!   façade and the rotated-out refresh token refused): `tests/clients/facade_ts.mjs`;
//! - the Python SDK's `OAuthClientProvider`: `tests/clients/facade_py.py`;
//! - `mcp-remote` on stdio as Claude Desktop runs it: `tests/clients/facade_mcp_remote.mjs`.
//!
//! Against the real stack: Envoy + the filter with `authorization_server`, the dev IdP in
//! Entra mode as the upstream (confidential client, exact callback, no `resource`, scopes
//! qualified with `api://<app id>/`), the demo MCP server behind.
//! `drivers_sign_in_through_the_mock_facade` checks the drivers themselves against
//! `tests/clients/facade_mock.mjs` (no Envoy), so a broken driver is told apart from a
//! broken façade.
//!
//! The clients are installed by `make test` (`scripts/deps.sh`: npm packages pinned in
//! tests/clients/package-lock.json, `mcp` pinned in the project venv, Debian's chromium).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use devstack::entra::{EntraConfig, DEFAULT_APP_ID, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use devstack::idp::{Idp, IdpConfig};
use devstack::mcp_demo::{McpDemo, McpDemoConfig};
use serde_json::{json, Value};
use support::envoy::{free_port, repo_root};
use support::{Envoy, EnvoyBuilder};

/// 32 bytes ("0123456789abcdef" twice), standard base64: the test's sealing key.
const SEALING_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

fn python() -> String {
    repo_root()
        .join(".venv/bin/python")
        .to_string_lossy()
        .into_owned()
}

/// Runs a driver; returns its JSON report (panics with its output and `context` on failure).
fn run(program: &str, args: &[&str], context: &dyn Fn() -> String) -> Value {
    support::clients::run_client(program, args, context)
}

/// The consent page the driver clicked through: the façade's markup.
fn assert_consent(r: &Value) {
    let c = &r["consent"];
    assert_eq!(c["title"], "Allow access?", "{r}");
    let buttons: Vec<(String, String)> = c["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        buttons.contains(&("action".into(), "approve".into())),
        "{r}"
    );
    assert!(buttons.contains(&("action".into(), "deny".into())), "{r}");
    assert_eq!(c["x_frame_options"], "DENY", "{r}");
    assert!(c["content_security_policy"]
        .as_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
}

fn tools(r: &Value) -> Vec<String> {
    r["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// `node facade_mock.mjs 0`, killed on drop.
struct Mock {
    child: Child,
    url: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock() -> Mock {
    let mut child = Command::new("node")
        .args(["facade_mock.mjs", "0"])
        .current_dir(clients_dir())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node (did `make test` install the clients?)");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("mock ")
        .unwrap_or_else(|| panic!("facade_mock.mjs said {line:?}"))
        .trim()
        .to_string();
    Mock { child, url }
}

#[test]
fn drivers_sign_in_through_the_mock_facade() {
    let mock = start_mock();
    let none = || String::new();

    let r = run("node", &["facade_ts.mjs", &mock.url], &none);
    assert_consent(&r);
    assert_eq!(r["registrations"], 1, "{r}");
    assert_eq!(r["callback"]["state_matches"], true, "{r}");
    assert!(tools(&r).contains(&"add".to_string()), "{r}");
    assert_eq!(r["add"], "5");
    assert_eq!(r["refresh"]["refresh_token_rotated"], true, "{r}");
    assert_eq!(r["refresh"]["replay"]["status"], 400, "{r}");

    let r = run(&python(), &["facade_py.py", &mock.url], &none);
    assert_consent(&r);
    assert_eq!(r["add"], "42", "{r}");

    let r = run("node", &["facade_mcp_remote.mjs", &mock.url], &none);
    assert_consent(&r);
    assert_eq!(r["add"], "42", "{r}");
    assert_eq!(r["browser_stub_called"], true, "{r}");
}

struct Stack {
    idp: Idp,
    _mcp: McpDemo,
    envoy: Envoy,
    url: String,
}

impl Stack {
    fn context(&self) -> String {
        let logs = self.envoy.logs();
        let lines: Vec<&str> = logs.lines().collect();
        format!(
            "Envoy log tail:\n{}",
            lines[lines.len().saturating_sub(60)..].join("\n")
        )
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.port())
    }
}

/// Envoy + the filter with the façade in front of the demo MCP server; upstream, the dev
/// IdP in Entra mode (the façade's callback is its only registered redirect URI).
fn start_facade() -> Stack {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let app = DEFAULT_APP_ID;
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            redirect_uris: vec![format!("http://127.0.0.1:{port}/auth/callback")],
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let mcp = McpDemo::try_start(McpDemoConfig {
        any_host: true,
        ..McpDemoConfig::default()
    })
    .unwrap();
    let cfg = json!({
        "providers": {"entra": {
            "issuer": idp.issuer(),
            "audiences": [app, format!("api://{app}")],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "2s"}},
            "algorithms": ["RS256"],
            "scope_claims": ["scp", "roles"],
            "scope_prefix": format!("api://{app}/"),
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}]
        }},
        "rules": [{
            "match": {"prefix": "/mcp"},
            "requires": {"provider_name": "entra"},
            "mcp": {"tools": {
                "add": ["calculator.add"],
                "subtract": ["calculator.subtract"],
                "whoami": [],
                "headers": []
            }}
        }],
        "protected_resource": {
            "resource": url,
            "scopes_supported": ["calculator.add", "calculator.subtract"],
            "resource_name": "Demo MCP server"
        },
        "authorization_server": {
            "upstream": {
                "authorization_endpoint": idp.authorize_url(),
                "token_endpoint": {"uri": idp.token_url(), "cluster": "idp", "timeout": "5s"},
                "client_id": DEFAULT_CLIENT_ID,
                "client_secret_env": "FACADE_CLIENT_SECRET",
                "scope_prefix": format!("api://{app}"),
                "extra_scopes": ["openid", "offline_access"],
                "send_resource": false
            },
            "provider_name": "entra",
            "sealing_keys_env": ["FACADE_SEALING_KEY"],
            "redirect_uris": ["http://127.0.0.1/*", "http://localhost/*"]
        }
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(mcp.port())
        .extra_cluster("idp", idp.port())
        .listen_port(port)
        .vm_env("FACADE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .vm_env("FACADE_SEALING_KEY", SEALING_KEY)
        .start()
        .unwrap();
    Stack {
        idp,
        _mcp: mcp,
        envoy,
        url,
    }
}

/// What every façade sign-in shows: the consent page, the trip to the IdP and back through
/// the façade's callback, and the MCP calls.
fn assert_signed_in(r: &Value, s: &Stack) {
    assert_consent(r);
    let chain: Vec<String> = r["browser_chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["url"].as_str().unwrap().to_string())
        .collect();
    assert!(
        chain.contains(&s.idp.authorize_url()),
        "the browser never reached the IdP: {chain:?}"
    );
    assert!(
        chain.contains(&format!("{}/auth/callback", s.issuer())),
        "the browser never came back through the façade's callback: {chain:?}"
    );
    assert!(tools(r).contains(&"add".to_string()), "{r}");
    // Neither the façade's client secret nor its sealing key in any log line.
    let logs = s.envoy.logs();
    assert!(
        !logs.contains(DEFAULT_CLIENT_SECRET),
        "client secret in the log"
    );
    assert!(!logs.contains(SEALING_KEY), "sealing key in the log");
}

#[test]
fn typescript_sdk_signs_in_through_the_facade() {
    let s = start_facade();
    let r = run("node", &["facade_ts.mjs", &s.url], &|| s.context());
    assert_signed_in(&r, &s);
    assert_eq!(r["registrations"], 1, "{r}");
    assert_eq!(r["authorization"]["code_challenge_method"], "S256");
    assert_eq!(r["authorization"]["resource"], s.url);
    assert_eq!(r["callback"]["state_matches"], true, "{r}");
    assert_eq!(r["callback"]["iss"], s.issuer(), "RFC 9207 iss: {r}");
    assert_eq!(r["add"], "5", "{r}");
    // Refresh through the façade; the previous façade refresh token is refused.
    assert_eq!(r["refresh"]["had_refresh_token"], true, "{r}");
    assert_eq!(r["refresh"]["access_token_changed"], true, "{r}");
    assert_eq!(r["refresh"]["refresh_token_rotated"], true, "{r}");
    assert_eq!(r["refresh"]["replay"]["status"], 400, "{r}");
    assert_eq!(r["refresh"]["replay"]["error"], "invalid_grant", "{r}");
}

#[test]
fn python_sdk_signs_in_through_the_facade() {
    let s = start_facade();
    let r = run(&python(), &["facade_py.py", &s.url], &|| s.context());
    assert_signed_in(&r, &s);
    assert_eq!(r["registered"], true, "{r}");
    assert_eq!(r["callback"]["iss"], s.issuer(), "{r}");
    assert_eq!(r["add"], "42", "{r}");
    assert_eq!(r["is_error"], false, "{r}");
}

#[test]
fn mcp_remote_signs_in_through_the_facade() {
    let s = start_facade();
    let r = run("node", &["facade_mcp_remote.mjs", &s.url], &|| s.context());
    assert_signed_in(&r, &s);
    assert_eq!(r["authorization"]["code_challenge_method"], "S256");
    assert_eq!(r["add"], "42", "{r}");
}
