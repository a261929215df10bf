# The filter module as an OCI image Istio's WasmPlugin (oci://...) and Envoy Gateway
# (code.type: Image) can pull: a single layer holding /plugin.wasm, nothing else.
#
#   make build
#   docker build -t ghcr.io/<you>/mcp-edge-auth:0.1.0 .      (or podman / buildah)
#   docker push ghcr.io/<you>/mcp-edge-auth:0.1.0
#
# .dockerignore keeps the build context to the module. docs/DEPLOYMENT.md has the rest.
FROM scratch
COPY target/wasm/mcp_edge_auth.wasm ./plugin.wasm
