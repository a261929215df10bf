//! JSON-RPC body inspection: never panics; errors are well-formed JSON-RPC bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::authz::mcp;

fuzz_target!(|data: &[u8]| {
    match mcp::parse_body(data) {
        Ok(messages) => {
            let _ = mcp::header_mismatch(&messages, Some("tools/call"), Some("add"));
            let _ = mcp::reply_id(&messages);
        }
        Err(e) => {
            let body = mcp::error_body(&serde_json::Value::Null, e.code(), &e.to_string());
            assert!(body.get("error").is_some());
        }
    }
});
