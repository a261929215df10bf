//! mcp-edge-auth: JWT verification, RFC 9728 metadata and MCP-aware authorization
//! for MCP servers behind Envoy, as a proxy-wasm module.
//!
//! Everything that decides lives in plain Rust modules with no host calls; `filter/` is the
//! only code that talks to Envoy. Start reading at [`decide`].

pub mod b64;
pub mod bytes;
pub mod challenge;
pub mod clock;
pub mod config;
pub mod cors;
pub mod decide;
pub mod decision_headers;
pub mod duration;
pub mod extract;
pub mod fetch;
pub mod headers;
pub mod json;
pub mod jwks;
pub mod keys;
pub mod mcp;
pub mod modexp;
pub mod oauth;
pub mod p256_verify;
pub mod policy;
pub mod prm;
pub mod response;
pub mod rsa_verify;
pub mod rules;
pub mod signature;
pub mod token_cache;
pub mod verify;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    filter::install();
}}
