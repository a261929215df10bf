//! Verified-token cache: a bounded LRU (entries and bytes) of tokens whose signature
//! checked out, keyed by a per-VM randomly keyed SipHash of the whole token and the provider;
//! a hit also compares the stored token byte for byte, so a hash collision can never make
//! one token pass as another. A hit skips only
//! the signature: time, issuer, audience and the rules are checked again, and the entry is
//! dropped when its key is no longer in the provider's key set.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use std::hash::{BuildHasher, RandomState};

use serde_json::{Map, Value};

use crate::jwks::{KeySet, PublicKey};
use crate::signature::Alg;
use crate::verify::VerifiedToken;

pub const DEFAULT_MAX_ENTRIES: usize = 1024;
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

type Key = (u64, usize);

/// What a hit needs to decide again without the signature.
#[derive(Clone, Debug)]
pub struct Entry {
    pub alg: Alg,
    pub kid: Option<String>,
    pub key: PublicKey,
    pub exp: i64,
    pub claims: Arc<Map<String, Value>>,
    token: Box<str>,
    size: usize,
    stamp: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    map: HashMap<Key, Entry>,
    /// Use order (oldest first), with stale stamps skipped lazily.
    order: VecDeque<(Key, u64)>,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    clock: u64,
    hasher: RandomState,
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
            map: HashMap::new(),
            order: VecDeque::new(),
            max_entries,
            max_bytes,
            bytes: 0,
            clock: 0,
            hasher: RandomState::new(),
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
        (self.hasher.hash_one(token), provider)
    }

    /// A still-valid entry for `token`: not past `exp` (+ `skew`), and its key still in
    /// `keys` with the same material. Expired or orphaned entries are removed.
    pub fn get(
        &mut self,
        token: &str,
        provider: usize,
        keys: &KeySet,
        now: u64,
        skew: u64,
    ) -> Result<&Entry, Miss> {
        if !self.enabled() {
            return Err(Miss::Absent);
        }
        let k = self.key(token, provider);
        let (expired, key_gone) = match self.map.get(&k) {
            None => return Err(Miss::Absent),
            Some(e) if &*e.token != token => return Err(Miss::Absent),
            Some(e) => (
                (now as i128) >= i128::from(e.exp) + i128::from(skew),
                !keys
                    .candidates(e.alg, e.kid.as_deref())
                    .any(|j| j.key == e.key),
            ),
        };
        if expired || key_gone {
            self.remove(&k);
            return Err(if expired {
                Miss::Expired
            } else {
                Miss::KeyGone
            });
        }
        self.clock += 1;
        let stamp = self.clock;
        self.order.push_back((k, stamp));
        self.compact();
        match self.map.get_mut(&k) {
            Some(e) => {
                e.stamp = stamp;
                Ok(e)
            }
            None => Err(Miss::Absent),
        }
    }

    /// Remembers a verified token.
    pub fn insert(
        &mut self,
        token: &str,
        provider: usize,
        v: &VerifiedToken,
        claims: Arc<Map<String, Value>>,
    ) {
        if !self.enabled() {
            return;
        }
        let size = 96
            + claims
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len() + 8)
                .sum::<usize>();
        if size > self.max_bytes {
            return;
        }
        let k = self.key(token, provider);
        self.remove(&k);
        self.clock += 1;
        let stamp = self.clock;
        self.map.insert(
            k,
            Entry {
                alg: v.alg,
                kid: v.kid.clone(),
                key: v.key.clone(),
                exp: v.exp,
                claims,
                token: token.into(),
                size,
                stamp,
            },
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

    fn keys(seed: u8) -> KeySet {
        let pk = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([seed; 32])).pk;
        let doc = json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x": crate::b64::encode(pk.as_ref())}]});
        KeySet::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn put(c: &mut TokenCache, token: &str, ks: &KeySet, exp: i64) {
        let k = ks.keys[0].clone();
        let claims = json!({"sub": token}).as_object().cloned().unwrap();
        let v = VerifiedToken {
            alg: Alg::EdDsa,
            kid: k.kid,
            key: k.key,
            exp,
            claims: claims.clone(),
        };
        c.insert(token, 0, &v, Arc::new(claims));
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
