//! The module's size budget (issue "Performance": ≤ 600 KB). Every Envoy worker compiles the
//! module into its own VM and Istio pulls it into every sidecar, so size is paid per worker and
//! per pod. `make build` writes the module (cargo, then wasm-opt -O3: scripts/wasm-opt.sh).
//! When this fails, `twiggy top` on an unstripped build shows what grew
//! (`CARGO_PROFILE_RELEASE_STRIP=false`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

/// 600 KB, counted in decimal kilobytes (the stricter reading).
const BUDGET: u64 = 600_000;

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
