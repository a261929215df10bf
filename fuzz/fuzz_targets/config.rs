//! Plugin configuration parsing: any bytes give a Config or a ConfigError, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = mcp_edge_auth::config::Config::parse(data) {
        let _ = e.to_string();
    }
});
