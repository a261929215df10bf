//! mcp-edge-auth: JWT verification, RFC 9728 metadata and MCP-aware authorization
//! for MCP servers behind Envoy, as a proxy-wasm module.

#[cfg(target_arch = "wasm32")]
mod filter;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    filter::install();
}}
