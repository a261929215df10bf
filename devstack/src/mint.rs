//! JWS signing and token minting.
//!
//! Everything here encodes exactly what the caller gives: the header decides what
//! the token *claims* (alg, kid, typ), the `alg` argument decides how it is really
//! signed. That makes algorithm-confusion and kid-mismatch tokens easy to build.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::Mac;
use rsa::{Pkcs1v15Sign, Pss};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::b64url;
use crate::keys::{KeyKind, Material, SigningKey};

/// Why a signature could not be produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignError {
    /// `alg` is not one this module implements.
    UnsupportedAlg(String),
    /// The key cannot produce signatures for `alg` (e.g. ES256 with an RSA key).
    KeyMismatch { alg: String, kind: KeyKind },
    /// The RSA implementation refused (e.g. PS512 with a 1024-bit key).
    Rsa(String),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::UnsupportedAlg(a) => write!(f, "unsupported alg {a:?}"),
            SignError::KeyMismatch { alg, kind } => {
                write!(f, "a {kind:?} key cannot sign {alg}")
            }
            SignError::Rsa(e) => write!(f, "RSA signing failed: {e}"),
        }
    }
}

impl std::error::Error for SignError {}

/// Current time in unix seconds.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rsa_sign(key: &rsa::RsaPrivateKey, alg: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
    let mut rng = rand::rngs::OsRng;
    let res = match alg {
        "RS256" => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
        "RS384" => key.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message)),
        "RS512" => key.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message)),
        "PS256" => key.sign_with_rng(&mut rng, Pss::new::<Sha256>(), &Sha256::digest(message)),
        "PS384" => key.sign_with_rng(&mut rng, Pss::new::<Sha384>(), &Sha384::digest(message)),
        "PS512" => key.sign_with_rng(&mut rng, Pss::new::<Sha512>(), &Sha512::digest(message)),
        other => return Err(SignError::UnsupportedAlg(other.to_string())),
    };
    res.map_err(|e| SignError::Rsa(e.to_string()))
}

/// Signs `message` with `key` using JWS algorithm `alg`:
/// RS256/384/512 (PKCS#1 v1.5), PS256/384/512 (PSS, salt = hash length, MGF1 with
/// the same hash), ES256 (raw `r || s`, 64 bytes), EdDSA (Ed25519; "Ed25519" is
/// accepted as an alias).
pub fn try_sign_bytes(key: &SigningKey, alg: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
    const KNOWN: [&str; 9] = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA", "Ed25519",
    ];
    if !KNOWN.contains(&alg) {
        return Err(SignError::UnsupportedAlg(alg.to_string()));
    }
    if !key.kind.supports_alg(alg) {
        return Err(SignError::KeyMismatch {
            alg: alg.to_string(),
            kind: key.kind,
        });
    }
    match &key.material {
        Material::Rsa(k) => rsa_sign(k, alg, message),
        Material::Ec(k) => {
            use p256::ecdsa::signature::Signer;
            let sig: p256::ecdsa::Signature = k.sign(message);
            Ok(sig.to_bytes().to_vec())
        }
        Material::Ed(k) => {
            use ed25519_dalek::Signer;
            Ok(k.sign(message).to_bytes().to_vec())
        }
    }
}

/// [`try_sign_bytes`], panicking on error (test helper).
pub fn sign_bytes(key: &SigningKey, alg: &str, message: &[u8]) -> Vec<u8> {
    match try_sign_bytes(key, alg, message) {
        Ok(sig) => sig,
        #[allow(clippy::panic)]
        Err(e) => panic!("sign_bytes({}, {alg}): {e}", key.kid),
    }
}

/// Compact JWS over the exact bytes given: `b64(header_bytes).b64(claims_bytes).b64(sig)`.
pub fn try_sign_raw(
    key: &SigningKey,
    alg: &str,
    header_bytes: &[u8],
    claims_bytes: &[u8],
) -> Result<String, SignError> {
    let signing_input = format!("{}.{}", b64url(header_bytes), b64url(claims_bytes));
    let sig = try_sign_bytes(key, alg, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

/// [`try_sign_raw`], panicking on error. Use it for adversarial encodings
/// (duplicate JSON members, odd whitespace, non-UTF-8 bytes...).
pub fn sign_raw(key: &SigningKey, alg: &str, header_bytes: &[u8], claims_bytes: &[u8]) -> String {
    match try_sign_raw(key, alg, header_bytes, claims_bytes) {
        Ok(t) => t,
        #[allow(clippy::panic)]
        Err(e) => panic!("sign_raw({}, {alg}): {e}", key.kid),
    }
}

/// Compact JWS with `header` and `claims` serialized as given (serde_json compact
/// form). The header is not touched: put `alg`/`kid`/`typ` in it yourself, or use
/// [`mint`].
pub fn try_sign_jws(
    key: &SigningKey,
    alg: &str,
    header: &Value,
    claims: &Value,
) -> Result<String, SignError> {
    try_sign_raw(
        key,
        alg,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// [`try_sign_jws`], panicking on error.
pub fn sign_jws(key: &SigningKey, alg: &str, header: &Value, claims: &Value) -> String {
    sign_raw(
        key,
        alg,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    )
}

/// The header [`mint`] uses: `{"alg": alg, "typ": "JWT", "kid": key.kid}`.
pub fn default_header(key: &SigningKey, alg: &str) -> Value {
    json!({ "alg": alg, "typ": "JWT", "kid": key.kid })
}

/// Signs `claims` (as given: nothing is added) with header
/// `{"alg": alg, "typ": "JWT", "kid": key.kid}`. Panics if `key` cannot sign `alg`.
pub fn mint(key: &SigningKey, alg: &str, claims: Value) -> String {
    sign_jws(key, alg, &default_header(key, alg), &claims)
}

/// HMAC-signed JWS (HS256/HS384/HS512) over the exact bytes given, e.g. for the
/// classic "HS256 keyed with the RSA public key" confusion attack.
/// Panics on an unknown `alg`.
pub fn sign_hmac_raw(secret: &[u8], alg: &str, header_bytes: &[u8], claims_bytes: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64url(header_bytes), b64url(claims_bytes));
    let msg = signing_input.as_bytes();
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let sig = match alg {
        "HS256" => hmac::Hmac::<Sha256>::new_from_slice(secret)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
        "HS384" => hmac::Hmac::<Sha384>::new_from_slice(secret)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
        "HS512" => hmac::Hmac::<Sha512>::new_from_slice(secret)
            .map(|m| m.chain_update(msg).finalize().into_bytes().to_vec()),
        #[allow(clippy::panic)]
        other => panic!("sign_hmac_raw: unsupported alg {other:?}"),
    }
    .unwrap_or_default();
    format!("{signing_input}.{}", b64url(&sig))
}

/// `b64(header).b64(claims).` — an unsecured JWS (`alg: none` style) with an empty
/// signature part.
pub fn unsigned_jws(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64url_decode;
    use crate::keys::KeyKind;

    fn split(token: &str) -> (String, Vec<u8>) {
        let idx = token.rfind('.').unwrap();
        let input = token[..idx].to_string();
        let sig = b64url_decode(&token[idx + 1..]).unwrap();
        (input, sig)
    }

    /// Rebuilds the RSA public key from the published JWK, so the JWK encoding is
    /// tested together with the signature.
    fn rsa_from_jwk(jwk: &Value) -> rsa::RsaPublicKey {
        let n = b64url_decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = b64url_decode(jwk["e"].as_str().unwrap()).unwrap();
        rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(&n),
            rsa::BigUint::from_bytes_be(&e),
        )
        .unwrap()
    }

    fn p256_from_jwk(jwk: &Value) -> p256::ecdsa::VerifyingKey {
        let x: [u8; 32] = b64url_decode(jwk["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let y: [u8; 32] = b64url_decode(jwk["y"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
        p256::ecdsa::VerifyingKey::from_encoded_point(&point).unwrap()
    }

    fn ed_from_jwk(jwk: &Value) -> ed25519_dalek::VerifyingKey {
        let x: [u8; 32] = b64url_decode(jwk["x"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap()
    }

    fn verify_rsa(key: &SigningKey, alg: &str, token: &str) -> bool {
        use rsa::signature::Verifier;
        let public = rsa_from_jwk(&key.public_jwk());
        assert_eq!(Some(public.clone()), key.rsa_public());
        let (input, sig) = split(token);
        let m = input.as_bytes();
        match alg {
            "RS256" => rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "RS384" => rsa::pkcs1v15::VerifyingKey::<Sha384>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "RS512" => rsa::pkcs1v15::VerifyingKey::<Sha512>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS256" => rsa::pss::VerifyingKey::<Sha256>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS384" => rsa::pss::VerifyingKey::<Sha384>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            "PS512" => rsa::pss::VerifyingKey::<Sha512>::new(public)
                .verify(m, &sig.as_slice().try_into().unwrap())
                .is_ok(),
            _ => unreachable!(),
        }
    }

    /// Checks the PSS salt length is the hash length by verifying with an explicit
    /// salt length (the default `rsa` verifier auto-detects it).
    fn verify_pss_strict_salt(key: &SigningKey, alg: &str, token: &str) -> bool {
        let public = key.rsa_public().unwrap();
        let (input, sig) = split(token);
        let m = input.as_bytes();
        match alg {
            "PS256" => public
                .verify(Pss::new_with_salt::<Sha256>(32), &Sha256::digest(m), &sig)
                .is_ok(),
            "PS384" => public
                .verify(Pss::new_with_salt::<Sha384>(48), &Sha384::digest(m), &sig)
                .is_ok(),
            "PS512" => public
                .verify(Pss::new_with_salt::<Sha512>(64), &Sha512::digest(m), &sig)
                .is_ok(),
            _ => unreachable!(),
        }
    }

    fn tamper(token: &str) -> String {
        // Change one claim byte; keep the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = json!("mallory");
        format!(
            "{}.{}.{}",
            parts[0],
            b64url(claims.to_string().as_bytes()),
            parts[2]
        )
    }

    #[test]
    fn rsa_algorithms_round_trip() {
        let key = SigningKey::cached(KeyKind::Rsa2048, "rsa-test");
        for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
            let token = mint(&key, alg, json!({"sub": "alice"}));
            assert!(verify_rsa(&key, alg, &token), "{alg} verifies");
            assert!(
                !verify_rsa(&key, alg, &tamper(&token)),
                "{alg} tamper detected"
            );
            let (_, sig) = split(&token);
            assert_eq!(sig.len(), 256, "{alg} signature is modulus-sized");
            if alg.starts_with("PS") {
                assert!(verify_pss_strict_salt(&key, alg, &token), "{alg} salt len");
            }
        }
        // PKCS#1 v1.5 is deterministic, PSS is randomized.
        assert_eq!(
            mint(&key, "RS256", json!({"a": 1})),
            mint(&key, "RS256", json!({"a": 1}))
        );
        assert_ne!(
            mint(&key, "PS256", json!({"a": 1})),
            mint(&key, "PS256", json!({"a": 1}))
        );
        // Wrong hash is rejected.
        let token = mint(&key, "RS256", json!({"sub": "x"}));
        assert!(!verify_rsa(&key, "RS384", &token));
    }

    #[test]
    fn weak_rsa_key_signs_rs256() {
        let key = SigningKey::cached(KeyKind::Rsa1024, "rsa-weak");
        assert_eq!(
            key.rsa_private().map(rsa::traits::PublicKeyParts::size),
            Some(128)
        );
        let token = mint(&key, "RS256", json!({"sub": "weak"}));
        assert!(verify_rsa(&key, "RS256", &token));
        // PS512 needs a bigger modulus than 1024 bits: error, not a panic.
        assert!(matches!(
            try_sign_bytes(&key, "PS512", b"x"),
            Err(SignError::Rsa(_))
        ));
    }

    #[test]
    fn es256_round_trip_raw_signature() {
        use p256::ecdsa::signature::Verifier;
        let key = SigningKey::generate(KeyKind::EcP256, "ec-test");
        let token = mint(&key, "ES256", json!({"sub": "alice"}));
        let (input, sig) = split(&token);
        assert_eq!(sig.len(), 64, "raw r||s, not DER");
        let vk = p256_from_jwk(&key.public_jwk());
        assert_eq!(Some(vk), key.p256_verifying());
        let sig = p256::ecdsa::Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(input.as_bytes(), &sig).is_ok());
        let (tampered_input, _) = split(&tamper(&token));
        assert!(vk.verify(tampered_input.as_bytes(), &sig).is_err());
    }

    #[test]
    fn eddsa_round_trip() {
        let key = SigningKey::generate(KeyKind::Ed25519, "ed-test");
        let token = mint(&key, "EdDSA", json!({"sub": "alice"}));
        let (input, sig) = split(&token);
        assert_eq!(sig.len(), 64);
        let vk = ed_from_jwk(&key.public_jwk());
        assert_eq!(Some(vk), key.ed25519_verifying());
        let sig = ed25519_dalek::Signature::from_bytes(&sig.try_into().unwrap());
        assert!(vk.verify_strict(input.as_bytes(), &sig).is_ok());
        let (tampered_input, _) = split(&tamper(&token));
        assert!(vk.verify_strict(tampered_input.as_bytes(), &sig).is_err());
    }

    #[test]
    fn header_and_claims_encoded_exactly() {
        let key = SigningKey::generate(KeyKind::EcP256, "ec-h");
        let token = mint(&key, "ES256", json!({"sub": "bob", "n": 1}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert!(!token.contains('='), "no padding");
        let header: Value = serde_json::from_slice(&b64url_decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "ES256", "typ": "JWT", "kid": "ec-h"}));
        let claims: Value = serde_json::from_slice(&b64url_decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims, json!({"sub": "bob", "n": 1}));

        // Raw bytes survive untouched, duplicates and all.
        let raw_claims = br#"{"sub":"a","sub":"b"}"#;
        let token = sign_raw(&key, "ES256", br#"{"alg":"ES256"}"#, raw_claims);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(b64url_decode(parts[1]).unwrap(), raw_claims);

        // The header is not rewritten: it may lie about the algorithm.
        let lying = sign_jws(&key, "ES256", &json!({"alg": "RS256"}), &json!({}));
        let header = b64url_decode(lying.split('.').next().unwrap()).unwrap();
        assert_eq!(header, br#"{"alg":"RS256"}"#);
    }

    #[test]
    fn mismatches_are_errors() {
        let ec = SigningKey::generate(KeyKind::EcP256, "ec");
        assert!(matches!(
            try_sign_bytes(&ec, "RS256", b"x"),
            Err(SignError::KeyMismatch { .. })
        ));
        assert!(matches!(
            try_sign_bytes(&ec, "HS256", b"x"),
            Err(SignError::UnsupportedAlg(_))
        ));
        assert!(matches!(
            try_sign_bytes(&ec, "ES384", b"x"),
            Err(SignError::UnsupportedAlg(_))
        ));
    }

    #[test]
    fn hmac_and_unsigned() {
        let token = sign_hmac_raw(b"secret", "HS256", br#"{"alg":"HS256"}"#, b"{}");
        let (input, sig) = split(&token);
        let expected = hmac::Hmac::<Sha256>::new_from_slice(b"secret")
            .unwrap()
            .chain_update(input.as_bytes())
            .finalize()
            .into_bytes();
        assert_eq!(sig, expected.to_vec());
        let none = unsigned_jws(&json!({"alg": "none"}), &json!({"sub": "x"}));
        assert!(none.ends_with('.'));
        assert_eq!(none.split('.').count(), 3);
    }

    #[test]
    fn now_is_sane() {
        assert!(now() > 1_700_000_000);
    }
}
