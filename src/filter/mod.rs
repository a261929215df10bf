//! The only place that talks to Envoy: contexts move bytes between the host and the core.
//!
//! Uses: `decide`, `config` and every part below them; nothing uses it.

mod facade;
mod fetcher;
mod host;
mod http;
mod keycache;
mod root;
mod waiters;

use proxy_wasm::types::LogLevel;

pub fn install() {
    proxy_wasm::set_log_level(LogLevel::Debug);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}
