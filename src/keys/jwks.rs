//! JSON Web Key Sets (RFC 7517): parse a key set into usable public keys.
//!
//! One odd key never poisons the set: keys of an unsupported type or curve, keys meant for
//! encryption, keys whose `alg` we do not implement and weak RSA keys are skipped, each with
//! a reason the caller can log. Only a document that is not a JWKS at all is an error.

use std::fmt;
use std::sync::Arc;

use crate::crypto::b64;
use crate::crypto::p256::P256Key;
use crate::crypto::rsa::RsaPublicKey;
use crate::keys::alg::{Alg, MIN_RSA_BITS};
use crate::util::text::printable;

/// A public key ready for signature checks.
#[derive(Clone)]
pub enum PublicKey {
    /// Shared: a verified token and its cache entry keep the set's key, not a copy of its
    /// limbs (about 1.2 KB for a 2048-bit key).
    Rsa(Arc<RsaPublicKey>),
    /// Shared too: its fixed-base tables (8 KiB, `crypto/p256_table.rs`) are built at its
    /// first verification and kept with it.
    P256(Arc<P256Key>),
    Ed25519(ed25519_compact::PublicKey),
}

impl Alg {
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
}

impl PublicKey {
    pub fn kind(&self) -> &'static str {
        match self {
            PublicKey::Rsa(_) => "RSA",
            PublicKey::P256(_) => "EC P-256",
            PublicKey::Ed25519(_) => "OKP Ed25519",
        }
    }

    /// The RSA modulus size in bits (`None` for other key types).
    pub fn rsa_bits(&self) -> Option<usize> {
        match self {
            PublicKey::Rsa(k) => Some(k.bits()),
            _ => None,
        }
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &PublicKey) -> bool {
        match (self, other) {
            (PublicKey::Rsa(a), PublicKey::Rsa(b)) => Arc::ptr_eq(a, b) || a == b,
            (PublicKey::P256(a), PublicKey::P256(b)) => Arc::ptr_eq(a, b) || a == b,
            (PublicKey::Ed25519(a), PublicKey::Ed25519(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// One usable key of a set.
#[derive(Clone, Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's own `alg`, if it named one; a token must then use exactly that.
    pub alg: Option<Alg>,
    pub key: PublicKey,
}

/// A key that was left out of the set, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub kid: Option<String>,
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key #{} (kid {:?}): {}", self.index, kid, self.reason),
            None => write!(f, "key #{}: {}", self.index, self.reason),
        }
    }
}

/// The usable keys of a JWKS, in document order.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
    pub skipped: Vec<SkippedKey>,
}

/// A document that is not a key set at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksError {
    NotJson(String),
    NoKeysArray,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::NotJson(e) => write!(f, "JWKS is not valid JSON: {e}"),
            JwksError::NoKeysArray => {
                write!(f, "JWKS must be a JSON object with a \"keys\" array")
            }
        }
    }
}

impl std::error::Error for JwksError {}

impl KeySet {
    /// Parses a JWKS document.
    pub fn parse(doc: &[u8]) -> Result<KeySet, JwksError> {
        let value: serde_json::Value =
            serde_json::from_slice(doc).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let keys = value
            .get("keys")
            .and_then(|k| k.as_array())
            .ok_or(JwksError::NoKeysArray)?;
        let mut set = KeySet::default();
        for (index, entry) in keys.iter().enumerate() {
            let kid = entry.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            match parse_key(entry) {
                Ok(jwk) => set.keys.push(jwk),
                Err(reason) => set.skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        Ok(set)
    }

    /// The keys a token signed with `alg` (and carrying `kid`, if any) may have used,
    /// in document order.
    pub fn candidates<'a>(
        &'a self,
        alg: Alg,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| {
            alg.fits(&k.key)
                && k.alg.is_none_or(|a| a == alg)
                && match kid {
                    Some(kid) => k.kid.as_deref() == Some(kid),
                    None => true,
                }
        })
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One line for logs: counts and why keys were skipped.
    pub fn summary(&self) -> String {
        let mut s = format!("{} usable key(s)", self.keys.len());
        if !self.skipped.is_empty() {
            s.push_str(&format!(", {} skipped: ", self.skipped.len()));
            let reasons: Vec<String> = self.skipped.iter().map(|k| k.to_string()).collect();
            s.push_str(&reasons.join("; "));
        }
        s
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

fn member<'a>(entry: &'a serde_json::Value, name: &str) -> Result<Option<&'a str>, String> {
    match entry.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn required_bytes(entry: &serde_json::Value, name: &str) -> Result<Vec<u8>, String> {
    let s = member(entry, name)?.ok_or_else(|| format!("missing \"{name}\""))?;
    b64::decode_member(s).ok_or_else(|| format!("\"{name}\" is not base64url"))
}

fn parse_key(entry: &serde_json::Value) -> Result<Jwk, String> {
    if !entry.is_object() {
        return Err("not a JSON object".into());
    }
    member(entry, "kid")?;
    if let Some(u) = member(entry, "use")? {
        if u != "sig" {
            return Err(format!("use {:?} is not \"sig\"", printable(u)));
        }
    }
    if let Some(ops) = entry.get("key_ops") {
        let verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verify {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let alg = match member(entry, "alg")? {
        None => None,
        Some(a) => Some(Alg::parse(a).map_err(|e| e.to_string())?),
    };
    let kty = member(entry, "kty")?.ok_or("missing \"kty\"")?;
    let key = match kty {
        "RSA" => {
            let n_bytes = required_bytes(entry, "n")?;
            let e_bytes = required_bytes(entry, "e")?;
            let n_trimmed = strip_leading_zeros(&n_bytes);
            let bits = n_trimmed
                .first()
                .map_or(0, |b| n_trimmed.len() * 8 - b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "RSA modulus of {bits} bits is below the {MIN_RSA_BITS}-bit minimum"
                ));
            }
            if bits > 8192 {
                return Err(format!(
                    "RSA modulus of {bits} bits is above the 8192-bit maximum"
                ));
            }
            let e_trimmed = strip_leading_zeros(&e_bytes);
            if e_trimmed.is_empty() || e_trimmed.len() > 8 {
                return Err("RSA exponent is out of range".into());
            }
            // Montgomery constants are computed here, once per key set.
            PublicKey::Rsa(Arc::new(
                RsaPublicKey::new(n_trimmed, e_trimmed, MIN_RSA_BITS, 8192)
                    .map_err(|e| format!("RSA key: {e}"))?,
            ))
        }
        "EC" => {
            let crv = member(entry, "crv")?.ok_or("missing \"crv\"")?;
            if crv != "P-256" {
                return Err(format!("EC curve {:?} is not supported", printable(crv)));
            }
            let x = required_bytes(entry, "x")?;
            let y = required_bytes(entry, "y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let mut sec1 = Vec::with_capacity(65);
            sec1.push(0x04);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            PublicKey::P256(Arc::new(P256Key::new(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| "P-256 point is not on the curve".to_string())?,
            )))
        }
        "OKP" => {
            let crv = member(entry, "crv")?.ok_or("missing \"crv\"")?;
            if crv != "Ed25519" {
                return Err(format!("OKP curve {:?} is not supported", printable(crv)));
            }
            let x = required_bytes(entry, "x")?;
            PublicKey::Ed25519(
                ed25519_compact::PublicKey::from_slice(&x)
                    .map_err(|_| "Ed25519 key must be 32 bytes".to_string())?,
            )
        }
        "oct" => return Err("symmetric (oct) keys are never used".into()),
        other => return Err(format!("key type {:?} is not supported", printable(other))),
    };
    if let Some(a) = alg {
        if !a.fits(&key) {
            return Err(format!("alg {a} does not fit a {} key", key.kind()));
        }
    }
    Ok(Jwk {
        kid: member(entry, "kid")?.map(str::to_owned),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real 2048-bit modulus is generated by the devstack in integration tests; here we only
    // need shapes, so build keys from fixed bytes.
    fn rsa_jwk(bits: usize, extra: serde_json::Value) -> serde_json::Value {
        let mut n = vec![0xffu8; bits / 8];
        n[bits / 8 - 1] = 0xf1; // odd modulus
        let mut v = serde_json::json!({"kty":"RSA","n": b64::encode(&n), "e":"AQAB"});
        if let (Some(o), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            for (k, val) in extra {
                o.insert(k.clone(), val.clone());
            }
        }
        v
    }

    fn ed_jwk(kid: &str) -> serde_json::Value {
        serde_json::json!({"kty":"OKP","crv":"Ed25519","kid":kid,"x": b64::encode(&[7u8; 32])})
    }

    #[test]
    fn not_a_jwks_is_an_error() {
        assert!(matches!(KeySet::parse(b"nope"), Err(JwksError::NotJson(_))));
        assert_eq!(KeySet::parse(b"{}").err(), Some(JwksError::NoKeysArray));
        assert_eq!(
            KeySet::parse(b"{\"keys\":{}}").err(),
            Some(JwksError::NoKeysArray)
        );
        assert!(KeySet::parse(b"{\"keys\":[]}").is_ok_and(|s| s.is_empty()));
    }

    #[test]
    fn odd_keys_are_skipped_not_fatal() {
        let doc = serde_json::json!({"keys":[
            rsa_jwk(2048, serde_json::json!({"kid":"good"})),
            rsa_jwk(1024, serde_json::json!({"kid":"weak"})),
            rsa_jwk(2048, serde_json::json!({"kid":"enc","use":"enc"})),
            rsa_jwk(2048, serde_json::json!({"kid":"hs","alg":"HS256"})),
            rsa_jwk(2048, serde_json::json!({"kid":"mismatch","alg":"ES256"})),
            {"kty":"EC","crv":"P-384","kid":"p384","x":"AA","y":"AA"},
            {"kty":"oct","k":"c2VjcmV0","kid":"oct"},
            {"kty":"EC","crv":"P-256","kid":"offcurve","x": b64::encode(&[1u8;32]),"y": b64::encode(&[2u8;32])},
            ed_jwk("ed"),
            "not an object",
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("parses");
        let kids: Vec<_> = set.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
        assert_eq!(kids, vec!["good", "ed"]);
        assert_eq!(set.skipped.len(), 8);
        let summary = set.summary();
        assert!(summary.contains("below the 2048-bit minimum"), "{summary}");
        assert!(summary.contains("use \"enc\""), "{summary}");
        assert!(summary.contains("symmetric algorithm HS256"), "{summary}");
        assert!(
            summary.contains("alg ES256 does not fit a RSA key"),
            "{summary}"
        );
        assert!(summary.contains("not on the curve"), "{summary}");
    }

    #[test]
    fn candidates_respect_alg_kid_and_jwk_alg() {
        let doc = serde_json::json!({"keys":[
            rsa_jwk(2048, serde_json::json!({"kid":"a","alg":"RS256"})),
            rsa_jwk(2048, serde_json::json!({"kid":"b"})),
            ed_jwk("c"),
        ]});
        let set = KeySet::parse(doc.to_string().as_bytes()).expect("parses");
        let kids = |alg, kid| -> Vec<String> {
            set.candidates(alg, kid)
                .filter_map(|k| k.kid.clone())
                .collect()
        };
        assert_eq!(kids(Alg::Rs256, None), vec!["a", "b"]);
        assert_eq!(kids(Alg::Ps256, None), vec!["b"]);
        assert_eq!(kids(Alg::Rs256, Some("a")), vec!["a"]);
        assert_eq!(kids(Alg::Es256, Some("a")), Vec::<String>::new());
        assert_eq!(kids(Alg::EdDsa, None), vec!["c"]);
        assert!(set.has_kid("c"));
        assert!(!set.has_kid("zzz"));
    }
}
