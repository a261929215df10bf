//! The only place that talks to Envoy: contexts move bytes between the host and the core.

mod host;
mod http;
mod root;

use proxy_wasm::types::LogLevel;

pub fn install() {
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|_| Box::new(root::Root::default()));
}
