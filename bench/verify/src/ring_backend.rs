//! `ring` 0.17's verifiers as a bench backend (`ring`, cargo feature `ring`; `make bench-verify`
//! builds it, with Debian's clang for ring's C and assembly-free wasm32 parts).
//!
//! ring has no pre-parsed public-key type for verification: `RsaPublicKeyComponents::verify`
//! and `UnparsedPublicKey::verify` take the key's bytes and check them on every call (for RSA
//! that includes the Montgomery set-up of the modulus, for P-256 the point-on-curve check).
//! That is how ring is used, so it is what the bench times.

use mcp_edge_auth::crypto::b64::decode_member;
use mcp_edge_auth::keys::alg::Alg;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// A JWKS key in the form ring takes.
pub enum RingKey {
    /// Big-endian modulus and exponent (JWK `n`, `e`).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// The uncompressed SEC1 point `04 || x || y` (JWK `x`, `y`).
    P256(Vec<u8>),
}

/// The first key of `jwks` that `alg` can use (`kty` RSA for RS*/PS*, EC P-256 for ES256).
pub fn ring_key(alg: Alg, jwks: &str) -> Result<RingKey, String> {
    let v: serde_json::Value = serde_json::from_str(jwks).map_err(|e| e.to_string())?;
    let keys = v
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("no \"keys\" array")?;
    let text = |k: &serde_json::Value, name: &str| {
        k.get(name)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let member = |k: &serde_json::Value, name: &str| {
        k.get(name)
            .and_then(|x| x.as_str())
            .and_then(decode_member)
            .ok_or(format!("bad {name}"))
    };
    let rsa = !matches!(alg, Alg::Es256 | Alg::EdDsa);
    let key = keys
        .iter()
        .find(|k| {
            if rsa {
                text(k, "kty") == "RSA"
            } else {
                text(k, "kty") == "EC" && text(k, "crv") == "P-256"
            }
        })
        .ok_or("no key for the algorithm")?;
    if rsa {
        return Ok(RingKey::Rsa {
            n: member(key, "n")?,
            e: member(key, "e")?,
        });
    }
    let (x, y) = (member(key, "x")?, member(key, "y")?);
    if x.len() != 32 || y.len() != 32 {
        return Err("P-256 x and y must be 32 bytes".into());
    }
    let mut point = Vec::with_capacity(65);
    point.push(4);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(RingKey::P256(point))
}

/// Verifies `signature` over `message` with ring (JWS ES256 signatures are r || s, ring's
/// `_FIXED` form); `false` for an algorithm and key that do not go together, or EdDSA.
pub fn ring_verify(alg: Alg, key: &RingKey, message: &[u8], sig: &[u8]) -> bool {
    match key {
        RingKey::Rsa { n, e } => {
            let params = match alg {
                Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Alg::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Alg::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                Alg::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                Alg::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                Alg::Es256 | Alg::EdDsa => return false,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        }
        RingKey::P256(point) => {
            alg == Alg::Es256
                && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
        }
    }
}
