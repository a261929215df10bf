//! The signature check: a JWS algorithm, a public key, the signing input and the signature
//! in, a yes or no out. The arithmetic is in `crypto/`; which key fits which algorithm is
//! `keys/alg.rs`.

use crate::crypto::rsa::{HashAlg, Padding, RsaPublicKey};
use crate::keys::alg::Alg;
use crate::keys::jwks::PublicKey;
use crate::token::host_signature::HostVerifier;

/// RS*/PS*: PKCS#1 v1.5, or PSS with the salt as long as the hash (RFC 7518 §3.5), on the
/// key's precomputed Montgomery form (`crypto/rsa.rs`, `crypto/modexp.rs`); PKCS#1 v1.5 by
/// `host` when there is one and it gives a verdict (`token/host_signature.rs`).
fn verify_rsa(
    alg: Alg,
    key: &RsaPublicKey,
    message: &[u8],
    signature: &[u8],
    host: Option<&dyn HostVerifier>,
) -> bool {
    let (padding, hash) = match alg {
        Alg::Rs256 => (Padding::Pkcs1v15, HashAlg::Sha256),
        Alg::Rs384 => (Padding::Pkcs1v15, HashAlg::Sha384),
        Alg::Rs512 => (Padding::Pkcs1v15, HashAlg::Sha512),
        Alg::Ps256 => (Padding::Pss, HashAlg::Sha256),
        Alg::Ps384 => (Padding::Pss, HashAlg::Sha384),
        Alg::Ps512 => (Padding::Pss, HashAlg::Sha512),
        Alg::Es256 | Alg::EdDsa => return false,
    };
    if let (Padding::Pkcs1v15, Some(host)) = (padding, host) {
        if let Some(valid) = host.verify(hash, key.spki_der(), message, signature) {
            return valid;
        }
    }
    key.verify(padding, hash, message, signature)
}

/// Checks `signature` over `signing_input` (`b64(header).b64(payload)`) with `key`.
/// Returns false for any mismatch, including a key of the wrong type or a signature of
/// the wrong length (ES256 must be raw `r||s`, 64 bytes; DER is refused).
pub fn verify(alg: Alg, key: &PublicKey, signing_input: &[u8], signature: &[u8]) -> bool {
    verify_with(alg, key, signing_input, signature, None)
}

/// [`verify`], RS* and ES256 signatures checked by `host` when given (and when it gives a
/// verdict).
pub fn verify_with(
    alg: Alg,
    key: &PublicKey,
    signing_input: &[u8],
    signature: &[u8],
    host: Option<&dyn HostVerifier>,
) -> bool {
    match key {
        PublicKey::Rsa(k) if alg.is_rsa() => {
            signature.len() == k.size() && verify_rsa(alg, k, signing_input, signature, host)
        }
        PublicKey::P256(k) if alg == Alg::Es256 => {
            if signature.len() != 64 {
                return false;
            }
            if let Some(host) = host {
                let (r, s) = signature.split_at(32);
                let der = crate::crypto::der::ecdsa_signature_der(r, s);
                if let Some(valid) = host.verify(HashAlg::Sha256, k.spki_der(), signing_input, &der)
                {
                    return valid;
                }
            }
            // Raw r||s, each in [1, n); ECDSA over SHA-256 of the signing input
            // (RFC 7518 §3.4), in variable time (src/crypto/p256.rs).
            crate::crypto::p256::verify(k, signing_input, signature)
        }
        PublicKey::Ed25519(k) if alg == Alg::EdDsa => {
            if signature.len() != 64 {
                return false;
            }
            match ed25519_compact::Signature::from_slice(signature) {
                Ok(sig) => k.verify(signing_input, &sig).is_ok(),
                Err(_) => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rsa_algorithm_verifies_and_rejects_corruption() {
        use devstack::{sign_bytes, KeyKind, KeyRing, SigningKey};
        let key = SigningKey::cached(KeyKind::Rsa2048, "sig-test");
        let jwks = KeyRing::new(vec![key.clone()]).jwks().to_string();
        let set = crate::keys::jwks::KeySet::parse(jwks.as_bytes()).unwrap();
        let public = &set.keys[0].key;
        for alg in [
            Alg::Rs256,
            Alg::Rs384,
            Alg::Rs512,
            Alg::Ps256,
            Alg::Ps384,
            Alg::Ps512,
        ] {
            let msg = b"header.payload";
            let mut sig = sign_bytes(&key, alg.name(), msg);
            assert!(verify(alg, public, msg, &sig), "{alg}");
            assert!(
                !verify(alg, public, b"header.payloaD", &sig),
                "{alg}: other message"
            );
            let other = if alg.name().starts_with("RS") {
                Alg::Ps256
            } else {
                Alg::Rs256
            };
            assert!(
                !verify(other, public, msg, &sig),
                "{alg} signature accepted as {other}"
            );
            sig[10] ^= 1;
            assert!(!verify(alg, public, msg, &sig), "{alg}: flipped bit");
            sig.truncate(255);
            assert!(!verify(alg, public, msg, &sig), "{alg}: short signature");
            assert!(
                !verify(Alg::Es256, public, msg, &sig),
                "ES256 with an RSA key"
            );
        }
    }
}
