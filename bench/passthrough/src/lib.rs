//! An HTTP filter that does nothing: `make bench` uses it to measure what any Wasm filter
//! costs in Envoy's V8 before it does any work.

use proxy_wasm::traits::{Context, HttpContext};

pub struct Pass;

impl Context for Pass {}

impl HttpContext for Pass {}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Pass) });
}}
