#!/usr/bin/env bash
# Renders the Envoy config `make run` uses: envoy/demo.yaml with the plugin configurations
# (the lines marked `# PLUGIN_CONFIG` and `# FACADE_PLUGIN_CONFIG`) replaced by the JSON in
# envoy/demo-plugin.json and envoy/demo-facade-plugin.json.
#
#   scripts/render-demo-config.sh [--validate] [OUT]      (OUT defaults to .run/demo.yaml)
#
# Other ports than the defaults (e.g. to run a second demo beside one already running): set
# DEMO_IDP_PORT (9000), DEMO_ENTRA_IDP_PORT (9001), DEMO_MCP_PORT (9100), DEMO_LISTEN_PORT
# (10000), DEMO_FACADE_PORT (10001), DEMO_ADMIN_PORT (9901); every `127.0.0.1:<default>` and
# `port_value: <default>` in the result then names the other port.
#
# --validate also runs `envoy --mode validate` on the result; that loads both built modules
# and runs their on_configure, so it needs `make build` and checks the plugin JSON too. The
# façade's configuration needs its secrets in the environment (FACADE_SEAL_KEY,
# FACADE_CLIENT_SECRET); when they are not set, validation uses random ones.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

validate=0
if [ "${1:-}" = "--validate" ]; then
    validate=1
    shift
fi
out="${1:-.run/demo.yaml}"
template="${DEMO_TEMPLATE:-envoy/demo.yaml}"
plugin="${DEMO_PLUGIN_JSON:-envoy/demo-plugin.json}"
facade_plugin="${DEMO_FACADE_PLUGIN_JSON:-envoy/demo-facade-plugin.json}"

mkdir -p "$(dirname "$out")"
python3 - "$template" "$plugin" "$facade_plugin" "$out" <<'PY'
import json, os, re, sys

template, plugin, facade_plugin, out = sys.argv[1:5]
lines = open(template, encoding="utf-8").read().split("\n")

def fill(marker, path):
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"render-demo-config: {path}: {e}")
    # Compact JSON, then as a JSON string literal, also a valid YAML double-quoted scalar.
    value = json.dumps(json.dumps(config, separators=(",", ":")))
    pattern = re.compile(r"^(\s*value:\s*).*?(\s*#\s*" + marker + r"\s*)$")
    hits = [i for i, line in enumerate(lines) if pattern.match(line)]
    if len(hits) != 1:
        sys.exit(f"render-demo-config: {template}: expected exactly one 'value: ... # {marker}' line, found {len(hits)}")
    i = hits[0]
    lines[i] = pattern.match(lines[i]).group(1) + value + " # " + marker

fill("PLUGIN_CONFIG", plugin)
fill("FACADE_PLUGIN_CONFIG", facade_plugin)
text = "\n".join(lines)

# Other ports: every 127.0.0.1:<default> and port_value: <default>.
defaults = {"DEMO_IDP_PORT": "9000", "DEMO_ENTRA_IDP_PORT": "9001", "DEMO_MCP_PORT": "9100",
            "DEMO_LISTEN_PORT": "10000", "DEMO_FACADE_PORT": "10001", "DEMO_ADMIN_PORT": "9901"}
ports = {}
for var, default in defaults.items():
    v = os.environ.get(var, default)
    if not v.isdigit() or not 0 < int(v) < 65536:
        sys.exit(f"render-demo-config: {var}={v!r} is not a port")
    ports[default] = v
if any(k != v for k, v in ports.items()):
    alt = "|".join(ports)
    text = re.sub(r"(127\.0\.0\.1:|port_value: )(" + alt + r")\b",
                  lambda m: m.group(1) + ports[m.group(2)], text)

header = f"# GENERATED from {template}, {plugin} and {facade_plugin} by scripts/render-demo-config.sh; do not edit."
with open(out, "w", encoding="utf-8") as f:
    f.write(header + "\n" + text)
PY
echo "render-demo-config: wrote $out"

if [ "$validate" = 1 ]; then
    envoy=.venv/bin/envoy
    [ -x "$envoy" ] || { echo "render-demo-config: $envoy missing: run make deps" >&2; exit 1; }
    m=target/wasm/mcp_edge_auth.wasm
    [ -f "$m" ] || { echo "render-demo-config: $m missing: run make build" >&2; exit 1; }
    log="$(dirname "$out")/validate.log"
    random_b64() { python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'; }
    if FACADE_SEAL_KEY="${FACADE_SEAL_KEY:-$(random_b64)}" \
        FACADE_CLIENT_SECRET="${FACADE_CLIENT_SECRET:-$(random_b64)}" \
        "$envoy" --mode validate -c "$out" >"$log" 2>&1; then
        echo "render-demo-config: $(tail -n 1 "$log")"
    else
        grep -E 'critical|error' "$log" >&2 || tail -n 20 "$log" >&2
        echo "render-demo-config: Envoy refused $out (full log: $log)" >&2
        exit 1
    fi
fi
