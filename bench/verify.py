#!/usr/bin/env python3
"""`make bench-verify`: per-verify microseconds inside Envoy's V8.

For each (algorithm, backend) Envoy validates a bootstrap whose only filter is the bench
module (bench/verify, target/wasm/verify_bench.wasm); its on_configure runs
the filter's signature check ITERATIONS times and logs one line, which is read back here.
Backends: `fast` (the filter's own path: src/crypto/rsa.rs, src/crypto/p256.rs), `rsa10` (the
`rsa` 0.10 crate the filter used before for RS*/PS*), `p256` (the p256 crate's verifier it
used before for ES256) and `ring` (ring 0.17; only in the module built with bench/verify's
feature `ring`, target/wasm/verify_bench_ring.wasm, which `make bench-verify` builds: when a
case names `ring` and VERIFY_MODULE is not set, every case runs in that module, so the rows
share one module); `pow` and `sha256` time the two parts of an RS256 check alone (the RSA
public operation, the SHA-256 of the signing input: VERIFY_CASES=RS256:fast,RS256:pow,RS256:sha256);
`newkey` (ES256) verifies with a new key each time, so each verify first builds the key's
fixed-base tables: less `fast`, the one-time cost per key (VERIFY_CASES=ES256:fast,ES256:newkey);
`host` (RS*, ES256) is the filter's check with Envoy's `verify_signature` foreign function (BoringSSL)
as the filter uses it with `host_crypto` "auto" (the module refuses to time it unless the host
passes the self-check of src/token/host_signature.rs).
Keys and tokens come from `devstack bench-tokens` in .run/bench (one RSA-2048 and one P-256 key).

Usage: bench/verify.py [--json OUT]   (VERIFY_ITERATIONS, default 2000)
       bench/verify.py --decide [OUT]   (the filter's whole per-request work without host
                                         calls: header parse, decision, on the bench's
                                         configuration; warm, 401 and PRM; writes OUT)
       bench/verify.py --check          (the module's fast path vs rsa 0.10 (RS256, PS256) and
                                         the p256 crate (ES256) inside V8, and vs ring in the
                                         ring module (VERIFY_MODULE), on VERIFY_CHECK_TOKENS
                                         tokens and corrupted copies)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (bench/bench.py: the shared Envoy bootstrap)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENVOY = os.path.join(ROOT, ".venv/bin/envoy")
TOK = os.path.join(ROOT, ".run/bench")
ITERATIONS = int(os.environ.get("VERIFY_ITERATIONS", "2000"))
CASES = [tuple(c.split(":")) for c in os.environ.get("VERIFY_CASES", "RS256:rsa10,RS256:fast,RS256:host,PS256:rsa10,PS256:fast,ES256:p256,ES256:fast,ES256:host").split(",")]
RING_MODULE = os.path.join(ROOT, "target/wasm/verify_bench_ring.wasm")
MODULE = os.environ.get("VERIFY_MODULE") or (
    RING_MODULE if any(backend == "ring" for _, backend in CASES)
    else os.path.join(ROOT, "target/wasm/verify_bench.wasm"))
LINE = re.compile(r"verify (\S+) \[(\S+)\]: (\d+) iterations, ([\d.]+) µs per verify \(best batch ([\d.]+) µs\)")


def bootstrap(config):
    """The bench bootstrap (bench/bench.py) with the verify module as its only filter; Envoy
    only validates it, so the fixed ports are never bound."""
    return bench.bootstrap([bench.wasm_filter(MODULE, config)])


def measure(alg, backend):
    jwks = open(os.path.join(TOK, "jwks.json")).read()
    token = open(os.path.join(TOK, alg.lower() + ".txt")).readline().strip()
    cfg = {"verify_bench": {"alg": alg, "backend": backend, "iterations": ITERATIONS, "jwks": jwks, "token": token}}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "envoy.json")
        json.dump(bootstrap(cfg), open(path, "w"))
        out = subprocess.run([ENVOY, "--mode", "validate", "-c", path, "-l", "warning"],
                             capture_output=True, text=True, timeout=600)
    text = out.stdout + out.stderr
    m = LINE.search(text)
    if not m:
        sys.exit(f"{alg} [{backend}]: no result line in Envoy's output:\n{text[-2000:]}")
    return {"alg": alg, "backend": backend, "iterations": int(m.group(3)),
            "us": float(m.group(4)), "best_us": float(m.group(5))}


def check(alg, count):
    """The wasm (SIMD128) fast path against rsa 0.10 or the p256 crate (and ring, in the ring
    module) inside V8 on `count` tokens."""
    jwks = open(os.path.join(TOK, "jwks.json")).read()
    tokens = [t.strip() for t in open(os.path.join(TOK, alg.lower() + ".txt")) if t.strip()][:count]
    cfg = {"verify_check": {"alg": alg, "jwks": jwks, "tokens": tokens}}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "envoy.json")
        json.dump(bootstrap(cfg), open(path, "w"))
        out = subprocess.run([ENVOY, "--mode", "validate", "-c", path, "-l", "warning"],
                             capture_output=True, text=True, timeout=600)
    m = re.search(r"verify check .*", out.stdout + out.stderr)
    if not m:
        sys.exit(f"check {alg}: no result line in Envoy's output:\n{(out.stdout + out.stderr)[-2000:]}")
    print(m.group(0), flush=True)
    if " 0 mismatches" not in m.group(0):
        sys.exit("mismatch between the fast path and a reference verifier inside V8")


def decide(out_path=None):
    """The filter's per-request decision inside V8 (bench/verify/src/decide_bench.rs)."""
    token = open(os.path.join(TOK, "one.txt")).readline().strip()
    cfg = {"decide_bench": {"config": json.dumps(bench.plugin()), "token": token,
                            "iterations": int(os.environ.get("DECIDE_ITERATIONS", "20000"))}}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "envoy.json")
        json.dump(bootstrap(cfg), open(path, "w"))
        out = subprocess.run([ENVOY, "--mode", "validate", "-c", path, "-l", "warning"],
                             capture_output=True, text=True, timeout=600)
    # Envoy logs the module's lines once per VM it starts (main thread and workers).
    lines = list(dict.fromkeys(re.findall(r"decide \S+: \d+ iterations, .*", out.stdout + out.stderr)))[:4]
    if len(lines) != 4:
        sys.exit(f"decide: no result lines in Envoy's output:\n{(out.stdout + out.stderr)[-2000:]}")
    for line in lines:
        print("V8 " + line, flush=True)
    if out_path:
        open(out_path, "w").write("".join("V8 " + l + "\n" for l in lines))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--decide":
        decide(sys.argv[2] if len(sys.argv) > 2 else None)
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "--check":
        print(f"module: {os.path.relpath(MODULE, ROOT)}", flush=True)
        for alg in ("RS256", "PS256", "ES256"):
            check(alg, int(os.environ.get("VERIFY_CHECK_TOKENS", "1000")))
        return
    print(f"module: {os.path.relpath(MODULE, ROOT)} ({os.path.getsize(MODULE)} bytes)", flush=True)
    results = []
    for alg, backend in CASES:
        r = measure(alg, backend)
        results.append(r)
        print(f"verify {alg} [{backend}]: {r['iterations']} iterations, {r['us']:.1f} µs per verify "
              f"(best batch {r['best_us']:.1f} µs)", flush=True)
    if len(sys.argv) == 3 and sys.argv[1] == "--json":
        json.dump(results, open(sys.argv[2], "w"), indent=1)


if __name__ == "__main__":
    main()
