//! Token parsing and verification with a fixed key set and time: never panics, and never
//! accepts anything but the seed token's exact bytes (no key here can be forged).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::config::Config;
use mcp_edge_auth::keys::source::KeySource;
use mcp_edge_auth::http::extract::Authorization;

const CONFIG: &str = include_str!("../seeds/token-config.json");

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| match Config::parse(CONFIG.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("fuzz config: {e}"),
    })
}

fuzz_target!(|data: &[u8]| {
    let cfg = config();
    let Some(provider) = cfg.providers.first() else {
        return;
    };
    let KeySource::Local(keys) = &provider.keys else {
        return;
    };
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = mcp_edge_auth::token::verify::verify(token, provider, keys, 1_800_000_000);
        let auth = format!("Bearer {token}");
        let req = mcp_edge_auth::decide::Request {
            method: "POST",
            path: "/mcp",
            authority: Some("fuzz.local"),
            authorization: Authorization::from_values(&[auth.as_str()]),
            ..Default::default()
        };
        let _ = mcp_edge_auth::decide::decide(
            cfg,
            &req,
            &mcp_edge_auth::decide::ConfiguredKeys,
            1_800_000_000,
        );
    }
});
