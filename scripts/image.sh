#!/usr/bin/env bash
# `make image`: the filter module as an OCI image, built by buildah from the Dockerfile.
#
#   scripts/image.sh [OUT_DIR]      (OUT_DIR defaults to target/image)
#
# Writes OUT_DIR/mcp-edge-auth.tar (an OCI archive: oci-layout, index.json, blobs) and
# OUT_DIR/digest (sha256:<hex> of the image manifest). Push it unchanged with
#
#   skopeo copy oci-archive:target/image/mcp-edge-auth.tar docker://ghcr.io/<you>/mcp-edge-auth:0.1.0
#
# and the registry holds that same manifest, so `digest` is what Istio's WasmPlugin `sha256`
# (and Envoy Gateway's `code.image.sha256`) must say.
#
# The image is the Wasm image spec's "compat" variant in OCI format: an OCI image manifest
# whose single layer (application/vnd.oci.image.layer.v1.tar+gzip) is a tar holding only
# plugin.wasm. Istio's agent (pkg/wasm/imagefetcher.go) takes that layer, gunzips it and
# reads the entry named plugin.wasm; Envoy Gateway uses the same code. tests/image.rs pushes
# the archive to a local registry, pulls it back and loads the pulled module into Envoy.
#
# Reproducible: --timestamp 0 sets the image's creation time and the file's mtime in the
# layer to the epoch, and --identity-label=false leaves out buildah's version label, so the
# same module gives the same digest (with the same buildah/containers-image, which compress
# the layer; measured with Debian 12's buildah 1.28.2).
#
# buildah runs with a throwaway storage (vfs driver, nothing mounted) in a temp dir removed at
# exit: the archive is the product, nothing is left in /var/lib/containers. No daemon, no
# RUN step (the Dockerfile only copies a file), so it works as root in a container.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="${1:-target/image}"
module=target/wasm/mcp_edge_auth.wasm   # what the Dockerfile copies
tag=localhost/mcp-edge-auth:build

die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

command -v buildah >/dev/null || die "buildah not found: run make deps (as root it installs buildah, skopeo, docker-registry)"
[ -f "$module" ] || die "$module missing: run make build"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/mcp-edge-auth-image.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
bah() { buildah --root "$tmp/root" --runroot "$tmp/run" --storage-driver vfs "$@"; }

mkdir -p "$out"
rm -f "$out/mcp-edge-auth.tar" "$out/digest"
bah bud --quiet --format oci --timestamp 0 --identity-label=false \
    -f Dockerfile -t "$tag" . >/dev/null
bah push --quiet --digestfile "$tmp/digest" "$tag" "oci-archive:$out/mcp-edge-auth.tar"
digest="$(cat "$tmp/digest")"
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || die "unexpected digest from buildah push: $digest"
printf '%s\n' "$digest" >"$out/digest"

printf 'image: %s (OCI archive)\n' "$out/mcp-edge-auth.tar"
printf 'image: manifest digest %s\n' "$digest"
printf 'image: plugin.wasm sha256:%s (%s)\n' "$(sha256sum "$module" | cut -d' ' -f1)" "$module"
