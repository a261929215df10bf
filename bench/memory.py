#!/usr/bin/env python3
"""`make bench-memory`: Envoy's resident memory with the filter, against the empty Wasm filter.

For each worker count in MEM_WORKERS (default "2,4"), one Envoy (--concurrency W, the same
bootstrap as `make bench`: a direct 200 behind the filters) per case:
  empty   the pass-through Wasm filter (target/wasm/passthrough.wasm), idle
  idle    mcp-edge-auth, idle (configured, keys parsed, no request yet)
  warm    mcp-edge-auth after 200 requests with one RS256 token (every worker has seen it)
  N       mcp-edge-auth after N distinct RS256 tokens, each sent once (MEM_TOKENS, default
          "1000,100000"), with token_cache.max_entries N per worker so nothing is evicted:
          the workers' caches hold N entries between them (Envoy's counter
          mcp_edge_auth.token_cache_miss says how many were verified and cached)
RSS is /proc/<pid>/smaps_rollup's Rss after the process has been quiet for MEM_SETTLE
seconds (default 3; 10 with MEM_RELEASE).
MEM_RELEASE=<MiB> adds Envoy's bootstrap memory_allocator_manager to every case (the empty
filter's too): bytes_to_release <MiB> MiB per memory_release_interval 1 s, i.e. tcmalloc's
background thread returns free memory to the OS at up to <MiB> MiB/s (docs/DEPLOYMENT.md). Per cached token: (RSS_N - RSS_warm) / (N - 1). Prints a Markdown table
and the fitted formula; writes them to .run/bench/memory.md. Tokens: .run/bench-mem/rs256.txt
(minted by `devstack bench-tokens` when missing or too few).
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

ROOT = B.ROOT
TOK = os.path.join(ROOT, ".run/bench-mem")
WORKERS = [int(w) for w in os.environ.get("MEM_WORKERS", "2,4").split(",") if w]
COUNTS = [int(n) for n in os.environ.get("MEM_TOKENS", "1000,100000").split(",") if n]
RELEASE = float(os.environ.get("MEM_RELEASE", "0") or 0)
SETTLE = float(os.environ.get("MEM_SETTLE", "10" if RELEASE else "3"))
CONNECTIONS = 8


def tokens(n):
    path = os.path.join(TOK, "rs256.txt")
    have = 0
    if os.path.exists(path):
        have = sum(1 for line in open(path) if line.strip())
    if have < n:
        print(f"minting {n} tokens into {TOK} (devstack bench-tokens)", flush=True)
        subprocess.run([os.path.join(ROOT, "target/debug/devstack"), "bench-tokens", "--out", TOK,
                        "--count", str(n), "--issuer", B.ISS, "--audience", B.AUD], check=True)
    return [line.strip() for line in open(path) if line.strip()]


def rss_mib(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Rss:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no Rss in smaps_rollup")


def counter(name):
    c = http.client.HTTPConnection("127.0.0.1", B.ADMIN, timeout=5)
    c.request("GET", f"/stats?filter={name}$&format=json")
    stats = json.loads(c.getresponse().read()).get("stats", [])
    c.close()
    return sum(s.get("value", 0) for s in stats if "value" in s)


def send(toks):
    """Each token once, spread over CONNECTIONS keep-alive connections (so over the workers)."""
    failures = []

    def worker(part):
        c = http.client.HTTPConnection("127.0.0.1", B.PORT, timeout=30)
        for t in part:
            c.request("GET", "/mcp", headers={"Authorization": "Bearer " + t})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                failures.append(r.status)
        c.close()

    threads = [threading.Thread(target=worker, args=(toks[i::CONNECTIONS],)) for i in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} requests failed (first status {failures[0]})")


def measure(workers, module, config=None, load=None):
    filters = [B.wasm_filter(module, config if config is not None else {})]
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "envoy.json")
        boot = B.bootstrap(filters)
        if RELEASE:
            boot["memory_allocator_manager"] = {"bytes_to_release": str(int(RELEASE * 1048576)),
                                                "memory_release_interval": "1s"}
        json.dump(boot, open(cfg, "w"))
        envoy = subprocess.Popen([B.ENVOY, "-c", cfg, "--concurrency", str(workers), "--use-dynamic-base-id", "-l", "error"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
        try:
            B.wait_ready()
            if load:
                load()
            time.sleep(SETTLE)
            # After the pause: the filter hands counter increments to Envoy once a second.
            cached = counter("mcp_edge_auth.token_cache_miss") if load else None
            return rss_mib(envoy.pid), cached
        finally:
            envoy.terminate()
            envoy.wait()


def main():
    for path in (B.MODULE, B.PASS, B.ENVOY):
        if not os.path.exists(path):
            raise SystemExit(f"{path} is missing: run `make build deps`")
    all_tokens = tokens(max(COUNTS + [1]))
    jwks = open(os.path.join(TOK, "jwks.json")).read()

    def ours(max_entries=1024):
        cfg = {
            "providers": {"bench": {"issuer": B.ISS, "audiences": [B.AUD],
                                    "local_jwks": {"inline_string": jwks}, "algorithms": ["RS256", "ES256"]}},
            "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "bench"}}],
            "protected_resource": {"resource": "http://127.0.0.1/mcp", "scopes_supported": ["mcp.tools"]},
        }
        if max_entries != 1024:
            cfg["token_cache"] = {"max_entries": max_entries, "max_bytes": 1 << 30}
        return cfg

    rows, per_entry = [], []
    for w in WORKERS:
        empty, _ = measure(w, B.PASS)
        idle, _ = measure(w, B.MODULE, ours())
        warm, _ = measure(w, B.MODULE, ours(), load=lambda: send(all_tokens[:1] * 200))
        rows.append((w, "empty Wasm filter, idle", empty, None))
        rows.append((w, "mcp-edge-auth, idle", idle, None))
        rows.append((w, "mcp-edge-auth, one token warm", warm, None))
        print(f"W={w}: empty {empty:.1f} MiB, ours idle {idle:.1f} (+{idle - empty:.1f}), warm {warm:.1f} (+{warm - empty:.1f})", flush=True)
        for n in COUNTS:
            full, cached = measure(w, B.MODULE, ours(max(n, 1024)), load=lambda n=n: send(all_tokens[:n]))
            e = (full - warm) * 1024 / max(n - 1, 1)
            per_entry.append((w, n, e))
            rows.append((w, f"mcp-edge-auth, {n} tokens cached ({cached:.0f} entries)", full, e))
            print(f"W={w}: {n} tokens ({cached:.0f} cached) {full:.1f} MiB (+{full - empty:.1f}), {e:.2f} KiB per entry", flush=True)

    by = {(w, label): rss for w, label, rss, _ in rows}
    lines = ["| workers | case | RSS MiB | over the empty filter MiB | KiB per cached token |", "|---:|---|---:|---:|---:|"]
    for w, label, rss, e in rows:
        base = by[(w, "empty Wasm filter, idle")]
        lines.append(f"| {w} | {label} | {rss:.1f} | {rss - base:+.1f} | {'' if e is None else f'{e:.2f}'} |")
    residue = [by[(w, "mcp-edge-auth, one token warm")] - by[(w, "empty Wasm filter, idle")] for w in WORKERS]
    big = [e for _, n, e in per_entry if n == max(COUNTS, default=0)]
    if RELEASE:
        lines += ["", f"With memory_allocator_manager: bytes_to_release {RELEASE:g} MiB per 1 s (every case)."]
    lines += ["", f"Formula: RSS(W, n) ≈ RSS_empty(W) + M + n·e, n the cached tokens over all workers; "
              f"M (one token warm, over the empty filter) {', '.join(f'{m:.1f}' for m in residue)} MiB at W = "
              f"{', '.join(str(w) for w in WORKERS)}; e {', '.join(f'{e:.2f}' for e in big)} KiB (from {max(COUNTS, default=0)} tokens)."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    os.makedirs(os.path.join(ROOT, ".run/bench"), exist_ok=True)
    open(os.path.join(ROOT, ".run/bench/memory.md"), "w").write(text)


if __name__ == "__main__":
    main()
