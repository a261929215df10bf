//! An HTTP filter that does nothing: `make bench` uses it to measure what any Wasm filter
//! costs in Envoy's V8 before it does any work. Configured with the string `"panic"` it
//! instead panics on every request, which `tests/vm_failure.rs` uses to show what Envoy does
//! when a filter's VM fails (FAIL_CLOSED: the request is refused, never passed on).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

#[derive(Default)]
pub struct Root {
    panic: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.panic = self
            .get_plugin_configuration()
            .is_some_and(|c| c.as_slice() == b"panic");
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass { panic: self.panic }))
    }
}

pub struct Pass {
    panic: bool,
}

impl Context for Pass {}

impl HttpContext for Pass {
    #[allow(clippy::panic)]
    fn on_http_request_headers(&mut self, _n: usize, _eos: bool) -> Action {
        if self.panic {
            panic!("deliberate failure for the VM-failure test");
        }
        Action::Continue
    }
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}
