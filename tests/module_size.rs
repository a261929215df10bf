//! The module's size budget (issues "Performance II" and the sign-in façade: ≤ 640 KiB, the
//! façade included). Every Envoy worker compiles the module into its own VM and Istio pulls
//! it into every sidecar, so size is paid per worker and per pod. `make build` writes the
//! module (cargo, then wasm-opt -O3: scripts/wasm-opt.sh). When this fails, `twiggy top` on
//! an unstripped build shows what grew: `CARGO_PROFILE_RELEASE_STRIP=false
//! CARGO_TARGET_DIR=target/names cargo build -p mcp-edge-auth --lib --release --target
//! wasm32-wasip1`, then `WASM_OPT_EXTRA=-g scripts/wasm-opt.sh <that .wasm> <out>
//! --filter-exports`. How the module fits: the workspace Cargo.toml's profile section.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

/// 640 KiB (655,360 bytes).
const BUDGET: u64 = 655_360;

#[test]
fn the_module_fits_its_size_budget() {
    let path = support::envoy::wasm_module_path();
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `make build`)", path.display()))
        .len();
    println!("{}: {size} bytes (budget {BUDGET})", path.display());
    assert!(
        size <= BUDGET,
        "{} is {size} bytes, over the {BUDGET}-byte budget",
        path.display()
    );
    // Cheap sanity: a WebAssembly binary, version 1 (the budget must not pass on a stub).
    let head = std::fs::read(&path).unwrap();
    assert_eq!(head.get(..8), Some(&b"\0asm\x01\0\0\0"[..]));
    assert!(size > 100_000, "{size} bytes is not the filter");
}

/// The one module holds the sign-in façade: its metadata document's fields are linked in,
/// so the budget above is the budget with the façade (tests/facade.rs runs it in Envoy).
#[test]
fn the_module_holds_the_sign_in_facade() {
    let wasm = std::fs::read(support::envoy::wasm_module_path()).unwrap();
    let has = |needle: &[u8]| wasm.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"authorization_response_iss_parameter_supported"));
    assert!(has(b"code_challenge_methods_supported"));
}

/// The module exports exactly the proxy-wasm callbacks the filter uses (scripts/wasm-opt.sh
/// drops the SDK's others): Envoy skips a stream callback the module does not export, so every
/// extra one would be a call into V8 on every request, and a missing one a lost feature
/// (`proxy_on_response_headers` carries the CORS headers of the backend's answers,
/// `proxy_on_delete` frees what a request held).
#[test]
fn the_module_exports_only_the_callbacks_the_filter_uses() {
    let path = support::envoy::wasm_module_path();
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut exports = export_names(&wasm);
    exports.sort();
    let mut expected = vec![
        "_initialize",
        "memory",
        "proxy_abi_version_0_2_1",
        "proxy_on_configure",
        "proxy_on_context_create",
        "proxy_on_delete",
        "proxy_on_http_call_response",
        "proxy_on_memory_allocate",
        "proxy_on_request_body",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_tick",
        "proxy_on_vm_start",
    ];
    expected.sort();
    assert_eq!(exports, expected, "{}", path.display());
}

/// The names in a WebAssembly binary's export section (id 7).
fn export_names(wasm: &[u8]) -> Vec<String> {
    fn leb(b: &[u8], at: &mut usize) -> usize {
        let (mut n, mut shift) = (0usize, 0);
        loop {
            let byte = b[*at];
            *at += 1;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return n;
            }
            shift += 7;
        }
    }
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let size = leb(wasm, &mut at);
        let end = at + size;
        if id == 7 {
            let count = leb(wasm, &mut at);
            let mut names = Vec::with_capacity(count);
            for _ in 0..count {
                let len = leb(wasm, &mut at);
                names.push(String::from_utf8(wasm[at..at + len].to_vec()).unwrap());
                at += len;
                at += 1; // kind
                leb(wasm, &mut at); // index
            }
            return names;
        }
        at = end;
    }
    panic!("no export section");
}
