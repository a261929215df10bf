//! Root-context side of remote keys: on each tick, sync this VM's keys from shared data and,
//! when the shared schedule says so and this VM wins the lease, fetch by callout. Results go
//! to shared data (CAS on every write) so every worker VM sees one key set.

use std::collections::HashMap;
use std::rc::Rc;

use super::host::{self, Metrics};
use super::keycache::KeyCache;
use crate::config::Config;
use crate::keys::fetch::{self, FetchError, Target};
use crate::keys::source::{KeySource, RemoteKind, RemoteSource};
use crate::keys::state::{self, FetchState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Discovery,
    Jwks,
}

struct InFlight {
    provider: usize,
    step: Step,
}

pub struct Fetcher {
    config: Rc<Config>,
    cache: Rc<KeyCache>,
    metrics: Rc<Metrics>,
    /// This VM's name in fetch leases.
    owner: String,
    inflight: HashMap<u32, InFlight>,
}

/// Reads, changes and writes a shared state with CAS, retrying on a mismatch.
pub fn update_state(key: &str, mut change: impl FnMut(&mut FetchState)) -> Option<FetchState> {
    for _ in 0..16 {
        let (bytes, cas) = host::shared_get(key);
        let mut state = bytes
            .map(|b| FetchState::from_bytes(&b))
            .unwrap_or_default();
        change(&mut state);
        if host::shared_set(key, &state.to_bytes(), cas) {
            return Some(state);
        }
    }
    None
}

fn remote(config: &Config, i: usize) -> Option<&RemoteSource> {
    match config.providers.get(i).map(|p| &p.keys) {
        Some(KeySource::Remote(r)) => Some(r),
        _ => None,
    }
}

fn state_key(config: &Config, i: usize) -> Option<String> {
    config
        .providers
        .get(i)
        .and_then(KeyCache::prefix)
        .map(|p| format!("{p}state"))
}

fn keys_key(config: &Config, i: usize) -> Option<String> {
    config
        .providers
        .get(i)
        .and_then(KeyCache::prefix)
        .map(|p| format!("{p}keys"))
}

impl Fetcher {
    pub fn new(
        config: Rc<Config>,
        cache: Rc<KeyCache>,
        metrics: Rc<Metrics>,
        owner: String,
    ) -> Fetcher {
        Fetcher {
            config,
            cache,
            metrics,
            owner,
            inflight: HashMap::new(),
        }
    }

    pub fn remote_providers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.config.providers.len()).filter(|i| remote(&self.config, *i).is_some())
    }

    /// Creates each provider's shared schedule if no VM has yet (never overwrites one).
    pub fn init_shared_state(&self) {
        for i in self.remote_providers().collect::<Vec<_>>() {
            if let Some(key) = state_key(&self.config, i) {
                if host::shared_get(&key).0.is_none() {
                    host::shared_set(&key, &FetchState::default().to_bytes(), None);
                }
            }
        }
    }

    /// Periodic work: sync keys, start due fetches. Returns providers whose keys changed.
    pub fn tick(&mut self, now: u64) -> Vec<usize> {
        let mut changed = Vec::new();
        for i in self.remote_providers().collect::<Vec<_>>() {
            if self.cache.sync(i) {
                changed.push(i);
            }
            self.maybe_fetch(i, now);
        }
        changed
    }

    fn maybe_fetch(&mut self, i: usize, now: u64) {
        if self.inflight.values().any(|f| f.provider == i) {
            return;
        }
        let (Some(key), Some(src)) = (state_key(&self.config, i), remote(&self.config, i)) else {
            return;
        };
        let (bytes, cas) = host::shared_get(&key);
        let Some(bytes) = bytes else {
            host::shared_set(&key, &FetchState::default().to_bytes(), None);
            return;
        };
        let mut state = FetchState::from_bytes(&bytes);
        if !state.fetch_due(now) || !state.try_lease(&self.owner, now, &src.policy) {
            return;
        }
        if !host::shared_set(&key, &state.to_bytes(), cas) {
            return; // another VM changed the schedule first; look again next tick
        }
        self.start(i, &state, now);
    }

    fn start(&mut self, i: usize, state: &FetchState, now: u64) {
        let Some(src) = remote(&self.config, i) else {
            return;
        };
        let discovered = state
            .jwks_uri
            .as_deref()
            .and_then(|u| Target::parse(u).ok());
        let (step, target, cluster) = match (&src.kind, discovered) {
            (RemoteKind::Jwks, _) => (Step::Jwks, src.target.clone(), src.cluster.as_str()),
            (RemoteKind::Discovery { jwks_cluster }, Some(t)) => {
                (Step::Jwks, t, jwks_cluster.as_str())
            }
            (RemoteKind::Discovery { .. }, None) => {
                (Step::Discovery, src.target.clone(), src.cluster.as_str())
            }
        };
        match host::dispatch_get(cluster, &target.request_headers(), src.policy.timeout) {
            Ok(token) => {
                self.inflight.insert(token, InFlight { provider: i, step });
            }
            Err(e) => self.fail(i, step, now, FetchError::Dispatch(e)),
        }
    }

    /// A callout answered. Returns the provider whose keys changed, if any.
    pub fn on_response(&mut self, token: u32, body_size: usize, now: u64) -> Option<usize> {
        let f = self.inflight.remove(&token)?;
        let src = remote(&self.config, f.provider)?.clone();
        let provider = self.config.providers.get(f.provider)?.clone();
        let (status, body) = host::call_response(body_size, src.max_response_bytes);
        match f.step {
            Step::Discovery => {
                match fetch::discovery_response(
                    status.as_deref(),
                    body.as_deref(),
                    body_size,
                    src.max_response_bytes,
                    &provider.issuer,
                ) {
                    Ok(uri) => {
                        log::info!("provider {}: discovery gave jwks_uri {uri}", provider.name);
                        let key = state_key(&self.config, f.provider)?;
                        let state = update_state(&key, |s| s.jwks_uri = Some(uri.clone()))?;
                        self.start(f.provider, &state, now);
                    }
                    Err(e) => self.fail(f.provider, f.step, now, e),
                }
                None
            }
            Step::Jwks => {
                let result = fetch::jwks_response(
                    status.as_deref(),
                    body.as_deref(),
                    body_size,
                    src.max_response_bytes,
                );
                match (result, body) {
                    (Ok(set), Some(body)) => {
                        self.store(f.provider, &body, now);
                        self.metrics.increment("mcp_edge_auth.jwks_fetch_success");
                        log::info!(
                            "provider {}: fetched JWKS: {}",
                            provider.name,
                            set.summary()
                        );
                        self.cache.sync(f.provider).then_some(f.provider)
                    }
                    (Err(e), _) => {
                        self.fail(f.provider, f.step, now, e);
                        None
                    }
                    (Ok(_), None) => {
                        self.fail(f.provider, f.step, now, FetchError::Empty);
                        None
                    }
                }
            }
        }
    }

    /// Stores a fetched key set and bumps the shared version (keys first, then schedule).
    fn store(&self, i: usize, jwks: &[u8], now: u64) {
        let (Some(skey), Some(kkey), Some(src)) = (
            state_key(&self.config, i),
            keys_key(&self.config, i),
            remote(&self.config, i),
        ) else {
            return;
        };
        for _ in 0..16 {
            let (bytes, cas) = host::shared_get(&skey);
            let mut state = bytes
                .map(|b| FetchState::from_bytes(&b))
                .unwrap_or_default();
            state.on_success(now, &src.policy);
            let (_, kcas) = host::shared_get(&kkey);
            if !host::shared_set(&kkey, &state::encode_keys(state.version, jwks), kcas) {
                continue;
            }
            if host::shared_set(&skey, &state.to_bytes(), cas) {
                return;
            }
        }
        log::warn!("could not store fetched keys: shared data kept changing");
    }

    fn fail(&self, i: usize, step: Step, now: u64, error: FetchError) {
        let Some(provider) = self.config.providers.get(i) else {
            return;
        };
        let (Some(key), Some(src)) = (state_key(&self.config, i), remote(&self.config, i)) else {
            return;
        };
        self.metrics.increment("mcp_edge_auth.jwks_fetch_failed");
        let jitter = f64::from(host::clock_nanos() % 1000) / 1000.0;
        let what = match step {
            Step::Discovery => "discovery",
            Step::Jwks => "JWKS fetch",
        };
        let text = format!("{what}: {error}");
        let state = update_state(&key, |s| {
            s.on_failure(now, &src.policy, jitter, text.clone());
            if step == Step::Jwks && matches!(src.kind, RemoteKind::Discovery { .. }) {
                s.jwks_uri = None; // rediscover next time
            }
        });
        let (failures, retry_in, freshness) = state.map_or((0, 0, "unknown".to_string()), |s| {
            (
                s.failures,
                s.next_fetch_at.saturating_sub(now),
                format!("{:?}", s.freshness(now, &src.policy)).to_ascii_lowercase(),
            )
        });
        log::warn!(
            "provider {}: {text}; failure {failures}, retry in {retry_in} ms, keys {freshness}",
            provider.name
        );
    }
}
