//! Host-only development stack for `mcp-edge-auth`: signing keys and token
//! minting, a dev OAuth/OIDC IdP, a request-recording backend, a demo MCP server and a demo
//! MCP client web app that signs in through the sign-in façade (`make run`).
//!
//! Every server binds `127.0.0.1` and runs on its own background thread with its
//! own tokio runtime, so tests use a plain synchronous API. Dropping a server
//! handle stops it.

pub mod demo_client;
pub mod entra;
pub mod http;
pub mod idp;
pub mod keys;
pub mod mcp_demo;
pub mod mint;
pub mod recorder;
mod server;

pub use demo_client::{DemoClient, DemoClientConfig};
pub use entra::EntraConfig;
pub use idp::{Idp, IdpConfig, JwksMode};
pub use keys::{KeyKind, KeyRing, SigningKey};
pub use mcp_demo::{McpClient, McpDemo, McpDemoConfig};
pub use mint::{mint, now, sign_bytes, sign_jws, sign_raw};
pub use recorder::{RecordedRequest, Recorder};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn b64url_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(s)
}
