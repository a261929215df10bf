//! The filter's per-request work inside Envoy's V8, without the host calls around it:
//! parse the serialized header map, build the decision input, decide, and look up the
//! headers the filter would remove — the same Rust as `tests/decide_bench.rs` runs natively.
//!
//! Configured with `{"decide_bench": {"config": "<plugin configuration JSON>",
//! "token": "…", "iterations": 20000}}`; logs one line per case:
//! `decide warm: 20000 iterations, 1.9 µs per request (best batch 1.8 µs)`; the case
//! `headers` is the header parse and the decision input alone (warm request's headers).

use std::cell::RefCell;
use std::time::SystemTime;

use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{decide_at, ConfiguredKeysWithCache, Decision, Request};
use mcp_edge_auth::http::headers::Headers;
use mcp_edge_auth::token::cache::TokenCache;
use mcp_edge_auth::util::clock::Fixed;

/// The header map as Envoy serializes it for `proxy_get_header_map_pairs`, for a request
/// like wrk's behind Envoy's HTTP connection manager.
fn serialized(path: &str, authorization: Option<&str>) -> Vec<u8> {
    let mut pairs = vec![
        (":authority", "127.0.0.1:19800"),
        (":path", path),
        (":method", "GET"),
        (":scheme", "http"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "3f0c6a2e-5d1b-4f7e-9a43-0b8e2c1d7f65"),
    ];
    if let Some(a) = authorization {
        pairs.insert(4, ("authorization", a));
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in &pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in &pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

pub fn run(c: &serde_json::Value, now: impl Fn() -> SystemTime) -> Result<String, String> {
    let text = |k: &str| {
        c.get(k)
            .and_then(|x| x.as_str())
            .ok_or(format!("missing {k}"))
    };
    let cfg = Config::parse(text("config")?.as_bytes()).map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {}", text("token")?);
    let iterations = c
        .get("iterations")
        .and_then(|x| x.as_u64())
        .unwrap_or(20_000) as usize;
    let secs = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let store = ConfiguredKeysWithCache(RefCell::new(TokenCache::new(1000, 1 << 24)));
    let cases = [
        ("warm", serialized("/mcp", Some(&bearer)), 200u16),
        ("401", serialized("/mcp", None), 401),
        (
            "PRM",
            serialized("/.well-known/oauth-protected-resource/mcp", None),
            200,
        ),
        ("headers", serialized("/mcp", Some(&bearer)), 0),
    ];
    // "cases": ["warm", …] measures only those (instruction counts under callgrind).
    let only: Option<Vec<&str>> = c
        .get("cases")
        .and_then(|x| x.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect());
    let mut lines = Vec::new();
    for (name, buf, want) in &cases {
        if only.as_ref().is_some_and(|o| !o.contains(name)) {
            continue;
        }
        let headers_only = *name == "headers";
        let one = || {
            if headers_only {
                // The header parse and the decision input alone.
                let headers = Headers::parse(buf.clone());
                std::hint::black_box(Request::from_headers(&headers).path.len());
                return 0;
            }
            // The host hands over a fresh buffer every time.
            let headers = Headers::parse(buf.clone());
            let d = decide_at(&cfg, &Request::from_headers(&headers), &store, &Fixed(secs));
            let status = match &d {
                Decision::Continue { forward, .. } => {
                    // What apply_forward looks up before removing.
                    for n in forward.remove_headers.iter() {
                        std::hint::black_box(headers.contains(n));
                    }
                    200
                }
                Decision::Respond { response, .. } => response.status,
                Decision::NeedBody { .. } => 0,
            };
            std::hint::black_box(d);
            status
        };
        let got = one();
        if got != *want {
            return Err(format!("decide {name}: status {got}, expected {want}"));
        }
        let (total, mean, best) = crate::time_batches(iterations, &now, || {
            one();
            true
        })?;
        lines.push(format!(
            "decide {name}: {total} iterations, {mean:.2} µs per request (best batch {best:.2} µs)"
        ));
    }
    Ok(lines.join("\n"))
}
