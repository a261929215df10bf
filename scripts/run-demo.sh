#!/usr/bin/env bash
# `make run`: the filter in Envoy in front of the demo MCP server, with the dev IdP.
#
#   devstack all   dev IdP 127.0.0.1:9000, dev IdP in Entra mode 127.0.0.1:9001, demo MCP
#                  server 127.0.0.1:9100, demo MCP client (web app) 127.0.0.1:9300
#   Envoy          127.0.0.1:10000 (mcp_edge_auth → mcp_backend),
#                  127.0.0.1:10001 (the sign-in façade, the same module with authorization_server → mcp_backend),
#                  admin 127.0.0.1:9901
#
# The sign-in: open http://127.0.0.1:9300/ in a browser. The demo client registers with the
# façade, sends the browser to its consent page, then to the dev IdP (Entra mode signs the
# dev user in without a form), back through the façade's callback to the demo client, which
# redeems the code and shows the result of an MCP tools/call made through Envoy.
#
# The façade's sealing key and the client secret it shares with the dev IdP are random at
# every start, given to Envoy and devstack through their environment only, never printed.
#
# Other ports: DEMO_IDP_PORT, DEMO_ENTRA_IDP_PORT, DEMO_MCP_PORT, DEMO_CLIENT_PORT,
# DEMO_LISTEN_PORT, DEMO_FACADE_PORT, DEMO_ADMIN_PORT; DEMO_RUN_DIR (.run) for the logs and
# the rendered config (tests/demo.rs runs a second demo that way).
#
# Builds the module (skip with SKIP_BUILD=1), renders .run/demo.yaml from envoy/demo.yaml and
# envoy/demo-plugin.json, starts both, waits until they serve, and stops everything it started
# on Ctrl-C or when either process exits.
#
# The console shows the filter's own log lines (Envoy's `wasm log ...`, debug level), the
# access log (envoy/demo.yaml: method, path, status, response flags, subject), Envoy's
# warnings and errors, and devstack's output. Envoy's full info log, with its startup list of
# compiled-in extensions, goes to .run/envoy.log only.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

IDP_PORT=${DEMO_IDP_PORT:-9000}
ENTRA_IDP_PORT=${DEMO_ENTRA_IDP_PORT:-9001}
MCP_PORT=${DEMO_MCP_PORT:-9100}
CLIENT_PORT=${DEMO_CLIENT_PORT:-9300}
LISTEN_PORT=${DEMO_LISTEN_PORT:-10000}
FACADE_PORT=${DEMO_FACADE_PORT:-10001}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9901}
RUN=${DEMO_RUN_DIR:-.run}
export DEMO_IDP_PORT=$IDP_PORT DEMO_ENTRA_IDP_PORT=$ENTRA_IDP_PORT DEMO_MCP_PORT=$MCP_PORT \
    DEMO_LISTEN_PORT=$LISTEN_PORT DEMO_FACADE_PORT=$FACADE_PORT DEMO_ADMIN_PORT=$ADMIN_PORT
ENVOY=.venv/bin/envoy

say() { printf '\033[1mrun-demo:\033[0m %s\n' "$*"; }
die() { printf 'run-demo: error: %s\n' "$*" >&2; exit 1; }

pids=()
names=()

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local i
    for i in "${!pids[@]}"; do
        signal TERM "${pids[$i]}"
    done
    for _ in $(seq 50); do
        local alive=0
        for i in "${!pids[@]}"; do
            kill -0 "${pids[$i]}" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        signal KILL "${pids[$i]}"
        wait "${pids[$i]}" 2>/dev/null || true
    done
    [ "${#pids[@]}" -gt 0 ] && say "stopped"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE CMD...: runs CMD in the background in its own process group (so
# cleanup also reaches whatever it spawns), output to LOGFILE.
start() {
    local name=$1 logfile=$2
    shift 2
    if command -v setsid >/dev/null; then
        setsid "$@" >"$logfile" 2>&1 </dev/null &
    else
        "$@" >"$logfile" 2>&1 </dev/null &
    fi
    pids+=($!)
    names+=("$name")
}

# signal SIG PID: the process group PID leads if there is one, else just PID.
signal() { kill "-$1" -- "-$2" 2>/dev/null || kill "-$1" "$2" 2>/dev/null || true; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# http_get PORT PATH: prints the response (status line, headers, body) using bash only.
http_get() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
        timeout 5 cat <&3
    ) 2>/dev/null
}

# check_alive: fails with the log tail of the first child that exited.
check_alive() {
    local i
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[$i]}" 2>/dev/null; then
            local rc=0
            wait "${pids[$i]}" || rc=$?
            printf 'run-demo: %s exited (status %s); last lines of %s:\n' \
                "${names[$i]}" "$rc" "$RUN/${names[$i]}.log" >&2
            tail -n 30 "$RUN/${names[$i]}.log" >&2 || true
            unset "pids[$i]"
            exit 1
        fi
    done
}

# wait_for WHAT SECONDS CONDITION...
wait_for() {
    local what=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        check_alive
        [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${secs}s"
        sleep 0.2
    done
}

envoy_live() { http_get "$ADMIN_PORT" /ready | grep -q '^LIVE'; }

# ---- build and configure ----------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    make --no-print-directory build
fi
[ -x "$ENVOY" ] || die "$ENVOY missing: run make deps"
mkdir -p "$RUN"
# The façade's secrets: random, in this script's environment only (Envoy reads them through
# host_env_keys, devstack through --entra-secret-env); never printed or written to a file.
random_b64() { python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'; }
FACADE_SEAL_KEY=$(random_b64)
FACADE_CLIENT_SECRET=$(random_b64)
export FACADE_SEAL_KEY FACADE_CLIENT_SECRET
bash scripts/render-demo-config.sh --validate "$RUN/demo.yaml"

for p in "$IDP_PORT" "$ENTRA_IDP_PORT" "$MCP_PORT" "$CLIENT_PORT" "$LISTEN_PORT" "$FACADE_PORT" "$ADMIN_PORT"; do
    if port_open "$p"; then
        die "127.0.0.1:$p is already in use (another make run?)"
    fi
done

# DEVSTACK_CMD replaces the devstack command line (e.g. to try the script with stand-ins);
# it must serve 127.0.0.1:$IDP_PORT, :$ENTRA_IDP_PORT, :$MCP_PORT and :$CLIENT_PORT.
if [ -n "${DEVSTACK_CMD:-}" ]; then
    devstack_cmd=(bash -c "$DEVSTACK_CMD")
else
    say "building devstack"
    cargo build -q -p devstack
    devstack_cmd=(cargo run -q -p devstack -- all --idp-port "$IDP_PORT" --mcp-port "$MCP_PORT"
        --entra-idp-port "$ENTRA_IDP_PORT"
        --entra-redirect "http://127.0.0.1:$FACADE_PORT/auth/callback"
        --entra-secret-env FACADE_CLIENT_SECRET
        --demo-client-port "$CLIENT_PORT"
        --demo-client-resource "http://127.0.0.1:$FACADE_PORT/mcp")
fi

# ---- start ------------------------------------------------------------------------------
say "starting devstack (IdP :$IDP_PORT, Entra-mode IdP :$ENTRA_IDP_PORT, MCP server :$MCP_PORT, demo client :$CLIENT_PORT)"
start devstack "$RUN/devstack.log" "${devstack_cmd[@]}"
for p in "$IDP_PORT" "$ENTRA_IDP_PORT" "$MCP_PORT" "$CLIENT_PORT"; do
    wait_for "devstack (:$p)" 60 port_open "$p"
done

say "starting Envoy (:$LISTEN_PORT, façade :$FACADE_PORT, admin :$ADMIN_PORT)"
start envoy "$RUN/envoy.log" \
    "$ENVOY" -c "$RUN/demo.yaml" --use-dynamic-base-id \
    -l info --component-log-level wasm:debug
wait_for "Envoy" 30 envoy_live
# The façade reads the Entra-mode IdP's endpoints from its metadata (upstream.discovery) on
# its first tick; until then /authorize answers 503.
facade_ready() { grep -q 'sign-in façade: upstream metadata from' "$RUN/envoy.log"; }
wait_for "the façade's upstream metadata (see $RUN/envoy.log)" 20 facade_ready

cat <<EOT

  Ready. Envoy with mcp_edge_auth: http://127.0.0.1:$LISTEN_PORT  (admin http://127.0.0.1:$ADMIN_PORT)
  Demo MCP server (direct, no auth): http://127.0.0.1:$MCP_PORT   Dev IdP: http://127.0.0.1:$IDP_PORT

  ┌──────────────────────────────────────────────────────────────────────────────┐
    Sign in through the façade: open http://127.0.0.1:$CLIENT_PORT/ in a browser
  └──────────────────────────────────────────────────────────────────────────────┘
  The demo client registers with the sign-in façade (Envoy :$FACADE_PORT), you approve its
  consent page, the dev IdP in Entra mode (:$ENTRA_IDP_PORT) signs you in as the dev user,
  and the page shows an MCP tools/call made through Envoy with the token the façade issued.
  MCP clients can sign in the same way: point them at http://127.0.0.1:$FACADE_PORT/mcp.

  Plain JWT path, try:
    curl -i http://127.0.0.1:$LISTEN_PORT/.well-known/oauth-protected-resource
    curl -i http://127.0.0.1:$LISTEN_PORT/mcp -H 'content-type: application/json' \\
         -H 'accept: application/json, text/event-stream' \\
         -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}'
    TOKEN=\$(cargo run -q -p devstack -- token)      # then add -H "authorization: Bearer \$TOKEN"
    (more: cargo run -q -p devstack -- --help)
    curl -s http://127.0.0.1:$ADMIN_PORT/stats | grep wasmcustom

  Plugin configuration: envoy/demo-plugin.json and envoy/demo-facade-plugin.json (rendered
  into $RUN/demo.yaml).
  Below: the filter's log lines, the access log and Envoy's warnings (full logs:
  $RUN/envoy.log, $RUN/devstack.log). Ctrl-C stops everything.

EOT

# Follow the logs on this terminal, from the start so the filter's startup lines show. Of
# Envoy's log only the filter's lines (shortened to "time filter level: message"), the access
# log and Envoy's own warnings and errors (less the startup one about connection limits, which
# a demo on 127.0.0.1 does not need); devstack's as it is.
envoy_console() {
    tail -n +1 -F "$RUN/envoy.log" 2>/dev/null \
        | grep --line-buffered -E '\] wasm log |^[0-9:.]+ access |\]\[(warning|error|critical)\]' \
        | grep --line-buffered -v 'no configured limit to the number of allowed active downstream' \
        | sed -u -E 's/^\[[0-9-]+ ([0-9:.]+)\]\[[0-9]+\]\[([a-z]+)\]\[wasm\] \[[^]]*\] wasm log [^:]*: /\1 filter \2: /'
}
devstack_console() { tail -n +1 -F "$RUN/devstack.log" 2>/dev/null; }

# follow NAME FUNCTION: runs FUNCTION (a pipeline) in the background in its own process
# group, writing to this terminal, so cleanup stops all of the pipeline.
follow() {
    local script
    script="RUN='$RUN'; $(declare -f "$2"); $2"
    if command -v setsid >/dev/null; then
        setsid bash -c "$script" </dev/null &
    else
        bash -c "$script" </dev/null &
    fi
    pids+=($!)
    names+=("$1")
}
follow envoy-log envoy_console
follow devstack-log devstack_console

while true; do
    check_alive
    sleep 1
done
