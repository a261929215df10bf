//! The OAuth sign-in façade (issue 19), pure core: an authorization server in front of an
//! IdP without client registration (Entra ID and others), made of sans-IO functions.
//!
//! It may use std and external crates only (no `crate::` imports): request parts, settings,
//! the time, randomness ([`random::Random`]) and sealing keys ([`seal::Keys`]) go in; an
//! [`Outcome`] comes out — a [`response::Response`] to send, or an upstream token call to
//! make whose answer [`token::Continuation::finish`] turns into the client's response.
//! Single-use ids (codes, refresh tokens) are checked through a caller-supplied function and
//! returned for the caller to record: the glue keeps them in Envoy shared data, in slots
//! whose bytes [`used`] decides (bounded, recorded by compare-and-swap).
//!
//! Endpoints (paths under the issuer's path): the RFC 8414 metadata ([`metadata`]),
//! `POST /register` ([`register`]), `GET /authorize` ([`authorize`]), `POST /consent`
//! ([`consent`]), `GET <callback>` ([`callback`]) and `POST /token` ([`token`]).
//! Nothing is stored: client ids, consent forms, upstream `state`, codes and refresh tokens
//! are sealed blobs ([`seal`]).

pub mod authorize;
pub mod callback;
pub mod consent;
pub mod cookie;
pub mod ct;
pub mod discovery;
pub mod form;
pub mod metadata;
pub mod page;
pub mod pending;
pub mod pkce;
pub mod random;
pub mod redirect;
pub mod register;
pub mod request;
pub mod response;
pub mod scopes;
pub mod seal;
pub mod settings;
pub mod token;
pub mod upstream_error;
pub mod used;

#[cfg(test)]
mod flow_tests;

pub use request::{Ctx, Request};
pub use response::Response;
pub use token::{Continuation, TokenOutcome, UpstreamCall, Used};

/// What the façade does with a request it owns.
#[derive(Debug)]
pub enum Outcome {
    /// Send this.
    Respond(Response),
    /// Make this call (after recording `mark_used`), then send `then.finish(…)`.
    Upstream(UpstreamCall),
}

/// Which façade endpoint a request path is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Metadata,
    Register,
    Authorize,
    Consent,
    Callback,
    Token,
}

/// The endpoint for a request path (query ignored); `None`: not the façade's, pass on.
pub fn route(settings: &settings::Settings, path: &str) -> Option<Endpoint> {
    let (path, _) = form::split_path(path);
    if metadata::is_metadata_path(settings, path) {
        return Some(Endpoint::Metadata);
    }
    if path == settings.spec.callback_path {
        return Some(Endpoint::Callback);
    }
    let rest = path.strip_prefix(settings.base_path.as_str())?;
    Some(match rest {
        "/register" => Endpoint::Register,
        "/authorize" => Endpoint::Authorize,
        "/consent" => Endpoint::Consent,
        "/token" => Endpoint::Token,
        _ => return None,
    })
}

/// Does this endpoint read the request body (the glue must wait for it)?
pub fn needs_body(endpoint: Endpoint) -> bool {
    matches!(
        endpoint,
        Endpoint::Register | Endpoint::Consent | Endpoint::Token
    )
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response::oauth_error(405, "invalid_request", "method not allowed").header("allow", allow)
}

/// CORS preflight for the endpoints browser-based clients call with fetch.
fn preflight(methods: &'static str) -> Response {
    Response::new(204)
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", methods)
        .header(
            "access-control-allow-headers",
            "Authorization, Content-Type, MCP-Protocol-Version",
        )
        .header("access-control-max-age", "86400")
}

/// Answers a request for `endpoint` (from [`route`]).
pub fn handle(
    ctx: &mut Ctx<'_>,
    endpoint: Endpoint,
    req: &Request<'_>,
    already_used: &dyn Fn(&Used) -> bool,
) -> Outcome {
    let respond = Outcome::Respond;
    match (endpoint, req.method) {
        (Endpoint::Metadata, "GET" | "HEAD") => respond(metadata::respond(ctx.settings)),
        (Endpoint::Metadata, "OPTIONS") => respond(preflight("GET, OPTIONS")),
        (Endpoint::Metadata, _) => respond(method_not_allowed("GET, HEAD, OPTIONS")),
        (Endpoint::Register, "POST") => respond(register::register(ctx, req.body)),
        (Endpoint::Register, "OPTIONS") => respond(preflight("POST, OPTIONS")),
        (Endpoint::Register, _) => respond(method_not_allowed("POST, OPTIONS")),
        (Endpoint::Authorize, "GET") => respond(authorize::authorize(ctx, req)),
        (Endpoint::Authorize, _) => respond(method_not_allowed("GET")),
        (Endpoint::Consent, "POST") => respond(consent::submit(ctx, req)),
        (Endpoint::Consent, _) => respond(method_not_allowed("POST")),
        (Endpoint::Callback, "GET") => respond(callback::callback(ctx, req)),
        (Endpoint::Callback, _) => respond(method_not_allowed("GET")),
        (Endpoint::Token, "POST") => match token::token(ctx, req, already_used) {
            TokenOutcome::Respond(r) => respond(r),
            TokenOutcome::Upstream(call) => Outcome::Upstream(call),
        },
        (Endpoint::Token, "OPTIONS") => respond(preflight("POST, OPTIONS")),
        (Endpoint::Token, _) => respond(method_not_allowed("POST, OPTIONS")),
    }
}
