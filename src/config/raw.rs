//! The plugin JSON as serde reads it: every field optional where it has a default, unknown
//! fields refused. `mod.rs` and its siblings validate these into each part's settings.

use super::*;

// ---------------------------------------------------------------------------------------
// The JSON shape (serde). Unknown fields are errors everywhere.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) providers: BTreeMap<String, RawProvider>,
    pub(super) rules: Vec<RawRule>,
    #[serde(default)]
    pub(super) protected_resource: Option<RawProtectedResource>,
    #[serde(default)]
    pub(super) unmatched: Option<String>,
    #[serde(default)]
    pub(super) max_token_bytes: Option<usize>,
    #[serde(default)]
    pub(super) token_cache: Option<RawTokenCache>,
    #[serde(default)]
    pub(super) allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    pub(super) filter_state: Option<Vec<String>>,
    #[serde(default)]
    #[cfg(feature = "facade")]
    pub(super) authorization_server: Option<RawAuthorizationServer>,
    /// Built without the façade: only its presence matters (it is refused), and its parser
    /// stays out of the module.
    #[serde(default)]
    #[cfg(not(feature = "facade"))]
    pub(super) authorization_server: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenCache {
    #[serde(default)]
    pub(super) max_entries: Option<usize>,
    #[serde(default)]
    pub(super) max_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) issuer: String,
    pub(super) audiences: Vec<String>,
    #[serde(default)]
    pub(super) local_jwks: Option<RawLocalJwks>,
    #[serde(default)]
    pub(super) remote_jwks: Option<RawRemote>,
    #[serde(default)]
    pub(super) discovery: Option<RawRemote>,
    #[serde(default)]
    pub(super) algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub(super) clock_skew_seconds: Option<u64>,
    #[serde(default)]
    pub(super) forward: bool,
    #[serde(default)]
    pub(super) claim_to_headers: Vec<RawClaimToHeader>,
    #[serde(default)]
    pub(super) require_typ: Option<String>,
    #[serde(default)]
    pub(super) issuers: Vec<String>,
    #[serde(default)]
    pub(super) allowed_tenants: Vec<String>,
    #[serde(default)]
    pub(super) scope_claims: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scope_prefix: Option<String>,
    #[serde(default)]
    pub(super) forward_identity: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocalJwks {
    pub(super) inline_string: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpUri {
    pub(super) uri: String,
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) timeout: Option<String>,
}

/// `remote_jwks` and `discovery` share their knobs; `jwks_cluster` is discovery-only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    pub(super) http_uri: RawHttpUri,
    #[serde(default)]
    pub(super) jwks_cluster: Option<String>,
    #[serde(default)]
    pub(super) cache_duration: Option<String>,
    #[serde(default)]
    pub(super) max_stale: Option<String>,
    #[serde(default)]
    pub(super) unknown_kid_refetch_interval: Option<String>,
    #[serde(default)]
    pub(super) cold_start_wait: Option<String>,
    #[serde(default)]
    pub(super) max_response_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaimToHeader {
    pub(super) claim_name: String,
    pub(super) header_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    #[serde(rename = "match")]
    pub(super) matcher: RawMatch,
    #[serde(default)]
    pub(super) requires: Option<RawRequires>,
    #[serde(default)]
    pub(super) required_scopes: Vec<String>,
    #[serde(default)]
    pub(super) mcp: Option<RawMcp>,
    #[serde(default)]
    pub(super) protected_resource: Option<RawProtectedResource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMcp {
    #[serde(default)]
    pub(super) methods: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(super) tools: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub(super) prompts: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub(super) resources: Option<BTreeMap<String, Vec<String>>>,
    #[serde(default)]
    pub(super) unlisted_methods: Option<String>,
    #[serde(default)]
    pub(super) unlisted_tools: Option<String>,
    #[serde(default)]
    pub(super) unlisted_prompts: Option<String>,
    #[serde(default)]
    pub(super) unlisted_resources: Option<String>,
    #[serde(default)]
    pub(super) max_body_bytes: Option<usize>,
    #[serde(default)]
    pub(super) body_timeout: Option<String>,
    #[serde(default)]
    pub(super) trust_headers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequires {
    pub(super) provider_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProtectedResource {
    #[serde(default)]
    pub(super) resource: Option<String>,
    #[serde(default)]
    pub(super) authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scopes_supported: Vec<String>,
    #[serde(default)]
    pub(super) resource_name: Option<String>,
    #[serde(default)]
    pub(super) resource_documentation: Option<String>,
    #[serde(default)]
    pub(super) resource_policy_uri: Option<String>,
    #[serde(default)]
    pub(super) resource_tos_uri: Option<String>,
}

/// `authorization_server.upstream.discovery`: the upstream's endpoints from its metadata.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstreamDiscovery {
    pub(super) http_uri: RawHttpUri,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) token_cluster: Option<String>,
    #[serde(default)]
    pub(super) token_timeout: Option<String>,
    #[serde(default)]
    pub(super) cache_duration: Option<String>,
    #[serde(default)]
    pub(super) max_response_bytes: Option<usize>,
}

/// `authorization_server`: the sign-in façade (issue 19). Secrets are never here: only the
/// names of the VM environment variables that hold them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorizationServer {
    pub(super) upstream: RawUpstream,
    pub(super) provider_name: String,
    pub(super) sealing_keys_env: Vec<String>,
    pub(super) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(super) issuer: Option<String>,
    #[serde(default)]
    pub(super) callback_path: Option<String>,
    #[serde(default)]
    pub(super) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) consent: Option<String>,
    #[serde(default)]
    pub(super) state_ttl: Option<String>,
    #[serde(default)]
    pub(super) code_ttl: Option<String>,
    #[serde(default)]
    pub(super) refresh_ttl: Option<String>,
    #[serde(default)]
    pub(super) approval_ttl: Option<String>,
    #[serde(default)]
    pub(super) max_body_bytes: Option<usize>,
    #[serde(default)]
    pub(super) body_timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    #[serde(default)]
    pub(super) discovery: Option<RawUpstreamDiscovery>,
    #[serde(default)]
    pub(super) authorization_endpoint: Option<String>,
    #[serde(default)]
    pub(super) token_endpoint: Option<RawHttpUri>,
    pub(super) client_id: String,
    #[serde(default)]
    pub(super) client_secret_env: Option<String>,
    #[serde(default)]
    pub(super) client_auth: Option<String>,
    #[serde(default)]
    pub(super) scope_prefix: Option<String>,
    #[serde(default)]
    pub(super) extra_scopes: Vec<String>,
    #[serde(default)]
    pub(super) send_resource: bool,
    #[serde(default)]
    pub(super) authorize_params: BTreeMap<String, String>,
}
