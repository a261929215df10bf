#!/usr/bin/env bash
# Runs Binaryen's wasm-opt -O3 on a module cargo built for wasm32-wasip1 (`make build` does this
# for every module it ships or benchmarks). Smaller module (about 13% here) at the same speed:
# bench/RESULTS.md has the sizes and the per-verify timings.
#
#   scripts/wasm-opt.sh <cargo's .wasm> <optimized .wasm>
#
# Skipped when <optimized .wasm> was made from the same input (its sha256 is kept beside it).
# wasm-opt comes from tools/binaryen (npm ci by scripts/deps.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

in="$1"
out="$2"
WASM_OPT="${WASM_OPT:-tools/binaryen/node_modules/.bin/wasm-opt}"

[ -f "$in" ] || { echo "wasm-opt: $in not found (cargo build first)" >&2; exit 1; }
[ -x "$WASM_OPT" ] || { echo "wasm-opt: $WASM_OPT not found: run make deps" >&2; exit 1; }

sum="$(sha256sum "$in" | cut -d' ' -f1)"
if [ -f "$out" ] && [ "$(cat "$out.src" 2>/dev/null)" = "$sum" ]; then
    touch "$out" # newer than its input again (tests/support/envoy.rs checks)
    exit 0
fi

mkdir -p "$(dirname "$out")"
# The features rustc uses for wasm32-wasip1 with +simd128 (.cargo/config.toml); all of them
# run in Envoy's V8. wasm-opt refuses a module that needs one not listed here.
"$WASM_OPT" -O3 --strip-producers \
    --enable-simd --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-mutable-globals \
    "$in" -o "$out.tmp"
mv "$out.tmp" "$out"
echo "$sum" > "$out.src"
echo "wasm-opt: $out: $(wc -c < "$in") -> $(wc -c < "$out") bytes"
