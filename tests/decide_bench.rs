//! Native cost of one decision on the paths `make bench` drives through Envoy (warm token,
//! 401, PRM), with the bench's own configuration and token (`.run/bench`, written by
//! `devstack bench-tokens`). A measurement, never an assertion:
//! `cargo test --release --test decide_bench -- --ignored --nocapture` (`make bench` runs it).
//! Under `valgrind --tool=callgrind` it shows where a decision's instructions go
//! (`DECIDE_CASES=warm` measures one case only).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::time::Instant;

use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{decide_at, ConfiguredKeysWithCache, Decision, Request};
use mcp_edge_auth::http::extract::Authorization;
use mcp_edge_auth::token::cache::TokenCache;
use mcp_edge_auth::util::clock::Fixed;

/// Counts heap allocations (each one is a call into the module's allocator in V8 too).
struct Counting;

static ALLOCATIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn request<'a>(path: &'a str, authorization: Vec<&'a str>) -> Request<'a> {
    Request {
        method: "GET",
        path,
        scheme: Some("http"),
        authority: Some("127.0.0.1:19800"),
        forwarded_proto: None,
        authorization: Authorization::from_values(&authorization),
        origin: None,
        access_control_request_method: None,
        mcp_method: None,
        mcp_name: None,
    }
}

#[test]
#[ignore = "measurement: make bench"]
fn native_decision_cost() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".run/bench");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e} (make bench)"))
    };
    let jwks = read("jwks.json");
    let config = serde_json::json!({
        "providers": {"bench": {
            "issuer": "https://bench.example/", "audiences": ["bench"],
            "local_jwks": {"inline_string": jwks},
            "algorithms": ["RS256", "ES256"],
            "claim_to_headers": [{"claim_name": "sub", "header_name": "x-mcp-subject"}],
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "bench"}}],
        "protected_resource": {"resource": "http://127.0.0.1/mcp", "scopes_supported": ["mcp.tools"]},
    });
    let cfg = Config::parse(config.to_string().as_bytes()).unwrap();
    let token = read("one.txt").lines().next().unwrap().trim().to_string();
    let bearer = format!("Bearer {token}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = ConfiguredKeysWithCache(RefCell::new(TokenCache::new(1000, 1 << 24)));
    let iterations: u32 = std::env::var("DECIDE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let cases: [(&str, Request<'_>, u16); 3] = [
        ("warm", request("/mcp", vec![bearer.as_str()]), 200),
        ("401", request("/mcp", vec![]), 401),
        (
            "PRM",
            request("/.well-known/oauth-protected-resource/mcp", vec![]),
            200,
        ),
    ];
    // DECIDE_CASES=warm,401 measures only those (e.g. under callgrind).
    let only = std::env::var("DECIDE_CASES").ok();
    for (name, req, want) in &cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|c| c == *name))
        {
            continue;
        }
        let status = |d: &Decision| match d {
            Decision::Continue { .. } => 200,
            Decision::Respond { response, .. } => response.status,
            Decision::NeedBody { .. } => 0,
        };
        // The first warm decision verifies and fills the cache.
        assert_eq!(status(&decide_at(&cfg, req, &store, &Fixed(now))), *want);
        let before = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed);
        std::hint::black_box(decide_at(&cfg, req, &store, &Fixed(now)));
        let allocations = ALLOCATIONS.load(std::sync::atomic::Ordering::Relaxed) - before;
        let start = Instant::now();
        for _ in 0..iterations {
            std::hint::black_box(decide_at(&cfg, req, &store, &Fixed(now)));
        }
        let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
        println!(
            "native decide {name}: {us:.2} µs per decision ({iterations} iterations), \
             {allocations} allocations"
        );
    }
}
