//! Verified-token cache: a bounded LRU (entries and bytes) of tokens whose signature
//! checked out, keyed by a per-VM randomly seeded hash of the token's last bytes, its length
//! and the provider (`token_hash`, as a token is hashed on every request: the end of a JWT is
//! its signature, different for every token and chosen by no one but the issuer); a hit
//! also compares the whole stored token and provider byte for byte, so a hash collision can
//! never make one token pass as another (and only verified tokens ever get in, so collisions
//! cannot be planted to slow lookups down: a forged token that copies a cached one's
//! signature finds that entry, fails the compare, and is verified). A hit skips only
//! the signature: time, issuer, audience and the rules are checked again, and the entry is
//! dropped when its key is no longer in the provider's key set. An entry also keeps the
//! request headers its claims render to (`claim_to_headers`, `forward_identity`) and the
//! identity the filter publishes as filter state (`token/identity.rs`): they depend on the
//! claims and the provider's configuration only, and a cache lives and dies with one
//! configuration (`filter/keycache.rs`).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::{Arc, Weak};

use serde_json::{Map, Value};

use crate::keys::alg::Alg;
use crate::keys::jwks::{KeySet, PublicKey};
use crate::token::identity::SharedIdentity;
use crate::token::verify::{Times, VerifiedToken};

pub const DEFAULT_MAX_ENTRIES: usize = 1024;
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The request headers a verified token adds (name, value), rendered once per token.
pub type SetHeaders = Arc<[(String, String)]>;

/// What a lookup returns: all a decision needs besides the per-request checks.
#[derive(Clone, Debug)]
pub struct Hit {
    pub claims: Arc<Map<String, Value>>,
    /// The token's `exp`, `nbf` and `iat`, for the caller to check against its time.
    pub times: Times,
    pub set_headers: SetHeaders,
    pub identity: SharedIdentity,
}

/// `token_hash` of the token and its provider.
type Key = u64;

/// The map's own hasher passes the key through: it already is a keyed hash.
#[derive(Default, Debug)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; kept correct for any other input.
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A 64-bit avalanche (the MurmurHash3 / SplitMix finalizer): every input bit reaches
/// every output bit. Only 64-bit operations, which Wasm has natively.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// How many bytes from a token's end its hash reads: the last 48 bytes of its signature
/// (base64url; every algorithm the filter accepts signs with 64 bytes or more), bits that
/// differ between any two tokens.
const HASHED_TAIL: usize = 64;

/// A seeded hash of the last [`HASHED_TAIL`] bytes of `bytes` for `provider`, eight bytes
/// per step (multiply, rotate), then [`mix`]ed with the whole length.
fn token_hash(seed: u64, provider: usize, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = mix(seed ^ (provider as u64));
    let tail = bytes
        .get(bytes.len().saturating_sub(HASHED_TAIL)..)
        .unwrap_or(bytes);
    let mut chunks = tail.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
        h = (h ^ w).wrapping_mul(K).rotate_left(31);
    }
    let mut last = [0u8; 8];
    for (d, s) in last.iter_mut().zip(chunks.remainder()) {
        *d = *s;
    }
    h = (h ^ u64::from_le_bytes(last))
        .wrapping_mul(K)
        .rotate_left(31);
    mix(h ^ (bytes.len() as u64))
}

/// What a hit needs to decide again without the signature.
#[derive(Clone, Debug)]
pub struct Entry {
    pub alg: Alg,
    pub kid: Option<String>,
    pub key: PublicKey,
    pub exp: i64,
    /// The token's `exp`, `nbf` and `iat`, checked again on every hit.
    pub times: Times,
    pub claims: Arc<Map<String, Value>>,
    pub set_headers: SetHeaders,
    pub identity: SharedIdentity,
    /// The key set the key was last found in. While the provider's current set is that
    /// same allocation (kept from reuse by this `Weak`), the key is still in it without a
    /// search; a new set is searched once (`key` compared by value) and then remembered.
    set: Weak<KeySet>,
    token: Box<str>,
    provider: usize,
    size: usize,
    stamp: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    /// Entries are boxed: the table keeps spare slots, and a slot is a pointer, not an entry.
    map: HashMap<Key, Box<Entry>, BuildHasherDefault<PassThrough>>,
    /// Use order (oldest first), with stale stamps skipped lazily.
    order: VecDeque<(Key, u64)>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    clock: u64,
    seed: u64,
}

/// Why a lookup missed (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Expired,
    KeyGone,
}

impl TokenCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> TokenCache {
        TokenCache {
            map: HashMap::default(),
            order: VecDeque::new(),
            max_entries,
            max_bytes,
            bytes: 0,
            clock: 0,
            seed: RandomState::new().hash_one(0x6d63_705f_6564_6765_u64),
        }
    }

    pub fn enabled(&self) -> bool {
        self.max_entries > 0 && self.max_bytes > 0
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn key(&self, token: &str, provider: usize) -> Key {
        token_hash(self.seed, provider, token.as_bytes())
    }

    /// The claims, time claims and headers of a still-valid entry for `token`: not past
    /// `exp` (+ `skew`), and its key still in `keys` with the same material. Expired or
    /// orphaned entries are removed.
    pub fn get(
        &mut self,
        token: &str,
        provider: usize,
        keys: &Arc<KeySet>,
        now: u64,
        skew: u64,
    ) -> Result<Hit, Miss> {
        if !self.enabled() {
            return Err(Miss::Absent);
        }
        let k = self.key(token, provider);
        let newest = self.clock;
        let Some(e) = self.map.get_mut(&k) else {
            return Err(Miss::Absent);
        };
        if e.provider != provider
            || !crate::util::bytes::same_bytes(e.token.as_bytes(), token.as_bytes())
        {
            return Err(Miss::Absent);
        }
        let expired = (now as i128) >= i128::from(e.exp) + i128::from(skew);
        let same_set = std::ptr::eq(e.set.as_ptr(), Arc::as_ptr(keys));
        let key_gone = !same_set
            && !keys
                .candidates(e.alg, e.kid.as_deref())
                .any(|j| j.key == e.key);
        if !expired && !key_gone {
            if !same_set {
                e.set = Arc::downgrade(keys);
            }
            let hit = Hit {
                claims: Arc::clone(&e.claims),
                times: e.times,
                set_headers: Arc::clone(&e.set_headers),
                identity: Arc::clone(&e.identity),
            };
            // Already the most recently used (one token reused, the MCP pattern): the use
            // order stands as it is.
            if e.stamp != newest {
                self.clock += 1;
                e.stamp = self.clock;
                self.order.push_back((k, self.clock));
                self.compact();
            }
            return Ok(hit);
        }
        self.remove(&k);
        Err(if expired {
            Miss::Expired
        } else {
            Miss::KeyGone
        })
    }

    /// Remembers a token verified with a key of `keys`, with the headers and the identity its
    /// claims render to.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        token: &str,
        provider: usize,
        keys: &Arc<KeySet>,
        v: &VerifiedToken,
        claims: Arc<Map<String, Value>>,
        set_headers: SetHeaders,
        identity: SharedIdentity,
    ) {
        if !self.enabled() {
            return;
        }
        let size = 96
            + token.len()
            + claims
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len() + 8)
                .sum::<usize>()
            + set_headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 48)
                .sum::<usize>()
            + identity.subject.len()
            + identity.client_id.len()
            + identity.tenant.len()
            + identity.provider.len()
            + identity.scopes.len();
        if size > self.max_bytes {
            return;
        }
        let k = self.key(token, provider);
        self.remove(&k);
        self.clock += 1;
        let stamp = self.clock;
        self.map.insert(
            k,
            Box::new(Entry {
                alg: v.alg,
                kid: v.kid.clone(),
                key: v.key.clone(),
                exp: v.exp,
                times: v.times,
                claims,
                set_headers,
                identity,
                set: Arc::downgrade(keys),
                token: token.into(),
                provider,
                size,
                stamp,
            }),
        );
        self.bytes += size;
        self.order.push_back((k, stamp));
        while self.map.len() > self.max_entries || self.bytes > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        self.compact();
    }

    fn remove(&mut self, k: &Key) {
        if let Some(e) = self.map.remove(k) {
            self.bytes = self.bytes.saturating_sub(e.size);
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((k, stamp)) = self.order.pop_front() {
            if self.map.get(&k).is_some_and(|e| e.stamp == stamp) {
                self.remove(&k);
                return true;
            }
        }
        false
    }

    /// Drops stale use records so the order queue stays bounded.
    fn compact(&mut self) {
        if self.order.len() > 4 * self.max_entries.max(16) {
            let map = &self.map;
            self.order
                .retain(|(k, stamp)| map.get(k).is_some_and(|e| e.stamp == *stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(seed: u8) -> Arc<KeySet> {
        let pk = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32])).pk;
        let doc = json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x": crate::crypto::b64::encode(pk.as_ref())}]});
        Arc::new(KeySet::parse(doc.to_string().as_bytes()).unwrap())
    }

    fn put(c: &mut TokenCache, token: &str, ks: &Arc<KeySet>, exp: i64) {
        let k = ks.keys[0].clone();
        let claims = json!({"sub": token}).as_object().cloned().unwrap();
        let v = VerifiedToken {
            alg: Alg::EdDsa,
            kid: k.kid,
            key: k.key,
            exp,
            times: Times {
                exp: exp as f64,
                nbf: None,
                iat: None,
            },
            claims: claims.clone(),
        };
        let headers = vec![("x-sub".to_string(), token.to_string())];
        let identity = Arc::new(crate::token::identity::Identity {
            subject: token.to_string(),
            ..Default::default()
        });
        c.insert(token, 0, ks, &v, Arc::new(claims), headers.into(), identity);
    }

    #[test]
    fn token_hash_takes_every_byte_of_the_tail_the_length_and_the_provider() {
        let seed = 42;
        let base = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln";
        assert!(base.len() < HASHED_TAIL);
        let h = token_hash(seed, 0, base.as_bytes());
        assert_eq!(h, token_hash(seed, 0, base.as_bytes()), "deterministic");
        assert_ne!(h, token_hash(seed, 1, base.as_bytes()), "provider");
        assert_ne!(h, token_hash(seed + 1, 0, base.as_bytes()), "seed");
        let bytes = base.as_bytes();
        for i in 0..bytes.len() {
            let mut other = bytes.to_vec();
            other[i] ^= 1;
            assert_ne!(h, token_hash(seed, 0, &other), "byte {i}");
        }
        // A shorter input padded with zeros is not the same as the longer one.
        assert_ne!(token_hash(seed, 0, b"abc"), token_hash(seed, 0, b"abc\0"));
        assert_ne!(
            token_hash(seed, 0, b""),
            token_hash(seed, 0, b"\0\0\0\0\0\0\0\0")
        );
        // A long token: every byte of the tail counts; the length too.
        let long: Vec<u8> = (0..500u32).map(|i| b'A' + (i % 26) as u8).collect();
        let h = token_hash(seed, 0, &long);
        for i in long.len() - HASHED_TAIL..long.len() {
            let mut other = long.clone();
            other[i] ^= 1;
            assert_ne!(h, token_hash(seed, 0, &other), "byte {i}");
        }
        assert_ne!(h, token_hash(seed, 0, &long[1..]), "length");
    }

    #[test]
    fn a_token_that_shares_a_cached_tokens_tail_is_a_miss() {
        let ks = keys(1);
        let mut c = TokenCache::new(8, 1 << 20);
        let tail = "s".repeat(HASHED_TAIL);
        let (a, forged) = (format!("aaaa.{tail}"), format!("bbbb.{tail}"));
        put(&mut c, &a, &ks, 1000);
        assert_eq!(c.key(&a, 0), c.key(&forged, 0), "same key");
        assert!(matches!(c.get(&forged, 0, &ks, 10, 0), Err(Miss::Absent)));
        assert!(
            c.get(&a, 0, &ks, 10, 0).is_ok(),
            "the cached token still hits"
        );
    }

    #[test]
    fn reusing_the_newest_entry_keeps_the_use_order_short() {
        let ks = keys(1);
        let mut c = TokenCache::new(2, 1 << 20);
        put(&mut c, "a", &ks, 1000);
        put(&mut c, "b", &ks, 1000);
        for _ in 0..100 {
            assert!(c.get("b", 0, &ks, 900, 0).is_ok());
        }
        assert_eq!(c.order.len(), 2, "no use record per repeated hit");
        // "a" is now used, so "b" is the oldest and goes first.
        assert!(c.get("a", 0, &ks, 900, 0).is_ok());
        put(&mut c, "c", &ks, 1000);
        assert!(c.get("a", 0, &ks, 900, 0).is_ok());
        assert_eq!(c.get("b", 0, &ks, 900, 0).err(), Some(Miss::Absent));
    }

    #[test]
    fn hits_until_expiry_with_skew() {
        let ks = keys(1);
        let mut c = TokenCache::new(10, 1 << 20);
        put(&mut c, "t1", &ks, 1000);
        assert!(c.get("t1", 0, &ks, 900, 60).is_ok());
        assert_eq!(
            c.get("t1", 1, &ks, 900, 60).err(),
            Some(Miss::Absent),
            "provider is part of the key"
        );
        assert!(c.get("t1", 0, &ks, 1059, 60).is_ok());
        assert_eq!(c.get("t1", 0, &ks, 1060, 60).err(), Some(Miss::Expired));
        assert_eq!(
            c.get("t1", 0, &ks, 900, 60).err(),
            Some(Miss::Absent),
            "expired entries are dropped"
        );
    }

    #[test]
    fn entry_dies_when_its_key_leaves_the_set() {
        let ks = keys(1);
        let other = keys(2); // same kid, other material
        let mut c = TokenCache::new(10, 1 << 20);
        put(&mut c, "t1", &ks, 1000);
        assert_eq!(c.get("t1", 0, &other, 900, 0).err(), Some(Miss::KeyGone));
        assert!(c.is_empty());
    }

    #[test]
    fn a_new_key_set_with_the_same_key_keeps_the_entry() {
        let ks = keys(1);
        let mut c = TokenCache::new(10, 1 << 20);
        put(&mut c, "t1", &ks, 1000);
        let hit = c.get("t1", 0, &ks, 900, 0).unwrap();
        assert_eq!(&*hit.set_headers, [("x-sub".to_string(), "t1".to_string())]);
        assert_eq!(hit.claims.get("sub"), Some(&json!("t1")));
        assert_eq!(hit.identity.subject, "t1");
        // The provider's keys fetched again: a new allocation, the same material.
        let again = keys(1);
        drop(ks);
        assert!(c.get("t1", 0, &again, 900, 0).is_ok());
        assert!(std::ptr::eq(
            c.map.values().next().unwrap().set.as_ptr(),
            Arc::as_ptr(&again)
        ));
        assert!(c.get("t1", 0, &again, 900, 0).is_ok());
    }

    #[test]
    fn a_dropped_key_set_is_never_mistaken_for_a_new_one() {
        // The entry's `Weak` keeps the old set's allocation, so a set made after the old
        // one is dropped cannot sit at its address and pass as the set the key was in.
        let mut c = TokenCache::new(10, 1 << 20);
        put(&mut c, "t1", &keys(1), 1000);
        for seed in 2..50 {
            let other = keys(seed);
            assert_eq!(c.get("t1", 0, &other, 900, 0).err(), Some(Miss::KeyGone));
            assert!(c.is_empty());
            put(&mut c, "t1", &keys(1), 1000);
        }
    }

    #[test]
    fn lru_bounds_entries_and_bytes() {
        let ks = keys(1);
        let mut c = TokenCache::new(3, 1 << 20);
        for t in ["a", "b", "c"] {
            put(&mut c, t, &ks, 1000);
        }
        assert!(c.get("a", 0, &ks, 0, 0).is_ok()); // a is now the most recent
        put(&mut c, "d", &ks, 1000);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.get("b", 0, &ks, 0, 0).err(),
            Some(Miss::Absent),
            "least recently used went"
        );
        assert!(c.get("a", 0, &ks, 0, 0).is_ok());
        let mut small = TokenCache::new(100, 300);
        for t in ["a", "b", "c", "d", "e"] {
            put(&mut small, t, &ks, 1000);
        }
        assert!(
            small.bytes() <= 300 && small.len() < 5,
            "{} bytes, {} entries",
            small.bytes(),
            small.len()
        );
        for i in 0..10_000 {
            let _ = c.get("a", 0, &ks, 0, 0);
            if i % 100 == 0 {
                put(&mut c, &format!("x{i}"), &ks, 1000);
            }
        }
        assert!(c.order.len() <= 4 * 16 + 1);
    }

    #[test]
    fn disabled_cache_never_hits() {
        let ks = keys(1);
        let mut c = TokenCache::new(0, 1 << 20);
        put(&mut c, "t1", &ks, 1000);
        assert_eq!(c.get("t1", 0, &ks, 0, 0).err(), Some(Miss::Absent));
    }
}
