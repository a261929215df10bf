//! JWS algorithms this filter accepts, which key each one fits, and the signature check.
//!
//! `none` and the HMAC family are not representable here on purpose: a JWKS holds public
//! keys, and an HMAC "verified" with public key bytes is the classic key-confusion forgery.

use std::fmt;

use crate::jwks::PublicKey;
use crate::rsa_verify::{HashAlg, Padding, RsaPublicKey};

/// Smallest RSA modulus accepted (RFC 7518 §3.3 requires at least 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;

/// A JWS `alg` value the filter can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    EdDsa,
}

/// Why an `alg` header value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgError {
    /// `none` in any letter case.
    None,
    /// HS256/384/512: symmetric, never valid against a JWKS.
    Hmac(String),
    /// Anything else we do not implement.
    Unknown(String),
}

impl fmt::Display for AlgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlgError::None => write!(f, "unsigned tokens (alg \"none\") are not accepted"),
            AlgError::Hmac(a) => write!(f, "symmetric algorithm {a} is not accepted"),
            AlgError::Unknown(a) => write!(f, "unsupported algorithm {a}"),
        }
    }
}

impl Alg {
    pub const ALL: [Alg; 8] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::EdDsa,
    ];

    /// Parses a header or config `alg` value. Exact, case-sensitive (RFC 7515 §4.1.1).
    pub fn parse(name: &str) -> Result<Alg, AlgError> {
        if name.eq_ignore_ascii_case("none") {
            return Err(AlgError::None);
        }
        for alg in Alg::ALL {
            if alg.name() == name {
                return Ok(alg);
            }
        }
        if name.len() >= 2 && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("hs")) {
            return Err(AlgError::Hmac(printable(name)));
        }
        Err(AlgError::Unknown(printable(name)))
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// Whether `key` is of the type this algorithm needs (kty/crv); the JWK's own
    /// `alg`, when present, is checked by the caller.
    pub fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512,
                PublicKey::Rsa(_)
            ) | (Alg::Es256, PublicKey::P256(_))
                | (Alg::EdDsa, PublicKey::Ed25519(_))
        )
    }

    /// RS*/PS* (verified by `rsa_verify.rs`).
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
        )
    }
}

/// RS*/PS*: PKCS#1 v1.5, or PSS with the salt as long as the hash (RFC 7518 §3.5), on the
/// key's precomputed Montgomery form (`rsa_verify.rs`, `modexp.rs`).
fn verify_rsa(alg: Alg, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    let (padding, hash) = match alg {
        Alg::Rs256 => (Padding::Pkcs1v15, HashAlg::Sha256),
        Alg::Rs384 => (Padding::Pkcs1v15, HashAlg::Sha384),
        Alg::Rs512 => (Padding::Pkcs1v15, HashAlg::Sha512),
        Alg::Ps256 => (Padding::Pss, HashAlg::Sha256),
        Alg::Ps384 => (Padding::Pss, HashAlg::Sha384),
        Alg::Ps512 => (Padding::Pss, HashAlg::Sha512),
        Alg::Es256 | Alg::EdDsa => return false,
    };
    key.verify(padding, hash, message, signature)
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks `signature` over `signing_input` (`b64(header).b64(payload)`) with `key`.
/// Returns false for any mismatch, including a key of the wrong type or a signature of
/// the wrong length (ES256 must be raw `r||s`, 64 bytes; DER is refused).
pub fn verify(alg: Alg, key: &PublicKey, signing_input: &[u8], signature: &[u8]) -> bool {
    match key {
        PublicKey::Rsa(k) if alg.is_rsa() => {
            signature.len() == k.size() && verify_rsa(alg, k, signing_input, signature)
        }
        PublicKey::P256(k) if alg == Alg::Es256 => {
            if signature.len() != 64 {
                return false;
            }
            // Raw r||s, each in [1, n); ECDSA over SHA-256 of the signing input
            // (RFC 7518 §3.4), in variable time (src/p256_verify.rs).
            crate::p256_verify::verify(k, signing_input, signature)
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

/// Keeps a hostile value safe to print in a log line or an error description.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect();
    if s.len() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_none_and_hmac_in_any_case() {
        assert_eq!(Alg::parse("none"), Err(AlgError::None));
        assert_eq!(Alg::parse("NoNe"), Err(AlgError::None));
        assert!(matches!(Alg::parse("HS256"), Err(AlgError::Hmac(_))));
        assert!(matches!(Alg::parse("hs512"), Err(AlgError::Hmac(_))));
        assert!(matches!(Alg::parse("rs256"), Err(AlgError::Unknown(_))));
        assert!(matches!(Alg::parse("ES384"), Err(AlgError::Unknown(_))));
        assert_eq!(Alg::parse("PS384"), Ok(Alg::Ps384));
        assert_eq!(Alg::parse("EdDSA"), Ok(Alg::EdDsa));
    }

    #[test]
    fn every_alg_round_trips_its_name() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.name()), Ok(alg));
        }
    }

    #[test]
    fn every_rsa_algorithm_verifies_and_rejects_corruption() {
        use devstack::{sign_bytes, KeyKind, KeyRing, SigningKey};
        let key = SigningKey::cached(KeyKind::Rsa2048, "sig-test");
        let jwks = KeyRing::new(vec![key.clone()]).jwks().to_string();
        let set = crate::jwks::KeySet::parse(jwks.as_bytes()).unwrap();
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

    #[test]
    fn printable_strips_controls_and_caps_length() {
        assert_eq!(printable("a\"b\r\nc"), "a\"bc");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 65);
    }
}
