#!/usr/bin/env bash
# Runs Binaryen's wasm-opt -O3 on a module cargo built for wasm32-wasip1 (`make build` does this
# for every module it ships or benchmarks). Smaller module (about 13% here) at the same speed:
# bench/RESULTS.md has the sizes and the per-verify timings.
#
#   scripts/wasm-opt.sh <cargo's .wasm> <optimized .wasm> [--filter-exports]
#
# --filter-exports (the filter module, and the bench's pass-through built the same way) also
# drops the proxy-wasm SDK's exports the filter does not use, before optimizing. Envoy calls a
# stream callback only when the module exports it, and each call into V8 costs instructions
# whatever the callback does: without proxy_on_done, proxy_on_log and proxy_on_response_body
# every request makes three calls fewer (bench/RESULTS.md). The unused gRPC, network-filter,
# queue and foreign-function entry points go too, and with them the code only they reached.
# What proxy_on_done did is done on delete instead (src/filter/http.rs, root.rs), so a module
# built by cargo alone behaves the same, only slower. tests/module_size.rs checks the list.
#
# WASM_OPT_EXTRA adds options (make profile-v8: -g keeps the function names, --no-inline=...).
#
# Skipped when <optimized .wasm> was made from the same input and options (kept beside it).
# wasm-opt comes from tools/binaryen (npm ci by scripts/deps.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

in="$1"
out="$2"
mode="${3:-}"
WASM_OPT="${WASM_OPT:-tools/binaryen/node_modules/.bin/wasm-opt}"

# Exports the filter never needs (exact names; wasm-opt takes them comma-separated).
UNUSED_EXPORTS="proxy_on_done,proxy_on_log,proxy_on_request_trailers,proxy_on_response_body,\
proxy_on_response_trailers,proxy_on_new_connection,proxy_on_downstream_data,\
proxy_on_upstream_data,proxy_on_downstream_connection_close,proxy_on_upstream_connection_close,\
proxy_on_queue_ready,proxy_on_foreign_function,proxy_on_grpc_receive_initial_metadata,\
proxy_on_grpc_receive_trailing_metadata,proxy_on_grpc_receive,proxy_on_grpc_close"

drop=()
case "$mode" in
"") ;;
--filter-exports) drop=(--remove-exports "--pass-arg=remove-exports@$UNUSED_EXPORTS") ;;
*) echo "wasm-opt: unknown option $mode" >&2; exit 2 ;;
esac

[ -f "$in" ] || { echo "wasm-opt: $in not found (cargo build first)" >&2; exit 1; }
[ -x "$WASM_OPT" ] || { echo "wasm-opt: $WASM_OPT not found: run make deps" >&2; exit 1; }

extra=()
read -r -a extra <<< "${WASM_OPT_EXTRA:-}"
# Binaryen inlines every function with one caller, whatever its size, by default; that made
# decide_at and on_configure 55 and 37 KB functions, and V8 keeps the memory its optimizing
# compiler used for the largest function (tcmalloc free lists: about 24 MiB of Envoy's RSS,
# issue "Performance II"). Inlining only small one-caller functions keeps the largest near
# 14 KB at no measured cost on the warm path (bench/RESULTS.md, memory).
opt=(-O3 --one-caller-inline-max-function-size=200)
sum="$(sha256sum "$in" | cut -d' ' -f1) $mode ${opt[*]} ${WASM_OPT_EXTRA:-}"
if [ -f "$out" ] && [ "$(cat "$out.src" 2>/dev/null)" = "$sum" ]; then
    touch "$out" # newer than its input again (tests/support/envoy.rs checks)
    exit 0
fi

mkdir -p "$(dirname "$out")"
# The features rustc uses for wasm32-wasip1 with +simd128 (.cargo/config.toml); all of them
# run in Envoy's V8. wasm-opt refuses a module that needs one not listed here.
"$WASM_OPT" "${drop[@]}" ${extra[@]+"${extra[@]}"} "${opt[@]}" --strip-producers \
    --enable-simd --enable-bulk-memory --enable-bulk-memory-opt --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-mutable-globals \
    "$in" -o "$out.tmp"
mv "$out.tmp" "$out"
echo "$sum" > "$out.src"
echo "wasm-opt: $out: $(wc -c < "$in") -> $(wc -c < "$out") bytes"
