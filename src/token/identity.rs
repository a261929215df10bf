//! Who a verified token says called: the values the filter publishes as Envoy filter state
//! (`decide.rs`, `Published`) for access logs, RBAC and rate limits. Rendered once per
//! verified token (`decide.rs`, `identity`) and kept in its cache entry, like the claim
//! headers; never the token itself.

use std::sync::Arc;

/// A verified token's identity as printable text; an empty field is not published.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// The first of `azp`, `appid`, `client_id`, `cid`.
    pub client_id: String,
    /// `tid` (Entra ID).
    pub tenant: String,
    /// The name of the provider that verified the token (the configuration's key).
    pub provider: String,
    /// The granted scopes (`scope_claims`), sorted, space-separated.
    pub scopes: String,
}

/// Shared between a cache entry and the decisions it serves.
pub type SharedIdentity = Arc<Identity>;
