//! The HTTP surface of a decision: the request headers as the host hands them over, token
//! extraction, 400/401/403 challenges, RFC 9728 metadata, CORS, and the local responses the
//! filter answers itself.
//!
//! Uses: `util`.

pub mod challenge;
pub mod cors;
pub mod decision_headers;
pub mod extract;
pub mod filter_state;
pub mod headers;
pub mod prm;
pub mod response;
