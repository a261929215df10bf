//! The thin wrapper around proxy-wasm host calls. Nothing here decides anything.

use std::cell::RefCell;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;

use crate::headers::Headers;
use proxy_wasm::types::{BufferType, MapType, MetricType};

/// The plugin configuration bytes.
pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

/// Request headers: the host's serialized map, read in place (`headers.rs`).
pub fn request_headers() -> Headers {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host fills both out-parameters; on success with a non-null pointer, `data`
    // is a buffer of `size` bytes it obtained from this module's allocator
    // (`proxy_on_memory_allocate`, the SDK's `Vec::with_capacity(size)`), now ours to own —
    // the same hand-over the SDK's own map getters rely on.
    let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
    if status != 0 || data.is_null() || size == 0 {
        return Headers::default();
    }
    let buf = unsafe { Vec::from_raw_parts(data, size, size) };
    Headers::parse(buf)
}

// Header changes and local replies go through the raw ABI: the SDK's wrappers panic on any
// status other than Ok (which would kill the VM and, fail-closed, refuse every request until
// Envoy restarts it); here a refused call is logged and the request goes on as decided.

const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;

fn check(call: &str, name: &str, status: u32) {
    if status != 0 {
        log::warn!("{call} {name:?}: host status {status}");
    }
}

pub fn remove_request_header(name: &str) {
    // SAFETY: pointer and length of a live &str; the host only reads them.
    let status =
        unsafe { proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len()) };
    check("removing request header", name, status);
}

pub fn add_request_header(name: &str, value: &str) {
    edit_header(REQUEST_HEADERS, Edit::Add, name, value);
}

/// Sets (replaces) a header on the response going back to the client.
pub fn set_response_header(name: &str, value: &str) {
    edit_header(RESPONSE_HEADERS, Edit::Replace, name, value);
}

/// Adds a header to the response going back to the client (keeps existing values).
pub fn add_response_header(name: &str, value: &str) {
    edit_header(RESPONSE_HEADERS, Edit::Add, name, value);
}

enum Edit {
    Add,
    Replace,
}

fn edit_header(map: u32, edit: Edit, name: &str, value: &str) {
    let call = match edit {
        Edit::Add => proxy_add_header_map_value,
        Edit::Replace => proxy_replace_header_map_value,
    };
    // SAFETY: pointers and lengths of live &strs; the host only reads them.
    let status = unsafe { call(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    let what = match (map, edit) {
        (REQUEST_HEADERS, _) => "adding request header",
        (_, Edit::Add) => "adding response header",
        (_, Edit::Replace) => "setting response header",
    };
    check(what, name, status);
}

/// Answers the request locally: the headers serialized as the ABI wants them (`u32` count,
/// `u32` name and value lengths, then each name and value NUL-terminated) in one buffer.
pub fn send_response(status: u16, headers: &[(&str, std::borrow::Cow<'_, str>)], body: &[u8]) {
    let size = 4 + headers
        .iter()
        .map(|(k, v)| k.len() + v.len() + 10)
        .sum::<usize>();
    let mut map = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    map.extend_from_slice(&len32(headers.len()));
    for (k, v) in headers {
        map.extend_from_slice(&len32(k.len()));
        map.extend_from_slice(&len32(v.len()));
    }
    for (k, v) in headers {
        map.extend_from_slice(k.as_bytes());
        map.push(0);
        map.extend_from_slice(v.as_bytes());
        map.push(0);
    }
    // SAFETY: pointers and lengths of live buffers; the host only reads them. No details
    // string, and -1: not a gRPC reply.
    let result = unsafe {
        proxy_send_local_response(
            u32::from(status),
            std::ptr::null(),
            0,
            if body.is_empty() {
                std::ptr::null()
            } else {
                body.as_ptr()
            },
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    };
    check("sending local response", "", result);
}

/// Counters, defined on first use and cached per VM.
///
/// Each `increment_metric` is a host call, about a microsecond in Envoy's V8 (`make bench`
/// measures it), and the busy paths count once or twice per request. So a counter's first
/// increment after a tick goes to Envoy at once, and later ones in the same tick are added up
/// here and sent by [`Metrics::flush`] on the next tick (at most 1 s later). At low rates
/// every count shows at once; under load a counter costs two host calls per tick instead of
/// one per request.
///
/// Counters are named by `'static` strings (a prefix and a label for the per-reason denial
/// counters), found again by the strings' addresses: a short list scanned with integer
/// compares, no hashing or formatting per request. (Two equal names at different addresses
/// get two entries for the same Envoy counter, which adds up the same.)
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<Vec<(NameKey, usize)>>,
    counters: RefCell<Vec<Counter>>,
}

/// The addresses and lengths of a counter's name parts.
type NameKey = [usize; 4];

fn name_key(prefix: &'static str, label: &'static str) -> NameKey {
    [
        prefix.as_ptr() as usize,
        prefix.len(),
        label.as_ptr() as usize,
        label.len(),
    ]
}

struct Counter {
    id: u32,
    /// Counted but not yet sent.
    pending: u64,
    /// An increment already went out since the last flush.
    sent: bool,
}

impl Metrics {
    pub fn increment(&self, name: &'static str) {
        self.increment_labeled(name, "");
    }

    /// Counts `prefix` + `label` (e.g. `mcp_edge_auth.denied.` + `expired`).
    pub fn increment_labeled(&self, prefix: &'static str, label: &'static str) {
        let key = name_key(prefix, label);
        let found = self
            .ids
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, i)| *i);
        let index = match found {
            Some(i) => i,
            None => {
                let name = format!("{prefix}{label}");
                let Ok(id) = hostcalls::define_metric(MetricType::Counter, &name) else {
                    return;
                };
                let mut counters = self.counters.borrow_mut();
                counters.push(Counter {
                    id,
                    pending: 0,
                    sent: false,
                });
                let i = counters.len() - 1;
                self.ids.borrow_mut().push((key, i));
                i
            }
        };
        let mut counters = self.counters.borrow_mut();
        let Some(c) = counters.get_mut(index) else {
            return;
        };
        if c.sent {
            c.pending += 1;
        } else {
            c.sent = true;
            let _ = hostcalls::increment_metric(c.id, 1);
        }
    }

    /// Sends what was counted since the last flush (each tick, and when the VM stops).
    pub fn flush(&self) {
        for c in self.counters.borrow_mut().iter_mut() {
            if c.pending > 0 {
                let delta = i64::try_from(c.pending).unwrap_or(i64::MAX);
                let _ = hostcalls::increment_metric(c.id, delta);
                c.pending = 0;
            }
            c.sent = false;
        }
    }
}

thread_local! {
    /// When the host's log level was last read (ms since the epoch).
    static LOG_LEVEL_READ_AT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Follows Envoy's log level for the Wasm component (it can change at runtime through the
/// admin API), so that disabled debug lines cost nothing: no formatting, no host call per
/// request. Called from `on_configure` and every tick; reads the level about once a second.
pub fn follow_log_level(now_ms: u64) {
    let due = LOG_LEVEL_READ_AT.with(|at| {
        if now_ms.saturating_sub(at.get()) >= 900 {
            at.set(now_ms);
            true
        } else {
            false
        }
    });
    if due {
        // The SDK panics on an unexpected status; Envoy always answers Ok, but a panic would
        // kill the VM, so go through the raw call.
        use proxy_wasm::types::LogLevel;
        let mut raw: u32 = 1;
        // SAFETY: `proxy_get_log_level` writes one u32 to the pointer (read as a plain
        // integer: Envoy may answer 6, "off", which is no `LogLevel` variant).
        let status = unsafe { proxy_get_log_level(&mut raw) };
        if status == 0 {
            proxy_wasm::set_log_level(match raw {
                0 => LogLevel::Trace,
                1 => LogLevel::Debug,
                2 => LogLevel::Info,
                3 => LogLevel::Warn,
                4 => LogLevel::Error,
                _ => LogLevel::Critical,
            });
        }
    }
}

extern "C" {
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    /// Map type 0 is the request headers (proxy-wasm ABI 0.2.1).
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sub-second clock bits, a cheap source of jitter and VM identity.
pub fn clock_nanos() -> u32 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.subsec_nanos())
}

/// Shared data (all VMs with the same vm_id): value and CAS token.
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    hostcalls::get_shared_data(key).unwrap_or((None, None))
}

/// Writes shared data with a CAS token; `false` on a CAS mismatch.
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    hostcalls::set_shared_data(key, Some(value), cas).is_ok()
}

pub fn set_tick_period_ms(ms: u64) {
    let _ = hostcalls::set_tick_period(std::time::Duration::from_millis(ms));
}

/// Sends a GET callout; the token identifies the answer in `on_http_call_response`.
pub fn dispatch_get(
    cluster: &str,
    headers: &[(&'static str, String)],
    timeout_ms: u64,
) -> Result<u32, String> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    hostcalls::dispatch_http_call(
        cluster,
        headers,
        None,
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .map_err(|s| format!("dispatch to cluster {cluster:?} failed ({s:?}); is the cluster defined?"))
}

/// Status and (capped) body of the callout being answered.
pub fn call_response(body_size: usize, limit: usize) -> (Option<String>, Option<Vec<u8>>) {
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten();
    let body = if body_size == 0 || body_size > limit {
        None
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
    };
    (status, body)
}

/// Makes `context_id` the current context, so header, response and resume calls act on
/// that (paused) request. `false` if it no longer exists.
pub fn switch_to(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

pub fn resume_request() {
    let _ = hostcalls::resume_http_request();
}

/// The buffered request body (up to `size` bytes).
pub fn request_body(size: usize) -> Vec<u8> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
        .ok()
        .flatten()
        .unwrap_or_default()
}
