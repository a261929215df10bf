//! Token verification: JWS structure, algorithm allow-list, key choice, signature, and the
//! registered claims (`iss`, `aud`, `exp`, `nbf`, `iat`) plus the optional `typ` check.
//!
//! Pure: the provider, its key set and the current time come in as arguments.
//! Cheap checks run before the signature so garbage never costs a public-key operation.

use std::fmt;

use serde_json::{Map, Value};

use crate::crypto::b64;
use crate::keys::alg::{Alg, AlgError};
use crate::keys::jwks::{KeySet, PublicKey};
use crate::token::host_signature::HostVerifier;
use crate::token::provider::{is_guid, IssuerPattern, Provider};
use crate::token::signature;
use crate::util::bytes::same_bytes;
use crate::util::json::parse_object;
use crate::util::text::printable;

/// A token whose signature and claims checked out.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    pub alg: Alg,
    pub kid: Option<String>,
    /// The key whose signature checked out.
    pub key: PublicKey,
    /// `exp`, seconds since the epoch (fractions truncated).
    pub exp: i64,
    pub times: Times,
    pub claims: Map<String, Value>,
}

/// Why a token was refused. `Display` is the `error_description` clients see.
#[derive(Clone, Debug, PartialEq)]
pub enum VerifyError {
    /// Not three base64url segments of JSON objects.
    Malformed(String),
    /// Five segments: an encrypted token (JWE), which we cannot read.
    Encrypted,
    Algorithm(AlgError),
    AlgorithmNotAllowed(Alg),
    /// `crit` names extensions we do not implement (RFC 7515 §4.1.11).
    CriticalHeader,
    Typ(Option<String>),
    /// The `kid` is not in the provider's key set.
    UnknownKid(String),
    /// A key with that `kid` exists but is of another type than the `alg` needs.
    KeyAlgMismatch {
        kid: String,
        alg: Alg,
    },
    /// No `kid`, and not exactly one key fits the `alg`.
    NoKid {
        fitting: usize,
    },
    BadSignature,
    MissingExp,
    Expired {
        exp: f64,
        now: u64,
    },
    NotYetValid {
        nbf: f64,
        now: u64,
    },
    IssuedInFuture {
        iat: f64,
        now: u64,
    },
    Issuer(Option<String>),
    /// A `{tenantid}` issuer whose tenant is not a GUID or not allowed.
    Tenant(String),
    Audience,
    /// A Microsoft Graph token: it was never meant for this API.
    GraphToken,
    /// A registered claim has the wrong JSON type.
    InvalidClaim(&'static str),
}

impl VerifyError {
    /// The label used in metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) | VerifyError::Encrypted | VerifyError::InvalidClaim(_) => {
                "malformed"
            }
            VerifyError::Algorithm(_)
            | VerifyError::AlgorithmNotAllowed(_)
            | VerifyError::KeyAlgMismatch { .. } => "algorithm",
            VerifyError::CriticalHeader => "malformed",
            VerifyError::Typ(_) => "typ",
            VerifyError::UnknownKid(_) | VerifyError::NoKid { .. } => "unknown_kid",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::MissingExp => "malformed",
            VerifyError::Expired { .. } => "expired",
            VerifyError::NotYetValid { .. } | VerifyError::IssuedInFuture { .. } => "not_yet_valid",
            VerifyError::Issuer(_) | VerifyError::Tenant(_) => "issuer",
            VerifyError::Audience | VerifyError::GraphToken => "audience",
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "malformed token: {why}"),
            VerifyError::Encrypted => write!(f, "encrypted tokens (JWE) are not accepted"),
            VerifyError::Algorithm(e) => write!(f, "{e}"),
            VerifyError::AlgorithmNotAllowed(a) => {
                write!(f, "algorithm {a} is not allowed for this issuer")
            }
            VerifyError::CriticalHeader => {
                write!(
                    f,
                    "the token has critical header extensions (crit) that are not supported"
                )
            }
            VerifyError::Typ(Some(t)) => write!(f, "token type {:?} is not accepted", printable(t)),
            VerifyError::Typ(None) => write!(f, "the token has no typ header"),
            VerifyError::UnknownKid(kid) => {
                write!(
                    f,
                    "no key with kid {:?} in the issuer's key set",
                    printable(kid)
                )
            }
            VerifyError::KeyAlgMismatch { kid, alg } => {
                write!(f, "key {:?} cannot verify {alg} signatures", printable(kid))
            }
            VerifyError::NoKid { fitting: 0 } => {
                write!(f, "the token has no kid and no key fits its algorithm")
            }
            VerifyError::NoKid { fitting } => write!(
                f,
                "the token has no kid and {fitting} keys fit its algorithm"
            ),
            VerifyError::BadSignature => write!(f, "signature verification failed"),
            VerifyError::MissingExp => write!(f, "the token has no exp claim"),
            VerifyError::Expired { exp, now } => write!(
                f,
                "the token expired {}s ago",
                (*now as f64 - exp).max(0.0).floor() as u64
            ),
            VerifyError::NotYetValid { nbf, now } => write!(
                f,
                "the token is not valid for another {}s (nbf)",
                (nbf - *now as f64).max(0.0).ceil() as u64
            ),
            VerifyError::IssuedInFuture { iat, now } => write!(
                f,
                "the token was issued {}s in the future (iat)",
                (iat - *now as f64).max(0.0).ceil() as u64
            ),
            VerifyError::Issuer(Some(iss)) => {
                write!(f, "issuer {:?} is not accepted", printable(iss))
            }
            VerifyError::Issuer(None) => write!(f, "the token has no iss claim"),
            VerifyError::Tenant(t) => write!(f, "tenant {:?} is not accepted", printable(t)),
            VerifyError::GraphToken => write!(
                f,
                "this is a Microsoft Graph token, not a token for this API: the client requested no scope of this API (request api://<app-id>/.default or one of its scopes)"
            ),
            VerifyError::Audience => write!(f, "the token's audience is not accepted"),
            VerifyError::InvalidClaim(name) => write!(f, "claim {name} has the wrong type"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The parts of a compact JWS, decoded but not yet trusted.
struct Parsed<'a> {
    signing_input: &'a str,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signature: Vec<u8>,
}

fn parse(token: &str) -> Result<Parsed<'_>, VerifyError> {
    let segments = token.split('.').count();
    if segments == 5 {
        return Err(VerifyError::Encrypted);
    }
    if segments != 3 {
        return Err(VerifyError::Malformed(format!(
            "expected 3 dot-separated parts, found {segments}"
        )));
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(VerifyError::Malformed("expected 3 parts".into()));
    };
    let signing_input = token.get(..h.len() + 1 + p.len()).unwrap_or("");
    let header_bytes = b64::decode_segment(h)
        .ok_or_else(|| VerifyError::Malformed("header is not base64url".into()))?;
    let header =
        parse_object(&header_bytes).map_err(|e| VerifyError::Malformed(format!("header: {e}")))?;
    let claim_bytes = b64::decode_segment(p)
        .ok_or_else(|| VerifyError::Malformed("payload is not base64url".into()))?;
    let claims =
        parse_object(&claim_bytes).map_err(|e| VerifyError::Malformed(format!("payload: {e}")))?;
    let signature = b64::decode_segment(s)
        .ok_or_else(|| VerifyError::Malformed("signature is not base64url".into()))?;
    Ok(Parsed {
        signing_input,
        header,
        claims,
        signature,
    })
}

fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<f64>, VerifyError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or(VerifyError::InvalidClaim(name)),
        Some(_) => Err(VerifyError::InvalidClaim(name)),
    }
}

/// A token's time claims (`exp` required, `nbf` and `iat` optional), read once: a verified
/// token keeps them (`VerifiedToken::times`, the verified-token cache), so a cache hit
/// compares numbers instead of looking the claims up again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Times {
    pub exp: f64,
    pub nbf: Option<f64>,
    pub iat: Option<f64>,
}

impl Times {
    pub fn read(claims: &Map<String, Value>) -> Result<Times, VerifyError> {
        Ok(Times {
            exp: numeric_date(claims, "exp")?.ok_or(VerifyError::MissingExp)?,
            nbf: numeric_date(claims, "nbf")?,
            iat: numeric_date(claims, "iat")?,
        })
    }

    /// `exp`, `nbf` and `iat` against `now` with `skew` seconds of leeway, in that order.
    pub fn check(&self, now: u64, skew: u64) -> Result<(), VerifyError> {
        let now_f = now as f64;
        let skew_f = skew as f64;
        if now_f >= self.exp + skew_f {
            return Err(VerifyError::Expired { exp: self.exp, now });
        }
        if let Some(nbf) = self.nbf.filter(|&nbf| now_f + skew_f < nbf) {
            return Err(VerifyError::NotYetValid { nbf, now });
        }
        if let Some(iat) = self.iat.filter(|&iat| iat > now_f + skew_f) {
            return Err(VerifyError::IssuedInFuture { iat, now });
        }
        Ok(())
    }
}

/// Reads and checks `exp` (required), `nbf` and `iat` against `now` with `skew` seconds of
/// leeway (a claim that is not a finite number is refused before any comparison).
pub fn check_times(claims: &Map<String, Value>, now: u64, skew: u64) -> Result<Times, VerifyError> {
    let times = Times::read(claims)?;
    times.check(now, skew)?;
    Ok(times)
}

/// `iss` must equal one of the provider's issuers exactly (no trailing-slash or case
/// folding). A `{tenantid}` issuer takes the token's `tid`, which must be a GUID (and in
/// `allowed_tenants` when that is set).
pub fn check_issuer(
    claims: &Map<String, Value>,
    issuers: &[IssuerPattern],
    allowed_tenants: &[String],
) -> Result<(), VerifyError> {
    let iss = match claims.get("iss") {
        Some(Value::String(iss)) => iss,
        Some(_) => return Err(VerifyError::InvalidClaim("iss")),
        None => return Err(VerifyError::Issuer(None)),
    };
    let mut tenant_error = None;
    for pattern in issuers {
        match pattern {
            IssuerPattern::Exact(e) if same_bytes(e.as_bytes(), iss.as_bytes()) => return Ok(()),
            IssuerPattern::Exact(_) => {}
            IssuerPattern::Tenant { before, after } => {
                let middle = iss
                    .strip_prefix(before.as_str())
                    .and_then(|rest| rest.strip_suffix(after.as_str()));
                let Some(middle) = middle else { continue };
                let tid = claims.get("tid").and_then(Value::as_str).unwrap_or("");
                if !is_guid(middle) || middle != tid {
                    tenant_error = Some(VerifyError::Tenant(middle.to_string()));
                    continue;
                }
                if allowed_tenants.is_empty()
                    || allowed_tenants.iter().any(|t| t.eq_ignore_ascii_case(tid))
                {
                    return Ok(());
                }
                tenant_error = Some(VerifyError::Tenant(tid.to_string()));
            }
        }
    }
    Err(tenant_error.unwrap_or_else(|| VerifyError::Issuer(Some(iss.clone()))))
}

/// Microsoft Graph's application id, the `aud` of Graph access tokens.
pub const GRAPH_AUDIENCES: [&str; 3] = [
    "00000003-0000-0000-c000-000000000000",
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
];

fn is_graph_token(header: &Map<String, Value>, claims: &Map<String, Value>) -> bool {
    let graph_aud = |v: &Value| v.as_str().is_some_and(|a| GRAPH_AUDIENCES.contains(&a));
    header.contains_key("nonce")
        || match claims.get("aud") {
            Some(Value::Array(list)) => list.iter().any(graph_aud),
            Some(v) => graph_aud(v),
            None => false,
        }
}

/// `aud` (a string or an array of strings) must contain one of `audiences`, exactly.
pub fn check_audience(
    claims: &Map<String, Value>,
    audiences: &[String],
) -> Result<(), VerifyError> {
    let accepted = |a: &str| {
        audiences
            .iter()
            .any(|x| same_bytes(x.as_bytes(), a.as_bytes()))
    };
    match claims.get("aud") {
        Some(Value::String(a)) if accepted(a) => Ok(()),
        Some(Value::String(_)) | None => Err(VerifyError::Audience),
        Some(Value::Array(list)) => {
            if list.iter().any(|v| !v.is_string()) {
                return Err(VerifyError::InvalidClaim("aud"));
            }
            if list.iter().filter_map(Value::as_str).any(accepted) {
                Ok(())
            } else {
                Err(VerifyError::Audience)
            }
        }
        Some(_) => Err(VerifyError::InvalidClaim("aud")),
    }
}

fn check_typ(header: &Map<String, Value>, required: &str) -> Result<(), VerifyError> {
    match header.get("typ") {
        Some(Value::String(t)) => {
            let t_norm = t.strip_prefix("application/").unwrap_or(t);
            let r_norm = required.strip_prefix("application/").unwrap_or(required);
            if t_norm.eq_ignore_ascii_case(r_norm) {
                Ok(())
            } else {
                Err(VerifyError::Typ(Some(t.clone())))
            }
        }
        Some(_) => Err(VerifyError::Malformed("typ is not a string".into())),
        None => Err(VerifyError::Typ(None)),
    }
}

/// Verifies `token` for `provider` with the provider's current `keys` at time `now`
/// (seconds since the epoch).
pub fn verify(
    token: &str,
    provider: &Provider,
    keys: &KeySet,
    now: u64,
) -> Result<VerifiedToken, VerifyError> {
    verify_traced(token, provider, keys, now, |_| {})
}

/// [`verify`], RS* and ES256 signatures checked by `host` (`token/host_signature.rs`) when given.
pub fn verify_on(
    token: &str,
    provider: &Provider,
    keys: &KeySet,
    now: u64,
    host: Option<&dyn HostVerifier>,
) -> Result<VerifiedToken, VerifyError> {
    run(token, provider, keys, now, host, |_| {})
}

/// The checks of [`verify`], in the order they run (for tracing, e.g. `mcp-edge-auth
/// explain`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Three base64url segments, header and payload JSON objects without duplicates.
    Structure,
    /// `alg` known, asymmetric, in the provider's allow-list; a signature is present.
    Algorithm,
    /// No `crit` header; `kid`, if present, is a string.
    Header,
    /// `typ` (only with `require_typ`).
    Typ,
    /// Not a Microsoft Graph token.
    NotGraph,
    /// `exp` (required), `nbf`, `iat` with the clock skew.
    Times,
    Issuer,
    Audience,
    /// A key for the `kid` (or the only key fitting the `alg`).
    Key,
    Signature,
}

/// [`verify`], telling `step` which check starts before running it. When it returns an
/// error, the last check announced is the one that failed and every earlier one passed.
pub fn verify_traced(
    token: &str,
    provider: &Provider,
    keys: &KeySet,
    now: u64,
    step: impl FnMut(Check),
) -> Result<VerifiedToken, VerifyError> {
    run(token, provider, keys, now, None, step)
}

fn run(
    token: &str,
    provider: &Provider,
    keys: &KeySet,
    now: u64,
    host: Option<&dyn HostVerifier>,
    mut step: impl FnMut(Check),
) -> Result<VerifiedToken, VerifyError> {
    step(Check::Structure);
    let parsed = parse(token)?;
    let header = &parsed.header;

    step(Check::Algorithm);
    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(VerifyError::Malformed("alg is not a string".into())),
        None => return Err(VerifyError::Malformed("the header has no alg".into())),
    };
    let alg = Alg::parse(alg_name).map_err(VerifyError::Algorithm)?;
    if !provider.algorithms.contains(&alg) {
        return Err(VerifyError::AlgorithmNotAllowed(alg));
    }
    if parsed.signature.is_empty() {
        return Err(VerifyError::Malformed("signature is empty".into()));
    }
    step(Check::Header);
    if header.contains_key("crit") {
        return Err(VerifyError::CriticalHeader);
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(VerifyError::Malformed("kid is not a string".into())),
    };
    if let Some(required) = &provider.require_typ {
        step(Check::Typ);
        check_typ(header, required)?;
    }

    step(Check::NotGraph);
    if is_graph_token(header, &parsed.claims) {
        return Err(VerifyError::GraphToken);
    }
    step(Check::Times);
    let times = check_times(&parsed.claims, now, provider.clock_skew_seconds)?;
    step(Check::Issuer);
    check_issuer(&parsed.claims, &provider.issuers, &provider.allowed_tenants)?;
    step(Check::Audience);
    check_audience(&parsed.claims, &provider.audiences)?;

    step(Check::Key);
    let candidates: Vec<_> = keys.candidates(alg, kid).collect();
    match kid {
        Some(k) if candidates.is_empty() => {
            return Err(if keys.has_kid(k) {
                VerifyError::KeyAlgMismatch {
                    kid: k.to_string(),
                    alg,
                }
            } else {
                VerifyError::UnknownKid(k.to_string())
            });
        }
        None if candidates.len() != 1 => {
            return Err(VerifyError::NoKid {
                fitting: candidates.len(),
            })
        }
        _ => {}
    }
    step(Check::Signature);
    let input = parsed.signing_input.as_bytes();
    let Some(used) = candidates
        .iter()
        .find(|k| signature::verify_with(alg, &k.key, input, &parsed.signature, host))
    else {
        return Err(VerifyError::BadSignature);
    };

    Ok(VerifiedToken {
        alg,
        kid: kid.map(str::to_owned),
        key: used.key.clone(),
        exp: times.exp.clamp(i64::MIN as f64, i64::MAX as f64) as i64,
        times,
        claims: parsed.claims,
    })
}

/// A JOSE header or a claims set.
pub type JsonObject = Map<String, Value>;

/// The header and claims of a compact JWS, decoded but NOT verified (for diagnostics).
pub fn peek(token: &str) -> Result<(JsonObject, JsonObject), VerifyError> {
    parse(token).map(|p| (p.header, p.claims))
}

/// Reads a claim by name, or by dotted path (`realm_access.roles`) when no claim has the
/// whole name.
pub fn claim_at<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    // A claim named exactly so comes first: the usual case (`sub`, `scp`), and the only
    // reading of namespaced claims such as Auth0's `https://example.com/roles`.
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let (first, rest) = path.split_once('.')?;
    rest.split('.')
        .try_fold(claims.get(first)?, |v, p| v.get(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn times_with_skew() {
        let now = 1_000_000;
        assert!(check_times(&claims(json!({"exp": now + 10})), now, 0).is_ok());
        assert!(matches!(
            check_times(&claims(json!({"exp": now})), now, 0),
            Err(VerifyError::Expired { .. })
        ));
        assert!(check_times(&claims(json!({"exp": now - 30})), now, 60).is_ok());
        assert!(matches!(
            check_times(&claims(json!({"exp": now - 60})), now, 60),
            Err(VerifyError::Expired { .. })
        ));
        assert_eq!(
            check_times(&claims(json!({})), now, 60),
            Err(VerifyError::MissingExp)
        );
        assert_eq!(
            check_times(&claims(json!({"exp": "9999999999"})), now, 60),
            Err(VerifyError::InvalidClaim("exp"))
        );
        assert!(check_times(&claims(json!({"exp": (now + 10) as f64 + 0.5})), now, 0).is_ok());
        assert!(check_times(&claims(json!({"exp": 1e300})), now, 0).is_ok());
        assert!(matches!(
            check_times(&claims(json!({"exp": -5})), now, 0),
            Err(VerifyError::Expired { .. })
        ));
        assert!(check_times(&claims(json!({"exp": now + 100, "nbf": now + 50})), now, 60).is_ok());
        assert!(matches!(
            check_times(
                &claims(json!({"exp": now + 1000, "nbf": now + 61})),
                now,
                60
            ),
            Err(VerifyError::NotYetValid { .. })
        ));
        assert!(matches!(
            check_times(
                &claims(json!({"exp": now + 1000, "iat": now + 61})),
                now,
                60
            ),
            Err(VerifyError::IssuedInFuture { .. })
        ));
        assert_eq!(
            check_times(&claims(json!({"exp": now + 1000, "nbf": true})), now, 60),
            Err(VerifyError::InvalidClaim("nbf"))
        );
    }

    fn exact(s: &str) -> Vec<IssuerPattern> {
        vec![IssuerPattern::Exact(s.to_string())]
    }

    #[test]
    fn issuer_is_exact() {
        let iss = "https://idp.example.com/";
        assert!(check_issuer(&claims(json!({"iss": iss})), &exact(iss), &[]).is_ok());
        for bad in ["https://idp.example.com", "https://IDP.example.com/", ""] {
            assert!(matches!(
                check_issuer(&claims(json!({"iss": bad})), &exact(iss), &[]),
                Err(VerifyError::Issuer(Some(_)))
            ));
        }
        assert_eq!(
            check_issuer(&claims(json!({})), &exact(iss), &[]),
            Err(VerifyError::Issuer(None))
        );
        assert_eq!(
            check_issuer(&claims(json!({"iss": 1})), &exact(iss), &[]),
            Err(VerifyError::InvalidClaim("iss"))
        );
    }

    #[test]
    fn entra_v1_v2_and_tenant_template() {
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let other = "11111111-2222-3333-4444-555555555555";
        let issuers = vec![
            IssuerPattern::Exact(format!("https://sts.windows.net/{tid}/")),
            IssuerPattern::Tenant {
                before: "https://login.microsoftonline.com/".into(),
                after: "/v2.0".into(),
            },
        ];
        let c = |iss: String, t: &str| claims(json!({"iss": iss, "tid": t}));
        assert!(check_issuer(
            &c(format!("https://sts.windows.net/{tid}/"), tid),
            &issuers,
            &[]
        )
        .is_ok());
        assert!(check_issuer(
            &c(format!("https://login.microsoftonline.com/{tid}/v2.0"), tid),
            &issuers,
            &[]
        )
        .is_ok());
        // tid must equal the placeholder value.
        assert_eq!(
            check_issuer(
                &c(
                    format!("https://login.microsoftonline.com/{tid}/v2.0"),
                    other
                ),
                &issuers,
                &[]
            ),
            Err(VerifyError::Tenant(tid.into()))
        );
        // Not a GUID.
        assert!(matches!(
            check_issuer(
                &c(
                    "https://login.microsoftonline.com/common/v2.0".into(),
                    "common"
                ),
                &issuers,
                &[]
            ),
            Err(VerifyError::Tenant(_))
        ));
        // Allow-list.
        let allowed = vec![other.to_string()];
        assert_eq!(
            check_issuer(
                &c(format!("https://login.microsoftonline.com/{tid}/v2.0"), tid),
                &issuers,
                &allowed
            ),
            Err(VerifyError::Tenant(tid.into()))
        );
        assert!(check_issuer(
            &c(
                format!("https://login.microsoftonline.com/{other}/v2.0"),
                other
            ),
            &issuers,
            &allowed
        )
        .is_ok());
        // v1 issuer of another tenant is just a wrong issuer.
        assert!(matches!(
            check_issuer(
                &c(format!("https://sts.windows.net/{other}/"), other),
                &issuers,
                &[]
            ),
            Err(VerifyError::Issuer(Some(_)))
        ));
    }

    #[test]
    fn graph_tokens_are_recognised() {
        let h = claims(json!({"alg": "RS256"}));
        assert!(is_graph_token(
            &h,
            &claims(json!({"aud": "00000003-0000-0000-c000-000000000000"}))
        ));
        assert!(is_graph_token(
            &h,
            &claims(json!({"aud": ["https://graph.microsoft.com"]}))
        ));
        assert!(is_graph_token(
            &claims(json!({"alg": "RS256", "nonce": "x"})),
            &claims(json!({"aud": "api://a"}))
        ));
        assert!(!is_graph_token(&h, &claims(json!({"aud": "api://a"}))));
    }

    #[test]
    fn audience_string_or_array() {
        let auds = vec!["api://a".to_string(), "guid".to_string()];
        assert!(check_audience(&claims(json!({"aud": "guid"})), &auds).is_ok());
        assert!(check_audience(&claims(json!({"aud": ["x", "api://a"]})), &auds).is_ok());
        assert_eq!(
            check_audience(&claims(json!({"aud": []})), &auds),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": "api://a/"})), &auds),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": "API://a"})), &auds),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check_audience(&claims(json!({})), &auds),
            Err(VerifyError::Audience)
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": 5})), &auds),
            Err(VerifyError::InvalidClaim("aud"))
        );
        assert_eq!(
            check_audience(&claims(json!({"aud": ["guid", 5]})), &auds),
            Err(VerifyError::InvalidClaim("aud"))
        );
    }

    #[test]
    fn typ_comparison() {
        let h = |t: Value| claims(json!({ "typ": t }));
        assert!(check_typ(&h(json!("at+jwt")), "at+jwt").is_ok());
        assert!(check_typ(&h(json!("application/AT+JWT")), "at+jwt").is_ok());
        assert!(check_typ(&h(json!("JWT")), "at+jwt").is_err());
        assert_eq!(
            check_typ(&claims(json!({})), "at+jwt"),
            Err(VerifyError::Typ(None))
        );
    }

    #[test]
    fn structure_errors() {
        assert_eq!(parse("a.b.c.d.e").err(), Some(VerifyError::Encrypted));
        assert!(matches!(
            parse("a.b").err(),
            Some(VerifyError::Malformed(_))
        ));
        assert!(matches!(
            parse("a.b.c.d").err(),
            Some(VerifyError::Malformed(_))
        ));
        let h = b64::encode(br#"{"alg":"RS256"}"#);
        let p = b64::encode(br#"{"exp":1}"#);
        assert!(parse(&format!("{h}.{p}.")).is_ok_and(|p| p.signature.is_empty()));
        assert!(matches!(
            parse(&format!("{h}.{p}.AAAA==")).err(),
            Some(VerifyError::Malformed(m)) if m.contains("signature is not base64url")
        ));
        let arr = b64::encode(b"[1]");
        assert!(matches!(
            parse(&format!("{h}.{arr}.AAAA")).err(),
            Some(VerifyError::Malformed(m)) if m.contains("payload")
        ));
        let dup = b64::encode(br#"{"exp":1,"exp":2}"#);
        assert!(matches!(
            parse(&format!("{h}.{dup}.AAAA")).err(),
            Some(VerifyError::Malformed(m)) if m.contains("duplicate member")
        ));
        let token = format!("{h}.{p}.AAAA");
        let ok = parse(&token).unwrap();
        assert_eq!(ok.signing_input, format!("{h}.{p}"));
    }

    #[test]
    fn traced_checks_run_in_order_and_stop_at_the_failure() {
        let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k",
                                    "x": b64::encode(&[7u8; 32])}]});
        let cfg = crate::config::Config::parse(
            json!({"providers": {"p": {"issuer": "https://i/", "audiences": ["a"],
                     "algorithms": ["EdDSA"], "local_jwks": {"inline_string": jwks.to_string()}}},
                   "rules": []})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let p = &cfg.providers[0];
        let crate::keys::source::KeySource::Local(keys) = &p.keys else {
            panic!("local keys")
        };
        let token = |c: Value| {
            format!(
                "{}.{}.AAAA",
                b64::encode(br#"{"alg":"EdDSA","kid":"k"}"#),
                b64::encode(c.to_string().as_bytes())
            )
        };
        let run = |t: &str| {
            let mut steps = Vec::new();
            let r = verify_traced(t, p, keys, 1000, |c| steps.push(c));
            assert_eq!(r.as_ref().err(), verify(t, p, keys, 1000).as_ref().err());
            (steps, r.err())
        };
        let (steps, err) = run(&token(
            json!({"iss": "https://x/", "aud": "a", "exp": 2000}),
        ));
        assert_eq!(
            steps,
            vec![
                Check::Structure,
                Check::Algorithm,
                Check::Header,
                Check::NotGraph,
                Check::Times,
                Check::Issuer
            ]
        );
        assert!(matches!(err, Some(VerifyError::Issuer(_))));
        let (steps, err) = run(&token(
            json!({"iss": "https://i/", "aud": "a", "exp": 2000}),
        ));
        assert_eq!(steps.len(), 9);
        assert_eq!(steps.last(), Some(&Check::Signature));
        assert_eq!(err, Some(VerifyError::BadSignature));
        let (steps, _) = run("a.b");
        assert_eq!(steps, vec![Check::Structure]);
    }

    #[test]
    fn dotted_claims() {
        let c = claims(json!({"a": {"b": {"c": 1}}, "s": "x"}));
        assert_eq!(claim_at(&c, "a.b.c"), Some(&json!(1)));
        assert_eq!(claim_at(&c, "s"), Some(&json!("x")));
        assert_eq!(claim_at(&c, "a.x"), None);
        assert_eq!(claim_at(&c, "s.x"), None);
        // Namespaced claim names (Auth0) are read whole; a path only when no name matches.
        let ns = claims(
            json!({"https://example.com/roles": ["admin"], "https://example": {"com/roles": 1}}),
        );
        assert_eq!(
            claim_at(&ns, "https://example.com/roles"),
            Some(&json!(["admin"]))
        );
        let nested = claims(json!({"https://example": {"com/roles": 1}}));
        assert_eq!(
            claim_at(&nested, "https://example.com/roles"),
            Some(&json!(1))
        );
    }
}
