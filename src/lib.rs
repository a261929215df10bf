//! mcp-edge-auth: JWT verification, RFC 9728 metadata and MCP-aware authorization
//! for MCP servers behind Envoy, as a proxy-wasm module.
//!
//! Everything that decides lives in plain Rust modules with no host calls; `filter/` is the
//! only code that talks to Envoy. Start reading at [`decide`].
//!
//! Folders, top to bottom; a part uses only the parts below it (`scripts/modgraph.py`, run by
//! `make test`, refuses a circle or an upward import):
//!
//! | part | what it owns |
//! |---|---|
//! | `filter/` | host glue: contexts, callouts, shared data, metrics (wasm32 only) |
//! | [`decide`] | the request pipeline: request + time + keys in, verdict out |
//! | [`config`] | plugin JSON → validated settings for every part |
//! | [`oauth`] | the sign-in façade for IdPs without client registration (its own crate; wired by `config`/`filter` with the cargo feature `facade`) |
//! | [`authz`] | route rules, scope policy, MCP JSON-RPC inspection |
//! | [`token`] | JWS parsing, claims, verification, the verified-token cache |
//! | [`keys`] | JWKS parsing, key-set state machine, fetch shapes, key sources |
//! | [`http`] | headers, token extraction, challenges, PRM, CORS, local responses |
//! | [`crypto`] | RSA/modexp, P-256, base64url: pure functions on bytes (its own crate, at opt-level 3) |
//! | [`util`] | bytes, clock, durations, strict JSON, printable text |

pub mod authz;
pub mod config;
// src/crypto/ is compiled as its own crate (crypto/Cargo.toml: kept at opt-level 3).
pub use mcp_edge_auth_crypto as crypto;
pub mod decide;
pub mod http;
pub mod keys;
// src/oauth/ is compiled as its own crate (oauth/Cargo.toml: built for size).
pub use mcp_edge_auth_oauth as oauth;
pub mod token;
pub mod util;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
mod filter;

#[cfg(all(target_arch = "wasm32", feature = "filter"))]
proxy_wasm::main! {{
    filter::install();
}}
