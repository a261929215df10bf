//! JSON-RPC body inspection: never panics; errors are well-formed JSON-RPC bodies; the
//! one-pass reader finds the same calls as the tree parser it replaced
//! (`mcp::parse_body_reference`), or refuses a duplicate member that one let the last copy win.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::authz::mcp::{self, BodyError};

fuzz_target!(|data: &[u8]| {
    let new = mcp::parse_body(data);
    match &new {
        Ok(messages) => {
            let _ = mcp::header_mismatch(messages, Some("tools/call"), Some("add"));
            let _ = mcp::reply_id(messages);
        }
        Err(e) => {
            let body = mcp::error_body(&serde_json::Value::Null, e.code(), &e.to_string());
            assert!(body.get("error").is_some());
        }
    }
    let old = mcp::parse_body_reference(data);
    match (&new, &old) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(BodyError::Parse(e)), _) if e.contains("duplicate member") => {}
        (Err(a), Err(b)) => {
            assert_eq!(a.code(), b.code(), "{a} / {b}");
            if let BodyError::Invalid(_) = a {
                assert_eq!(a, b);
            }
        }
        _ => panic!("{new:?} / {old:?}"),
    }
});
