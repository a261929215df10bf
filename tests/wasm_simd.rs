//! The Wasm build's SIMD128 paths checked inside Envoy's V8, where they run (natively the
//! scalar fallbacks are what `cargo test` exercises): the b64token block check of
//! `extract::is_b64token` against the RFC 6750 character set, every byte value at every
//! position of a token of two 16-byte blocks and a tail; and `bytes::same_bytes` and
//! `bytes::is_ascii` against `==` and `is_ascii` on every length up to 80. The check runs in the bench module
//! (bench/verify, `{"b64_check": {}}`), which reuses the filter's core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::envoy::repo_root;
use support::EnvoyBuilder;

#[test]
fn b64token_simd_blocks_match_the_character_set() {
    let module = repo_root().join("target/wasm/verify_bench.wasm");
    assert!(
        module.is_file(),
        "run `make build` first (builds the bench module too)"
    );
    let envoy = EnvoyBuilder::new(r#"{"b64_check": {}}"#)
        .wasm_path(&module)
        .log_level("warning")
        .start()
        .unwrap();
    assert!(
        envoy.wait_for_log("b64 check:", Duration::from_secs(10)),
        "no result line:\n{}",
        envoy.logs()
    );
    let logs = envoy.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("b64 check:"))
        .unwrap_or_default();
    assert!(
        line.contains("11264 cases, 0 mismatches"),
        "the SIMD check disagrees with the character set: {line}"
    );
    assert!(
        line.contains("bytes check: 19602 cases, 0 mismatches"),
        "the SIMD byte compare or ASCII check disagrees with the scalar one: {line}"
    );
}
