//! The consent step (the MCP spec's confused-deputy rule: a proxy with one upstream client
//! id must ask the user before forwarding any dynamically registered client).
//!
//! - The page names the client (as it named itself), the host the browser will be sent to,
//!   the full redirect URI and the scopes; it is never framed (`X-Frame-Options: DENY`,
//!   `frame-ancestors 'none'`).
//! - CSRF: double submit. Each rendering draws a token, puts it in the form, in a cookie
//!   named for that rendering (several tabs don't clash) and inside the sealed request; a
//!   POST must bring all three, equal. A POST with an `Origin` that is not the façade's is
//!   refused too.
//! - Approve: a fresh binding value goes into a cookie and into the sealed upstream `state`;
//!   the callback refuses a state whose binding cookie this browser does not have (someone
//!   else's approved sign-in link sent to a victim). Then the browser goes to the IdP with
//!   the façade's own client id, callback and PKCE pair.
//! - Mode `remember`: approval also sets a sealed per-client cookie; later requests from
//!   the same client skip the page only when `Sec-Fetch-Site` says the navigation is not
//!   cross-site (`same-origin`, `same-site`, `none`), so a malicious site cannot bounce a
//!   user through a remembered approval.

use serde_json::{Map, Value};

use super::cookie;
use super::ct;
use super::form;
use super::page::{self, escape};
use super::pending::{error_redirect, Pending};
use super::pkce;
use super::random::{self, NoRandomness};
use super::redirect;
use super::request::{Ctx, Request};
use super::response::Response;
use super::scopes;
use super::seal::fields::{self, put};
use super::seal::{Kind, Sealed};
use super::settings::ConsentMode;

const CSRF_COOKIE: &str = "mcp-csrf-";
const BIND_COOKIE: &str = "mcp-bind-";
const APPROVAL_COOKIE: &str = "mcp-ok-";

/// The upstream `state`: everything the callback needs, sealed. `Debug` leaves out the
/// verifier and the binding value.
#[derive(Clone, PartialEq, Eq)]
pub struct Flow {
    pub client: String,
    pub redirect_uri: String,
    pub redirect_given: bool,
    pub state: Option<String>,
    pub challenge: String,
    /// The façade's PKCE verifier for the upstream leg.
    pub verifier: String,
    pub scopes: Vec<String>,
    /// The binding value its cookie must carry.
    pub binding: String,
    /// Names the binding cookie.
    pub cookie_id: String,
}

/// Sealed as `{"c", "r", "g", "s", "h", "v", "o", "b", "k"}` (`s` may be absent).
impl Sealed for Flow {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "c", self.client.as_str());
        put(&mut m, "r", self.redirect_uri.as_str());
        put(&mut m, "g", self.redirect_given);
        put(&mut m, "s", self.state.as_deref());
        put(&mut m, "h", self.challenge.as_str());
        put(&mut m, "v", self.verifier.as_str());
        put(&mut m, "o", self.scopes.as_slice());
        put(&mut m, "b", self.binding.as_str());
        put(&mut m, "k", self.cookie_id.as_str());
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Flow> {
        Some(Flow {
            client: fields::string(m, "c")?,
            redirect_uri: fields::string(m, "r")?,
            redirect_given: fields::boolean(m, "g")?,
            state: fields::opt_string(m, "s")?,
            challenge: fields::string(m, "h")?,
            verifier: fields::string(m, "v")?,
            scopes: fields::strings(m, "o")?,
            binding: fields::string(m, "b")?,
            cookie_id: fields::string(m, "k")?,
        })
    }
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("client", &self.client)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("cookie_id", &self.cookie_id)
            .finish_non_exhaustive()
    }
}

struct Approval {
    client: String,
}

/// Sealed as `{"c"}`.
impl Sealed for Approval {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "c", self.client.as_str());
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Approval> {
        Some(Approval {
            client: fields::string(m, "c")?,
        })
    }
}

/// The binding cookie's base name for a flow.
pub fn bind_cookie(cookie_id: &str) -> String {
    format!("{BIND_COOKIE}{cookie_id}")
}

fn approval_cookie(client: &str) -> String {
    format!("{APPROVAL_COOKIE}{}", client.get(..16).unwrap_or(client))
}

/// Did this browser approve this client before, and is this navigation not cross-site?
pub fn remembered(ctx: &Ctx<'_>, req: &Request<'_>, client: &str) -> bool {
    let site_ok = matches!(
        req.sec_fetch_site,
        Some("same-origin" | "same-site" | "none")
    );
    if !site_ok {
        return false;
    }
    let name = approval_cookie(client);
    let Some(value) = cookie::get(req.cookies, &name, ctx.settings.secure) else {
        return false;
    };
    ctx.keys
        .open_json::<Approval>(Kind::Approval, value, ctx.now)
        .is_ok_and(|(a, _)| ct::eq(a.client.as_bytes(), client.as_bytes()))
}

/// Renders the consent page for a checked request.
pub fn show(ctx: &mut Ctx<'_>, mut pending: Pending) -> Result<Response, NoRandomness> {
    let settings = ctx.settings;
    pending.csrf = random::token(ctx.rng)?;
    pending.cookie_id = random::token(ctx.rng)?.chars().take(11).collect();
    let expiry = ctx.now.saturating_add(settings.spec.ttl.state);
    let sealed = ctx
        .keys
        .seal_json(Kind::ConsentRequest, expiry, &pending, ctx.rng)?;
    let target = redirect::check(&pending.redirect_uri).ok();
    let host = target
        .as_ref()
        .map(|t| t.host_display())
        .unwrap_or_default();
    let loopback = target.as_ref().is_some_and(|t| t.loopback);
    let name = match &pending.name {
        Some(n) => format!("<strong>{}</strong>", escape(n)),
        None => "An unnamed application".into(),
    };
    let where_to = if host.is_empty() {
        format!(
            "the application <strong>{}</strong>",
            escape(&pending.redirect_uri)
        )
    } else {
        format!("<strong>{}</strong>", escape(&host))
    };
    let local = if loopback {
        "<p>That address is on this computer: a desktop or command-line application.</p>"
    } else {
        ""
    };
    let scope_items: String = if pending.scopes.is_empty() {
        "<li>basic sign-in</li>".into()
    } else {
        pending
            .scopes
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect()
    };
    let body = format!(
        "<p>{name} (the name is chosen by the application and not verified) asks to use <strong>{resource}</strong> with your account.</p>\
<p>After you sign in you will be sent to {where_to}:<br><code>{uri}</code></p>{local}\
<p>Permissions:</p><ul>{scope_items}</ul>\
<p>Approve only if you started this sign-in yourself.</p>\
<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"request\" value=\"{sealed}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" name=\"action\" value=\"approve\">Approve</button><button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
        resource = escape(&settings.spec.resource),
        uri = escape(&pending.redirect_uri),
        action = escape(&settings.endpoint_path("/consent")),
        sealed = escape(&sealed),
        csrf = escape(&pending.csrf),
    );
    let set = cookie::set(
        &format!("{CSRF_COOKIE}{}", pending.cookie_id),
        &pending.csrf,
        settings.secure,
        settings.spec.ttl.state,
    );
    Ok(page::page(200, "Allow access?", &body).header("set-cookie", set))
}

/// Approval: binding cookie, sealed state, redirect to the upstream authorization endpoint.
pub fn approve(
    ctx: &mut Ctx<'_>,
    pending: &Pending,
    status: u16,
) -> Result<Response, NoRandomness> {
    let settings = ctx.settings;
    let up = &settings.spec.upstream;
    let verifier = pkce::new_verifier(ctx.rng)?;
    let flow = Flow {
        client: pending.client.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_given: pending.redirect_given,
        state: pending.state.clone(),
        challenge: pending.challenge.clone(),
        verifier,
        scopes: pending.scopes.clone(),
        binding: random::token(ctx.rng)?,
        cookie_id: random::token(ctx.rng)?.chars().take(11).collect(),
    };
    let ttl = settings.spec.ttl;
    let state = ctx.keys.seal_json(
        Kind::State,
        ctx.now.saturating_add(ttl.state),
        &flow,
        ctx.rng,
    )?;
    let scope = scopes::to_upstream(&flow.scopes, up.scope_prefix.as_deref(), &up.extra_scopes);
    let challenge = pkce::s256(&flow.verifier);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &up.client_id),
        ("redirect_uri", &settings.callback_url),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    if !scope.is_empty() {
        pairs.push(("scope", &scope));
    }
    if up.send_resource {
        pairs.push(("resource", &settings.spec.resource));
    }
    for (n, v) in &up.authorize_params {
        pairs.push((n, v));
    }
    let location = form::append_query(&up.authorization_endpoint, &pairs);
    let mut r = Response::redirect(status, location).header(
        "set-cookie",
        cookie::set(
            &bind_cookie(&flow.cookie_id),
            &flow.binding,
            settings.secure,
            ttl.state,
        ),
    );
    if !pending.cookie_id.is_empty() {
        r = r.header(
            "set-cookie",
            cookie::clear(
                &format!("{CSRF_COOKIE}{}", pending.cookie_id),
                settings.secure,
            ),
        );
    }
    if settings.spec.consent == ConsentMode::Remember {
        let approval = Approval {
            client: pending.client.clone(),
        };
        let sealed = ctx.keys.seal_json(
            Kind::Approval,
            ctx.now.saturating_add(ttl.approval),
            &approval,
            ctx.rng,
        )?;
        r = r.header(
            "set-cookie",
            cookie::set(
                &approval_cookie(&pending.client),
                &sealed,
                settings.secure,
                ttl.approval,
            ),
        );
    }
    Ok(r)
}

fn refused(status: u16, message: &str) -> Response {
    page::error(status, "Consent not accepted", message)
}

/// `POST /consent` (form body: `request`, `csrf`, `action`).
pub fn submit(ctx: &mut Ctx<'_>, req: &Request<'_>) -> Response {
    let settings = ctx.settings;
    if let Some(origin) = req.origin {
        if origin != settings.origin {
            return refused(403, "This form was sent from another site.");
        }
    }
    let params = match form::parse(req.body) {
        Ok(p) => p,
        Err(e) => return refused(400, &e.describe()),
    };
    let Some(sealed) = params.get("request") else {
        return refused(400, "The consent form is incomplete.");
    };
    let pending = match ctx
        .keys
        .open_json::<Pending>(Kind::ConsentRequest, sealed, ctx.now)
    {
        Ok((p, _)) => p,
        Err(_) => {
            return refused(
                400,
                "This consent form has expired or is not valid. Start the sign-in again from the application.",
            )
        }
    };
    let cookie_name = format!("{CSRF_COOKIE}{}", pending.cookie_id);
    let from_cookie = cookie::get(req.cookies, &cookie_name, settings.secure).unwrap_or("");
    let from_form = params.get("csrf").unwrap_or("");
    let csrf_ok = !pending.csrf.is_empty()
        && ct::eq(from_cookie.as_bytes(), pending.csrf.as_bytes())
        && ct::eq(from_form.as_bytes(), pending.csrf.as_bytes());
    if !csrf_ok {
        return refused(
            403,
            "The consent check failed (missing or mismatched form token). Start the sign-in again from the application.",
        );
    }
    // Re-check before redirecting: the allow-list may have changed since.
    if let Err(e) = settings.redirects.allows(&pending.redirect_uri) {
        return refused(400, e.describe());
    }
    match params.get("action") {
        Some("approve") => approve(ctx, &pending, 303).unwrap_or_else(|_| {
            refused(500, "The server could not complete the request; try again.")
        }),
        Some("deny") => error_redirect(
            settings,
            303,
            &pending.redirect_uri,
            pending.state.as_deref(),
            "access_denied",
            "the user denied the request",
        )
        .header("set-cookie", cookie::clear(&cookie_name, settings.secure)),
        _ => refused(400, "Choose Approve or Deny."),
    }
}
