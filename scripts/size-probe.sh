#!/usr/bin/env bash
# The module's size with the sign-in façade reachable, before the glue wires it in: builds
# the filter with the `size-probe` feature (src/oauth/size_probe.rs exports one function
# that calls every façade endpoint), then wasm-opt as `make build` does. Measurement only:
# the probe module is never shipped, and tests/module_size.rs's export check refuses it.
#
#   scripts/size-probe.sh          target/wasm/size-probe.wasm (stripped, like the real one)
#   NAMES=1 scripts/size-probe.sh  also unstripped builds with and without the probe, names
#                                  kept through wasm-opt (-g), for `twiggy top`:
#                                  target/wasm/names.wasm, target/wasm/size-probe-names.wasm
#                                  (cargo's own target dir target/names: other profile)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RAW=target/wasm32-wasip1/release

cargo build -p mcp-edge-auth --lib --release --target wasm32-wasip1 --features size-probe
mkdir -p target/wasm
cp "$RAW/mcp_edge_auth.wasm" target/wasm/size-probe.raw.wasm
bash scripts/wasm-opt.sh target/wasm/size-probe.raw.wasm target/wasm/size-probe.wasm --filter-exports
echo "size-probe: target/wasm/size-probe.wasm ($(wc -c < target/wasm/size-probe.wasm) bytes)"

if [ -n "${NAMES:-}" ]; then
    for features in "" size-probe; do
        out=target/wasm/${features:+$features-}names
        CARGO_PROFILE_RELEASE_STRIP=false CARGO_TARGET_DIR=target/names \
            cargo build -p mcp-edge-auth --lib --release --target wasm32-wasip1 \
            ${features:+--features "$features"}
        cp target/names/wasm32-wasip1/release/mcp_edge_auth.wasm "$out.raw.wasm"
        WASM_OPT_EXTRA=-g bash scripts/wasm-opt.sh "$out.raw.wasm" "$out.wasm" --filter-exports
    done
fi
