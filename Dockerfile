# The filter module as an OCI image Istio's WasmPlugin (oci://...) and Envoy Gateway
# (code.type: Image) can pull: a single layer holding /plugin.wasm, nothing else (the Wasm
# image spec's "compat" variant).
#
#   make image      (buildah: target/image/mcp-edge-auth.tar, an OCI archive, and its digest)
#   skopeo copy oci-archive:target/image/mcp-edge-auth.tar docker://ghcr.io/<you>/mcp-edge-auth:0.1.0
#
# or with a container engine: make build && docker build -t ghcr.io/<you>/mcp-edge-auth:0.1.0 .
# .dockerignore keeps the build context to the module. docs/DEPLOYMENT.md has the rest.
FROM scratch
COPY target/wasm/mcp_edge_auth.wasm ./plugin.wasm
