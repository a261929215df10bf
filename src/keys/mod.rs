//! Verification keys: JWKS parsing into public keys, the JWA algorithms and which key fits
//! each, where a provider's keys come from (inline or remote), the remote key-set state
//! machine (refresh, backoff, stale-on-error) and the callout shapes that fetch them.
//! Pure: time and randomness are arguments.
//!
//! Uses: `crypto`, `util`.

pub mod alg;
pub mod fetch;
pub mod jwks;
pub mod source;
pub mod state;
