//! A response the filter answers itself (never forwarded to the backend).

use std::borrow::Cow;

/// Status, headers and body of a locally generated response. Header names are always
/// constants and most values too, so neither costs an allocation unless it is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: Vec<u8>,
}

/// Headers a browser client must be able to read on MCP responses (incl. errors).
pub const EXPOSE_HEADERS: &str = "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version";
/// Request headers an MCP client sends cross-origin.
pub const MCP_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            // Room for the usual five or six (challenge, CORS, cache, type).
            headers: Vec::with_capacity(6),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// A JSON body with `content-type: application/json`.
    pub fn json(self, body: &serde_json::Value) -> Response {
        let mut r = self.header("content-type", "application/json");
        // Straight into bytes (a Value always serializes), not through `Display`.
        r.body = serde_json::to_vec(body).unwrap_or_default();
        r
    }

    /// An OAuth-style error body: `{"error": …, "error_description": …}`.
    pub fn error_body(self, error: &str, description: &str) -> Response {
        // Written directly (no Value map): the same bytes `json!` would give, keys in order.
        let mut body = Vec::with_capacity(48 + error.len() + description.len());
        body.extend_from_slice(b"{\"error\":");
        let _ = serde_json::to_writer(&mut body, error);
        body.extend_from_slice(b",\"error_description\":");
        let _ = serde_json::to_writer(&mut body, description);
        body.push(b'}');
        let mut r = self.header("content-type", "application/json");
        r.body = body;
        r
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}
