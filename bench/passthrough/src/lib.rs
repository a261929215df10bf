//! An HTTP filter that does nothing: `make bench` uses it to measure what any Wasm filter
//! costs in Envoy's V8 before it does any work. Configured with the string `"panic"` it
//! instead panics on every request, which `tests/vm_failure.rs` uses to show what Envoy does
//! when a filter's VM fails (FAIL_CLOSED: the request is refused, never passed on).
//!
//! Configured with `"calls:<letters>"` it makes those host calls on every request and nothing
//! else, so `make bench` can price one host call: `t` reads the clock, `h` reads the request
//! headers as the SDK copies them (a `String` per name and value), `p` reads them as the filter
//! does (one raw buffer, src/filter/host.rs), `v` reads `:path`, `:method` and `Authorization`
//! one host call each, `n` reads the ten headers the filter's decision looks at (src/http/decision_headers.rs)
//! one host call each, `u` reads `Authorization` alone, `x` asks for a header that is not there
//! (a host call that allocates nothing), `m` increments a counter, `a` adds a request
//! header (`x-bench`), `r` removes `x-bench`, `z` removes `Authorization`, `l` answers with
//! a 401 shaped like the filter's (same headers, a body of the same size) and stops. `pz`
//! are the host calls of the filter's warm path (`pza` with one claim header added), `pl`
//! those of its 401, without its decision. `b` holds the request at its headers and reads
//! the whole body, as the filter does for an MCP rule (src/filter/http.rs): the headers
//! callback stops iteration, each body callback before the last stops it too (Envoy
//! buffers), the last reads the whole buffered body in one host call and continues.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

#[derive(Default)]
pub struct Root {
    panic: bool,
    calls: Vec<u8>,
    metric: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        // The bench passes a JSON string ("..."), the VM-failure test the bare word.
        let text = String::from_utf8_lossy(&config);
        let text = text.trim_matches('"');
        self.panic = text == "panic";
        if let Some(calls) = text.strip_prefix("calls:") {
            self.calls = calls.bytes().collect();
            self.metric = hostcalls::define_metric(MetricType::Counter, "passthrough.calls")
                .unwrap_or_default();
        }
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass {
            panic: self.panic,
            calls: self.calls.clone(),
            metric: self.metric,
            hold_body: false,
        }))
    }
}

pub struct Pass {
    panic: bool,
    calls: Vec<u8>,
    metric: u32,
    /// `b`: the request is held until its whole body has been read.
    hold_body: bool,
}

impl Context for Pass {}

impl HttpContext for Pass {
    #[allow(clippy::panic)]
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        if self.panic {
            panic!("deliberate failure for the VM-failure test");
        }
        for call in &self.calls {
            match call {
                b't' => {
                    std::hint::black_box(hostcalls::get_current_time().ok());
                }
                b'h' => {
                    std::hint::black_box(hostcalls::get_map(MapType::HttpRequestHeaders).ok());
                }
                b'p' => {
                    std::hint::black_box(raw_pairs());
                }
                b'v' => {
                    for name in [":path", ":method", "authorization"] {
                        std::hint::black_box(raw_value(name));
                    }
                }
                b'n' => {
                    for name in NAMES {
                        std::hint::black_box(raw_value(name));
                    }
                }
                b'u' => {
                    std::hint::black_box(raw_value("authorization"));
                }
                b'x' => {
                    std::hint::black_box(raw_value("x-absent"));
                }
                b'm' => {
                    let _ = hostcalls::increment_metric(self.metric, 1);
                }
                b'a' => {
                    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-bench", "1");
                }
                b'r' => {
                    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-bench", None);
                }
                b'l' => {
                    let _ = hostcalls::send_http_response(
                        401,
                        vec![
                            ("www-authenticate", "Bearer resource_metadata=\"http://127.0.0.1:19800/.well-known/oauth-protected-resource/mcp\", scope=\"mcp.tools\""),
                            ("access-control-allow-origin", "*"),
                            ("access-control-expose-headers", "WWW-Authenticate, Mcp-Session-Id, MCP-Protocol-Version"),
                            ("cache-control", "no-store"),
                            ("content-type", "application/json"),
                        ],
                        Some(br#"{"error":"unauthorized","error_description":"a Bearer access token is required"}"#),
                    );
                    return Action::Pause;
                }
                b'z' => {
                    let _ = hostcalls::set_map_value(
                        MapType::HttpRequestHeaders,
                        "authorization",
                        None,
                    );
                }
                b'b' if !end_of_stream => {
                    self.hold_body = true;
                }
                _ => {}
            }
        }
        if self.hold_body {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.hold_body {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // Envoy buffers until the whole body is in.
        }
        std::hint::black_box(hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size).ok());
        self.hold_body = false;
        Action::Continue
    }
}

/// The request headers as one buffer, as the filter reads them (src/filter/host.rs).
fn raw_pairs() -> usize {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a buffer it allocated through proxy_on_memory_allocate.
    let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
    if status != 0 || data.is_null() || size == 0 {
        return 0;
    }
    // SAFETY: the buffer is ours, `size` bytes from the module's allocator.
    let buf = unsafe { Vec::from_raw_parts(data, size, size) };
    buf.len()
}

/// The request headers the filter's decision reads: the filter's own list.
#[path = "../../../src/http/decision_headers.rs"]
mod decision_headers;
use decision_headers::NAMES;

/// One request header's value by name, through the raw ABI (one host call; when the header
/// is there the host allocates the copy in the module, as for the whole map).
fn raw_value(name: &str) -> usize {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: as in raw_pairs; the name is read by the host during the call only.
    let status =
        unsafe { proxy_get_header_map_value(0, name.as_ptr(), name.len(), &mut data, &mut size) };
    if status != 0 || data.is_null() || size == 0 {
        return 0;
    }
    // SAFETY: as in raw_pairs.
    let buf = unsafe { Vec::from_raw_parts(data, size, size) };
    buf.len()
}

extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}
