//! JSON-RPC 2.0 inspection of MCP Streamable HTTP request bodies: which methods are called
//! and on which tool, prompt or resource. Pure: bytes in, a list of calls or a precise error.

use std::fmt;

use serde_json::Value;

use super::jsonrpc::{self, Body, Raw};

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

fn message(raw: Raw, index: Option<usize>) -> Result<Message, BodyError> {
    let at = |what: &str| match index {
        Some(i) => format!("batch element {i}: {what}"),
        None => what.to_string(),
    };
    if !raw.object {
        return Err(BodyError::Invalid(at("not a JSON object")));
    }
    if !raw.version {
        return Err(BodyError::Invalid(at("\"jsonrpc\" must be \"2.0\"")));
    }
    let method = match raw.method {
        Some(Some(m)) => Some(m),
        Some(None) => return Err(BodyError::Invalid(at("\"method\" must be a string"))),
        None => None,
    };
    let id = match raw.id {
        Some(Some(id)) => Some(id),
        Some(None) => {
            return Err(BodyError::Invalid(at(
                "\"id\" must be a string or a number",
            )))
        }
        None => None,
    };
    match (method, id) {
        (Some(method), Some(id)) => {
            let target = match target_param(&method) {
                None => None,
                Some(param) => {
                    let value = if param == "name" { raw.name } else { raw.uri };
                    Some(value.ok_or_else(|| {
                        BodyError::Invalid(at(&format!("{method} needs params.{param} (a string)")))
                    })?)
                }
            };
            Ok(Message::Request { id, method, target })
        }
        (Some(method), None) => Ok(Message::Notification { method }),
        (None, Some(_)) if raw.reply => Ok(Message::Response),
        (None, _) => Err(BodyError::Invalid(at("no \"method\""))),
    }
}

/// Parses a POST body: one message or a non-empty batch. Duplicate member names ("method"
/// twice) are refused: two parsers must never see different calls (`jsonrpc.rs`).
pub fn parse_body(body: &[u8]) -> Result<Vec<Message>, BodyError> {
    let trimmed = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| body.get(i..))
        .unwrap_or(&[]);
    if trimmed.is_empty() {
        return Err(BodyError::Invalid("empty body".into()));
    }
    match jsonrpc::read(body).map_err(BodyError::Parse)? {
        Body::Single(raw) => Ok(vec![message(raw, None)?]),
        Body::Batch(list) if list.is_empty() => Err(BodyError::Invalid("empty batch".into())),
        Body::Batch(list) => {
            let mut messages = Vec::with_capacity(list.len());
            for (i, raw) in list.into_iter().enumerate() {
                messages.push(message(raw, Some(i))?);
            }
            Ok(messages)
        }
    }
}

/// The body parser as it was before `jsonrpc.rs`: the whole body into serde_json `Value`s,
/// then each message read from its tree (a duplicate member refused only at the top of a
/// single message; elsewhere the last one wins). Kept for the differential tests and the
/// `jsonrpc` fuzz target, never in the module.
#[cfg(any(test, fuzzing))]
pub fn parse_body_reference(body: &[u8]) -> Result<Vec<Message>, BodyError> {
    fn one(v: &Value, index: Option<usize>) -> Result<Message, BodyError> {
        let Some(obj) = v.as_object() else {
            return message(Raw::default(), index);
        };
        let text = |k: &str| obj.get(k).map(|v| v.as_str().map(str::to_string));
        let param = |k: &str| {
            obj.get("params")
                .and_then(|p| p.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let raw = Raw {
            object: true,
            version: text("jsonrpc").flatten().is_some_and(|v| v == "2.0"),
            method: text("method"),
            id: obj
                .get("id")
                .map(|id| (id.is_string() || id.is_number() || id.is_null()).then(|| id.clone())),
            name: param("name"),
            uri: param("uri"),
            reply: obj.contains_key("result") || obj.contains_key("error"),
        };
        message(raw, index)
    }
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
    match trimmed.and_then(|i| body.get(i)) {
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
                .map(|(i, m)| one(m, Some(i)))
                .collect()
        }
        Some(_) => {
            let obj = crate::util::json::parse_object(body).map_err(BodyError::Parse)?;
            one(&Value::Object(obj), None).map(|m| vec![m])
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

    /// The one-pass reader (`jsonrpc.rs`) against the tree-building parser it replaced, on
    /// generated bodies and byte-level mutations of them: the same messages or the same
    /// error, except where the new reader refuses a duplicate member the old one let the
    /// last copy win (inside a batch element, or `params.name` / `params.uri`).
    #[test]
    fn one_pass_reader_agrees_with_the_tree_parser() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let keys = [
            "jsonrpc",
            "method",
            "id",
            "params",
            "result",
            "error",
            "name",
            "uri",
            "arguments",
            "met\\u0068od",
            "x",
        ];
        let scalars = [
            r#""2.0""#,
            r#""1.0""#,
            "5",
            "-0",
            "1.5e3",
            "null",
            "true",
            r#""tools/call""#,
            r#""prompts/get""#,
            r#""resources/read""#,
            r#""add""#,
            r#""a\u0064d\n""#,
            r#""\ud83d\ude00""#,
            "18446744073709551616",
            "{}",
            "[]",
        ];
        fn value(
            next: &mut dyn FnMut(usize) -> usize,
            keys: &[&str],
            scalars: &[&str],
            depth: u32,
        ) -> String {
            match next(if depth > 2 { 1 } else { 4 }) {
                0 => scalars[next(scalars.len())].to_string(),
                1 | 2 => {
                    let n = next(5);
                    let members: Vec<String> = (0..n)
                        .map(|_| {
                            format!(
                                "\"{}\":{}",
                                keys[next(keys.len())],
                                value(next, keys, scalars, depth + 1)
                            )
                        })
                        .collect();
                    format!("{{{}}}", members.join(","))
                }
                _ => {
                    let n = next(3);
                    let items: Vec<String> = (0..n)
                        .map(|_| value(next, keys, scalars, depth + 1))
                        .collect();
                    format!("[{}]", items.join(","))
                }
            }
        }
        let message = |next: &mut dyn FnMut(usize) -> usize| {
            let mut m = vec![r#""jsonrpc":"2.0""#.to_string()];
            let method = [
                "tools/call",
                "prompts/get",
                "resources/read",
                "tools/list",
                "notifications/x",
            ];
            if next(6) > 0 {
                m.push(format!("\"method\":\"{}\"", method[next(method.len())]));
            }
            if next(3) > 0 {
                m.push(format!("\"id\":{}", scalars[next(scalars.len())]));
            }
            if next(3) > 0 {
                m.push(format!("\"params\":{}", value(next, &keys, &scalars, 1)));
            }
            for _ in 0..next(3) {
                m.push(format!(
                    "\"{}\":{}",
                    keys[next(keys.len())],
                    value(next, &keys, &scalars, 1)
                ));
            }
            let n = m.len();
            m.swap(next(n), next(n));
            format!("{{{}}}", m.join(","))
        };
        const POOL: &[u8] = b"{}[]\":,\\ u0\x80x1e\\";
        let (mut agreed, mut stricter) = (0, 0);
        for round in 0..20_000 {
            let mut body = if round % 4 == 0 {
                let n = next(4);
                let items: Vec<String> = (0..n).map(|_| message(&mut next)).collect();
                format!(" [{}]", items.join(","))
            } else {
                message(&mut next)
            }
            .into_bytes();
            if round % 3 == 0 && !body.is_empty() {
                let i = next(body.len());
                match next(3) {
                    0 => {
                        body.remove(i);
                    }
                    1 => body.insert(i, POOL[next(POOL.len())]),
                    _ => body[i] = POOL[next(POOL.len())],
                }
            }
            let new = parse_body(&body);
            let old = parse_body_reference(&body);
            match (&new, &old) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", String::from_utf8_lossy(&body)),
                (Err(BodyError::Parse(e)), _)
                    if e.contains("duplicate member") && old.is_ok()
                        || matches!(&old, Err(BodyError::Invalid(_)))
                            && e.contains("duplicate member") =>
                {
                    stricter += 1;
                    continue;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(
                        a.code(),
                        b.code(),
                        "{}: {a} / {b}",
                        String::from_utf8_lossy(&body)
                    );
                    if let BodyError::Invalid(_) = a {
                        assert_eq!(a, b, "{}", String::from_utf8_lossy(&body));
                    }
                }
                _ => panic!("{}: {new:?} / {old:?}", String::from_utf8_lossy(&body)),
            }
            agreed += 1;
        }
        assert!(
            agreed > 15_000 && stricter > 0,
            "{agreed} agreed, {stricter} stricter"
        );
    }

    #[test]
    fn the_one_pass_reader_decodes_names_and_refuses_duplicates_it_could_misread() {
        // Escapes are decoded before anything is compared: the backend sees "add".
        let m = parse_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/c\u0061ll","params":{"n\u0061me":"a\u0064d","arguments":{"name":"x","name":"y"}}}"#).unwrap();
        assert_eq!(m, vec![req("tools/call", Some("add"))]);
        for (body, named) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","met\u0068od":"tools/call"}"#,
                "method",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add","name":"rm"}}"#,
                "params.name",
            ),
            (
                r#"[{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}]"#,
                "id",
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","x":1,"x":2}"#,
                "x",
            ),
        ] {
            let e = parse_body(body.as_bytes()).unwrap_err();
            assert_eq!(e.code(), -32700, "{body}");
            assert!(
                e.to_string()
                    .contains(&format!("duplicate member \"{named}\"")),
                "{body}: {e}"
            );
        }
        // Well-formedness is serde_json's, in skipped values too.
        for bad in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"a":[1,]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"} x"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"\ud800"}"#,
        ] {
            assert_eq!(
                parse_body(bad.as_bytes()).unwrap_err().code(),
                -32700,
                "{bad}"
            );
        }
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let e = parse_body(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
        let e = parse_body(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":\"\xff\"}",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Parse error: invalid unicode code point at line 1 column 57"
        );
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
