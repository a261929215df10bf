//! `POST /token` (form-encoded): the façade's code or refresh token is checked here, then
//! redeemed upstream by a call the glue makes; [`Continuation::finish`] turns the upstream's
//! answer into the client's.
//!
//! - `authorization_code`: the code opens and is unexpired and unused; the client id is the
//!   one it was issued to; `redirect_uri` is the one of the authorization request;
//!   `resource` (if sent) is this resource; the client's `code_verifier` answers the sealed
//!   S256 challenge. Upstream: the upstream code with the façade's verifier, its client id
//!   and callback, its secret if configured, and `scope` again (Entra needs it, AADSTS28003).
//! - `refresh_token`: the façade refresh token opens, is unexpired and unused, and belongs
//!   to this client. Upstream: the wrapped upstream refresh token. Each refresh token is one
//!   generation of a family (one per sign-in); the next one is the family's next
//!   generation, and using a generation already used revokes the family ([`super::used`]).
//! - Tokens handed back are the upstream's (audience-bound to this API already), except the
//!   refresh token, which is sealed and bound to the client id; each use returns a new one.
//!
//! Single use: a code's id (checked first with the caller's `already_used`) or a refresh
//! token's family and generation is returned in [`UpstreamCall::mark_used`] with its expiry,
//! for the glue to record before the upstream call (per Envoy, in shared data, atomically:
//! [`super::used`]); when that record finds it used already the answer is [`replayed`] (for
//! a refresh token, with its family revoked), when it cannot be made, [`unrecorded`]. Across replicas the upstream's own
//! single-use codes and rotating refresh tokens are what refuses a replay; a refresh token
//! replayed at another replica while the upstream does not rotate would succeed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use super::callback::Grant;
use super::form::{self, Params};
use super::pending::resource_matches;
use super::pkce;
use super::random;
use super::register::{client_hash, open_client};
use super::request::{Ctx, Request};
use super::response::Response;
use super::scopes;
use super::seal::fields::{self, put};
use super::seal::{Kind, PayloadError, SealError, Sealed};
use super::settings::{ClientAuth, Settings};
use super::upstream_error;
use super::used::UsedKind;

/// The façade's refresh token, sealed.
#[derive(Clone, PartialEq, Eq)]
struct Refresh {
    upstream: String,
    client: String,
    scopes: Vec<String>,
    /// The sign-in this token descends from (random), and which of its tokens it is.
    family: String,
    generation: u32,
}

/// Sealed as `{"u", "c", "o", "f", "n"}`. A token sealed before families (`"j"`, its own
/// id) opens as generation 0 of a family of that id.
impl Sealed for Refresh {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "u", self.upstream.as_str());
        put(&mut m, "c", self.client.as_str());
        put(&mut m, "o", self.scopes.as_slice());
        put(&mut m, "f", self.family.as_str());
        m.insert("n".into(), Value::from(self.generation));
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Refresh> {
        let generation = match m.get("n") {
            None => 0,
            Some(n) => u32::try_from(n.as_u64()?).ok()?,
        };
        Some(Refresh {
            upstream: fields::string(m, "u")?,
            client: fields::string(m, "c")?,
            scopes: fields::strings(m, "o")?,
            family: fields::string(m, "f").or_else(|| fields::string(m, "j"))?,
            generation,
        })
    }
}

/// An id to record as used until `expires_at` (unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Used {
    /// `code:<id>` or `refresh:<family>`.
    pub id: String,
    pub kind: UsedKind,
    /// 0 for a code; a refresh token's generation in its family.
    pub generation: u32,
    pub expires_at: u64,
}

/// The client's answer when recording `used` found it recorded already (two uses of one
/// code or refresh token racing: the other one won).
pub fn replayed(used: &Used) -> Response {
    error_response(
        400,
        "invalid_grant",
        match used.kind {
            UsedKind::Code => "the code was already used",
            UsedKind::Refresh => REFRESH_REPLAYED,
        },
    )
}

/// Why a used (or revoked) refresh token is refused.
const REFRESH_REPLAYED: &str = "the refresh token was already used, or a replay revoked the \
     refresh tokens of this sign-in; sign in again";

/// The client's answer when the used-id ledger cannot record `used` (full, or too busy):
/// refused, never redeemed unrecorded.
pub fn unrecorded() -> Response {
    error_response(
        503,
        "temporarily_unavailable",
        "the server cannot record this single-use grant right now; try again shortly",
    )
    .header("retry-after", "5")
}

/// A POST to the upstream token endpoint, and what to do with its answer.
pub struct UpstreamCall {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// Form-encoded; holds the upstream code or refresh token and possibly the secret.
    pub body: Vec<u8>,
    pub mark_used: Used,
    pub then: Continuation,
}

impl std::fmt::Debug for UpstreamCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamCall")
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .field("mark_used", &self.mark_used)
            .field("then", &self.then)
            .finish()
    }
}

/// What turns the upstream's token response into the client's.
pub struct Continuation {
    client: String,
    scopes: Vec<String>,
    /// For a refresh: the upstream refresh token in use, kept when the upstream does not
    /// send a new one.
    previous_refresh: Option<String>,
    /// For a refresh: the family and generation of the refresh token to hand out (a new
    /// family after a code).
    next: Option<(String, u32)>,
}

impl std::fmt::Debug for Continuation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Continuation")
            .field("client", &self.client)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// What `/token` does.
#[derive(Debug)]
pub enum TokenOutcome {
    Respond(Response),
    Upstream(UpstreamCall),
}

fn err(status: u16, error: &str, description: &str) -> TokenOutcome {
    TokenOutcome::Respond(error_response(status, error, description))
}

fn error_response(status: u16, error: &str, description: &str) -> Response {
    cors(Response::oauth_error(status, error, description))
}

fn cors(r: Response) -> Response {
    r.header("access-control-allow-origin", "*")
}

/// The client id from the form, or from HTTP Basic (`id:` with an empty secret).
fn client_id_of(params: &Params, authorization: Option<&str>) -> Result<Option<String>, Response> {
    let from_form = params.get("client_id").map(str::to_string);
    let from_basic = match authorization {
        Some(a) if a.len() > 6 && a.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) => {
            let decoded = STANDARD
                .decode(a.get(6..).unwrap_or("").trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            let Some((id, _secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                return Err(error_response(
                    401,
                    "invalid_client",
                    "malformed Basic credentials",
                ));
            };
            let id = form::parse(format!("x={id}").as_bytes())
                .ok()
                .and_then(|p| p.get("x").map(str::to_string));
            id
        }
        _ => None,
    };
    match (from_form, from_basic) {
        (Some(f), Some(b)) if f != b => Err(error_response(
            400,
            "invalid_request",
            "client_id in the body and in Basic credentials differ",
        )),
        (Some(f), _) => Ok(Some(f)),
        (None, b) => Ok(b),
    }
}

/// `POST /token`. `already_used(used)` says whether an id was recorded as used.
pub fn token(
    ctx: &mut Ctx<'_>,
    req: &Request<'_>,
    already_used: &dyn Fn(&Used) -> bool,
) -> TokenOutcome {
    if let Some(ct) = req.content_type {
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return err(
                400,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            );
        }
    }
    let params = match form::parse(req.body) {
        Ok(p) => p,
        Err(e) => return err(400, "invalid_request", &e.describe()),
    };
    let client_id = match client_id_of(&params, req.authorization) {
        Ok(Some(id)) => id,
        Ok(None) => return err(400, "invalid_request", "client_id is required"),
        Err(r) => return TokenOutcome::Respond(r),
    };
    if open_client(ctx.keys, &client_id).is_none() {
        return err(
            401,
            "invalid_client",
            "client_id is not valid; register the client again",
        );
    }
    if let Some(resource) = params.get("resource") {
        if !resource_matches(resource, &ctx.settings.spec.resource) {
            return err(
                400,
                "invalid_target",
                "resource is not the resource this server protects",
            );
        }
    }
    let client = client_hash(&client_id);
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code(ctx, &params, client, already_used),
        Some("refresh_token") => refresh(ctx, &params, client),
        Some(_) => err(
            400,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
        None => err(400, "invalid_request", "grant_type is required"),
    }
}

fn expired_or_invalid(e: PayloadError, what: &str) -> TokenOutcome {
    match e {
        PayloadError::Seal(SealError::Expired) => {
            err(400, "invalid_grant", &format!("the {what} has expired"))
        }
        _ => err(400, "invalid_grant", &format!("the {what} is not valid")),
    }
}

fn authorization_code(
    ctx: &mut Ctx<'_>,
    params: &Params,
    client: String,
    already_used: &dyn Fn(&Used) -> bool,
) -> TokenOutcome {
    let Some(code) = params.get("code") else {
        return err(400, "invalid_request", "code is required");
    };
    let (grant, expiry) = match ctx.keys.open_json::<Grant>(Kind::Code, code, ctx.now) {
        Ok(g) => g,
        Err(e) => return expired_or_invalid(e, "code"),
    };
    let used = Used {
        id: format!("code:{}", grant.id),
        kind: UsedKind::Code,
        generation: 0,
        expires_at: expiry,
    };
    if already_used(&used) {
        return err(400, "invalid_grant", "the code was already used");
    }
    if grant.client != client {
        return err(
            400,
            "invalid_grant",
            "the code was issued to another client",
        );
    }
    match params.get("redirect_uri") {
        Some(r) if r == grant.redirect_uri => {}
        None if !grant.redirect_given => {}
        _ => {
            return err(
                400,
                "invalid_grant",
                "redirect_uri does not match the authorization request",
            )
        }
    }
    let Some(verifier) = params.get("code_verifier") else {
        return err(400, "invalid_request", "code_verifier is required (PKCE)");
    };
    if !pkce::verify(verifier, &grant.challenge) {
        return err(
            400,
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    let settings = ctx.settings;
    let up = &settings.spec.upstream;
    let scope = scopes::to_upstream(&grant.scopes, up.scope_prefix.as_deref(), &up.extra_scopes);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("grant_type", "authorization_code"),
        ("code", &grant.upstream_code),
        ("redirect_uri", &settings.callback_url),
        ("code_verifier", &grant.verifier),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    upstream_call(
        ctx.settings,
        pairs,
        used,
        Continuation {
            client,
            scopes: grant.scopes.clone(),
            previous_refresh: None,
            next: None,
        },
    )
}

fn refresh(ctx: &mut Ctx<'_>, params: &Params, client: String) -> TokenOutcome {
    let Some(token) = params.get("refresh_token") else {
        return err(400, "invalid_request", "refresh_token is required");
    };
    let (rt, expiry) = match ctx
        .keys
        .open_json::<Refresh>(Kind::RefreshToken, token, ctx.now)
    {
        Ok(r) => r,
        Err(e) => return expired_or_invalid(e, "refresh token"),
    };
    let used = Used {
        id: format!("refresh:{}", rt.family),
        kind: UsedKind::Refresh,
        generation: rt.generation,
        expires_at: expiry,
    };
    // No early look at the ledger here (unlike codes): the glue's record decides, where a
    // replay also revokes the family, which a read-only look could not.
    // The last generation has no successor: the user signs in again (after 4 billion
    // refreshes).
    let Some(next) = rt
        .generation
        .checked_add(1)
        .filter(|n| *n != super::used::REVOKED)
    else {
        return err(
            400,
            "invalid_grant",
            "the refresh token's family is exhausted; sign in again",
        );
    };
    if rt.client != client {
        return err(
            400,
            "invalid_grant",
            "the refresh token was issued to another client",
        );
    }
    // A narrower scope may be asked for (RFC 6749 §6), never a wider one.
    let scopes_now = match params.get("scope").map(scopes::parse) {
        None => rt.scopes.clone(),
        Some(Some(asked)) if asked.iter().all(|s| rt.scopes.contains(s)) => asked,
        Some(_) => return err(400, "invalid_scope", "scope exceeds what was granted"),
    };
    let up = &ctx.settings.spec.upstream;
    let scope = scopes::to_upstream(&scopes_now, up.scope_prefix.as_deref(), &up.extra_scopes);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt.upstream),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    upstream_call(
        ctx.settings,
        pairs,
        used,
        Continuation {
            client,
            scopes: rt.scopes.clone(),
            previous_refresh: Some(rt.upstream.clone()),
            next: Some((rt.family.clone(), next)),
        },
    )
}

/// Adds the façade's client authentication and `resource` (when configured) and builds the
/// call.
fn upstream_call<'p>(
    settings: &'p Settings,
    mut pairs: Vec<(&'p str, &'p str)>,
    used: Used,
    then: Continuation,
) -> TokenOutcome {
    let up = &settings.spec.upstream;
    let mut headers = vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept", "application/json".to_string()),
    ];
    match (&up.client_secret, up.client_auth) {
        (Some(secret), ClientAuth::Basic) => {
            let user = format!(
                "{}:{}",
                form::encode(&up.client_id),
                form::encode(secret.expose())
            );
            headers.push(("authorization", format!("Basic {}", STANDARD.encode(user))));
        }
        (Some(secret), ClientAuth::Post) => {
            pairs.push(("client_id", &up.client_id));
            pairs.push(("client_secret", secret.expose()));
        }
        (None, _) => pairs.push(("client_id", &up.client_id)),
    }
    if up.send_resource {
        pairs.push(("resource", &settings.spec.resource));
    }
    TokenOutcome::Upstream(UpstreamCall {
        url: up.token_endpoint.clone(),
        headers,
        body: form::encode_pairs(&pairs).into_bytes(),
        mark_used: used,
        then,
    })
}

impl Continuation {
    /// The client's response for the upstream's (`status`, `body`); a `status` of 0 means
    /// the call itself failed (timeout, no connection).
    pub fn finish(self, ctx: &mut Ctx<'_>, status: u16, body: &[u8]) -> Response {
        let parsed: Option<Map<String, Value>> = super::seal::object(body);
        if status != 200 {
            return cors(
                match parsed
                    .as_ref()
                    .and_then(|m| m.get("error"))
                    .and_then(Value::as_str)
                {
                    Some(error) => {
                        let description = upstream_error::describe(
                            error,
                            parsed
                                .as_ref()
                                .and_then(|m| m.get("error_description"))
                                .and_then(Value::as_str),
                        );
                        match upstream_error::token_error(error) {
                            Some(mapped) => Response::oauth_error(400, mapped, &description),
                            None => Response::oauth_error(502, "server_error", &description),
                        }
                    }
                    None if status == 0 => Response::oauth_error(
                        502,
                        "server_error",
                        "the identity provider could not be reached",
                    ),
                    None => Response::oauth_error(
                        502,
                        "server_error",
                        &format!("the identity provider answered HTTP {status}"),
                    ),
                },
            );
        }
        let Some(up) = parsed else {
            return cors(Response::oauth_error(
                502,
                "server_error",
                "the identity provider's token response is not JSON",
            ));
        };
        let Some(access_token) = up.get("access_token").and_then(Value::as_str) else {
            return cors(Response::oauth_error(
                502,
                "server_error",
                "the identity provider returned no access_token",
            ));
        };
        let prefix = ctx.settings.spec.upstream.scope_prefix.as_deref();
        let mut out = Map::new();
        out.insert("access_token".into(), Value::from(access_token));
        out.insert(
            "token_type".into(),
            up.get("token_type")
                .cloned()
                .unwrap_or_else(|| Value::from("Bearer")),
        );
        if let Some(e) = up.get("expires_in").filter(|v| v.is_number()) {
            out.insert("expires_in".into(), e.clone());
        }
        if let Some(s) = up.get("scope").and_then(Value::as_str) {
            out.insert(
                "scope".into(),
                Value::from(scopes::from_upstream(s, prefix)),
            );
        }
        let upstream_refresh = up
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(self.previous_refresh);
        if let Some(upstream) = upstream_refresh {
            let next = match self.next {
                Some(n) => Ok(n),
                None => random::token(ctx.rng).map(|family| (family, 0)),
            };
            let sealed = next.and_then(|(family, generation)| {
                let rt = Refresh {
                    upstream,
                    client: self.client.clone(),
                    scopes: self.scopes.clone(),
                    family,
                    generation,
                };
                let expiry = ctx.now.saturating_add(ctx.settings.spec.ttl.refresh);
                ctx.keys.seal_json(Kind::RefreshToken, expiry, &rt, ctx.rng)
            });
            match sealed {
                Ok(s) => {
                    out.insert("refresh_token".into(), Value::from(s));
                }
                Err(_) => {
                    return cors(Response::oauth_error(
                        500,
                        "server_error",
                        "no randomness available",
                    ));
                }
            }
        }
        cors(Response::new(200).no_store().json(&Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn refresh_tokens_open_with_their_family_and_generation() {
        let rt = Refresh {
            upstream: "UP".into(),
            client: "c".into(),
            scopes: vec!["s".into()],
            family: "fam".into(),
            generation: 7,
        };
        assert!(Refresh::from_json(&rt.to_json()) == Some(rt));
        // Sealed before families: its own id is its family, generation 0.
        let old = json(serde_json::json!({"u": "UP", "c": "c", "o": ["s"], "j": "id1"}));
        let r = Refresh::from_json(&old).map(|r| (r.family, r.generation));
        assert_eq!(r, Some(("id1".to_string(), 0)));
        // A generation that is not a u32: not a refresh token.
        for n in [
            serde_json::json!(-1),
            serde_json::json!(1u64 << 32),
            serde_json::json!("1"),
        ] {
            let bad = json(serde_json::json!({"u": "UP", "c": "c", "o": [], "f": "f", "n": n}));
            assert!(Refresh::from_json(&bad).is_none());
        }
    }
}
