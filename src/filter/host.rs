//! The thin wrapper around proxy-wasm host calls. Nothing here decides anything.

use std::cell::RefCell;

use crate::crypto::rsa::HashAlg;
use crate::http::headers::Headers;
use crate::token::host_signature::{self, HostVerifier};

// Host calls go through the raw ABI (proxy-wasm 0.2.1, the "env" imports at the end of this
// file): the SDK's wrappers panic on any status they do not expect, which would kill the VM
// and, fail-closed, refuse every request until Envoy restarts it. Here a refused call is
// logged and the filter goes on as decided. (Only the callout goes through the SDK: its
// dispatcher must learn the callout's token to route the answer.)

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;
const CAS_MISMATCH: u32 = 8;

const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const CALL_RESPONSE_HEADERS: u32 = 6;

const REQUEST_BODY: u32 = 0;
const CALL_RESPONSE_BODY: u32 = 4;
const PLUGIN_CONFIGURATION: u32 = 7;

const COUNTER: u32 = 0;

/// The plugin configuration bytes.
pub fn plugin_configuration() -> Option<Vec<u8>> {
    buffer(PLUGIN_CONFIGURATION, "plugin configuration", 0, usize::MAX)
}

/// A buffer the host filled (`NotFound`: none). Another status is logged and read as none.
fn buffer(buffer_type: u32, what: &str, start: usize, max_size: usize) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes both out-parameters (see `take`).
    let status =
        unsafe { proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) };
    match status {
        OK => unsafe { take(data, size) },
        NOT_FOUND => None,
        other => {
            check("reading", what, other);
            None
        }
    }
}

/// Takes ownership of a buffer the host handed over.
///
/// # Safety
/// `data` is null or was filled by the host with a buffer of `size` bytes obtained from this
/// module's allocator (`proxy_on_memory_allocate`, the SDK's `Vec::with_capacity(size)`),
/// which becomes ours — the hand-over the SDK's own getters rely on.
unsafe fn take(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// Request headers: the host's serialized map, read in place (`http/headers.rs`).
pub fn request_headers() -> Headers {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host fills both out-parameters (see `take`).
    let status = unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) };
    if status != OK {
        check("reading request headers", "", status);
        return Headers::default();
    }
    match unsafe { take(data, size) } {
        Some(buf) if !buf.is_empty() => Headers::parse(buf),
        _ => Headers::default(),
    }
}

fn check(call: &str, name: &str, status: u32) {
    if status != OK {
        log::warn!("{call} {name:?}: host status {status}");
    }
}

/// Envoy's `verify_signature` foreign function (BoringSSL's `EVP_DigestVerify`) as the RS*
/// and ES256 signature check (`token/host_signature.rs`). Any status but Ok, or an answer that is not
/// a `VerifySignatureResult`: no verdict, and the module's own code checks the signature.
/// Counts `mcp_edge_auth.host_signature.checked` per verdict, `.error` per fallback.
pub struct HostRsa {
    pub metrics: Option<std::rc::Rc<Metrics>>,
}

impl HostVerifier for HostRsa {
    fn verify(&self, hash: HashAlg, spki: &[u8], message: &[u8], signature: &[u8]) -> Option<bool> {
        let args = host_signature::encode_arguments(hash, spki, signature, message);
        let name = "verify_signature";
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: pointers and lengths of a live &str and Vec; the host writes the
        // out-parameters (see `take`).
        let status = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                args.as_ptr(),
                args.len(),
                &mut data,
                &mut size,
            )
        };
        let answer = unsafe { take(data, size) };
        let verdict = if status == OK {
            host_signature::decode_result(answer.as_deref().unwrap_or_default())
        } else {
            None
        };
        if let Some(m) = &self.metrics {
            m.increment(match verdict {
                Some(_) => "mcp_edge_auth.host_signature.checked",
                None => "mcp_edge_auth.host_signature.error",
            });
        }
        if verdict.is_none() {
            log::debug!(
                "{name}: host status {status}, no verdict; the module checks this signature"
            );
        }
        verdict
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

/// Sets a property of the current stream: Envoy keeps it as filter state under
/// `wasm.<name>` (a string, which access logs, RBAC and rate limits read). The value is never
/// logged.
pub fn set_property(name: &str, value: &str) {
    // SAFETY: pointers and lengths of live &strs; the host only reads them. A one-part path
    // is the name itself (parts would be NUL-separated).
    let status =
        unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) };
    check("setting property", name, status);
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
                let Some(id) = define_counter(&name) else {
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
            increment_metric(c.id, 1);
        }
    }

    /// Sends what was counted since the last flush (each tick, and when the VM stops).
    pub fn flush(&self) {
        // `try_`: also called from a drop (root.rs), which must never panic.
        let Ok(mut counters) = self.counters.try_borrow_mut() else {
            return;
        };
        for c in counters.iter_mut() {
            if c.pending > 0 {
                let delta = i64::try_from(c.pending).unwrap_or(i64::MAX);
                increment_metric(c.id, delta);
                c.pending = 0;
            }
            c.sent = false;
        }
    }
}

fn define_counter(name: &str) -> Option<u32> {
    let mut id: u32 = 0;
    // SAFETY: pointer and length of a live &str; the host writes one u32 to `id`.
    let status = unsafe { proxy_define_metric(COUNTER, name.as_ptr(), name.len(), &mut id) };
    check("defining counter", name, status);
    (status == OK).then_some(id)
}

fn increment_metric(id: u32, delta: i64) {
    // SAFETY: plain integers.
    let status = unsafe { proxy_increment_metric(id, delta) };
    if status != OK {
        // Once per counter and tick at most; debug, as it would repeat every second.
        log::debug!("incrementing counter {id}: host status {status}");
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
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_call_foreign_function(
        function_name: *const u8,
        function_name_size: usize,
        arguments: *const u8,
        arguments_size: usize,
        results: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
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

/// Nanoseconds since the epoch (0 if the host refuses, which no token's time checks pass).
fn now_nanos() -> u64 {
    let mut nanos: u64 = 0;
    // SAFETY: the host writes one u64 to the pointer.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    check("reading the clock", "", status);
    if status == OK {
        nanos
    } else {
        0
    }
}

/// Milliseconds since the epoch.
pub fn now_millis() -> u64 {
    now_nanos() / 1_000_000
}

/// Sub-second clock bits, a cheap source of jitter and VM identity.
pub fn clock_nanos() -> u32 {
    u32::try_from(now_nanos() % 1_000_000_000).unwrap_or(0)
}

/// Shared data (all VMs with the same vm_id): value and CAS token.
pub fn shared_get(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: pointer and length of a live &str; the host writes the out-parameters (see
    // `take`).
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        OK => (unsafe { take(data, size) }, (cas != 0).then_some(cas)),
        NOT_FOUND => (None, None),
        other => {
            check("reading shared data", key, other);
            (None, None)
        }
    }
}

/// Writes shared data with a CAS token; `false` on a CAS mismatch (or a refusal, logged).
pub fn shared_set(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    // SAFETY: pointers and lengths of live buffers; the host only reads them.
    let status = unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    };
    if status != CAS_MISMATCH {
        check("writing shared data", key, status);
    }
    status == OK
}

pub fn set_tick_period_ms(ms: u64) {
    // SAFETY: a plain integer.
    let status =
        unsafe { proxy_set_tick_period_milliseconds(u32::try_from(ms).unwrap_or(u32::MAX)) };
    check("setting the tick period", "", status);
}

/// Sends a GET callout; the token identifies the answer in `on_http_call_response`.
///
/// Through the SDK (its dispatcher must register the token), which returns `BadArgument`
/// and `InternalFailure` as errors — what Envoy answers for an unknown cluster or a failed
/// request — and would panic only on a status Envoy's `http_call` does not produce.
pub fn dispatch_get(
    cluster: &str,
    headers: &[(&'static str, String)],
    timeout_ms: u64,
) -> Result<u32, String> {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers,
        None,
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .map_err(|s| format!("dispatch to cluster {cluster:?} failed ({s:?}); is the cluster defined?"))
}

/// Sends a callout with these pseudo-headers and headers and a body (the sign-in façade's
/// upstream token request); the token identifies the answer in the calling context's
/// `on_http_call_response`. Errors as [`dispatch_get`]; the message never holds the body.
pub fn dispatch(
    cluster: &str,
    headers: Vec<(&str, &str)>,
    body: &[u8],
    timeout_ms: u64,
) -> Result<u32, String> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers,
        Some(body),
        Vec::new(),
        std::time::Duration::from_millis(timeout_ms),
    )
    .map_err(|s| format!("dispatch to cluster {cluster:?} failed ({s:?}); is the cluster defined?"))
}

/// Status and (capped) body of the callout being answered.
pub fn call_response(body_size: usize, limit: usize) -> (Option<String>, Option<Vec<u8>>) {
    let key = ":status";
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: pointer and length of a live &str; the host writes the out-parameters (see
    // `take`).
    let status = unsafe {
        proxy_get_header_map_value(
            CALL_RESPONSE_HEADERS,
            key.as_ptr(),
            key.len(),
            &mut data,
            &mut size,
        )
    };
    let status = match status {
        OK => unsafe { take(data, size) }.and_then(|b| String::from_utf8(b).ok()),
        NOT_FOUND => None,
        other => {
            check("reading callout response header", key, other);
            None
        }
    };
    let body = if body_size == 0 || body_size > limit {
        None
    } else {
        buffer(CALL_RESPONSE_BODY, "callout response body", 0, body_size)
    };
    (status, body)
}

/// Makes `context_id` the current context, so header, response and resume calls act on
/// that (paused) request. `false` if it no longer exists.
pub fn switch_to(context_id: u32) -> bool {
    // SAFETY: a plain integer. `BadArgument`: the context is gone (a normal answer).
    unsafe { proxy_set_effective_context(context_id) == OK }
}

pub fn resume_request() {
    // SAFETY: a plain integer (stream type 0: the HTTP request).
    let status = unsafe { proxy_continue_stream(0) };
    check("resuming the request", "", status);
}

/// The buffered request body (up to `size` bytes).
pub fn request_body(size: usize) -> Vec<u8> {
    buffer(REQUEST_BODY, "request body", 0, size).unwrap_or_default()
}
