//! Cryptographic primitives as pure functions on bytes: base64url, RSA (PKCS#1 v1.5 and
//! PSS) over a Montgomery modexp, ES256 over P-256. No keys are parsed and no tokens are
//! read here: `keys/` builds the key types, `token/` calls the checks.
//!
//! Uses: nothing of the filter's (its own crate, crypto/Cargo.toml, at opt-level 3).

pub mod b64;
pub mod der;
pub mod modexp;
pub mod p256;
pub mod p256_field;
mod p256_point;
mod p256_table;
pub mod rsa;
