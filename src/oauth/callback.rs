//! `GET <callback>`: the IdP sends the browser back here. The sealed `state` must open and
//! be unexpired, and this browser must hold the binding cookie set at approval (else: a
//! sign-in link approved in another browser, 403). The browser then goes to the client's
//! redirect URI (re-checked against the allow-list) with a sealed, short-lived façade code
//! wrapping the upstream code, plus the client's `state` and `iss` (RFC 9207).

use serde_json::{Map, Value};

use super::consent::{bind_cookie, Flow};
use super::cookie;
use super::ct;
use super::form;
use super::page;
use super::pending::error_redirect;
use super::random;
use super::request::{Ctx, Request};
use super::response::Response;
use super::seal::fields::{self, put};
use super::seal::{Kind, PayloadError, SealError, Sealed};
use super::upstream_error;

/// The façade's authorization code, sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    pub upstream_code: String,
    pub client: String,
    pub redirect_uri: String,
    pub redirect_given: bool,
    pub challenge: String,
    pub verifier: String,
    pub scopes: Vec<String>,
    /// Single-use id.
    pub id: String,
}

/// Sealed as `{"u", "c", "r", "g", "h", "v", "o", "j"}`.
impl Sealed for Grant {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "u", self.upstream_code.as_str());
        put(&mut m, "c", self.client.as_str());
        put(&mut m, "r", self.redirect_uri.as_str());
        put(&mut m, "g", self.redirect_given);
        put(&mut m, "h", self.challenge.as_str());
        put(&mut m, "v", self.verifier.as_str());
        put(&mut m, "o", self.scopes.as_slice());
        put(&mut m, "j", self.id.as_str());
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Grant> {
        Some(Grant {
            upstream_code: fields::string(m, "u")?,
            client: fields::string(m, "c")?,
            redirect_uri: fields::string(m, "r")?,
            redirect_given: fields::boolean(m, "g")?,
            challenge: fields::string(m, "h")?,
            verifier: fields::string(m, "v")?,
            scopes: fields::strings(m, "o")?,
            id: fields::string(m, "j")?,
        })
    }
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("client", &self.client)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn failed(status: u16, message: &str) -> Response {
    page::error(status, "Sign-in failed", message)
}

/// `GET <callback>`.
pub fn callback(ctx: &mut Ctx<'_>, req: &Request<'_>) -> Response {
    let settings = ctx.settings;
    let params = match form::parse(req.query().as_bytes()) {
        Ok(p) => p,
        Err(e) => return failed(400, &e.describe()),
    };
    let Some(state) = params.get("state") else {
        return failed(400, "The identity provider's answer has no state.");
    };
    let flow = match ctx.keys.open_json::<Flow>(Kind::State, state, ctx.now) {
        Ok((f, _)) => f,
        Err(PayloadError::Seal(SealError::Expired)) => {
            return failed(
                400,
                "The sign-in took too long. Start it again from the application.",
            )
        }
        Err(_) => return failed(400, "The sign-in state is not valid."),
    };
    let bind_name = bind_cookie(&flow.cookie_id);
    let bound = cookie::get(req.cookies, &bind_name, settings.secure)
        .is_some_and(|v| ct::eq(v.as_bytes(), flow.binding.as_bytes()));
    if !bound {
        return failed(
            403,
            "This sign-in was started in another browser. Finish it in the browser where you approved it.",
        );
    }
    if let Err(e) = settings.redirects.allows(&flow.redirect_uri) {
        return failed(400, e.describe());
    }
    let clear = cookie::clear(&bind_name, settings.secure);
    let client_state = flow.state.as_deref();
    if let Some(error) = params.get("error") {
        let description = upstream_error::describe(error, params.get("error_description"));
        return error_redirect(
            settings,
            302,
            &flow.redirect_uri,
            client_state,
            upstream_error::authorize_error(error),
            &description,
        )
        .header("set-cookie", clear);
    }
    let Some(upstream_code) = params.get("code") else {
        return error_redirect(
            settings,
            302,
            &flow.redirect_uri,
            client_state,
            "server_error",
            "the identity provider returned no code",
        )
        .header("set-cookie", clear);
    };
    let sealed = random::token(ctx.rng).and_then(|id| {
        let grant = Grant {
            upstream_code: upstream_code.to_string(),
            client: flow.client.clone(),
            redirect_uri: flow.redirect_uri.clone(),
            redirect_given: flow.redirect_given,
            challenge: flow.challenge.clone(),
            verifier: flow.verifier.clone(),
            scopes: flow.scopes.clone(),
            id,
        };
        let expiry = ctx.now.saturating_add(settings.spec.ttl.code);
        ctx.keys.seal_json(Kind::Code, expiry, &grant, ctx.rng)
    });
    let Ok(code) = sealed else {
        return failed(500, "The server could not complete the sign-in; try again.");
    };
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", settings.spec.issuer.as_str()));
    Response::redirect(302, form::append_query(&flow.redirect_uri, &pairs))
        .header("set-cookie", clear)
}
