//! One-line fixes for the check that failed, from the error and the token's shape (Entra
//! v1/v2, Graph, Auth0, Okta, Keycloak). Only reads claims and configuration; never the
//! token itself.

use std::collections::BTreeSet;

use mcp_edge_auth::keys::alg::AlgError;
use mcp_edge_auth::keys::jwks::KeySet;
use mcp_edge_auth::token::provider::{is_guid, Provider};
use mcp_edge_auth::token::verify::VerifyError;
use serde_json::{Map, Value};

use crate::check_config::issuer_text;

/// What a hint may look at.
pub struct Ctx<'a> {
    pub claims: &'a Map<String, Value>,
    pub provider: &'a Provider,
    pub keys: &'a KeySet,
    /// Keys from `local_jwks` (else fetched: `--jwks`).
    pub local_keys: bool,
}

/// The token's `aud` as a list (empty when absent or not strings).
pub fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

fn quoted(list: &[String]) -> String {
    let q: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", q.join(", "))
}

/// The fix for a verification failure.
pub fn verify_fix(e: &VerifyError, c: &Ctx<'_>) -> String {
    let name = &c.provider.name;
    let skew = c.provider.clock_skew_seconds;
    match e {
        VerifyError::Malformed(_) => "this is not a signed JWT access token: send the access token (not an ID token, \
             not a refresh token); an IdP that issues opaque tokens (Auth0 without an audience) must be asked \
             for a JWT for this API"
            .into(),
        VerifyError::Encrypted => {
            "the IdP encrypts this token (JWE): turn token encryption off for this API".into()
        }
        VerifyError::Algorithm(AlgError::Unknown(_)) => {
            "supported algorithms: RS256 RS384 RS512 PS256 PS384 PS512 ES256 EdDSA".into()
        }
        VerifyError::Algorithm(_) => "unsigned and symmetric (HS*) tokens are never accepted: have the IdP sign \
             access tokens with an asymmetric key (RS256)"
            .into(),
        VerifyError::AlgorithmNotAllowed(a) => {
            let allowed: Vec<&str> = c.provider.algorithms.iter().map(|x| x.name()).collect();
            format!(
                "if the IdP really signs with {a}, add \"{a}\" to providers.{name}.algorithms (now: {})",
                allowed.join(", ")
            )
        }
        VerifyError::CriticalHeader => {
            "the token marks header extensions as critical (crit) and the filter implements none: issue \
             tokens without crit"
                .into()
        }
        VerifyError::Typ(_) => format!(
            "providers.{name}.require_typ is {:?}: make the IdP issue that type (RFC 9068 at+jwt) or remove require_typ",
            c.provider.require_typ.as_deref().unwrap_or("")
        ),
        VerifyError::UnknownKid(kid) => unknown_kid_fix(kid, c),
        VerifyError::KeyAlgMismatch { kid, alg } => format!(
            "the key {kid:?} in the key set is not a key for {alg}: the token's alg and the published key disagree \
             (a forged header, or a key published with the wrong kty/alg)"
        ),
        VerifyError::NoKid { fitting } => format!(
            "without a kid the filter needs exactly one key for the alg, and the key set has {fitting}: \
             have the IdP put kid in the token header"
        ),
        VerifyError::BadSignature => "the token was changed after signing, or another key with the same kid signed it \
             (a key set from another tenant or environment): check that the keys are the issuer's current key set"
            .into(),
        VerifyError::MissingExp => "access tokens must carry exp: configure the IdP to set a lifetime".into(),
        VerifyError::Expired { exp, now } => {
            let ago = (*now as f64 - exp).floor();
            format!(
                "the token expired {ago}s ago (exp {exp}, now {now}, {skew}s skew allowed): get a new token; \
                 if it was just issued, this machine's clock is about {ago}s ahead of the IdP's (check NTP)"
            )
        }
        VerifyError::NotYetValid { nbf, now } => {
            let ahead = (nbf - *now as f64).ceil();
            format!(
                "nbf is {ahead}s after now (exp/nbf allow {skew}s of skew): the IdP's clock runs about {ahead}s \
                 ahead of this machine's; sync the clocks (NTP) or raise providers.{name}.clock_skew_seconds (max 600)"
            )
        }
        VerifyError::IssuedInFuture { iat, now } => {
            let ahead = (iat - *now as f64).ceil();
            format!(
                "iat is {ahead}s after now (beyond the {skew}s skew): the IdP's clock runs about {ahead}s ahead \
                 of this machine's; sync the clocks (NTP) or raise providers.{name}.clock_skew_seconds (max 600)"
            )
        }
        VerifyError::Issuer(None) => "the token has no iss claim: it is not an access token of an OIDC/OAuth issuer".into(),
        VerifyError::Issuer(Some(iss)) => issuer_fix(iss, c),
        VerifyError::Tenant(t) => format!(
            "the token's tenant {t:?} (tid) is not accepted: add it to providers.{name}.allowed_tenants if you trust \
             that tenant, or sign in with an account of an allowed tenant"
        ),
        VerifyError::GraphToken => graph_fix(c),
        VerifyError::Audience => audience_fix(c),
        VerifyError::InvalidClaim(claim) => format!(
            "claim {claim} has the wrong JSON type (exp/nbf/iat: numbers; iss: a string; aud: a string or array of strings)"
        ),
    }
}

fn configured_issuers(p: &Provider) -> Vec<String> {
    p.issuers.iter().map(issuer_text).collect()
}

fn issuer_fix(iss: &str, c: &Ctx<'_>) -> String {
    let name = &c.provider.name;
    let configured = configured_issuers(c.provider);
    let v2_configured = configured
        .iter()
        .any(|i| i.starts_with("https://login.microsoftonline.com/"));
    if iss.starts_with("https://sts.windows.net/") && v2_configured {
        let ver = str_claim(c.claims, "ver")
            .map(|v| format!("ver {v}, "))
            .unwrap_or_default();
        return format!(
            "this is an Entra ID v1.0 token ({ver}iss https://sts.windows.net/<tenant>/) and the provider \
             expects v2.0 tokens: set \"accessTokenAcceptedVersion\": 2 in the API app registration's manifest \
             and get a new token, or accept v1 tokens by adding {iss:?} to providers.{name}.issuers"
        );
    }
    if iss.starts_with("https://login.microsoftonline.com/")
        && configured
            .iter()
            .any(|i| i.starts_with("https://sts.windows.net/"))
        && !v2_configured
    {
        return format!(
            "this is an Entra ID v2.0 token and the provider expects v1.0 issuers: add {iss:?} to \
             providers.{name}.issuers (or set the provider's issuer to the v2.0 issuer)"
        );
    }
    if let Some(close) = configured
        .iter()
        .find(|i| i.trim_end_matches('/') == iss.trim_end_matches('/'))
    {
        return format!(
            "the token's iss and the configured {close:?} differ only in the trailing slash, and issuers are \
             compared exactly: set the issuer to {iss:?} (Auth0 issuers end with \"/\"; copy \"issuer\" from \
             the IdP's discovery document)"
        );
    }
    if let Some(close) = configured.iter().find(|i| i.eq_ignore_ascii_case(iss)) {
        return format!(
            "the token's iss and the configured {close:?} differ only in letter case, and issuers are compared \
             exactly: set the issuer to {iss:?}"
        );
    }
    format!(
        "the provider accepts {}; if you trust {iss:?}, add it to providers.{name}.issuers, otherwise get the \
         token from the configured issuer (right tenant, realm or authorization server)",
        quoted(&configured)
    )
}

/// The API's application id, guessed from the audiences (`<guid>` or `api://<guid>`).
fn api_id(p: &Provider) -> String {
    p.audiences
        .iter()
        .map(|a| a.strip_prefix("api://").unwrap_or(a))
        .find(|a| is_guid(a))
        .map_or_else(|| "<api-client-id>".to_string(), str::to_string)
}

fn graph_fix(c: &Ctx<'_>) -> String {
    let id = api_id(c.provider);
    let aud = audiences(c.claims);
    format!(
        "the token's aud is Microsoft Graph ({}): the client asked only for Graph permissions (User.Read, openid, \
         profile), not for this API; request a scope of this API — api://{id}/<scope> for a user, \
         api://{id}/.default for client credentials",
        quoted(&aud)
    )
}

fn audience_fix(c: &Ctx<'_>) -> String {
    let name = &c.provider.name;
    let configured = &c.provider.audiences;
    let auds = audiences(c.claims);
    for a in &auds {
        if is_guid(a) && configured.contains(&format!("api://{a}")) {
            return format!(
                "the token's aud is the application (client) id {a:?} and only \"api://{a}\" is configured: list both \
                 forms in providers.{name}.audiences: [\"{a}\", \"api://{a}\"] (Entra v2.0 tokens carry the GUID, \
                 v1.0 tokens the Application ID URI)"
            );
        }
        if let Some(id) = a.strip_prefix("api://") {
            if configured.iter().any(|x| x == id) {
                return format!(
                    "the token's aud is the Application ID URI {a:?} and only {id:?} is configured: list both forms \
                     in providers.{name}.audiences: [\"{id}\", \"{a}\"] (Entra v1.0 tokens carry the URI, v2.0 tokens \
                     the GUID)"
                );
            }
        }
    }
    let keycloak = str_claim(c.claims, "iss").is_some_and(|i| i.contains("/realms/"));
    if auds.is_empty()
        || auds == ["account"]
        || (keycloak && !auds.iter().any(|a| configured.contains(a)))
    {
        return format!(
            "the token's aud is {}: Keycloak only names the \"account\" client (or nothing) unless told otherwise; \
             add an Audience mapper (client scope of the MCP client → Mappers → Audience) that includes {:?}",
            if auds.is_empty() { "absent".to_string() } else { quoted(&auds) },
            configured.first().map(String::as_str).unwrap_or("<audience>")
        );
    }
    if auds.iter().all(|a| a.ends_with("/userinfo")) {
        return "the token is only for the userinfo endpoint: the client requested no API audience; request the API \
                identifier as audience (Auth0: audience=<API identifier>)"
            .into();
    }
    format!(
        "the token's aud is {}, the provider accepts {}: have the client request a token for this API \
         (audience/resource parameter), or add the right value to providers.{name}.audiences",
        quoted(&auds),
        quoted(configured)
    )
}

fn unknown_kid_fix(kid: &str, c: &Ctx<'_>) -> String {
    if let Some(s) = c
        .keys
        .skipped
        .iter()
        .find(|s| s.kid.as_deref() == Some(kid))
    {
        return format!(
            "kid {kid:?} is in the key set but the filter skips that key ({}): publish a usable key",
            s.reason
        );
    }
    let kids: Vec<String> = c.keys.keys.iter().filter_map(|k| k.kid.clone()).collect();
    if c.local_keys {
        return format!(
            "kid {kid:?} is not among the local_jwks keys {}: update local_jwks.inline_string with the issuer's \
             current keys (key rotation), or the token comes from another issuer or tenant",
            quoted(&kids)
        );
    }
    format!(
        "kid {kid:?} is not in the key set {}: the IdP may have rotated its keys since this JWKS was fetched (refresh \
         the JWKS; the filter refetches on an unknown kid, at most once per unknown_kid_refetch_interval), the token \
         may come from another tenant or environment, or --jwks points at the wrong key set",
        quoted(&kids)
    )
}

/// The fix for missing scopes.
pub fn scope_fix(
    missing: &[String],
    granted: &BTreeSet<String>,
    claims: &Map<String, Value>,
    p: &Provider,
) -> String {
    let name = &p.name;
    let has = |c: &str| p.scope_claims.iter().any(|x| x == c);
    if claims.contains_key("roles") && !has("roles") {
        return format!(
            "this token carries its permissions in \"roles\" (an app-only / client-credentials token has no scp): \
             add \"roles\" to providers.{name}.scope_claims"
        );
    }
    if matches!(claims.get("scp"), Some(Value::Array(_))) && !has("scp") {
        return format!(
            "this token's scopes are in \"scp\" as a JSON array (Okta): add \"scp\" to providers.{name}.scope_claims"
        );
    }
    if claims.contains_key("permissions") && !has("permissions") {
        return format!(
            "this token carries RBAC permissions (Auth0): add \"permissions\" to providers.{name}.scope_claims"
        );
    }
    let granted: Vec<String> = granted.iter().cloned().collect();
    format!(
        "the token grants {} (from {}); request {} when getting the token (the 403's WWW-Authenticate lists them \
         in scope=), and make sure the client is allowed to get them",
        quoted(&granted),
        p.scope_claims.join(", "),
        missing.join(" ")
    )
}
