//! JWKS parsing (and the remote fetch checks around it): never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = mcp_edge_auth::keys::jwks::KeySet::parse(data) {
        let _ = set.summary();
    }
    let _ = mcp_edge_auth::keys::fetch::jwks_response(Some("200"), Some(data), data.len(), 64 * 1024);
    let _ = mcp_edge_auth::keys::fetch::discovery_response(
        Some("200"),
        Some(data),
        data.len(),
        64 * 1024,
        "https://idp/",
    );
});
