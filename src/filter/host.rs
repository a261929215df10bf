//! The thin wrapper around proxy-wasm host calls. Nothing here decides anything.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType};

/// Seconds since the epoch from the host clock (0 if the host cannot tell, which makes
/// every token look expired: fail closed).
pub fn now_seconds() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// The plugin configuration bytes.
pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

/// Request headers, values decoded lossily (non-UTF-8 bytes never panic the VM).
pub fn request_headers() -> Vec<(String, String)> {
    hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
        .map(|pairs| {
            pairs
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn remove_request_header(name: &str) {
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None);
}

pub fn add_request_header(name: &str, value: &str) {
    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, name, value);
}

pub fn send_response(status: u16, headers: &[(String, String)], body: &[u8]) {
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!body.is_empty()).then_some(body);
    let _ = hostcalls::send_http_response(u32::from(status), headers, body);
}

/// Counters, defined on first use and cached per VM.
#[derive(Default)]
pub struct Metrics {
    ids: RefCell<HashMap<String, u32>>,
}

impl Metrics {
    pub fn increment(&self, name: &str) {
        let id = {
            let mut ids = self.ids.borrow_mut();
            match ids.get(name) {
                Some(id) => Some(*id),
                None => match hostcalls::define_metric(MetricType::Counter, name) {
                    Ok(id) => {
                        ids.insert(name.to_string(), id);
                        Some(id)
                    }
                    Err(_) => None,
                },
            }
        };
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }
}
