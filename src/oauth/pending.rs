//! The authorization request between `/authorize` and the client's redirect: a checked
//! request waiting for consent ([`Pending`], sealed into the consent form and the upstream
//! `state`), the `resource` comparison, and the error redirect back to a verified client URI.

use serde::{Deserialize, Serialize};

use super::form;
use super::response::Response;
use super::settings::Settings;

/// A checked authorization request, waiting for consent (sealed into the consent form).
/// `Debug` leaves out the CSRF token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// [`client_hash`] of the client id.
    #[serde(rename = "c")]
    pub client: String,
    #[serde(rename = "n", default)]
    pub name: Option<String>,
    #[serde(rename = "r")]
    pub redirect_uri: String,
    /// The request named `redirect_uri` (then `/token` must name it too).
    #[serde(rename = "g")]
    pub redirect_given: bool,
    #[serde(rename = "s", default)]
    pub state: Option<String>,
    /// The client's S256 `code_challenge`.
    #[serde(rename = "h")]
    pub challenge: String,
    /// Bare scopes.
    #[serde(rename = "o")]
    pub scopes: Vec<String>,
    /// CSRF token and cookie id of the consent form (set when the page is shown).
    #[serde(rename = "x", default)]
    pub csrf: String,
    #[serde(rename = "k", default)]
    pub cookie_id: String,
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
