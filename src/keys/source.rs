//! Where a provider's verification keys come from: a key set given inline, or a remote
//! JWKS / OIDC discovery document fetched by callouts and shared across workers.

use std::sync::Arc;

use crate::keys::fetch::Target;
use crate::keys::jwks::KeySet;
use crate::keys::state::FetchPolicy;

/// Where a provider's verification keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `local_jwks.inline_string`, parsed once at configuration time.
    Local(Arc<KeySet>),
    /// `remote_jwks` or `discovery`: fetched by callouts, shared across workers.
    Remote(RemoteSource),
}

/// Whether the URI is the JWKS itself or an OIDC discovery document pointing to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteKind {
    Jwks,
    /// `jwks_cluster`: the cluster for the discovered `jwks_uri`.
    Discovery {
        jwks_cluster: String,
    },
}

/// A remote key source (`remote_jwks` / `discovery`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSource {
    pub kind: RemoteKind,
    pub uri: String,
    pub target: Target,
    pub cluster: String,
    pub policy: FetchPolicy,
    /// How long a request waits for keys on a cold start (ms).
    pub cold_start_wait: u64,
    pub max_response_bytes: usize,
}

pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_CACHE_DURATION_MS: u64 = 600_000;
pub const DEFAULT_MAX_STALE_MS: u64 = 86_400_000;
pub const DEFAULT_UNKNOWN_KID_INTERVAL_MS: u64 = 30_000;
