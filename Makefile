# mcp-edge-auth: build, test and demo.
#
#   make deps     Rust wasm32-wasip1 target (+ clippy, rustfmt); Envoy 1.40.0 in .venv (idempotent)
#   make build    the filter module, sign-in façade included: target/wasm/mcp_edge_auth.wasm (cargo,
#                 then wasm-opt -O3)
#   make test     fmt check, module graph check, clippy (host + wasm), demo config validation, cargo test --workspace
#   make modgraph the crate's parts and the parts each uses; fails on a circle or an upward import
#   make run      the demo: devstack (IdP :9000, Entra-mode IdP :9001, MCP server :9100, demo client
#                 :9300) + Envoy :10000 (JWT) and :10001 (sign-in façade; open the printed URL); the console
#                 shows the filter's log lines and the access log (Envoy's full log: .run/envoy.log)
#   make image    the module as an OCI image (buildah, from the Dockerfile): target/image/mcp-edge-auth.tar,
#                 an OCI archive in the Wasm image spec's "compat" layout (OCI manifest, one
#                 tar+gzip layer holding plugin.wasm), which Istio's and Envoy Gateway's oci://
#                 pullers take; its manifest digest in target/image/digest. Push it with
#                 skopeo copy oci-archive:target/image/mcp-edge-auth.tar docker://<registry>/<repo>:<tag>
#                 (tests/image.rs pushes it to a local registry, pulls it back, runs it in Envoy)
#   make bench          the benchmark against Envoy's jwt_authn; writes bench/RESULTS.md
#   make bench-memory   Envoy's RSS with the filter vs the empty Wasm filter, 2 and 4 workers, 1k/100k cached tokens
#   make bench-instructions   instructions per request, Envoy under callgrind (steady, unlike req/s)
#   make bench-hostcalls   the price of one host call (pass-through module, Envoy under callgrind)
#   make bench-verify   per-verify µs inside Envoy's V8 (ours vs rsa 0.10, the p256 crate and ring 0.17) and natively
#   make profile-v8     the warm path's profile by Wasm function, the module in Node's V8 (bench/v8prof)
#   make rsa-diff       the long RSA differential test against rsa 0.10 (RSA_DIFF_KEYS, RSA_DIFF_MESSAGES)
#   make p256-diff      the long ES256 differential test against the p256 crate (P256_DIFF_KEYS)
#   make fmt | clippy | clean | distclean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
# cargo's output (RAW) goes through scripts/wasm-opt.sh into target/wasm/: the modules that
# tests, the demo, the benchmarks and the Dockerfile use.
RAW := target/$(WASM_TARGET)/release
WASM := target/wasm/mcp_edge_auth.wasm
CLIPPY_FLAGS := -D warnings

.PHONY: image bench bench-memory profile-v8 bench-instructions bench-hostcalls bench-verify rsa-diff p256-diff soak fuzz fuzz-deps fuzz-smoke deps build test unit fmt fmt-check modgraph clippy clippy-host clippy-wasm demo-config run clean distclean

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build -p mcp-edge-auth --lib --release --target $(WASM_TARGET)
	@bash scripts/wasm-opt.sh $(RAW)/mcp_edge_auth.wasm $(WASM) --filter-exports
	$(CARGO) build -p passthrough --release --target $(WASM_TARGET)
	@bash scripts/wasm-opt.sh $(RAW)/passthrough.wasm target/wasm/passthrough.wasm
	@bash scripts/wasm-opt.sh $(RAW)/passthrough.wasm target/wasm/passthrough-filter-exports.wasm --filter-exports
	$(CARGO) build -p verify-bench --release --target $(WASM_TARGET)
	@bash scripts/wasm-opt.sh $(RAW)/verify_bench.wasm target/wasm/verify_bench.wasm
	@echo "module: $(WASM) ($$(wc -c < $(WASM)) bytes)"

# Cheap checks first, then the tests (integration tests run the real Envoy with $(WASM)).
test: build fmt-check modgraph clippy demo-config unit

# The last line sums every cargo test binary: "total: N passed, N failed, N skipped". A test
# that cannot run here (tests/image.rs without buildah) prints a "SKIPPED: " line and is
# counted as skipped, not passed.
unit: build
	@mkdir -p .run
	$(CARGO) test --workspace 2>&1 | tee .run/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} /^SKIPPED: / {s++; print} \
	  END {printf "\ntotal: %d passed, %d failed, %d skipped\n", p - s, f, s}' .run/test.log

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

# Dependencies point one way (scripts/modgraph.py says which way).
modgraph:
	python3 scripts/modgraph.py

clippy: clippy-host clippy-wasm

clippy-host:
	$(CARGO) clippy --workspace --all-targets -- $(CLIPPY_FLAGS)

clippy-wasm:
	$(CARGO) clippy -p mcp-edge-auth --lib --target $(WASM_TARGET) -- $(CLIPPY_FLAGS)

# Renders .run/demo.yaml and has Envoy validate it (loads the module, runs on_configure).
demo-config: build
	@bash scripts/render-demo-config.sh --validate

run:
	@bash scripts/run-demo.sh

# Needs buildah (make deps installs it as root); see scripts/image.sh.
image: build
	@bash scripts/image.sh

# Fuzzing (nightly + cargo-fuzz): FUZZ_SECONDS per target (default 60); `fuzz-smoke` is
# the short run CI does. Seeds: fuzz/corpus/<target> (checked in); the growing corpus goes
# to .run/fuzz/<target>; crashes land in fuzz/artifacts/<target>.
FUZZ_TARGETS := token config jwks jsonrpc challenge rsa p256 p256_field oauth
FUZZ_SECONDS ?= 60

fuzz-deps:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked

fuzz: fuzz-deps
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  mkdir -p .run/fuzz/$$t; \
	  (cd fuzz && $(CARGO) +nightly fuzz run $$t ../.run/fuzz/$$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E 'stat::number_of_executed_units|SUMMARY|panicked|crash-|Done'); \
	done

fuzz-smoke:
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

# Long run with key rotation (not part of `make test`): SOAK_SECONDS (300), ROTATE_SECONDS (60).
soak: build
	$(CARGO) test -p mcp-edge-auth --test soak -- --ignored --nocapture

# Throughput and latency side by side with Envoy's jwt_authn (not part of `make test`).
bench: build
	$(CARGO) build -q -p devstack
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	target/debug/devstack bench-tokens --out .run/bench --count 3000
	python3 bench/verify.py --json .run/bench/verify.json
	$(CARGO) test -q --release --test rsa_bench -- --ignored --nocapture 2>&1 | grep '^native' | tee .run/bench/native.txt
	$(CARGO) test -q --release --test decide_bench -- --ignored --nocapture 2>&1 | grep '^native' | tee .run/bench/decide.txt
	python3 bench/verify.py --decide .run/bench/decide_v8.txt
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	python3 bench/instructions.py .run/bench/instructions.txt
	BENCH_ONLY=a2 BENCH_CALLS=$(HOSTCALLS) python3 bench/instructions.py .run/bench/hostcalls.txt
	python3 bench/bench.py

# Envoy's RSS with the filter against the empty Wasm filter, at MEM_WORKERS (2,4) workers and
# with MEM_TOKENS (1000,100000) distinct tokens cached; the table lands in .run/bench/memory.md.
bench-memory: build
	$(CARGO) build -q -p devstack
	python3 bench/memory.py

# Instructions per request (Envoy under callgrind): steady where req/s is not. BENCH_ONLY=a2,d
bench-instructions: build
	$(CARGO) build -q -p devstack
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	@test -f .run/bench/one.txt || target/debug/devstack bench-tokens --out .run/bench --count 3000
	python3 bench/instructions.py .run/bench/instructions.txt

# The price of one host call (Envoy under callgrind): the pass-through module making only the
# calls named by each letter group (bench/passthrough/src/lib.rs lists the letters).
HOSTCALLS ?= p,u,v,n,x,z,a
bench-hostcalls: build
	$(CARGO) build -q -p devstack
	@command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
	@test -f .run/bench/one.txt || target/debug/devstack bench-tokens --out .run/bench --count 3000
	BENCH_ONLY=a2 BENCH_CALLS=$(HOSTCALLS) python3 bench/instructions.py .run/bench/hostcalls.txt

# Per-verify microbenchmark: VERIFY_ITERATIONS (2000) signature checks inside Envoy's V8
# (bench/verify module, on_configure), then the same natively in release mode.
# The ring backend lives in a module of its own (bench/verify's feature `ring`,
# target/wasm/verify_bench_ring.wasm; every V8 row runs in it): ring's C parts are built for
# wasm32-wasip1 by Debian's clang (it has the wasm32 target) and archived by llvm-ar; ring's
# build script adds -nostdlibinc for wasm32, so no WASI sysroot is needed. `make build` and
# the tests never build ring.
RING_ENV := CC_wasm32_wasip1=clang AR_wasm32_wasip1=llvm-ar
VERIFY_CASES ?= RS256:fast,RS256:rsa10,RS256:ring,PS256:fast,PS256:rsa10,PS256:ring,ES256:fast,ES256:p256,ES256:ring
bench-verify: build
	@command -v clang >/dev/null && command -v llvm-ar >/dev/null || { apt-get update -qq && apt-get install -y -qq clang llvm; }
	$(RING_ENV) $(CARGO) build -p verify-bench --features ring --release --target $(WASM_TARGET)
	@bash scripts/wasm-opt.sh $(RAW)/verify_bench.wasm target/wasm/verify_bench_ring.wasm
	$(CARGO) build -q -p devstack
	@test -f .run/bench/jwks.json -a -f .run/bench/ps256.txt -a -f .run/bench/es256.txt || target/debug/devstack bench-tokens --out .run/bench --count 10
	VERIFY_MODULE=target/wasm/verify_bench_ring.wasm python3 bench/verify.py --check
	VERIFY_CASES=$(VERIFY_CASES) python3 bench/verify.py --json .run/bench/verify.json
	$(CARGO) test -q --release --test rsa_bench -- --ignored --nocapture 2>&1 | grep '^native' | tee .run/bench/native.txt

# Where the module's own time goes on the warm path (or V8PROF_MODE=401, or V8PROF_MODE=body:
# row (h)'s tools/call POST on the bench's configuration with an mcp rule, or V8PROF_MODE=cold:
# row (e1), a new RS256 token from .run/bench/rs256.txt per request): the module built with
# its function names, run in Node's V8 behind a fake host (bench/v8prof/harness.mjs) under
# `node --cpu-prof`, then self time by function. A function LLVM inlined is counted in its caller:
# mark it #[inline(never)] for the run, and name it in V8PROF_NO_INLINE (wasm-opt's inliner).
comma := ,
V8PROF_MODE ?= warm
V8PROF_ITERATIONS ?= 300000
V8PROF_NO_INLINE ?=
profile-v8: build
	$(CARGO) build -q -p devstack
	@test -f .run/bench/one.txt || target/debug/devstack bench-tokens --out .run/bench --count 3000
	CARGO_TARGET_DIR=target/profile-v8 CARGO_PROFILE_RELEASE_STRIP=none \
	  $(CARGO) build -q -p mcp-edge-auth --lib --release --target $(WASM_TARGET)
	WASM_OPT_EXTRA="-g $(foreach f,$(subst $(comma), ,$(V8PROF_NO_INLINE)),--no-inline=$(f))" \
	  scripts/wasm-opt.sh target/profile-v8/$(WASM_TARGET)/release/mcp_edge_auth.wasm \
	  target/profile-v8/mcp_edge_auth.named.wasm --filter-exports
	python3 -c 'import json, sys; sys.path.insert(0, "bench"); import bench; \
	  json.dump(bench.plugin(mcp="$(V8PROF_MODE)" == "body"), open(".run/bench/plugin.json", "w"))'
	rm -rf target/profile-v8/cpuprofile
	node --cpu-prof --cpu-prof-dir=target/profile-v8/cpuprofile --cpu-prof-interval 20 \
	  bench/v8prof/harness.mjs target/profile-v8/mcp_edge_auth.named.wasm .run/bench/plugin.json \
	  .run/bench/$(if $(filter cold,$(V8PROF_MODE)),rs256.txt,one.txt) $(V8PROF_ITERATIONS) $(V8PROF_MODE)
	node bench/v8prof/top.mjs target/profile-v8/cpuprofile/*.cpuprofile 40

# The long differential run (make test runs the quick one).
RSA_DIFF_KEYS ?= 300
RSA_DIFF_MESSAGES ?= 3
rsa-diff:
	RSA_DIFF_KEYS=$(RSA_DIFF_KEYS) RSA_DIFF_MESSAGES=$(RSA_DIFF_MESSAGES) \
	  $(CARGO) test --release --test rsa_differential -- --ignored --nocapture rsa_differential_full

# The long ES256 differential run against the p256 crate (make test runs the quick one).
P256_DIFF_KEYS ?= 2000
p256-diff:
	P256_DIFF_KEYS=$(P256_DIFF_KEYS) \
	  $(CARGO) test --release --test p256_differential -- --ignored --nocapture p256_differential_full

clean:
	$(CARGO) clean
	rm -rf .run

# Also removes the Envoy install (.venv); `make deps` reinstalls it.
distclean: clean
	rm -rf .venv
