//! A small web app that plays an MCP client signing in through the sign-in façade, for
//! `make run`: open its page in a browser and it ends in a signed-in MCP call.
//!
//! - `GET /`: finds the authorization server the way an MCP client does (the protected
//!   resource metadata of `resource`, then its RFC 8414 metadata), registers itself by
//!   Dynamic Client Registration (a public client, redirect URI `http://127.0.0.1:<port>/callback`),
//!   makes a PKCE pair and a `state`, and redirects the browser to the façade's `/authorize`.
//! - the browser approves the façade's consent page and signs in at the IdP;
//! - `GET /callback`: redeems the façade's code at its `/token` (server-side), then calls
//!   `initialize`, `tools/list` and `tools/call` (`add`, `whoami`) on the MCP server through
//!   Envoy with the access token, and renders the results (HTML-escaped).
//!
//! The token never leaves this process: it is not printed, logged or shown on the page.
//! Every HTTP call is a blocking one on tokio's blocking pool.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::b64url;
use crate::http::{self as client, HttpResponse};
use crate::mcp_demo::McpClient;
use crate::server::{bind, ServerThread};

/// Settings of the demo client.
#[derive(Debug, Clone)]
pub struct DemoClientConfig {
    /// Port on 127.0.0.1 (0 = OS-chosen).
    pub port: u16,
    /// The MCP server's URL behind the façade (the protected resource), e.g.
    /// `http://127.0.0.1:10001/mcp`.
    pub resource: String,
}

/// One sign-in on its way: what `/callback` needs, keyed by `state`.
struct Flow {
    client_id: String,
    verifier: String,
    token_endpoint: String,
    issuer: String,
}

struct St {
    cfg: DemoClientConfig,
    redirect_uri: String,
    flows: Mutex<HashMap<String, Flow>>,
}

/// A running demo client. Dropping it stops the server.
pub struct DemoClient {
    server: ServerThread,
}

impl DemoClient {
    /// Binds 127.0.0.1:`cfg.port` and serves.
    pub fn try_start(cfg: DemoClientConfig) -> io::Result<DemoClient> {
        let listener = bind(cfg.port)?;
        let port = listener.local_addr()?.port();
        let st = Arc::new(St {
            cfg,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            flows: Mutex::new(HashMap::new()),
        });
        let server = ServerThread::spawn_on("demo-client", listener, move || {
            axum::Router::new()
                .route("/", get(index))
                .route("/callback", get(callback))
                .with_state(st)
        })?;
        Ok(DemoClient { server })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>/`: the page to open in a browser.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    /// Blocks until the server stops (never, unless dropped elsewhere).
    pub fn wait(self) {
        self.server.join();
    }
}

/// `&`, `<`, `>`, `"` and `'` as character references.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:46em;margin:2em auto}}\
         dt{{font-weight:bold;margin-top:.6em}}pre{{background:#f4f4f4;padding:.5em}}</style>\
         </head><body><h1>{t}</h1>\n{body_html}\n\
         <p><a href=\"/\">Sign in again</a></p></body></html>\n",
        t = escape_html(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn error_page(step: &str, detail: &str) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Sign-in failed",
        &format!(
            "<p id=\"error\">{}</p><pre>{}</pre>",
            escape_html(step),
            escape_html(detail)
        ),
    )
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    b64url(&buf)
}

/// `scheme://host[:port]` and the path of an absolute URL.
fn split_origin(url: &str) -> (&str, &str) {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url.get(after..).and_then(|r| r.find('/')) {
        Some(i) => url.split_at(after + i),
        None => (url, ""),
    }
}

fn json_ok(r: io::Result<HttpResponse>, what: &str) -> Result<Value, String> {
    let r = r.map_err(|e| format!("{what}: {e}"))?;
    if !(200..300).contains(&r.status) {
        return Err(format!("{what}: HTTP {}: {}", r.status, r.text()));
    }
    r.json()
        .map_err(|e| format!("{what}: not JSON ({e}): {}", r.text()))
}

fn str_field(v: &Value, name: &str, what: &str) -> Result<String, String> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{what}: no {name:?} in {v}"))
}

/// Discovery, registration and the authorization request: the URL to send the browser to.
fn begin(st: &St) -> Result<String, String> {
    let (origin, path) = split_origin(&st.cfg.resource);
    let prm = json_ok(
        client::get(&format!(
            "{origin}/.well-known/oauth-protected-resource{path}"
        )),
        "protected resource metadata",
    )?;
    let issuer = prm
        .pointer("/authorization_servers/0")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("protected resource metadata names no authorization server: {prm}"))?
        .trim_end_matches('/')
        .to_string();
    let scope = prm
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let (as_origin, as_path) = split_origin(&issuer);
    let meta = json_ok(
        client::get(&format!(
            "{as_origin}/.well-known/oauth-authorization-server{as_path}"
        )),
        "authorization server metadata",
    )?;
    let what = "authorization server metadata";
    let registration = str_field(&meta, "registration_endpoint", what)?;
    let authorize = str_field(&meta, "authorization_endpoint", what)?;
    let token_endpoint = str_field(&meta, "token_endpoint", what)?;

    let reg = json_ok(
        client::post_json(
            &registration,
            &json!({
                "client_name": "devstack demo client",
                "redirect_uris": [st.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none"
            }),
            &[],
        ),
        "registration",
    )?;
    let client_id = str_field(&reg, "client_id", "registration")?;

    let verifier = random_b64(32);
    let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
    let state = random_b64(16);
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", st.redirect_uri.as_str()),
        ("state", state.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", st.cfg.resource.as_str()),
    ];
    if !scope.is_empty() {
        params.push(("scope", scope.as_str()));
    }
    let url = format!("{authorize}?{}", client::form_encode(&params));
    let mut flows = st
        .flows
        .lock()
        .map_err(|_| "internal error (lock)".to_string())?;
    // A demo: keep the latest few sign-ins only.
    if flows.len() > 64 {
        flows.clear();
    }
    flows.insert(
        state,
        Flow {
            client_id,
            verifier,
            token_endpoint,
            issuer,
        },
    );
    Ok(url)
}

/// What the callback shows.
struct Outcome {
    tools: Vec<String>,
    add: String,
    whoami: String,
    scope: String,
}

fn finish(st: &St, query: &str) -> Result<Outcome, (String, String)> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ("the callback's query".to_string(), e.to_string()))?;
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if let Some(error) = get("error") {
        return Err((
            "the authorization server answered with an error".into(),
            format!("{error}: {}", get("error_description").unwrap_or("")),
        ));
    }
    let (Some(code), Some(state)) = (get("code"), get("state")) else {
        return Err(("the callback has no code or state".into(), query.into()));
    };
    let flow = st
        .flows
        .lock()
        .map_err(|_| ("internal error".to_string(), "lock".to_string()))?
        .remove(state)
        .ok_or_else(|| {
            (
                "unknown state (sign in again from the start page)".to_string(),
                String::new(),
            )
        })?;
    // RFC 9207: the response names the authorization server it came from.
    if let Some(iss) = get("iss") {
        if iss.trim_end_matches('/') != flow.issuer {
            return Err((
                "the callback's iss is not the authorization server".into(),
                format!("{iss} != {}", flow.issuer),
            ));
        }
    }
    let t = json_ok(
        client::post_form(
            &flow.token_endpoint,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", &flow.client_id),
                ("redirect_uri", &st.redirect_uri),
                ("code_verifier", &flow.verifier),
                ("resource", &st.cfg.resource),
            ],
            &[],
        ),
        "token",
    )
    .map_err(|e| ("the token request failed".to_string(), e))?;
    let access = str_field(&t, "access_token", "token")
        .map_err(|e| ("the token response".to_string(), e))?;
    let scope = t
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mcp_err = |step: &str| {
        let step = step.to_string();
        move |e: io::Error| (format!("MCP {step} through Envoy failed"), e.to_string())
    };
    let mut mcp =
        McpClient::new(&st.cfg.resource).with_header("authorization", &format!("Bearer {access}"));
    mcp.initialize().map_err(mcp_err("initialize"))?;
    let tools = mcp.list_tools().map_err(mcp_err("tools/list"))?;
    let add = mcp
        .call_tool_text("add", json!({"a": 2, "b": 3}))
        .map_err(mcp_err("tools/call add"))?;
    let whoami = if tools.iter().any(|n| n == "whoami") {
        mcp.call_tool_text("whoami", json!({}))
            .map_err(mcp_err("tools/call whoami"))?
    } else {
        String::new()
    };
    Ok(Outcome {
        tools,
        add,
        whoami,
        scope,
    })
}

async fn index(State(st): State<Arc<St>>) -> Response {
    let res = tokio::task::spawn_blocking(move || begin(&st)).await;
    match res {
        Ok(Ok(url)) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Ok(Err(e)) => error_page("Could not start the sign-in", &e),
        Err(e) => error_page("internal error", &e.to_string()),
    }
}

async fn callback(State(st): State<Arc<St>>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let res = tokio::task::spawn_blocking(move || finish(&st, &q)).await;
    match res {
        Ok(Ok(o)) => page(
            StatusCode::OK,
            "Signed in: MCP call through Envoy",
            &format!(
                "<p>The sign-in façade issued an access token (kept by this app, not shown); \
                 with it the MCP server behind Envoy answered:</p>\n<dl>\
                 <dt>tools/list</dt><dd id=\"tools\">{}</dd>\
                 <dt>tools/call add {{\"a\": 2, \"b\": 3}}</dt><dd id=\"add-result\">{}</dd>\
                 <dt>tools/call whoami</dt><dd><pre id=\"whoami\">{}</pre></dd>\
                 <dt>granted scope</dt><dd id=\"scope\">{}</dd></dl>",
                escape_html(&o.tools.join(", ")),
                escape_html(&o.add),
                escape_html(&o.whoami),
                escape_html(&o.scope),
            ),
        ),
        Ok(Err((step, detail))) => error_page(&step, &detail),
        Err(e) => error_page("internal error", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn origin_and_path() {
        assert_eq!(
            split_origin("http://127.0.0.1:10001/mcp"),
            ("http://127.0.0.1:10001", "/mcp")
        );
        assert_eq!(
            split_origin("http://127.0.0.1:10001"),
            ("http://127.0.0.1:10001", "")
        );
    }
}
