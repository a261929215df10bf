//! PKCE (RFC 7636), S256 only: the client's pair is checked here at `/token`; the façade's
//! own pair for the upstream leg is made here too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::ct;
use super::random::{self, NoRandomness, Random};

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(unreserved)
}

/// An S256 challenge: base64url of 32 bytes, 43 characters.
pub fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Does `verifier` (from the client at `/token`) answer `challenge` (sealed at
/// `/authorize`)?
pub fn verify(verifier: &str, challenge: &str) -> bool {
    valid_verifier(verifier) && ct::eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

/// A fresh verifier (32 random bytes, 43 characters) for the upstream leg.
pub fn new_verifier(rng: &mut dyn Random) -> Result<String, NoRandomness> {
    let b: [u8; 32] = random::bytes(rng)?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
mod tests {
    use super::super::random::testing::Counter;
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(v), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify(v, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"));
        // `plain` would send the verifier itself as the challenge: never accepted.
        assert!(!verify(v, v));
    }

    #[test]
    fn syntax() {
        assert!(!valid_verifier(&"a".repeat(42)));
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"a".repeat(128)));
        assert!(!valid_verifier(&"a".repeat(129)));
        assert!(!valid_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!verify("", ""));
        assert!(valid_challenge(&s256("x")));
        assert!(!valid_challenge("short"));
        assert!(!valid_challenge(&format!("{}=", "a".repeat(42))));
        let mut r = Counter(5);
        let v = new_verifier(&mut r).unwrap();
        assert!(valid_verifier(&v));
        assert_ne!(v, new_verifier(&mut r).unwrap());
    }
}
