//! Signing keys, public JWKs and key rings.
//!
//! RSA key generation is slow in debug builds, so [`SigningKey::cached`] keeps one
//! key per `(kind, kid)` for the whole process; [`SigningKey::generate`] always
//! makes fresh material.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rsa::traits::PublicKeyParts;
use serde_json::{json, Map, Value};

use crate::b64url;

/// Kind (and size) of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA, 2048-bit modulus, e = 65537.
    Rsa2048,
    /// RSA, 1024-bit modulus: deliberately weak, for negative tests.
    Rsa1024,
    /// ECDSA on NIST P-256.
    EcP256,
    /// Ed25519 (EdDSA).
    Ed25519,
}

impl KeyKind {
    /// The JWS `alg` most naturally used with this kind of key.
    pub fn default_alg(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 | KeyKind::Rsa1024 => "RS256",
            KeyKind::EcP256 => "ES256",
            KeyKind::Ed25519 => "EdDSA",
        }
    }

    /// `true` for the RSA kinds.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyKind::Rsa2048 | KeyKind::Rsa1024)
    }

    /// Whether a key of this kind can produce signatures for `alg`.
    pub fn supports_alg(self, alg: &str) -> bool {
        match self {
            KeyKind::Rsa2048 | KeyKind::Rsa1024 => matches!(
                alg,
                "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
            ),
            KeyKind::EcP256 => alg == "ES256",
            KeyKind::Ed25519 => alg == "EdDSA" || alg == "Ed25519",
        }
    }
}

/// Private key material. Cheap to clone (RSA keys are shared behind an `Arc`).
#[derive(Clone)]
pub(crate) enum Material {
    Rsa(Arc<rsa::RsaPrivateKey>),
    Ec(p256::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
}

/// A private signing key with its JWK metadata.
#[derive(Clone)]
pub struct SigningKey {
    /// `kid` published in the JWK and put in minted token headers.
    pub kid: String,
    /// What kind of key this is.
    pub kind: KeyKind,
    /// When set, the public JWK carries `"alg": <value>`; otherwise it has no `alg`.
    pub jwk_alg: Option<String>,
    pub(crate) material: Material,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("jwk_alg", &self.jwk_alg)
            .finish_non_exhaustive()
    }
}

fn fresh_material(kind: KeyKind) -> Material {
    let mut rng = rand::rngs::OsRng;
    match kind {
        KeyKind::Rsa2048 | KeyKind::Rsa1024 => {
            let bits = if kind == KeyKind::Rsa2048 { 2048 } else { 1024 };
            #[allow(clippy::expect_used)]
            let key = rsa::RsaPrivateKey::new(&mut rng, bits).expect("RSA key generation failed");
            Material::Rsa(Arc::new(key))
        }
        KeyKind::EcP256 => Material::Ec(p256::ecdsa::SigningKey::random(&mut rng)),
        KeyKind::Ed25519 => Material::Ed(ed25519_dalek::SigningKey::generate(&mut rng)),
    }
}

type Cache = Mutex<HashMap<(KeyKind, String), Material>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

impl SigningKey {
    /// Generates fresh key material (RSA-2048 takes a noticeable time in debug builds;
    /// see [`SigningKey::cached`]).
    pub fn generate(kind: KeyKind, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            kind,
            jwk_alg: None,
            material: fresh_material(kind),
        }
    }

    /// Like [`SigningKey::generate`], but the material is generated once per process
    /// for each `(kind, kid)` pair and reused afterwards. Different kids always get
    /// different material, so rotation tests still see distinct keys.
    pub fn cached(kind: KeyKind, kid: impl Into<String>) -> SigningKey {
        let kid = kid.into();
        let map_key = (kind, kid.clone());
        let existing = {
            let guard = cache().lock().unwrap_or_else(|p| p.into_inner());
            guard.get(&map_key).cloned()
        };
        let material = match existing {
            Some(m) => m,
            None => {
                // Generate outside the lock so parallel tests don't serialize on it.
                let m = fresh_material(kind);
                let mut guard = cache().lock().unwrap_or_else(|p| p.into_inner());
                guard.entry(map_key).or_insert(m).clone()
            }
        };
        SigningKey {
            kid,
            kind,
            jwk_alg: None,
            material,
        }
    }

    /// Imports an RSA private key. The kind is derived from the modulus size
    /// (≤ 1024 bits → [`KeyKind::Rsa1024`], otherwise [`KeyKind::Rsa2048`]).
    pub fn from_rsa(key: rsa::RsaPrivateKey, kid: impl Into<String>) -> SigningKey {
        let kind = if key.size() <= 128 {
            KeyKind::Rsa1024
        } else {
            KeyKind::Rsa2048
        };
        SigningKey {
            kid: kid.into(),
            kind,
            jwk_alg: None,
            material: Material::Rsa(Arc::new(key)),
        }
    }

    /// Imports a P-256 ECDSA private key.
    pub fn from_p256(key: p256::ecdsa::SigningKey, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            kind: KeyKind::EcP256,
            jwk_alg: None,
            material: Material::Ec(key),
        }
    }

    /// Imports an Ed25519 private key.
    pub fn from_ed25519(key: ed25519_dalek::SigningKey, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            kind: KeyKind::Ed25519,
            jwk_alg: None,
            material: Material::Ed(key),
        }
    }

    /// Same key material under another `kid`.
    pub fn with_kid(&self, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            ..self.clone()
        }
    }

    /// Same key, with `jwk_alg` set (the JWK then advertises `"alg"`).
    pub fn with_jwk_alg(&self, alg: impl Into<String>) -> SigningKey {
        SigningKey {
            jwk_alg: Some(alg.into()),
            ..self.clone()
        }
    }

    /// The RSA private key, if this is an RSA key.
    pub fn rsa_private(&self) -> Option<&rsa::RsaPrivateKey> {
        match &self.material {
            Material::Rsa(k) => Some(k),
            _ => None,
        }
    }

    /// The RSA public key, if this is an RSA key.
    pub fn rsa_public(&self) -> Option<rsa::RsaPublicKey> {
        self.rsa_private().map(|k| k.to_public_key())
    }

    /// The P-256 signing key, if this is an EC key.
    pub fn p256_signing(&self) -> Option<&p256::ecdsa::SigningKey> {
        match &self.material {
            Material::Ec(k) => Some(k),
            _ => None,
        }
    }

    /// The P-256 verifying key, if this is an EC key.
    pub fn p256_verifying(&self) -> Option<p256::ecdsa::VerifyingKey> {
        self.p256_signing().map(|k| *k.verifying_key())
    }

    /// The Ed25519 signing key, if this is an Ed25519 key.
    pub fn ed25519_signing(&self) -> Option<&ed25519_dalek::SigningKey> {
        match &self.material {
            Material::Ed(k) => Some(k),
            _ => None,
        }
    }

    /// The Ed25519 verifying key, if this is an Ed25519 key.
    pub fn ed25519_verifying(&self) -> Option<ed25519_dalek::VerifyingKey> {
        self.ed25519_signing().map(|k| k.verifying_key())
    }

    /// The public JWK (RFC 7517/7518/8037): RSA `kty,n,e`; EC `kty,crv,x,y`;
    /// OKP `kty,crv,x`; always `kid` and `use: "sig"`; `alg` only if `jwk_alg` is set.
    pub fn public_jwk(&self) -> Value {
        let mut m = Map::new();
        match &self.material {
            Material::Rsa(k) => {
                m.insert("kty".into(), json!("RSA"));
                m.insert("n".into(), json!(b64url(&k.n().to_bytes_be())));
                m.insert("e".into(), json!(b64url(&k.e().to_bytes_be())));
            }
            Material::Ec(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                let x = point.x().map(|x| b64url(x)).unwrap_or_default();
                let y = point.y().map(|y| b64url(y)).unwrap_or_default();
                m.insert("kty".into(), json!("EC"));
                m.insert("crv".into(), json!("P-256"));
                m.insert("x".into(), json!(x));
                m.insert("y".into(), json!(y));
            }
            Material::Ed(k) => {
                m.insert("kty".into(), json!("OKP"));
                m.insert("crv".into(), json!("Ed25519"));
                m.insert("x".into(), json!(b64url(k.verifying_key().as_bytes())));
            }
        }
        m.insert("kid".into(), json!(self.kid));
        m.insert("use".into(), json!("sig"));
        if let Some(alg) = &self.jwk_alg {
            m.insert("alg".into(), json!(alg));
        }
        Value::Object(m)
    }
}

/// An ordered set of signing keys. The first key able to sign a given `alg` is the
/// default for that `alg` (see [`KeyRing::for_alg`]).
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring holding `keys`, in order.
    pub fn new(keys: Vec<SigningKey>) -> KeyRing {
        KeyRing { keys }
    }

    /// `{"keys": [<public JWK>...]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": self.keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
    }

    /// All keys, in order.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// The kids, in order.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// `true` when the ring holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The first key that can sign `alg`.
    pub fn for_alg(&self, alg: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kind.supports_alg(alg))
    }

    /// Appends `key`; an existing key with the same kid is replaced in place.
    pub fn add(&mut self, key: SigningKey) {
        match self.keys.iter_mut().find(|k| k.kid == key.kid) {
            Some(slot) => *slot = key,
            None => self.keys.push(key),
        }
    }

    /// Removes the key with this `kid`, returning it.
    pub fn remove(&mut self, kid: &str) -> Option<SigningKey> {
        let pos = self.keys.iter().position(|k| k.kid == kid)?;
        Some(self.keys.remove(pos))
    }

    /// Rotation, step 1: puts `new_key` first (it becomes the default signing key for
    /// its algorithms) while keeping the old keys published for overlap.
    /// A key with the same kid is replaced.
    pub fn rotate(&mut self, new_key: SigningKey) {
        self.keys.retain(|k| k.kid != new_key.kid);
        self.keys.insert(0, new_key);
    }

    /// Rotation without overlap: `new_key` replaces every key of the same
    /// [`KeyKind`] family (RSA sizes count as one family). Returns the removed keys.
    pub fn rotate_replace(&mut self, new_key: SigningKey) -> Vec<SigningKey> {
        let family = |k: KeyKind| if k.is_rsa() { KeyKind::Rsa2048 } else { k };
        let fam = family(new_key.kind);
        let (removed, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|k| family(k.kind) == fam || k.kid == new_key.kid);
        self.keys = kept;
        self.keys.insert(0, new_key);
        removed
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_jwk_has_expected_members() {
        let k = SigningKey::cached(KeyKind::Rsa2048, "r1");
        let jwk = k.public_jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["kid"], "r1");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB");
        assert!(jwk.get("alg").is_none());
        let n = crate::b64url_decode(jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256);
        assert!(n[0] & 0x80 != 0, "2048-bit modulus has its top bit set");
        let with_alg = k.with_jwk_alg("RS256").public_jwk();
        assert_eq!(with_alg["alg"], "RS256");
    }

    #[test]
    fn ec_and_okp_jwks() {
        let ec = SigningKey::generate(KeyKind::EcP256, "e1").public_jwk();
        assert_eq!(ec["kty"], "EC");
        assert_eq!(ec["crv"], "P-256");
        assert_eq!(
            crate::b64url_decode(ec["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(
            crate::b64url_decode(ec["y"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        let ed = SigningKey::generate(KeyKind::Ed25519, "o1").public_jwk();
        assert_eq!(ed["kty"], "OKP");
        assert_eq!(ed["crv"], "Ed25519");
        assert_eq!(
            crate::b64url_decode(ed["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(ed.get("y").is_none());
    }

    #[test]
    fn cached_keys_are_shared_per_kid() {
        let a = SigningKey::cached(KeyKind::EcP256, "same");
        let b = SigningKey::cached(KeyKind::EcP256, "same");
        let c = SigningKey::cached(KeyKind::EcP256, "other");
        assert_eq!(a.public_jwk(), b.public_jwk());
        assert_ne!(a.public_jwk()["x"], c.public_jwk()["x"]);
    }

    #[test]
    fn ring_operations() {
        let mut ring = KeyRing::new(vec![
            SigningKey::cached(KeyKind::Rsa2048, "rsa-1"),
            SigningKey::generate(KeyKind::EcP256, "ec-1"),
        ]);
        assert_eq!(ring.kids(), ["rsa-1", "ec-1"]);
        assert_eq!(ring.for_alg("PS256").unwrap().kid, "rsa-1");
        assert_eq!(ring.for_alg("ES256").unwrap().kid, "ec-1");
        assert!(ring.for_alg("EdDSA").is_none());
        ring.rotate(SigningKey::cached(KeyKind::Rsa2048, "rsa-2"));
        assert_eq!(ring.kids(), ["rsa-2", "rsa-1", "ec-1"]);
        assert_eq!(ring.for_alg("RS256").unwrap().kid, "rsa-2");
        let jwks = ring.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
        assert!(ring.remove("rsa-1").is_some());
        assert!(ring.remove("rsa-1").is_none());
        let removed = ring.rotate_replace(SigningKey::generate(KeyKind::EcP256, "ec-2"));
        assert_eq!(removed.len(), 1);
        assert_eq!(ring.kids(), ["ec-2", "rsa-2"]);
        ring.add(SigningKey::generate(KeyKind::Ed25519, "ed-1"));
        assert_eq!(ring.len(), 3);
        ring.clear();
        assert!(ring.is_empty());
    }
}

#[cfg(test)]
mod timing {
    /// `cargo test -p devstack --lib rsa_keygen_timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn rsa_keygen_timing() {
        for bits in [2048usize, 2048, 2048, 1024] {
            let t = std::time::Instant::now();
            let _k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, bits).unwrap();
            eprintln!("RSA-{bits} keygen: {:?}", t.elapsed());
        }
    }
}
