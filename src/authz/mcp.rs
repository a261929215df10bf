//! JSON-RPC 2.0 inspection of MCP Streamable HTTP request bodies: which methods are called
//! and on which tool, prompt or resource. Pure: bytes in, a list of calls or a precise error.

use std::fmt;

use serde_json::Value;

use crate::util::json::parse_object;

/// One element of a request body, as far as authorization cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request (has an `id`): its method and, for tools/call, prompts/get and
    /// resources/read, the name or URI it targets.
    Request {
        id: Value,
        method: String,
        target: Option<String>,
    },
    /// A notification (no `id`): passes through, but its method is still known.
    Notification { method: String },
    /// A response from the client to a server request (sampling, elicitation): passes.
    Response,
}

/// Why a body is not acceptable JSON-RPC. `Display` is the JSON-RPC error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (JSON-RPC -32700).
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 message or batch (-32600).
    Invalid(String),
}

impl BodyError {
    pub fn code(&self) -> i64 {
        match self {
            BodyError::Parse(_) => -32700,
            BodyError::Invalid(_) => -32600,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Parse(e) => write!(f, "Parse error: {e}"),
            BodyError::Invalid(e) => write!(f, "Invalid Request: {e}"),
        }
    }
}

/// The method whose `params` carry a name (`tools/call`, `prompts/get`) or a URI
/// (`resources/read`, `resources/subscribe`) that rules can name.
pub fn target_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        _ => None,
    }
}

fn message(v: &Value, index: Option<usize>) -> Result<Message, BodyError> {
    let at = |what: &str| match index {
        Some(i) => format!("batch element {i}: {what}"),
        None => what.to_string(),
    };
    let obj = v
        .as_object()
        .ok_or_else(|| BodyError::Invalid(at("not a JSON object")))?;
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(BodyError::Invalid(at("\"jsonrpc\" must be \"2.0\"")));
    }
    let method = match obj.get("method") {
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return Err(BodyError::Invalid(at("\"method\" must be a string"))),
        None => None,
    };
    let id = obj.get("id");
    if let Some(id) = id {
        if !(id.is_string() || id.is_number() || id.is_null()) {
            return Err(BodyError::Invalid(at(
                "\"id\" must be a string or a number",
            )));
        }
    }
    match (method, id) {
        (Some(method), Some(id)) => {
            let target = match target_param(&method) {
                None => None,
                Some(param) => {
                    let value = obj
                        .get("params")
                        .and_then(|p| p.get(param))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            BodyError::Invalid(at(&format!(
                                "{method} needs params.{param} (a string)"
                            )))
                        })?;
                    Some(value.to_string())
                }
            };
            Ok(Message::Request {
                id: id.clone(),
                method,
                target,
            })
        }
        (Some(method), None) => Ok(Message::Notification { method }),
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
            Ok(Message::Response)
        }
        (None, _) => Err(BodyError::Invalid(at("no \"method\""))),
    }
}

/// Parses a POST body: one message or a non-empty batch.
pub fn parse_body(body: &[u8]) -> Result<Vec<Message>, BodyError> {
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| body.get(i..))
        .unwrap_or(&[]);
    match trimmed.first() {
        None => Err(BodyError::Invalid("empty body".into())),
        Some(b'[') => {
            let v: Value =
                serde_json::from_slice(body).map_err(|e| BodyError::Parse(e.to_string()))?;
            let list = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
            if list.is_empty() {
                return Err(BodyError::Invalid("empty batch".into()));
            }
            list.iter()
                .enumerate()
                .map(|(i, m)| message(m, Some(i)))
                .collect()
        }
        Some(_) => {
            // Duplicate member names ("method" twice) are refused: two parsers must never
            // see different calls.
            let obj = parse_object(body).map_err(BodyError::Parse)?;
            Ok(vec![message(&Value::Object(obj), None)?])
        }
    }
}

/// The `id` of a single request, for the JSON-RPC error reply.
pub fn reply_id(messages: &[Message]) -> Value {
    match messages {
        [Message::Request { id, .. }] => id.clone(),
        _ => Value::Null,
    }
}

/// A JSON-RPC error response body.
pub fn error_body(id: &Value, code: i64, message: &str) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Checks the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers against the body: they must
/// describe the single request in it exactly. Returns the disagreement, if any.
pub fn header_mismatch(
    messages: &[Message],
    mcp_method: Option<&str>,
    mcp_name: Option<&str>,
) -> Option<String> {
    if mcp_method.is_none() && mcp_name.is_none() {
        return None;
    }
    let (method, target) = match messages {
        [Message::Request { method, target, .. }] => (method.as_str(), target.as_deref()),
        [Message::Notification { method }] => (method.as_str(), None),
        _ => {
            return Some("Mcp-Method/Mcp-Name headers need a body with exactly one message".into())
        }
    };
    if let Some(h) = mcp_method {
        if h != method {
            return Some(format!(
                "Mcp-Method header {:?} does not match the body's method {:?}",
                crate::util::text::printable(h),
                crate::util::text::printable(method)
            ));
        }
    }
    if let Some(h) = mcp_name {
        if Some(h) != target {
            return Some(format!(
                "Mcp-Name header {:?} does not match the body's {}",
                crate::util::text::printable(h),
                target.map_or("(no name)".to_string(), |t| format!(
                    "{:?}",
                    crate::util::text::printable(t)
                ))
            ));
        }
    }
    None
}

/// The JSON-RPC error code of a request whose MCP headers are missing, malformed or disagree
/// with its body (`HeaderMismatch` in the 2026-07-28 Streamable HTTP transport).
pub const HEADER_MISMATCH: i64 = -32001;

/// What the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers say a POST does, for a rule that
/// trusts them (`mcp.trust_headers`): decided without the body, or not decidable from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderCall {
    /// The call the headers name (a request whose `id` is unknown: `Value::Null`).
    Call(Message),
    /// No `Mcp-Method`, or no `Mcp-Name` for a method whose rules need a name: only the
    /// body can say what the request does.
    Incomplete,
    /// `Mcp-Name` in the `=?base64?…?=` form that does not decode to UTF-8 text.
    Malformed(String),
}

/// The call named by the `Mcp-Method` / `Mcp-Name` headers. `Mcp-Name` is read only for the
/// methods whose target rules can name ([`target_param`]); its `=?base64?<base64>?=` form
/// (names that are not plain printable ASCII) is decoded.
pub fn header_call(mcp_method: Option<&str>, mcp_name: Option<&str>) -> HeaderCall {
    let Some(method) = mcp_method else {
        return HeaderCall::Incomplete;
    };
    let target = match (target_param(method), mcp_name) {
        (None, _) => None,
        (Some(_), None) => return HeaderCall::Incomplete,
        (Some(_), Some(name)) => match decode_header_value(name) {
            Some(n) => Some(n),
            None => {
                return HeaderCall::Malformed(format!(
                    "Mcp-Name header {:?} is not valid =?base64?…?= UTF-8",
                    crate::util::text::printable(name)
                ))
            }
        },
    };
    HeaderCall::Call(Message::Request {
        id: Value::Null,
        method: method.to_string(),
        target,
    })
}

/// A header value as the body would spell it: `=?base64?<standard base64>?=` decoded (it
/// must be UTF-8), any other value as it is. `None`: a broken encoded form.
pub fn decode_header_value(v: &str) -> Option<String> {
    let Some(inner) = v
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(v.to_string());
    };
    crate::crypto::b64::decode_standard(inner).and_then(|bytes| String::from_utf8(bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(method: &str, target: Option<&str>) -> Message {
        Message::Request {
            id: json!(1),
            method: method.into(),
            target: target.map(str::to_string),
        }
    }

    #[test]
    fn single_messages() {
        let m = parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","arguments":{}}}"#).unwrap();
        assert_eq!(m, vec![req("tools/call", Some("add"))]);
        let m = parse_body(br#" {"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(
            m,
            vec![Message::Notification {
                method: "notifications/initialized".into()
            }]
        );
        let m = parse_body(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(m, vec![Message::Response]);
        let m = parse_body(
            br#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///a"}}"#,
        )
        .unwrap();
        assert_eq!(
            m[0],
            Message::Request {
                id: json!(2),
                method: "resources/read".into(),
                target: Some("file:///a".into())
            }
        );
    }

    #[test]
    fn batches() {
        let m = parse_body(
            br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}},
                               {"jsonrpc":"2.0","id":2,"method":"tools/list"},
                               {"jsonrpc":"2.0","method":"notifications/progress"}]"#,
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(reply_id(&m), Value::Null);
        assert!(matches!(parse_body(b"[]"), Err(BodyError::Invalid(_))));
        let e = parse_body(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}, 5]"#).unwrap_err();
        assert!(e.to_string().contains("batch element 1"), "{e}");
    }

    #[test]
    fn malformed_bodies() {
        assert_eq!(parse_body(b"{nope").unwrap_err().code(), -32700);
        assert_eq!(parse_body(b"").unwrap_err().code(), -32600);
        assert_eq!(parse_body(b"5").unwrap_err().code(), -32700);
        for bad in [
            r#"{"id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
        ] {
            assert_eq!(
                parse_body(bad.as_bytes()).unwrap_err().code(),
                -32600,
                "{bad}"
            );
        }
        let dup =
            parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#)
                .unwrap_err();
        assert!(dup.to_string().contains("duplicate member"), "{dup}");
    }

    #[test]
    fn headers_must_match_the_body() {
        let one = vec![req("tools/call", Some("add"))];
        assert_eq!(header_mismatch(&one, None, None), None);
        assert_eq!(header_mismatch(&one, Some("tools/call"), Some("add")), None);
        assert!(header_mismatch(&one, Some("tools/list"), None).is_some());
        assert!(header_mismatch(&one, Some("tools/call"), Some("subtract")).is_some());
        let two = vec![req("tools/call", Some("add")), req("tools/list", None)];
        assert!(header_mismatch(&two, Some("tools/call"), None).is_some());
        let list = vec![req("tools/list", None)];
        assert!(header_mismatch(&list, Some("tools/list"), Some("x")).is_some());
    }

    #[test]
    fn header_calls() {
        assert_eq!(
            header_call(Some("tools/call"), Some("add")),
            HeaderCall::Call(Message::Request {
                id: Value::Null,
                method: "tools/call".into(),
                target: Some("add".into())
            })
        );
        // A name is read only where rules can name one.
        assert_eq!(
            header_call(Some("tools/list"), Some("add")),
            HeaderCall::Call(Message::Request {
                id: Value::Null,
                method: "tools/list".into(),
                target: None
            })
        );
        assert_eq!(header_call(None, Some("add")), HeaderCall::Incomplete);
        assert_eq!(header_call(None, None), HeaderCall::Incomplete);
        for m in ["tools/call", "prompts/get", "resources/read"] {
            assert_eq!(header_call(Some(m), None), HeaderCall::Incomplete, "{m}");
        }
        // The base64 form is decoded ("tööl"; "subtract").
        let HeaderCall::Call(Message::Request { target, .. }) =
            header_call(Some("tools/call"), Some("=?base64?dMO2w7Zs?="))
        else {
            panic!("decoded")
        };
        assert_eq!(target.as_deref(), Some("tööl"));
        let HeaderCall::Call(Message::Request { target, .. }) =
            header_call(Some("tools/call"), Some("=?base64?c3VidHJhY3Q=?="))
        else {
            panic!("decoded")
        };
        assert_eq!(target.as_deref(), Some("subtract"));
        for bad in ["=?base64?***?=", "=?base64?/w==?="] {
            assert!(
                matches!(
                    header_call(Some("tools/call"), Some(bad)),
                    HeaderCall::Malformed(_)
                ),
                "{bad}"
            );
        }
        assert_eq!(decode_header_value("=?base64?"), Some("=?base64?".into()));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(&json!(7), -32600, "Invalid Request: x"),
            json!({"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"Invalid Request: x"}})
        );
    }
}
