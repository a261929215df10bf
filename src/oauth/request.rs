//! What every endpoint gets: the request parts it may read, and the context (settings,
//! keys, time, randomness) it runs in.

use super::random::Random;
use super::seal::Keys;
use super::settings::Settings;

/// The parts of a request the façade reads. Header names are the glue's business; only the
/// values arrive here.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `:path`, query included.
    pub path: &'a str,
    /// Every `Cookie` header value.
    pub cookies: &'a [&'a str],
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// The query string (without `?`; empty when absent).
    pub fn query(&self) -> &'a str {
        super::form::split_path(self.path).1
    }
}

/// Everything else an endpoint may use.
pub struct Ctx<'a> {
    pub settings: &'a Settings,
    pub keys: &'a Keys,
    /// Unix seconds.
    pub now: u64,
    pub rng: &'a mut dyn Random,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("settings", &self.settings)
            .field("keys", &self.keys)
            .field("now", &self.now)
            .finish()
    }
}
