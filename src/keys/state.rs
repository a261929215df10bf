//! Remote key-set state machine: when to fetch, who fetches, backoff, stale-on-error and
//! refetch-on-unknown-kid. Pure: time (milliseconds since the epoch) and randomness come in
//! as arguments, so every transition is tested natively.
//!
//! One [`FetchState`] per provider lives in proxy-wasm shared data, so every worker VM sees
//! the same schedule; the lease makes sure one VM fetches for all of them.

use serde::Serialize;

/// Timing of one remote key source (all milliseconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Keys are fresh this long after a successful fetch (`cache_duration`).
    pub cache_duration: u64,
    /// After going unrefreshed past `cache_duration`, keys are still served this long
    /// (stale-on-error, `max_stale`).
    pub max_stale: u64,
    /// At most one refetch triggered by an unknown `kid` per this interval.
    pub unknown_kid_interval: u64,
    /// The callout timeout; also how long a fetch lease lasts (plus a margin).
    pub timeout: u64,
    pub backoff_initial: u64,
    pub backoff_max: u64,
}

impl FetchPolicy {
    /// Refresh this long before `cache_duration` runs out: a tenth of it, at most 30 s.
    pub fn refresh_margin(&self) -> u64 {
        (self.cache_duration / 10).min(30_000)
    }
}

/// How usable the stored keys are now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Never fetched successfully.
    Missing,
    Fresh,
    /// Past `cache_duration` but within `max_stale`: served, and counted.
    Stale,
    /// Past `max_stale`: no longer trusted.
    Expired,
}

/// The shared schedule of one provider's key source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FetchState {
    /// Bumped on every successful fetch; VMs re-parse keys when it changes.
    pub version: u64,
    /// When the stored keys were fetched.
    pub fetched_at: Option<u64>,
    /// When the next fetch is due (0: now).
    pub next_fetch_at: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// The VM holding the fetch lease, and until when.
    pub lease_owner: Option<String>,
    pub lease_until: u64,
    /// Last refetch triggered by an unknown `kid`.
    pub last_kid_refetch_at: Option<u64>,
    /// When the fetch holding the lease started.
    pub lease_started_at: u64,
    /// When the fetch behind the stored keys started (keys are at least this fresh).
    pub keys_requested_at: Option<u64>,
    /// `jwks_uri` learnt from OIDC discovery, if the source is discovery.
    pub jwks_uri: Option<String>,
    /// Last error, for logs.
    pub last_error: Option<String>,
}

impl FetchState {
    pub fn freshness(&self, now: u64, p: &FetchPolicy) -> Freshness {
        match self.fetched_at {
            None => Freshness::Missing,
            Some(t) if now < t.saturating_add(p.cache_duration) => Freshness::Fresh,
            Some(t)
                if now
                    < t.saturating_add(p.cache_duration)
                        .saturating_add(p.max_stale) =>
            {
                Freshness::Stale
            }
            Some(_) => Freshness::Expired,
        }
    }

    /// Whether a fetch should start now (schedule due, and nobody else holds the lease).
    pub fn fetch_due(&self, now: u64) -> bool {
        now >= self.next_fetch_at && !self.lease_held(now)
    }

    pub fn lease_held(&self, now: u64) -> bool {
        self.lease_owner.is_some() && now < self.lease_until
    }

    /// Takes the fetch lease for `owner` if it is free (or already ours).
    pub fn try_lease(&mut self, owner: &str, now: u64, p: &FetchPolicy) -> bool {
        if self.lease_held(now) && self.lease_owner.as_deref() != Some(owner) {
            return false;
        }
        if self.lease_owner.as_deref() != Some(owner) || !self.lease_held(now) {
            self.lease_started_at = now;
        }
        self.lease_owner = Some(owner.to_string());
        // Two callouts (discovery + JWKS) may run under one lease.
        self.lease_until = now
            .saturating_add(p.timeout.saturating_mul(2))
            .saturating_add(1_000);
        true
    }

    /// An unknown `kid` was seen: schedule an immediate fetch unless one was triggered
    /// within `unknown_kid_interval`. Returns whether a refetch was scheduled.
    pub fn request_kid_refetch(&mut self, now: u64, p: &FetchPolicy) -> bool {
        if let Some(t) = self.last_kid_refetch_at {
            if now < t.saturating_add(p.unknown_kid_interval) {
                return false;
            }
        }
        self.last_kid_refetch_at = Some(now);
        self.next_fetch_at = now;
        true
    }

    /// Whether a refetch triggered by an unknown `kid` has not produced keys yet (and is
    /// still within the time a fetch may take): requests with unknown kids wait for it.
    pub fn kid_refetch_pending(&self, now: u64, p: &FetchPolicy) -> bool {
        match self.last_kid_refetch_at {
            Some(t) => {
                self.keys_requested_at.is_none_or(|r| r < t)
                    && now
                        < t.saturating_add(p.timeout.saturating_mul(2))
                            .saturating_add(1_000)
            }
            None => false,
        }
    }

    pub fn on_success(&mut self, now: u64, p: &FetchPolicy) {
        self.version = self.version.wrapping_add(1);
        self.fetched_at = Some(now);
        self.keys_requested_at = Some(self.lease_started_at.min(now));
        self.failures = 0;
        self.next_fetch_at =
            now.saturating_add(p.cache_duration.saturating_sub(p.refresh_margin()));
        self.lease_owner = None;
        self.lease_until = 0;
        self.last_error = None;
    }

    /// A failed fetch: exponential backoff with "equal jitter" (`jitter` in `[0, 1)`):
    /// the wait is between half and all of `initial · 2^(failures-1)`, capped.
    pub fn on_failure(&mut self, now: u64, p: &FetchPolicy, jitter: f64, error: String) {
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(self.failures, p, jitter);
        self.next_fetch_at = now.saturating_add(delay);
        self.lease_owner = None;
        self.lease_until = 0;
        self.last_error = Some(error);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored state; anything unreadable starts over from the default. (Read from
    /// a parsed `Value`, which the module parses anyway: a derived deserializer for this
    /// one struct cost 7 KB of module.) A member that is absent or `null` takes its default;
    /// one of the wrong type makes the whole state unreadable.
    pub fn from_bytes(bytes: &[u8]) -> FetchState {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .ok()
            .and_then(|v| FetchState::from_value(&v))
            .unwrap_or_default()
    }

    fn from_value(v: &serde_json::Value) -> Option<FetchState> {
        use serde_json::Value;
        let o = v.as_object()?;
        let num = |k: &str| match o.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(x) => x.as_u64().map(Some),
        };
        let text = |k: &str| match o.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        Some(FetchState {
            version: num("version")?.unwrap_or(0),
            fetched_at: num("fetched_at")?,
            next_fetch_at: num("next_fetch_at")?.unwrap_or(0),
            failures: u32::try_from(num("failures")?.unwrap_or(0)).ok()?,
            lease_owner: text("lease_owner")?,
            lease_until: num("lease_until")?.unwrap_or(0),
            last_kid_refetch_at: num("last_kid_refetch_at")?,
            lease_started_at: num("lease_started_at")?.unwrap_or(0),
            keys_requested_at: num("keys_requested_at")?,
            jwks_uri: text("jwks_uri")?,
            last_error: text("last_error")?,
        })
    }
}

/// The shared-data key prefix of one provider's key source. All VMs with the same `vm_id`
/// share one namespace, so the prefix names the plugin, the provider and a digest of where
/// the keys come from (two configurations with the same provider name never collide).
pub fn shared_prefix(provider: &str, issuer: &str, uri: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(issuer.as_bytes())
        .chain_update([0u8])
        .chain_update(uri.as_bytes())
        .finalize();
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("mcp_edge_auth/v1/{provider}/{short}/")
}

/// A stored key set: `"<version>\n<jwks json>"`, so a reader knows which version it got.
pub fn encode_keys(version: u64, jwks: &[u8]) -> Vec<u8> {
    let mut out = format!("{version}\n").into_bytes();
    out.extend_from_slice(jwks);
    out
}

/// Splits a stored key set into its version and JWKS bytes.
pub fn decode_keys(stored: &[u8]) -> Option<(u64, &[u8])> {
    let nl = stored.iter().position(|b| *b == b'\n')?;
    let version = std::str::from_utf8(stored.get(..nl)?).ok()?.parse().ok()?;
    Some((version, stored.get(nl + 1..)?))
}

/// The wait after `failures` consecutive failures.
pub fn backoff(failures: u32, p: &FetchPolicy, jitter: f64) -> u64 {
    let exp = failures.saturating_sub(1).min(32);
    let full = p
        .backoff_initial
        .saturating_mul(1u64 << exp)
        .min(p.backoff_max);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    full / 2 + ((full / 2) as f64 * jitter) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_state_round_trips_and_refuses_wrong_types() {
        let s = FetchState {
            version: 7,
            fetched_at: Some(1_700_000_000_000),
            next_fetch_at: 1_700_000_300_000,
            failures: 2,
            lease_owner: Some("vm-1".into()),
            lease_until: 1_700_000_010_000,
            last_kid_refetch_at: Some(1_699_999_000_000),
            lease_started_at: 1_700_000_000_500,
            keys_requested_at: Some(1_699_999_999_000),
            jwks_uri: Some("https://idp.example/keys".into()),
            last_error: Some("HTTP 503".into()),
        };
        assert_eq!(FetchState::from_bytes(&s.to_bytes()), s);
        assert_eq!(
            FetchState::from_bytes(&FetchState::default().to_bytes()),
            FetchState::default()
        );
        // Members written by an older version may be missing: they take their defaults.
        assert_eq!(
            FetchState::from_bytes(br#"{"version":3,"next_fetch_at":5}"#),
            FetchState {
                version: 3,
                next_fetch_at: 5,
                ..FetchState::default()
            }
        );
        for bad in [
            &br#"{"version":"3"}"#[..],
            br#"{"failures":4294967296}"#,
            br#"{"lease_owner":1}"#,
            br#"{"version":-1}"#,
            br#"[1]"#,
            b"not json",
            b"",
        ] {
            assert_eq!(
                FetchState::from_bytes(bad),
                FetchState::default(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn policy() -> FetchPolicy {
        FetchPolicy {
            cache_duration: 600_000,
            max_stale: 86_400_000,
            unknown_kid_interval: 30_000,
            timeout: 5_000,
            backoff_initial: 1_000,
            backoff_max: 300_000,
        }
    }

    #[test]
    fn cold_start_is_due_and_missing() {
        let s = FetchState::default();
        assert_eq!(s.freshness(1_000, &policy()), Freshness::Missing);
        assert!(s.fetch_due(1_000));
    }

    #[test]
    fn success_schedules_refresh_before_expiry() {
        let p = policy();
        let mut s = FetchState::default();
        assert!(s.try_lease("vm1", 0, &p));
        s.on_success(0, &p);
        assert_eq!(s.version, 1);
        assert_eq!(s.next_fetch_at, 600_000 - 30_000);
        assert_eq!(s.freshness(599_999, &p), Freshness::Fresh);
        assert_eq!(s.freshness(600_000, &p), Freshness::Stale);
        assert_eq!(s.freshness(600_000 + 86_400_000, &p), Freshness::Expired);
        assert!(!s.fetch_due(569_999));
        assert!(s.fetch_due(570_000));
        assert!(!s.lease_held(1));
    }

    #[test]
    fn lease_excludes_other_vms_until_it_runs_out() {
        let p = policy();
        let mut s = FetchState::default();
        assert!(s.try_lease("vm1", 0, &p));
        assert!(!s.try_lease("vm2", 5_000, &p));
        assert!(!s.fetch_due(5_000));
        assert!(s.try_lease("vm1", 5_000, &p), "the owner may renew");
        assert!(
            s.try_lease("vm2", 5_000 + 11_001, &p),
            "expired lease is free"
        );
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_cap() {
        let p = policy();
        assert_eq!(backoff(1, &p, 0.0), 500);
        assert_eq!(backoff(1, &p, 0.999_999), 999);
        assert_eq!(backoff(2, &p, 0.0), 1_000);
        assert_eq!(backoff(3, &p, 0.0), 2_000);
        assert_eq!(backoff(10, &p, 0.0), 150_000);
        assert_eq!(backoff(20, &p, 1.0), 300_000);
        assert_eq!(backoff(u32::MAX, &p, f64::NAN), 150_000);
        let mut s = FetchState::default();
        s.try_lease("vm1", 0, &p);
        s.on_failure(0, &p, 0.0, "HTTP 500".into());
        assert_eq!((s.failures, s.next_fetch_at), (1, 500));
        assert!(!s.lease_held(0));
        s.on_failure(500, &p, 0.0, "HTTP 500".into());
        assert_eq!((s.failures, s.next_fetch_at), (2, 1_500));
        assert_eq!(s.last_error.as_deref(), Some("HTTP 500"));
        s.on_success(2_000, &p);
        assert_eq!(s.failures, 0);
    }

    #[test]
    fn stale_keys_survive_failures_until_max_stale() {
        let p = policy();
        let mut s = FetchState::default();
        s.on_success(0, &p);
        s.on_failure(600_000, &p, 0.5, "down".into());
        assert_eq!(s.freshness(700_000, &p), Freshness::Stale);
        assert_eq!(s.freshness(600_000 + 86_400_000 - 1, &p), Freshness::Stale);
        assert_eq!(s.freshness(600_000 + 86_400_000, &p), Freshness::Expired);
    }

    #[test]
    fn a_kid_refetch_is_pending_until_a_fetch_started_after_it_succeeds() {
        let p = policy();
        let mut s = FetchState::default();
        assert!(s.try_lease("vm1", 0, &p));
        s.on_success(100, &p);
        assert!(s.request_kid_refetch(1_000, &p));
        assert!(s.kid_refetch_pending(1_050, &p));
        // A fetch that started before the trigger does not count.
        s.lease_started_at = 900;
        s.on_success(1_100, &p);
        assert!(s.kid_refetch_pending(1_150, &p));
        assert!(s.try_lease("vm1", 1_200, &p));
        s.on_success(1_300, &p);
        assert!(!s.kid_refetch_pending(1_350, &p));
        // Bounded: a trigger whose fetch never succeeds stops being pending.
        assert!(s.request_kid_refetch(40_000, &p));
        assert!(s.kid_refetch_pending(40_000 + 10_999, &p));
        assert!(!s.kid_refetch_pending(40_000 + 11_000, &p));
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let p = policy();
        let mut s = FetchState::default();
        s.on_success(0, &p);
        assert!(s.request_kid_refetch(10_000, &p));
        assert!(s.fetch_due(10_000));
        s.on_success(10_100, &p);
        assert!(!s.request_kid_refetch(20_000, &p));
        assert!(!s.fetch_due(20_000));
        assert!(s.request_kid_refetch(40_000, &p));
    }

    #[test]
    fn shared_keys_are_namespaced_and_versioned() {
        let a = shared_prefix("entra", "https://iss", "https://idp/keys");
        let b = shared_prefix("entra", "https://iss", "https://idp/other");
        assert!(a.starts_with("mcp_edge_auth/v1/entra/"));
        assert_ne!(a, b);
        assert_eq!(a, shared_prefix("entra", "https://iss", "https://idp/keys"));
        let stored = encode_keys(42, b"{\"keys\":[]}");
        assert_eq!(decode_keys(&stored), Some((42, &b"{\"keys\":[]}"[..])));
        assert_eq!(decode_keys(b"nonsense"), None);
        assert_eq!(decode_keys(b"x\n{}"), None);
    }

    #[test]
    fn state_round_trips_and_garbage_resets() {
        let mut s = FetchState::default();
        s.on_success(5, &policy());
        s.jwks_uri = Some("https://idp/keys".into());
        assert_eq!(FetchState::from_bytes(&s.to_bytes()), s);
        assert_eq!(FetchState::from_bytes(b"garbage"), FetchState::default());
    }
}
