//! What Envoy does when a filter's Wasm VM fails: with `failure_policy: FAIL_CLOSED` the
//! request is refused and never reaches the backend. (No input can panic mcp-edge-auth —
//! clippy denies unwrap/expect/panic/indexing in src/ and the fuzz targets hunt for it — so
//! this uses the bench pass-through module configured to panic on every request.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::recorder::Recorder;
use support::envoy::repo_root;
use support::{http, EnvoyBuilder};

#[test]
fn a_failed_vm_refuses_requests_instead_of_passing_them() {
    let module = repo_root().join("target/wasm/passthrough.wasm");
    assert!(
        module.is_file(),
        "run `make build` first (builds the pass-through module too)"
    );
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new("panic")
        .wasm_path(&module)
        .backend_port(backend.port())
        .start()
        .unwrap();
    for _ in 0..3 {
        let r = http::request(
            envoy.port(),
            "GET",
            "/mcp",
            &[("authorization", "Bearer x")],
            b"",
        );
        eprintln!("status after VM failure: {}", r.status);
        assert!(r.status >= 500, "a failed VM must refuse, got {}", r.status);
    }
    assert_eq!(
        backend.count(),
        0,
        "nothing passed while the VM was failing"
    );
    assert!(
        envoy.logs().contains("deliberate failure"),
        "the panic is in Envoy's log"
    );
}
