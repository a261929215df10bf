//! Tokens: what a provider expects of its tokens (issuers, audiences, algorithms, skew,
//! claim headers), JWS parsing and signature checks, claims verification, and the
//! verified-token cache.
//!
//! Uses: `keys`, `crypto`, `util`.

pub mod cache;
pub mod host_signature;
pub mod identity;
pub mod provider;
pub mod signature;
pub mod verify;
