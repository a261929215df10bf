//! The `rsa` 0.10 crate as the reference RSA verifier (what `token/signature.rs` used before
//! `crypto/rsa.rs`): used by the per-verify benchmark (bench/verify) and by the differential
//! tests (tests/rsa_differential.rs, which include this file by path), so both compare against
//! exactly the same thing.

use mcp_edge_auth::keys::alg::Alg;

/// Verifies an RS*/PS* signature with `rsa` 0.10; `false` for other algorithms and for a
/// signature whose length is not the modulus length.
pub fn rsa10_verify(alg: Alg, key: &rsa10::PublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa10::sha2::{Digest, Sha256, Sha384, Sha512};
    use rsa10::traits::PublicKeyParts;
    use rsa10::{Pkcs1v15Sign, Pss};
    if signature.len() != key.size() {
        return false;
    }
    let result = match alg {
        Alg::Rs256 => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        ),
        Alg::Rs384 => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(message),
            signature,
        ),
        Alg::Rs512 => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(message),
            signature,
        ),
        Alg::Ps256 => key.verify(
            Pss::<Sha256>::new_with_salt(32),
            &Sha256::digest(message),
            signature,
        ),
        Alg::Ps384 => key.verify(
            Pss::<Sha384>::new_with_salt(48),
            &Sha384::digest(message),
            signature,
        ),
        Alg::Ps512 => key.verify(
            Pss::<Sha512>::new_with_salt(64),
            &Sha512::digest(message),
            signature,
        ),
        Alg::Es256 | Alg::EdDsa => return false,
    };
    result.is_ok()
}
