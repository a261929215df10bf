//! This VM's view of every provider's keys: local keys from the configuration, remote
//! keys parsed from shared data once per version (not per request).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use super::host::{self, Metrics};
use crate::config::Config;
use crate::decide::KeyStore;
use crate::keys::jwks::KeySet;
use crate::keys::source::KeySource;
use crate::keys::state::{self, FetchState, Freshness};
use crate::token::cache::TokenCache;
use crate::token::host_signature::HostVerifier;
use crate::token::provider::Provider;

struct Entry {
    version: u64,
    keys: Arc<KeySet>,
}

/// Parsed remote key sets of this VM and the shared schedule last read.
pub struct KeyCache {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    entries: RefCell<HashMap<usize, Entry>>,
    states: RefCell<HashMap<usize, FetchState>>,
    now_ms: std::cell::Cell<u64>,
    /// Decisions that used `now_ms` as their coarse time since it was last set.
    coarse_uses: std::cell::Cell<u32>,
    tokens: RefCell<TokenCache>,
    /// RS* and ES256 signatures checked by the host (`host_crypto` on and the self-check passed).
    host_rsa: Option<host::HostRsa>,
}

impl KeyCache {
    pub fn new(config: Rc<Config>, metrics: Rc<Metrics>) -> KeyCache {
        KeyCache {
            metrics,
            entries: RefCell::new(HashMap::new()),
            states: RefCell::new(HashMap::new()),
            now_ms: std::cell::Cell::new(0),
            coarse_uses: std::cell::Cell::new(0),
            tokens: RefCell::new(TokenCache::new(
                config.token_cache_entries,
                config.token_cache_bytes,
            )),
            host_rsa: None,
            config,
        }
    }

    /// RS* and ES256 signatures go to the host from now on (`token/host_signature.rs`, `host::HostRsa`).
    pub fn use_host_rsa(&mut self) {
        self.host_rsa = Some(host::HostRsa {
            metrics: Some(Rc::clone(&self.metrics)),
        });
    }

    /// The exact time, just read (each tick, and whenever a decision reads the clock).
    pub fn set_now(&self, ms: u64) {
        self.now_ms.set(ms);
        self.coarse_uses.set(0);
    }

    /// The last exact time in seconds, as a decision's coarse time (`util/clock.rs`): `None`
    /// before the first reading and after `COARSE_MAX_USES` uses of the same one.
    pub fn coarse_secs(&self) -> Option<u64> {
        let uses = self.coarse_uses.get();
        let ms = self.now_ms.get();
        if ms == 0 || uses >= crate::util::clock::COARSE_MAX_USES {
            return None;
        }
        self.coarse_uses.set(uses + 1);
        Some(ms / 1000)
    }

    /// Shared-data prefix of a remote provider.
    pub fn prefix(provider: &Provider) -> Option<String> {
        match &provider.keys {
            KeySource::Remote(r) => Some(state::shared_prefix(
                &provider.name,
                &provider.issuer,
                &r.uri,
            )),
            KeySource::Local(_) => None,
        }
    }

    /// The shared schedule of provider `i` as last read by [`KeyCache::sync`].
    pub fn state(&self, i: usize) -> Option<FetchState> {
        self.states.borrow().get(&i).cloned()
    }

    /// The version of provider `i` this VM has parsed (0: none).
    pub fn version(&self, i: usize) -> u64 {
        self.entries.borrow().get(&i).map_or(0, |e| e.version)
    }

    /// Reads the shared schedule of provider `i` and, if a newer key set was stored,
    /// parses it. Returns whether this VM's keys changed.
    pub fn sync(&self, i: usize) -> bool {
        let Some(provider) = self.config.providers.get(i) else {
            return false;
        };
        let Some(prefix) = Self::prefix(provider) else {
            return false;
        };
        let (bytes, _) = host::shared_get(&format!("{prefix}state"));
        let state = bytes
            .map(|b| FetchState::from_bytes(&b))
            .unwrap_or_default();
        let have = self.version(i);
        let mut changed = false;
        if state.version != 0 && state.version != have {
            if let (Some(stored), _) = host::shared_get(&format!("{prefix}keys")) {
                if let Some((version, jwks)) = state::decode_keys(&stored) {
                    if version != have {
                        match KeySet::parse(jwks) {
                            Ok(set) if !set.is_empty() => {
                                log::info!(
                                    "provider {}: key set version {version} loaded: {}",
                                    provider.name,
                                    set.summary()
                                );
                                self.entries.borrow_mut().insert(
                                    i,
                                    Entry {
                                        version,
                                        keys: Arc::new(set),
                                    },
                                );
                                changed = true;
                            }
                            _ => log::warn!(
                                "provider {}: stored key set version {version} is unusable",
                                provider.name
                            ),
                        }
                    }
                }
            }
        }
        self.states.borrow_mut().insert(i, state);
        changed
    }
}

impl KeyStore for KeyCache {
    fn token_cache(&self) -> Option<&RefCell<TokenCache>> {
        Some(&self.tokens)
    }

    fn host_verifier(&self) -> Option<&dyn HostVerifier> {
        self.host_rsa.as_ref().map(|h| h as &dyn HostVerifier)
    }

    fn note_cache(&self, hit: bool) {
        self.metrics.increment(if hit {
            "mcp_edge_auth.token_cache_hit"
        } else {
            "mcp_edge_auth.token_cache_miss"
        });
    }

    fn key_set(&self, index: usize, provider: &Provider) -> Option<Arc<KeySet>> {
        let remote = match &provider.keys {
            KeySource::Local(set) => return Some(Arc::clone(set)),
            KeySource::Remote(r) => r,
        };
        let entries = self.entries.borrow();
        let entry = entries.get(&index)?;
        let states = self.states.borrow();
        let freshness = states.get(&index).map_or(Freshness::Missing, |s| {
            s.freshness(self.now_ms.get(), &remote.policy)
        });
        match freshness {
            Freshness::Fresh => Some(Arc::clone(&entry.keys)),
            Freshness::Stale => {
                self.metrics.increment("mcp_edge_auth.keys_stale_served");
                Some(Arc::clone(&entry.keys))
            }
            // Parsed keys but a schedule that says "too old" (or unreadable): not trusted.
            Freshness::Expired | Freshness::Missing => None,
        }
    }
}
