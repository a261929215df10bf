//! Authorization after authentication: route rules (which path needs which provider),
//! MCP JSON-RPC inspection (which method, which tool) and the scope policy that turns
//! granted scopes and needs into a verdict.
//!
//! Uses: `token` (claims), `util`.

mod jsonrpc;
pub mod mcp;
pub mod policy;
pub mod rules;
