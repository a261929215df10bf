#!/usr/bin/env bash
# Renders the Envoy config `make run` uses: envoy/demo.yaml with the plugin configuration
# (the line marked `# PLUGIN_CONFIG`) replaced by the JSON in envoy/demo-plugin.json.
#
#   scripts/render-demo-config.sh [--validate] [OUT]      (OUT defaults to .run/demo.yaml)
#
# --validate also runs `envoy --mode validate` on the result; that loads the built module
# and runs its on_configure, so it needs `make build` and checks the plugin JSON too.
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

mkdir -p "$(dirname "$out")"
python3 - "$template" "$plugin" "$out" <<'PY'
import json, re, sys

template, plugin, out = sys.argv[1:4]
try:
    with open(plugin, encoding="utf-8") as f:
        config = json.load(f)
except (OSError, ValueError) as e:
    sys.exit(f"render-demo-config: {plugin}: {e}")
# Compact JSON, then as a JSON string literal, which is also a valid YAML double-quoted scalar.
value = json.dumps(json.dumps(config, separators=(",", ":")))

pattern = re.compile(r"^(\s*value:\s*).*?(\s*#\s*PLUGIN_CONFIG\s*)$")
lines = open(template, encoding="utf-8").read().split("\n")
hits = [i for i, line in enumerate(lines) if pattern.match(line)]
if len(hits) != 1:
    sys.exit(f"render-demo-config: {template}: expected exactly one 'value: ... # PLUGIN_CONFIG' line, found {len(hits)}")
i = hits[0]
m = pattern.match(lines[i])
lines[i] = m.group(1) + value + " # PLUGIN_CONFIG"
lines.insert(0, f"# GENERATED from {template} and {plugin} by scripts/render-demo-config.sh; do not edit.")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines))
PY
echo "render-demo-config: wrote $out"

if [ "$validate" = 1 ]; then
    envoy=.venv/bin/envoy
    [ -x "$envoy" ] || { echo "render-demo-config: $envoy missing: run make deps" >&2; exit 1; }
    [ -f target/wasm/mcp_edge_auth.wasm ] \
        || { echo "render-demo-config: module missing: run make build" >&2; exit 1; }
    log="$(dirname "$out")/validate.log"
    if "$envoy" --mode validate -c "$out" >"$log" 2>&1; then
        echo "render-demo-config: $(tail -n 1 "$log")"
    else
        grep -E 'critical|error' "$log" >&2 || tail -n 20 "$log" >&2
        echo "render-demo-config: Envoy refused $out (full log: $log)" >&2
        exit 1
    fi
fi
