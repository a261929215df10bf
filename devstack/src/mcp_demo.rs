//! A demo MCP server (Streamable HTTP at `/mcp`, sessions on) built with `rmcp`.
//! It does no authentication of its own: the filter in Envoy does that.
//!
//! Tools: `add(a, b)`, `subtract(a, b)`, `whoami()` (the `x-mcp-subject` request
//! header) and `headers()` (every request header it received, as JSON).

use std::io;
use std::sync::Arc;

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Extensions, Implementation, ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::server::ServerThread;

/// Arguments of `add` and `subtract`.
#[derive(Debug, Deserialize, rmcp::schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct TwoNumbers {
    /// First operand.
    pub a: f64,
    /// Second operand.
    pub b: f64,
}

/// The MCP handler (one instance per session).
#[derive(Debug, Clone)]
pub struct DemoServer {
    tool_router: ToolRouter<DemoServer>,
}

impl Default for DemoServer {
    fn default() -> Self {
        DemoServer::new()
    }
}

fn number_text(x: f64) -> String {
    // 5.0 prints as "5", 2.5 as "2.5".
    format!("{x}")
}

fn request_parts(ext: &Extensions) -> Option<&Parts> {
    ext.get::<Parts>()
}

#[tool_router]
impl DemoServer {
    /// A new handler.
    pub fn new() -> DemoServer {
        DemoServer {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Add two numbers: returns a + b")]
    fn add(&self, Parameters(TwoNumbers { a, b }): Parameters<TwoNumbers>) -> String {
        number_text(a + b)
    }

    #[tool(description = "Subtract two numbers: returns a - b")]
    fn subtract(&self, Parameters(TwoNumbers { a, b }): Parameters<TwoNumbers>) -> String {
        number_text(a - b)
    }

    #[tool(
        description = "Returns the caller's subject, taken from the x-mcp-subject header set by the auth filter"
    )]
    fn whoami(&self, ext: Extensions) -> CallToolResult {
        let subject = request_parts(&ext)
            .and_then(|p| p.headers.get("x-mcp-subject"))
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        match subject {
            Some(s) => CallToolResult::success(vec![ContentBlock::text(s)]),
            None => CallToolResult::error(vec![ContentBlock::text(
                "no x-mcp-subject header on this request",
            )]),
        }
    }

    #[tool(
        description = "Returns the HTTP request headers this server received, as a JSON object (name -> list of values)"
    )]
    fn headers(&self, ext: Extensions) -> String {
        let mut out: Map<String, Value> = Map::new();
        if let Some(parts) = request_parts(&ext) {
            for (name, value) in parts.headers.iter() {
                let v = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
                match out.get_mut(name.as_str()) {
                    Some(Value::Array(list)) => list.push(v),
                    _ => {
                        out.insert(name.as_str().to_string(), Value::Array(vec![v]));
                    }
                }
            }
        }
        Value::Object(out).to_string()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "devstack-mcp-demo",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Demo MCP server behind the mcp-edge-auth filter: add, subtract, whoami, headers.",
            )
    }
}

/// The JSON-RPC error code of a request whose MCP headers disagree with its body
/// (`HeaderMismatch`, MCP 2026-07-28 Streamable HTTP).
pub const HEADER_MISMATCH: i64 = -32001;

/// MCP 2026-07-28: a server must refuse a POST whose `Mcp-Method` / `Mcp-Name` headers
/// disagree with its body. rmcp 3.11 checks this only when the request declares
/// `MCP-Protocol-Version` 2026-07-28 or later, so a client declaring an older version could
/// send headers that lie; this layer checks every POST that carries either header, before
/// rmcp sees it, and answers 400 with JSON-RPC error -32001. POSTs without them are
/// unchanged.
async fn check_mcp_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Read in a block: a reference to `req` (not `Sync`) must not live across an await.
    let (method, name, is_post) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
        };
        (
            header("mcp-method"),
            header("mcp-name"),
            req.method() == axum::http::Method::POST,
        )
    };
    if !is_post || (method.is_none() && name.is_none()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    if let Some(text) = header_disagreement(&bytes, method.as_deref(), name.as_deref()) {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": null,
            "error": {"code": HEADER_MISMATCH, "message": text}});
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}

/// Why `Mcp-Method` / `Mcp-Name` do not describe `body` (one JSON-RPC message), if they
/// do not. `Mcp-Name` is `params.name` (tools/call, prompts/get) or `params.uri`
/// (resources/read, resources/subscribe, resources/unsubscribe), in its
/// `=?base64?…?=` form when so sent. A body that is not JSON is left to rmcp.
pub fn header_disagreement(
    body: &[u8],
    method: Option<&str>,
    name: Option<&str>,
) -> Option<String> {
    use base64::Engine;
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    let Some(msg) = v.as_object() else {
        return Some("Mcp-Method/Mcp-Name headers need a body with one JSON-RPC message".into());
    };
    let body_method = msg.get("method").and_then(Value::as_str);
    if let Some(m) = method {
        if Some(m) != body_method {
            return Some(format!(
                "Mcp-Method header {m:?} does not match the body's method {body_method:?}"
            ));
        }
    }
    if let Some(n) = name {
        let decoded = match n
            .strip_prefix("=?base64?")
            .and_then(|r| r.strip_suffix("?="))
        {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| String::from_utf8(b).ok()),
            None => Some(n.to_string()),
        };
        let key = match body_method {
            Some("tools/call" | "prompts/get") => Some("name"),
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => Some("uri"),
            _ => None,
        };
        let body_name = key.and_then(|k| msg.get("params")?.get(k)?.as_str());
        if decoded.as_deref() != body_name || body_name.is_none() {
            return Some(format!(
                "Mcp-Name header {n:?} does not match the body's {}",
                body_name.map_or("(no name)".to_string(), |b| format!("{b:?}"))
            ));
        }
    }
    None
}

/// Settings for [`McpDemo`].
#[derive(Debug, Clone, Default)]
pub struct McpDemoConfig {
    /// Port on 127.0.0.1; 0 = OS-chosen.
    pub port: u16,
    /// Accept any `Host` header. By default rmcp only accepts loopback hosts
    /// (`localhost`, `127.0.0.1`, `::1`) to block DNS rebinding; turn this on when
    /// a proxy forwards another Host.
    pub any_host: bool,
}

/// A running demo MCP server. Dropping it stops the server.
pub struct McpDemo {
    server: ServerThread,
}

impl McpDemo {
    /// Starts on an OS-chosen port. Panics if it cannot bind.
    pub fn start() -> McpDemo {
        match McpDemo::try_start(McpDemoConfig::default()) {
            Ok(m) => m,
            #[allow(clippy::panic)]
            Err(e) => panic!("mcp demo: cannot start: {e}"),
        }
    }

    /// Starts with `cfg`, returning bind errors.
    pub fn try_start(cfg: McpDemoConfig) -> io::Result<McpDemo> {
        let server = ServerThread::spawn("mcp", cfg.port, move || {
            let mut http_cfg = StreamableHttpServerConfig::default();
            if cfg.any_host {
                http_cfg = http_cfg.disable_allowed_hosts();
            }
            let service = StreamableHttpService::new(
                || Ok(DemoServer::new()),
                Arc::new(LocalSessionManager::default()),
                http_cfg,
            );
            axum::Router::new()
                .route_service("/mcp", service)
                .layer(axum::middleware::from_fn(check_mcp_headers))
        })?;
        Ok(McpDemo { server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>/mcp`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port())
    }

    /// Blocks forever serving requests (for the binary).
    pub fn wait(self) {
        self.server.join();
    }
}

/// A minimal blocking MCP client over Streamable HTTP, for tests: it does the
/// `initialize` / `notifications/initialized` handshake and sends JSON-RPC requests
/// with the session id. Extra headers (e.g. `Authorization`) go on every request.
pub struct McpClient {
    url: String,
    headers: Vec<(String, String)>,
    session_id: Option<String>,
    protocol_version: Option<String>,
    next_id: u64,
    mcp_headers: bool,
}

/// The protocol version [`McpClient`] asks for.
pub const CLIENT_PROTOCOL_VERSION: &str = "2025-06-18";

impl McpClient {
    /// A client for `url` (e.g. `http://127.0.0.1:9100/mcp`), not yet initialized.
    pub fn new(url: &str) -> McpClient {
        McpClient {
            url: url.to_string(),
            headers: Vec::new(),
            session_id: None,
            protocol_version: None,
            next_id: 1,
            mcp_headers: false,
        }
    }

    /// Also sends the MCP 2026-07-28 `Mcp-Method` / `Mcp-Name` headers, taken from each
    /// message (the protocol version it negotiates stays [`CLIENT_PROTOCOL_VERSION`]).
    pub fn with_mcp_headers(mut self) -> McpClient {
        self.mcp_headers = true;
        self
    }

    /// Adds a header sent on every request.
    pub fn with_header(mut self, name: &str, value: &str) -> McpClient {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The `Mcp-Session-Id` from `initialize`, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// Sends one JSON-RPC message (request or notification) as-is and returns the
    /// raw HTTP response.
    pub fn post(&self, message: &Value) -> io::Result<crate::http::HttpResponse> {
        let mut h: Vec<(&str, &str)> = vec![("Accept", "application/json, text/event-stream")];
        if let Some(s) = &self.session_id {
            h.push(("Mcp-Session-Id", s));
        }
        if let Some(v) = &self.protocol_version {
            h.push(("MCP-Protocol-Version", v));
        }
        let method = message.get("method").and_then(Value::as_str);
        let name = message
            .get("params")
            .and_then(|p| p.get("name").or_else(|| p.get("uri")))
            .and_then(Value::as_str);
        if self.mcp_headers {
            if let Some(m) = method {
                h.push(("Mcp-Method", m));
            }
            if let Some(n) = name {
                h.push(("Mcp-Name", n));
            }
        }
        for (k, v) in &self.headers {
            h.push((k, v));
        }
        crate::http::post_json(&self.url, message, &h)
    }

    fn response_for(resp: &crate::http::HttpResponse, id: u64) -> io::Result<Value> {
        if resp.status != 200 {
            return Err(io::Error::other(format!(
                "HTTP {}: {}",
                resp.status,
                resp.text()
            )));
        }
        resp.json_messages()
            .into_iter()
            .find(|m| m.get("id").and_then(Value::as_u64) == Some(id))
            .ok_or_else(|| io::Error::other(format!("no JSON-RPC response: {}", resp.text())))
    }

    /// `initialize` + `notifications/initialized`; returns the initialize result
    /// message (the whole JSON-RPC response).
    pub fn initialize(&mut self) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "initialize",
            "params": {
                "protocolVersion": CLIENT_PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "devstack-test-client", "version": "0"}
            }
        });
        let resp = self.post(&msg)?;
        let answer = McpClient::response_for(&resp, id)?;
        self.session_id = resp.header("mcp-session-id").map(str::to_string);
        self.protocol_version = answer
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let resp = self.post(&note)?;
        if !(200..300).contains(&resp.status) {
            return Err(io::Error::other(format!(
                "initialized notification: HTTP {}",
                resp.status
            )));
        }
        Ok(answer)
    }

    /// Sends request `method` with `params`; returns the JSON-RPC response message.
    pub fn request(&mut self, method: &str, params: Value) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let msg =
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self.post(&msg)?;
        McpClient::response_for(&resp, id)
    }

    /// Names of the tools from `tools/list`.
    pub fn list_tools(&mut self) -> io::Result<Vec<String>> {
        let r = self.request("tools/list", serde_json::json!({}))?;
        Ok(r.pointer("/result/tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `tools/call`; returns the `result` object (`content`, `isError`...).
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> io::Result<Value> {
        let r = self.request(
            "tools/call",
            serde_json::json!({"name": name, "arguments": arguments}),
        )?;
        match r.get("result") {
            Some(res) => Ok(res.clone()),
            None => Err(io::Error::other(format!("tools/call failed: {r}"))),
        }
    }

    /// The first text content of a `tools/call` result.
    pub fn call_tool_text(&mut self, name: &str, arguments: Value) -> io::Result<String> {
        let res = self.call_tool(name, arguments)?;
        res.pointer("/content/0/text")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("no text content: {res}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;
    use serde_json::json;

    #[test]
    fn raw_http_initialize_then_tools_list() {
        let demo = McpDemo::start();
        let accept = ("Accept", "application/json, text/event-stream");
        let init = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "1"}
            }
        });
        let resp = http::post_json(&demo.url(), &init, &[accept]).unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let session = resp
            .header("mcp-session-id")
            .expect("session id header")
            .to_string();
        let msgs = resp.json_messages();
        let result = msgs
            .iter()
            .find(|m| m["id"] == 1)
            .unwrap_or_else(|| panic!("initialize response in {}", resp.text()));
        assert_eq!(result["result"]["serverInfo"]["name"], "devstack-mcp-demo");
        assert!(result["result"]["capabilities"]["tools"].is_object());
        let version = result["result"]["protocolVersion"]
            .as_str()
            .unwrap()
            .to_string();

        let resp = http::post_json(
            &demo.url(),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            &[
                accept,
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", &version),
            ],
        )
        .unwrap();
        assert_eq!(resp.status, 202, "{}", resp.text());

        let resp = http::post_json(
            &demo.url(),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
            &[
                accept,
                ("Mcp-Session-Id", &session),
                ("MCP-Protocol-Version", &version),
            ],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{}", resp.text());
        let msgs = resp.json_messages();
        let list = msgs.iter().find(|m| m["id"] == 2).unwrap();
        let mut names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["add", "headers", "subtract", "whoami"]);

        // Without the session id the request is refused.
        let resp = http::post_json(
            &demo.url(),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}),
            &[accept],
        )
        .unwrap();
        assert!(resp.status >= 400, "{}", resp.status);
    }

    #[test]
    fn client_calls_tools_and_sees_headers() {
        let demo = McpDemo::start();
        let mut c = McpClient::new(&demo.url())
            .with_header("x-mcp-subject", "alice")
            .with_header("x-extra", "1");
        let init = c.initialize().unwrap();
        assert!(init["result"]["protocolVersion"].is_string());
        assert!(c.session_id().is_some());
        assert_eq!(c.list_tools().unwrap().len(), 4);
        assert_eq!(
            c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
            "5"
        );
        assert_eq!(
            c.call_tool_text("subtract", json!({"a": 2, "b": 3.5}))
                .unwrap(),
            "-1.5"
        );
        assert_eq!(c.call_tool_text("whoami", json!({})).unwrap(), "alice");
        let headers: Value =
            serde_json::from_str(&c.call_tool_text("headers", json!({})).unwrap()).unwrap();
        assert_eq!(headers["x-extra"], json!(["1"]));
        assert!(headers["mcp-session-id"].is_array());

        let mut anon = McpClient::new(&demo.url());
        anon.initialize().unwrap();
        let res = anon.call_tool("whoami", json!({})).unwrap();
        assert_eq!(res["isError"], true);
    }

    #[test]
    fn mcp_headers_that_disagree_with_the_body_are_refused() {
        let demo = McpDemo::start();
        let mut c = McpClient::new(&demo.url()).with_mcp_headers();
        c.initialize().unwrap();
        assert_eq!(
            c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
            "5"
        );
        // The headers name `add`, the body calls `subtract`; any declared version.
        let lie = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                         "params": {"name": "subtract", "arguments": {"a": 2, "b": 3}}});
        let plain = McpClient::new(&demo.url());
        let mut h = vec![
            ("Accept", "application/json, text/event-stream"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "add"),
        ];
        if let Some(s) = c.session_id() {
            h.push(("Mcp-Session-Id", s));
        }
        h.push(("MCP-Protocol-Version", CLIENT_PROTOCOL_VERSION));
        let r = http::post_json(&plain.url, &lie, &h).unwrap();
        assert_eq!(r.status, 400, "{}", r.text());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["error"]["code"], HEADER_MISMATCH);
        assert!(v["error"]["message"].as_str().unwrap().contains("subtract"));

        let d = |m: Option<&str>, n: Option<&str>, body: &Value| {
            header_disagreement(body.to_string().as_bytes(), m, n)
        };
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tööl"}});
        assert_eq!(d(Some("tools/call"), Some("tööl"), &call), None);
        assert_eq!(
            d(Some("tools/call"), Some("=?base64?dMO2w7Zs?="), &call),
            None
        );
        assert!(d(Some("tools/call"), Some("=?base64?***?="), &call).is_some());
        assert!(d(Some("tools/list"), None, &call).is_some());
        assert!(d(None, Some("add"), &call).is_some());
        let read =
            json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///a"}});
        assert_eq!(d(Some("resources/read"), Some("file:///a"), &read), None);
        let list = json!({"jsonrpc":"2.0","id":1,"method":"tools/list"});
        assert!(d(Some("tools/list"), Some("add"), &list).is_some());
        assert!(d(Some("tools/call"), None, &json!([call])).is_some());
    }

    #[test]
    fn foreign_host_rejected_unless_any_host() {
        let demo = McpDemo::start();
        let mut c = McpClient::new(&demo.url()).with_header("Host", "evil.example");
        assert!(c.initialize().is_err());
        let open = McpDemo::try_start(McpDemoConfig {
            port: 0,
            any_host: true,
        })
        .unwrap();
        let mut c = McpClient::new(&open.url()).with_header("Host", "mcp.internal:8080");
        assert!(c.initialize().is_ok());
    }
}
