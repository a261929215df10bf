//! The only place that talks to Envoy (placeholder until the core lands).
use proxy_wasm::traits::{Context, RootContext};
use proxy_wasm::types::LogLevel;

pub fn install() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| Box::new(Root));
}

struct Root;
impl Context for Root {}
impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        true
    }
}
