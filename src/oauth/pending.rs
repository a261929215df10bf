//! The authorization request between `/authorize` and the client's redirect: a checked
//! request waiting for consent ([`Pending`], sealed into the consent form and the upstream
//! `state`), the `resource` comparison, and the error redirect back to a verified client URI.

use serde_json::{Map, Value};

use super::form;
use super::response::Response;
use super::seal::fields::{self, put};
use super::seal::Sealed;
use super::settings::Settings;

/// A checked authorization request, waiting for consent (sealed into the consent form).
/// `Debug` leaves out the CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct Pending {
    /// [`client_hash`] of the client id.
    pub client: String,
    pub name: Option<String>,
    pub redirect_uri: String,
    /// The request named `redirect_uri` (then `/token` must name it too).
    pub redirect_given: bool,
    pub state: Option<String>,
    /// The client's S256 `code_challenge`.
    pub challenge: String,
    /// Bare scopes.
    pub scopes: Vec<String>,
    /// CSRF token and cookie id of the consent form (set when the page is shown).
    pub csrf: String,
    pub cookie_id: String,
}

/// Sealed as `{"c", "n", "r", "g", "s", "h", "o", "x", "k"}` (`n`, `s`, `x`, `k` may be
/// absent).
impl Sealed for Pending {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, "c", self.client.as_str());
        put(&mut m, "n", self.name.as_deref());
        put(&mut m, "r", self.redirect_uri.as_str());
        put(&mut m, "g", self.redirect_given);
        put(&mut m, "s", self.state.as_deref());
        put(&mut m, "h", self.challenge.as_str());
        put(&mut m, "o", self.scopes.as_slice());
        put(&mut m, "x", self.csrf.as_str());
        put(&mut m, "k", self.cookie_id.as_str());
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Pending> {
        Some(Pending {
            client: fields::string(m, "c")?,
            name: fields::opt_string(m, "n")?,
            redirect_uri: fields::string(m, "r")?,
            redirect_given: fields::boolean(m, "g")?,
            state: fields::opt_string(m, "s")?,
            challenge: fields::string(m, "h")?,
            scopes: fields::strings(m, "o")?,
            csrf: fields::string_or_empty(m, "x")?,
            cookie_id: fields::string_or_empty(m, "k")?,
        })
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("client", &self.client)
            .field("name", &self.name)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Is `presented` the configured resource (one trailing `/` either way tolerated)?
pub fn resource_matches(presented: &str, configured: &str) -> bool {
    presented == configured || presented.trim_end_matches('/') == configured.trim_end_matches('/')
}

/// A redirect back to the client carrying an error (only for a verified redirect URI).
pub fn error_redirect(
    settings: &Settings,
    status: u16,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", settings.spec.issuer.as_str()));
    Response::redirect(status, form::append_query(redirect_uri, &pairs))
}
