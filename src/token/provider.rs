//! What a provider expects of its tokens and what an accepted token turns into: the
//! issuers (with Entra's `{tenantid}` template), audiences, algorithms, clock skew, `typ`,
//! the claims that carry scopes, and the claim headers written for the backend.

use crate::keys::alg::Alg;
use crate::keys::source::KeySource;

/// One `claim_to_headers` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Dotted path into the claims (`realm_access.roles`).
    pub claim_name: String,
    /// Lower-cased header name.
    pub header_name: String,
}

/// A token issuer the filter trusts.
#[derive(Clone, Debug)]
pub struct Provider {
    pub name: String,
    /// The first configured issuer (used for discovery and default PRM values).
    pub issuer: String,
    /// Every accepted issuer: `issuer` then `issuers`; `{tenantid}` templates allowed.
    pub issuers: Vec<IssuerPattern>,
    /// With a `{tenantid}` template: the tenants accepted (empty: any).
    pub allowed_tenants: Vec<String>,
    /// Claims that carry scopes (default `scope`, `scp`).
    pub scope_claims: Vec<String>,
    /// Prefix that makes a configured scope requestable (`api://<id>/`).
    pub scope_prefix: Option<String>,
    /// Write the standard identity headers ([`IDENTITY_HEADERS`]).
    pub forward_identity: bool,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub algorithms: Vec<Alg>,
    pub clock_skew_seconds: u64,
    pub forward: bool,
    pub claim_to_headers: Vec<ClaimToHeader>,
    pub require_typ: Option<String>,
}

/// An accepted `iss` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerPattern {
    Exact(String),
    /// `https://login.microsoftonline.com/{tenantid}/v2.0`: the token's `tid` (a GUID)
    /// fills the placeholder.
    Tenant {
        before: String,
        after: String,
    },
}

impl IssuerPattern {
    pub fn parse(s: &str) -> IssuerPattern {
        match s.split_once("{tenantid}") {
            Some((before, after)) => IssuerPattern::Tenant {
                before: before.to_string(),
                after: after.to_string(),
            },
            None => IssuerPattern::Exact(s.to_string()),
        }
    }
}

/// Whether `s` looks like a GUID (8-4-4-4-12 hex digits), the form of an Entra tenant id.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `forward_identity: true` writes these headers (header, claims tried in order); the
/// last one carries the granted scopes, space-separated.
pub const IDENTITY_HEADERS: [(&str, &[&str]); 5] = [
    ("x-mcp-subject", &["sub"]),
    ("x-mcp-object-id", &["oid"]),
    ("x-mcp-tenant-id", &["tid"]),
    ("x-mcp-client-id", &["azp", "appid", "client_id", "cid"]),
    ("x-mcp-scopes", &[]),
];
