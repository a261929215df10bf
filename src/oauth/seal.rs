//! Sealed blobs: everything the façade hands out (client ids, consent requests, upstream
//! `state`, codes, refresh tokens, approval cookies) is its own data encrypted and
//! authenticated under a configured key, so that no replica needs storage to read it back.
//!
//! AEAD: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`). Chosen over AES-GCM because Wasm
//! has no AES instructions: software AES is either slow or, in its constant-time bitsliced
//! form, larger; ChaCha20 is fast and constant-time in plain 32-bit arithmetic, and the
//! 24-byte XChaCha nonce can be drawn at random for every seal with no counter to keep.
//!
//! Layout (then base64url without padding):
//! `version (1) | key id (4) | nonce (24) | ciphertext of (expiry u64 BE | payload) | tag (16)`.
//! The associated data is a fixed label, the version, the key id and the [`Kind`]'s name,
//! so a blob sealed as one kind (a client id) never opens as another (a code), and a flipped
//! header byte fails authentication like any other tampering.
//!
//! Keys: each configured secret (>= 32 random bytes) is turned into a 32-byte AEAD key and
//! a 4-byte key id with SHA-256 under distinct labels. The first key seals, every key opens
//! (rotation: add the new key first, drop the old one once its blobs have expired).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::random::{self, NoRandomness, Random};

const VERSION: u8 = 1;
const KID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + KID_LEN + NONCE_LEN;
/// Shortest secret a key may be made from.
pub const MIN_SECRET_LEN: usize = 32;
/// Longest blob text `open` looks at (bounds the work a hostile input can cause).
pub const MAX_SEALED_LEN: usize = 8192;
/// `expiry` for blobs that never expire (client registrations).
pub const NEVER: u64 = u64::MAX;

/// What a blob is; part of the associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ClientId,
    ConsentRequest,
    State,
    Code,
    RefreshToken,
    Approval,
}

impl Kind {
    fn label(self) -> &'static [u8] {
        match self {
            Kind::ClientId => b"client_id",
            Kind::ConsentRequest => b"consent_request",
            Kind::State => b"state",
            Kind::Code => b"code",
            Kind::RefreshToken => b"refresh_token",
            Kind::Approval => b"approval",
        }
    }
}

/// Why a blob did not open. Deliberately coarse: callers map all of them to one OAuth
/// error; the variants exist for logs and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// Not base64url, too short or too long, or an unknown version.
    Malformed,
    /// No configured key has this key id (sealed under a key since removed, or forged).
    UnknownKey,
    /// Authentication failed: tampered, another kind, or another key with the same id.
    Invalid,
    /// Opened fine but its expiry has passed.
    Expired,
}

/// A configured key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    NoKeys,
    /// Key number `index` (0-based) is shorter than [`MIN_SECRET_LEN`] bytes.
    TooShort {
        index: usize,
    },
    /// Key number `index` is not base64 (standard or URL-safe, padded or not).
    NotBase64 {
        index: usize,
    },
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::NoKeys => write!(f, "at least one sealing key is required"),
            KeyError::TooShort { index } => write!(
                f,
                "sealing key {index} is shorter than {MIN_SECRET_LEN} bytes"
            ),
            KeyError::NotBase64 { index } => {
                write!(
                    f,
                    "sealing key {index} is not base64 (standard or URL-safe)"
                )
            }
        }
    }
}

struct Key {
    id: [u8; KID_LEN],
    cipher: XChaCha20Poly1305,
}

/// The sealing keys, first one sealing. `Debug` shows only how many there are.
pub struct Keys {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("count", &self.keys.len())
            .finish()
    }
}

fn derive(label: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mcp-edge-auth/seal/v1/");
    h.update(label);
    h.update([0u8]);
    h.update(secret);
    h.finalize().into()
}

impl Keys {
    /// Keys from raw secrets (each at least [`MIN_SECRET_LEN`] bytes), first one sealing.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Result<Keys, KeyError> {
        if secrets.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut keys = Vec::with_capacity(secrets.len());
        for (index, s) in secrets.iter().enumerate() {
            let s = s.as_ref();
            if s.len() < MIN_SECRET_LEN {
                return Err(KeyError::TooShort { index });
            }
            let key = derive(b"key", s);
            let id_full = derive(b"kid", s);
            let mut id = [0u8; KID_LEN];
            id.copy_from_slice(id_full.get(..KID_LEN).unwrap_or(&[0u8; KID_LEN]));
            let cipher = XChaCha20Poly1305::new(&key.into());
            keys.push(Key { id, cipher });
        }
        Ok(Keys { keys })
    }

    /// Keys from base64 text as it sits in an environment variable: standard or URL-safe
    /// alphabet, padded or not, surrounding whitespace ignored.
    pub fn from_base64<S: AsRef<str>>(values: &[S]) -> Result<Keys, KeyError> {
        let mut secrets = Vec::with_capacity(values.len());
        for (index, v) in values.iter().enumerate() {
            let text: String = v
                .as_ref()
                .trim()
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            let raw = URL_SAFE_NO_PAD
                .decode(text.as_bytes())
                .map_err(|_| KeyError::NotBase64 { index })?;
            secrets.push(raw);
        }
        Keys::new(&secrets)
    }

    /// How many keys (for logs).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Seals `payload` as `kind`, valid until `expiry` (unix seconds; [`NEVER`] for none),
    /// with a fresh random nonce.
    pub fn seal(
        &self,
        kind: Kind,
        expiry: u64,
        payload: &[u8],
        rng: &mut dyn Random,
    ) -> Result<String, NoRandomness> {
        let nonce: [u8; NONCE_LEN] = random::bytes(rng)?;
        Ok(self.seal_with_nonce(kind, expiry, payload, nonce))
    }

    fn seal_with_nonce(
        &self,
        kind: Kind,
        expiry: u64,
        payload: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> String {
        // `Keys` is never empty (checked in `new`).
        let Some(key) = self.keys.first() else {
            return String::new();
        };
        let mut header = Vec::with_capacity(HEADER_LEN + 8 + payload.len() + TAG_LEN);
        header.push(VERSION);
        header.extend_from_slice(&key.id);
        header.extend_from_slice(&nonce);
        let mut plain = Vec::with_capacity(8 + payload.len());
        plain.extend_from_slice(&expiry.to_be_bytes());
        plain.extend_from_slice(payload);
        let aad = aad(&key.id, kind);
        let sealed = key.cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        );
        match sealed {
            Ok(ct) => {
                header.extend_from_slice(&ct);
                URL_SAFE_NO_PAD.encode(&header)
            }
            // Only fails for messages beyond 256 GiB.
            Err(_) => String::new(),
        }
    }

    /// Opens a blob sealed as `kind` and checks its expiry against `now`; the payload.
    pub fn open(&self, kind: Kind, sealed: &str, now: u64) -> Result<Vec<u8>, SealError> {
        let (expiry, payload) = self.open_any_time(kind, sealed)?;
        if now >= expiry {
            return Err(SealError::Expired);
        }
        Ok(payload)
    }

    /// Opens without the expiry check: (expiry, payload).
    pub fn open_any_time(&self, kind: Kind, sealed: &str) -> Result<(u64, Vec<u8>), SealError> {
        if sealed.is_empty() || sealed.len() > MAX_SEALED_LEN {
            return Err(SealError::Malformed);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.as_bytes())
            .map_err(|_| SealError::Malformed)?;
        if raw.len() < HEADER_LEN + 8 + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (header, ct) = raw.split_at(HEADER_LEN);
        let (version, rest) = header.split_first().ok_or(SealError::Malformed)?;
        if *version != VERSION {
            return Err(SealError::Malformed);
        }
        let (kid, nonce) = rest.split_at(KID_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let nonce = XNonce::from(nonce);
        let mut known = false;
        for key in self.keys.iter().filter(|k| k.id.as_slice() == kid) {
            known = true;
            let aad = aad(&key.id, kind);
            if let Ok(plain) = key.cipher.decrypt(&nonce, Payload { msg: ct, aad: &aad }) {
                let (exp, payload) = plain.split_at(8.min(plain.len()));
                let exp: [u8; 8] = exp.try_into().map_err(|_| SealError::Malformed)?;
                return Ok((u64::from_be_bytes(exp), payload.to_vec()));
            }
        }
        Err(if known {
            SealError::Invalid
        } else {
            SealError::UnknownKey
        })
    }
}

/// Why a sealed JSON payload could not be made or read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    Seal(SealError),
    /// Opened, but not the expected JSON (a bug or a key reused elsewhere).
    Shape,
}

/// A value sealed as a JSON object. The fields are mapped by hand (the [`fields`] helpers)
/// rather than with serde's derive: six derived payload types cost about 20 KB of module
/// (measured with a size probe since removed), these one shared `Map` path. Unknown fields are ignored and a
/// field of the wrong type refuses the whole value, as serde's derive did.
pub trait Sealed: Sized {
    fn to_json(&self) -> Map<String, Value>;
    /// `None`: not this payload's shape.
    fn from_json(m: &Map<String, Value>) -> Option<Self>;
}

/// Reading and writing [`Sealed`] fields.
pub mod fields {
    use serde_json::{Map, Value};

    /// A string field that must be there.
    pub fn string(m: &Map<String, Value>, k: &str) -> Option<String> {
        m.get(k)?.as_str().map(str::to_string)
    }

    /// A string field that may be absent (`""` then; `null` is refused).
    pub fn string_or_empty(m: &Map<String, Value>, k: &str) -> Option<String> {
        match m.get(k) {
            None => Some(String::new()),
            Some(v) => v.as_str().map(str::to_string),
        }
    }

    /// An optional string: absent or `null` is `Some(None)`; another type is `None`.
    pub fn opt_string(m: &Map<String, Value>, k: &str) -> Option<Option<String>> {
        match m.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(v) => v.as_str().map(|s| Some(s.to_string())),
        }
    }

    pub fn boolean(m: &Map<String, Value>, k: &str) -> Option<bool> {
        m.get(k)?.as_bool()
    }

    pub fn number(m: &Map<String, Value>, k: &str) -> Option<u64> {
        m.get(k)?.as_u64()
    }

    /// An array of strings that must be there.
    pub fn strings(m: &Map<String, Value>, k: &str) -> Option<Vec<String>> {
        m.get(k)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    }

    /// Writes a field.
    pub fn put(m: &mut Map<String, Value>, k: &str, v: impl Into<Value>) {
        m.insert(k.to_string(), v.into());
    }
}

impl Keys {
    /// Seals `value` as JSON.
    pub fn seal_json<T: Sealed>(
        &self,
        kind: Kind,
        expiry: u64,
        value: &T,
        rng: &mut dyn Random,
    ) -> Result<String, NoRandomness> {
        self.seal_map(kind, expiry, &value.to_json(), rng)
    }

    fn seal_map(
        &self,
        kind: Kind,
        expiry: u64,
        map: &Map<String, Value>,
        rng: &mut dyn Random,
    ) -> Result<String, NoRandomness> {
        let payload = serde_json::to_vec(map).unwrap_or_default();
        self.seal(kind, expiry, &payload, rng)
    }

    /// Opens a blob sealed with [`Keys::seal_json`], checking its expiry; (value, expiry).
    pub fn open_json<T: Sealed>(
        &self,
        kind: Kind,
        sealed: &str,
        now: u64,
    ) -> Result<(T, u64), PayloadError> {
        let (map, expiry) = self.open_map(kind, sealed, now)?;
        let value = T::from_json(&map).ok_or(PayloadError::Shape)?;
        Ok((value, expiry))
    }

    fn open_map(
        &self,
        kind: Kind,
        sealed: &str,
        now: u64,
    ) -> Result<(Map<String, Value>, u64), PayloadError> {
        let (expiry, payload) = self
            .open_any_time(kind, sealed)
            .map_err(PayloadError::Seal)?;
        if now >= expiry {
            return Err(PayloadError::Seal(SealError::Expired));
        }
        let map = object(&payload).ok_or(PayloadError::Shape)?;
        Ok((map, expiry))
    }
}

/// `bytes` as a JSON object, or `None` (not JSON, or another kind of value). Read as a
/// `Value`, the one type the whole module deserializes JSON into: deserializing into a `Map`
/// directly would link a second copy of serde_json's reader, with its "invalid type" errors
/// and the float formatting they print (about 20 KB of the module).
pub fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn aad(kid: &[u8; KID_LEN], kind: Kind) -> Vec<u8> {
    let mut aad = Vec::with_capacity(40);
    aad.extend_from_slice(b"mcp-edge-auth/seal/");
    aad.push(VERSION);
    aad.extend_from_slice(kid);
    aad.extend_from_slice(kind.label());
    aad
}

/// Fuzz entry: opening arbitrary text never panics and never succeeds without the key.
pub fn fuzz_open(keys: &Keys, input: &[u8]) -> Result<Vec<u8>, SealError> {
    let text = std::str::from_utf8(input).map_err(|_| SealError::Malformed)?;
    keys.open(Kind::Code, text, 0)
}

#[cfg(test)]
mod tests {
    use super::super::random::testing::Counter;
    use super::*;

    fn keys(seeds: &[u8]) -> Keys {
        let secrets: Vec<Vec<u8>> = seeds.iter().map(|s| vec![*s; 32]).collect();
        Keys::new(&secrets).unwrap()
    }

    #[test]
    fn round_trip_and_expiry() {
        let k = keys(&[1]);
        let mut r = Counter(7);
        let s = k.seal(Kind::State, 100, b"hello", &mut r).unwrap();
        assert_eq!(k.open(Kind::State, &s, 99).unwrap(), b"hello");
        assert_eq!(k.open(Kind::State, &s, 100), Err(SealError::Expired));
        assert_eq!(k.open_any_time(Kind::State, &s).unwrap().0, 100);
        let never = k.seal(Kind::ClientId, NEVER, b"", &mut r).unwrap();
        assert_eq!(k.open(Kind::ClientId, &never, u64::MAX - 1).unwrap(), b"");
    }

    #[test]
    fn nonces_differ_so_blobs_differ() {
        let k = keys(&[1]);
        let mut r = Counter(7);
        let a = k.seal(Kind::Code, 100, b"x", &mut r).unwrap();
        let b = k.seal(Kind::Code, 100, b"x", &mut r).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn another_kind_never_opens() {
        let k = keys(&[1]);
        let mut r = Counter(7);
        let client = k.seal(Kind::ClientId, NEVER, b"{}", &mut r).unwrap();
        for kind in [
            Kind::ConsentRequest,
            Kind::State,
            Kind::Code,
            Kind::RefreshToken,
            Kind::Approval,
        ] {
            assert_eq!(k.open(kind, &client, 0), Err(SealError::Invalid));
        }
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let k = keys(&[1]);
        let mut r = Counter(7);
        let s = k.seal(Kind::Code, 1000, b"payload", &mut r).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&s).unwrap();
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = raw.clone();
                t[i] ^= bit;
                let text = URL_SAFE_NO_PAD.encode(&t);
                assert!(k.open(Kind::Code, &text, 0).is_err(), "byte {i}");
            }
        }
        // Truncated and extended.
        let short = URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]);
        assert!(k.open(Kind::Code, &short, 0).is_err());
        let mut long = raw.clone();
        long.push(0);
        assert!(k
            .open(Kind::Code, &URL_SAFE_NO_PAD.encode(&long), 0)
            .is_err());
    }

    #[test]
    fn rotation_old_key_opens_unknown_key_refused() {
        let old = keys(&[1]);
        let mut r = Counter(3);
        let s = old.seal(Kind::RefreshToken, 1000, b"rt", &mut r).unwrap();
        let rotated = keys(&[2, 1]);
        assert_eq!(rotated.open(Kind::RefreshToken, &s, 0).unwrap(), b"rt");
        // New blobs are sealed with the new key: the old set cannot open them.
        let n = rotated
            .seal(Kind::RefreshToken, 1000, b"new", &mut r)
            .unwrap();
        assert_eq!(
            old.open(Kind::RefreshToken, &n, 0),
            Err(SealError::UnknownKey)
        );
        // Old key dropped.
        let dropped = keys(&[2]);
        assert_eq!(
            dropped.open(Kind::RefreshToken, &s, 0),
            Err(SealError::UnknownKey)
        );
    }

    #[test]
    fn malformed_inputs() {
        let k = keys(&[1]);
        for bad in ["", "!!!!", "AAAA", "a b", &"A".repeat(MAX_SEALED_LEN + 1)] {
            assert_eq!(
                k.open(Kind::Code, bad, 0),
                Err(SealError::Malformed),
                "{bad:.10}"
            );
        }
        // Right length, wrong version.
        let mut raw = vec![9u8; HEADER_LEN + 8 + TAG_LEN];
        raw[0] = 2;
        assert_eq!(
            k.open(Kind::Code, &URL_SAFE_NO_PAD.encode(&raw), 0),
            Err(SealError::Malformed)
        );
        assert!(fuzz_open(&k, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn key_loading() {
        assert_eq!(Keys::new::<Vec<u8>>(&[]).err(), Some(KeyError::NoKeys));
        assert_eq!(
            Keys::new(&[vec![0u8; 31]]).err(),
            Some(KeyError::TooShort { index: 0 })
        );
        let std_b64 = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        let url_b64 = URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert!(std_b64.contains('+') || std_b64.contains('/'));
        let a = Keys::from_base64(&[format!(" {std_b64}\n")]).unwrap();
        let b = Keys::from_base64(&[url_b64]).unwrap();
        let mut r = Counter(1);
        let s = a.seal(Kind::Code, 10, b"same", &mut r).unwrap();
        assert_eq!(b.open(Kind::Code, &s, 0).unwrap(), b"same");
        assert_eq!(
            Keys::from_base64(&["c2hvcnQ="]).err(),
            Some(KeyError::TooShort { index: 0 })
        );
        assert_eq!(
            Keys::from_base64(&[&"A".repeat(44), "not base64!"]).err(),
            Some(KeyError::NotBase64 { index: 1 })
        );
        assert_eq!(format!("{a:?}"), "Keys { count: 1 }");
    }

    /// The hand mapping reads what serde's derive read: unknown fields ignored, optional
    /// fields absent or null, a wrong type refused.
    #[test]
    fn sealed_fields_read_like_serde_derive() {
        let m = |j: &str| -> Map<String, Value> { serde_json::from_str(j).unwrap() };
        let v = m(r#"{"a":"x","n":null,"b":true,"i":5,"o":["p","q"],"z":[1]}"#);
        assert_eq!(fields::string(&v, "a").as_deref(), Some("x"));
        assert_eq!(fields::string(&v, "missing"), None);
        assert_eq!(fields::string(&v, "b"), None);
        assert_eq!(fields::string_or_empty(&v, "missing").as_deref(), Some(""));
        assert_eq!(fields::string_or_empty(&v, "n"), None);
        assert_eq!(fields::opt_string(&v, "n"), Some(None));
        assert_eq!(fields::opt_string(&v, "missing"), Some(None));
        assert_eq!(fields::opt_string(&v, "a"), Some(Some("x".into())));
        assert_eq!(fields::opt_string(&v, "i"), None);
        assert_eq!(fields::boolean(&v, "b"), Some(true));
        assert_eq!(fields::number(&v, "i"), Some(5));
        assert_eq!(fields::number(&m(r#"{"i":-1}"#), "i"), None);
        assert_eq!(fields::number(&m(r#"{"i":1.5}"#), "i"), None);
        assert_eq!(
            fields::strings(&v, "o"),
            Some(vec!["p".to_string(), "q".to_string()])
        );
        assert_eq!(fields::strings(&v, "z"), None);
    }
}
