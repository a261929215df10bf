//! Host glue of the sign-in façade (`oauth`, configured by `authorization_server`): the
//! request's parts in, `oauth::handle`, then a local answer or the upstream token callout.
//! Nothing here decides anything: the core does, this moves bytes, time and randomness.
//!
//! Single-use ids (façade codes, refresh tokens) are recorded in Envoy shared data, in two
//! fixed rings of slots, `mcp_edge_auth.facade.used.code.<0..16>` and
//! `mcp_edge_auth.facade.used.refresh.<0..128>` (`oauth::used`: an id goes to the slot of
//! its expiry's time bucket; a slot holds (id digest, expiry) pairs and drops expired ones
//! on every write). The slots are created empty when a VM is configured, before it serves.
//! Recording reads the slot with its CAS token, lets `oauth::used::record` decide, and
//! writes with that token: a write that loses a race is retried on the new value (up to
//! [`CAS_ATTEMPTS`] times), so two simultaneous uses of one code cannot both pass — the
//! second finds the first's entry. A full slot, a slot that cannot be read, or a record
//! that keeps losing races refuses the request (503 `temporarily_unavailable`, one log
//! line), never redeems it unrecorded. Memory is bounded by the rings (at most about 6 MB
//! when every slot is full).
//!
//! Shared data is per Envoy process (all worker VMs with this vm_id), so a replay is
//! refused on this Envoy. Across replicas only the IdP's own single-use code refuses a
//! façade code replayed at another replica; a façade refresh token replayed at another
//! replica is refused there only if the IdP rotates refresh tokens.

//!
//! With `upstream.discovery`, the root context's [`MetadataFetcher`] fetches the upstream's
//! metadata document by callout (on the first tick, again after `cache_duration`, after a
//! failure with backoff) and puts the settings built from its endpoints into the
//! [`UpstreamState`] the request contexts read. Each worker VM fetches for itself, and the
//! accepted endpoints also go to shared data ([`ENDPOINTS_PREFIX`]), where a VM whose own
//! fetch has not finished finds them. Until a
//! document was accepted, `/authorize`, `/consent` and `/token` answer 503 (a page, or the
//! JSON error `temporarily_unavailable`) with a log line giving the last fetch error.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::host::{self, Metrics};
use crate::config::{authority_and_path, Config, Facade, UpstreamDiscovery};
use crate::http::headers::Headers;
use crate::oauth::discovery::{self, Schedule};
use crate::oauth::random::{NoRandomness, Random};
use crate::oauth::settings::Settings;
use crate::oauth::used::{self as ledger, Record, Ring};
use crate::oauth::{self, page, Continuation, Ctx, Endpoint, Outcome, Request, Response, Used};

/// Shared-data key prefix of the used-id slots (`<prefix><ring>.<slot>`).
pub const USED_PREFIX: &str = "mcp_edge_auth.facade.used.";

/// Reads and compare-and-swap writes one record may take before it gives up (fails closed).
pub const CAS_ATTEMPTS: usize = 8;

/// Shared-data key prefix (then the document's URL) of the endpoints the last accepted
/// upstream metadata document named: `<authorization_endpoint>\n<token_endpoint>`. A VM
/// that has not fetched the document itself yet takes them from there.
pub const ENDPOINTS_PREFIX: &str = "mcp_edge_auth.facade.upstream_endpoints.";

/// Upstream token responses larger than this are treated as unreadable.
const MAX_TOKEN_RESPONSE: usize = 256 * 1024;

/// WASI `random_get` (Envoy's V8 host implements it with its own CSPRNG).
struct WasiRandom;

impl Random for WasiRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NoRandomness> {
        getrandom::getrandom(buf).map_err(|_| NoRandomness)
    }
}

/// The upstream endpoints in use: the configured ones, or those of the fetched metadata.
pub struct Live {
    pub settings: Settings,
    /// The token callout's `:authority` and `:path`.
    pub token_authority: String,
    pub token_path: String,
}

/// What the request contexts of this VM read: the endpoints in use (none yet with
/// `discovery` before a document was accepted) and why the last fetch failed.
#[derive(Default)]
pub struct UpstreamState {
    pub live: Option<Rc<Live>>,
    pub last_error: Option<String>,
}

pub type SharedUpstream = Rc<RefCell<UpstreamState>>;

/// The state at configuration: the configured endpoints, or none until discovery.
pub fn initial_upstream(f: Option<&Facade>) -> SharedUpstream {
    let live = f.filter(|f| f.discovery.is_none()).map(|f| {
        Rc::new(Live {
            settings: f.settings.clone(),
            token_authority: f.token_authority.clone(),
            token_path: f.token_path.clone(),
        })
    });
    Rc::new(RefCell::new(UpstreamState {
        live,
        last_error: None,
    }))
}

/// A token callout on its way: its answer goes through `then`.
pub struct Pending {
    pub token: u32,
    pub then: Continuation,
    pub started_ms: u64,
    /// The endpoints the call was made with.
    pub live: Rc<Live>,
}

fn name(e: Endpoint) -> &'static str {
    match e {
        Endpoint::Metadata => "metadata",
        Endpoint::Register => "register",
        Endpoint::Authorize => "authorize",
        Endpoint::Consent => "consent",
        Endpoint::Callback => "callback",
        Endpoint::Token => "token",
    }
}

/// Counts `mcp_edge_auth.facade.<endpoint>.<status class>`.
fn count(metrics: &Metrics, e: Endpoint, status: u16) {
    let label = match (e, status / 100) {
        (Endpoint::Metadata, 2) => "metadata.2xx",
        (Endpoint::Metadata, _) => "metadata.error",
        (Endpoint::Register, 2) => "register.2xx",
        (Endpoint::Register, 4) => "register.4xx",
        (Endpoint::Register, _) => "register.error",
        (Endpoint::Authorize, 2) => "authorize.consent_page",
        (Endpoint::Authorize, 3) => "authorize.redirect",
        (Endpoint::Authorize, _) => "authorize.4xx",
        (Endpoint::Consent, 3) => "consent.redirect",
        (Endpoint::Consent, _) => "consent.refused",
        (Endpoint::Callback, 3) => "callback.redirect",
        (Endpoint::Callback, _) => "callback.refused",
        (Endpoint::Token, 2) => "token.2xx",
        (Endpoint::Token, 4) => "token.4xx",
        (Endpoint::Token, _) => "token.5xx",
    };
    metrics.increment_labeled("mcp_edge_auth.facade.", label);
}

/// Sends a façade response.
pub fn send(r: &Response) {
    let headers: Vec<(&str, Cow<'_, str>)> = r
        .headers
        .iter()
        .map(|(n, v)| (*n, Cow::Borrowed(v.as_str())))
        .collect();
    host::send_response(r.status, &headers, &r.body);
}

/// Creates every used-id slot that does not exist yet (empty). Called when a VM is
/// configured, before it serves: a slot is then never missing when a request records into
/// it, so every write there is a compare-and-swap (Envoy ignores the CAS token of a write
/// to a missing key).
pub fn init_used_slots(f: &Facade) {
    let ttl = &f.settings.spec.ttl;
    for ring in [Ring::code(ttl), Ring::refresh(ttl)] {
        for slot in 0..ring.slots {
            let key = ring.key(USED_PREFIX, slot);
            if host::shared_get(&key).0.is_none() {
                host::shared_set(&key, &ledger::empty(), None);
            }
        }
    }
}

fn used_slot(f: &Facade, used: &Used) -> (Ring, String) {
    let ring = Ring::of(used.kind, &f.settings.spec.ttl);
    let key = ring.key(USED_PREFIX, ring.slot(&used.id, used.expires_at));
    (ring, key)
}

/// The core's early check (an unreadable or missing slot reads as used: fail closed).
fn already_used(f: &Facade, used: &Used, now: u64) -> bool {
    let (_, key) = used_slot(f, used);
    match host::shared_get(&key).0 {
        Some(v) => ledger::refused(&v, &used.id, used.generation, now),
        None => true,
    }
}

/// Why an id could not be recorded.
enum NotRecorded {
    Replay,
    /// A refresh token replayed: its family is revoked now.
    Revoked,
    Refused(&'static str),
}

/// Records `used` atomically: read with the CAS token, decide, write with that token.
fn record_used(f: &Facade, used: &Used, now: u64) -> Result<(), NotRecorded> {
    let (ring, key) = used_slot(f, used);
    for _ in 0..CAS_ATTEMPTS {
        let (value, cas) = host::shared_get(&key);
        let (Some(value), Some(cas)) = (value, cas) else {
            return Err(NotRecorded::Refused("its slot does not exist"));
        };
        match ledger::record(
            &ring,
            &value,
            &used.id,
            used.generation,
            used.expires_at,
            now,
        ) {
            Record::Added(bytes) => {
                if host::shared_set(&key, &bytes, Some(cas)) {
                    return Ok(());
                }
                // Another worker wrote the slot since the read: decide again on its value.
            }
            Record::Replay(None) => return Err(NotRecorded::Replay),
            Record::Replay(Some(revoking)) => {
                if host::shared_set(&key, &revoking, Some(cas)) {
                    log::warn!(
                        "façade token: a refresh token was used twice; every refresh token \
                         of its sign-in is revoked (RFC 9700 §4.14.2), the client must sign in \
                         again"
                    );
                    return Err(NotRecorded::Revoked);
                }
            }
            Record::Full => return Err(NotRecorded::Refused("its slot is full")),
            Record::Unreadable => return Err(NotRecorded::Refused("its slot is unreadable")),
        }
    }
    Err(NotRecorded::Refused(
        "its slot kept changing under concurrent writes",
    ))
}

/// What the request context does next.
pub enum Step {
    /// Answered (or refused): the request stops here.
    Done,
    /// A token callout is on its way.
    Calling(Pending),
}

/// The endpoints that send to or call the upstream.
fn needs_upstream(e: Endpoint) -> bool {
    matches!(e, Endpoint::Authorize | Endpoint::Consent | Endpoint::Token)
}

/// The answer while the upstream's metadata has not been fetched (503).
fn upstream_unknown(f: &Facade, metrics: &Metrics, endpoint: Endpoint, last_error: Option<&str>) {
    let uri = f.discovery.as_ref().map_or("", |d| d.uri.as_str());
    log::warn!(
        "façade {}: answering 503: the upstream's metadata ({uri}) has not been fetched yet \
         (last attempt: {})",
        name(endpoint),
        last_error.unwrap_or("none finished yet")
    );
    metrics.increment("mcp_edge_auth.facade.upstream_metadata_missing");
    let r = if endpoint == Endpoint::Token {
        Response::oauth_error(
            503,
            "temporarily_unavailable",
            "the identity provider's metadata (upstream.discovery) has not been fetched yet; \
             try again shortly",
        )
        .header("access-control-allow-origin", "*")
    } else {
        page::error(
            503,
            "Sign-in temporarily unavailable",
            "The identity provider's metadata could not be fetched yet, so sign-in cannot \
             start. Try again in a few seconds; if it persists, the proxy's log says why.",
        )
    }
    .header("retry-after", "5");
    send(&r);
}

/// Runs the façade on a complete request (`body` empty when it had none). `upstream`: the
/// endpoints in use on this VM.
pub fn run(
    f: &Facade,
    upstream: &SharedUpstream,
    metrics: &Metrics,
    endpoint: Endpoint,
    headers: &Headers,
    body: &[u8],
) -> Step {
    let (live, last_error) = {
        let u = upstream.borrow();
        (u.live.clone(), u.last_error.clone())
    };
    let live = match live {
        Some(l) => Some(l),
        // Another worker VM may have fetched the document already.
        None => f.discovery.as_ref().and_then(|d| {
            let (bytes, _) = host::shared_get(&format!("{ENDPOINTS_PREFIX}{}", d.uri));
            let text = String::from_utf8(bytes?).ok()?;
            let (authorization_endpoint, token_endpoint) = text.split_once('\n')?;
            let live = Rc::new(
                live_from(
                    f,
                    discovery::Endpoints {
                        authorization_endpoint: authorization_endpoint.to_string(),
                        token_endpoint: token_endpoint.to_string(),
                    },
                )
                .ok()?,
            );
            upstream.borrow_mut().live = Some(Rc::clone(&live));
            Some(live)
        }),
    };
    if live.is_none() && needs_upstream(endpoint) {
        upstream_unknown(f, metrics, endpoint, last_error.as_deref());
        return Step::Done;
    }
    // Metadata, registration and the callback never touch the upstream's endpoints.
    let settings = live.as_ref().map_or(&f.settings, |l| &l.settings);
    let cookies: Vec<&str> = headers.all("cookie").collect();
    let req = Request {
        method: headers.get(":method").unwrap_or(""),
        path: headers.get(":path").unwrap_or(""),
        cookies: &cookies,
        origin: headers.get("origin"),
        sec_fetch_site: headers.get("sec-fetch-site"),
        content_type: headers.get("content-type"),
        authorization: headers.get("authorization"),
        body,
    };
    let now_ms = host::now_millis();
    let now = now_ms / 1000;
    let mut rng = WasiRandom;
    let mut ctx = Ctx {
        settings,
        keys: &f.keys,
        now,
        rng: &mut rng,
    };
    let outcome = oauth::handle(&mut ctx, endpoint, &req, &|u| already_used(f, u, now));
    match outcome {
        Outcome::Respond(r) => {
            count(metrics, endpoint, r.status);
            log::debug!("façade {}: {}", name(endpoint), r.status);
            send(&r);
            Step::Done
        }
        Outcome::Upstream(call) => {
            let Some(live) = live else {
                upstream_unknown(f, metrics, endpoint, last_error.as_deref());
                return Step::Done;
            };
            let used = &call.mark_used;
            if let Err(e) = record_used(f, used, now) {
                let r = match e {
                    NotRecorded::Replay => oauth::token::replayed(used),
                    NotRecorded::Revoked => {
                        metrics.increment("mcp_edge_auth.facade.refresh_family_revoked");
                        oauth::token::replayed(used)
                    }
                    NotRecorded::Refused(why) => {
                        let ring = Ring::of(used.kind, &f.settings.spec.ttl);
                        log::error!(
                            "façade token: a used {} id could not be recorded ({why}; \
                             {} slots of {} ids); refusing the request with 503",
                            ring.name,
                            ring.slots,
                            ring.capacity
                        );
                        metrics.increment("mcp_edge_auth.facade.used_unrecorded");
                        oauth::token::unrecorded()
                    }
                };
                count(metrics, endpoint, r.status);
                send(&r);
                return Step::Done;
            }
            let mut hs: Vec<(&str, &str)> = Vec::with_capacity(call.headers.len() + 3);
            hs.push((":method", "POST"));
            hs.push((":path", &live.token_path));
            hs.push((":authority", &live.token_authority));
            for (n, v) in &call.headers {
                hs.push((n, v.as_str()));
            }
            match host::dispatch(&f.token_cluster, hs, &call.body, f.token_timeout_ms) {
                Ok(token) => Step::Calling(Pending {
                    token,
                    then: call.then,
                    started_ms: now_ms,
                    live,
                }),
                Err(e) => {
                    log::error!("façade token: the upstream token request was not sent: {e}");
                    metrics.increment("mcp_edge_auth.facade.upstream_unreachable");
                    let r = Response::oauth_error(
                        503,
                        "temporarily_unavailable",
                        "the identity provider's token endpoint could not be called (Envoy \
                         refused the callout; see the proxy log)",
                    )
                    .header("access-control-allow-origin", "*");
                    count(metrics, endpoint, r.status);
                    send(&r);
                    Step::Done
                }
            }
        }
    }
}

/// The answer to the token callout (`status`/`body` as the host gave them).
pub fn finish(f: &Facade, metrics: &Metrics, pending: Pending, body_size: usize) {
    let (status, body) = host::call_response(body_size, MAX_TOKEN_RESPONSE);
    let now_ms = host::now_millis();
    let elapsed = now_ms.saturating_sub(pending.started_ms);
    let status = status.and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
    let body = body.unwrap_or_default();
    // Envoy's own 503 when it could not connect (its local reply, not the IdP's answer).
    let envoy_local = status == 503
        && (body.starts_with(b"upstream connect error")
            || body.starts_with(b"no healthy upstream"));
    let r = if status == 0 || envoy_local {
        // No HTTP answer from the IdP: connection failure, reset, or the callout's timeout.
        let timed_out = status == 0 && elapsed >= f.token_timeout_ms;
        metrics.increment("mcp_edge_auth.facade.upstream_unreachable");
        log::error!(
            "façade token: no answer from the upstream token endpoint (cluster {}) after {} ms: {}",
            f.token_cluster,
            elapsed,
            if timed_out {
                "upstream.token_endpoint.timeout reached"
            } else if envoy_local {
                "connection failed (Envoy answered 503 itself)"
            } else {
                "connection failed or reset"
            }
        );
        let description = if timed_out {
            "the identity provider's token endpoint did not answer in time"
        } else {
            "the identity provider's token endpoint could not be reached"
        };
        Response::oauth_error(
            if timed_out { 504 } else { 502 },
            "server_error",
            description,
        )
        .header("access-control-allow-origin", "*")
    } else {
        if status != 200 {
            metrics.increment("mcp_edge_auth.facade.upstream_error");
            log::warn!(
                "façade token: the upstream token endpoint (cluster {}) answered HTTP {status} \
                 after {elapsed} ms",
                f.token_cluster
            );
        } else {
            metrics.increment("mcp_edge_auth.facade.upstream_ok");
        }
        let mut rng = WasiRandom;
        let mut ctx = Ctx {
            settings: &pending.live.settings,
            keys: &f.keys,
            now: now_ms / 1000,
            rng: &mut rng,
        };
        pending.then.finish(&mut ctx, status, &body)
    };
    count(metrics, Endpoint::Token, r.status);
    log::debug!("façade token: {}", r.status);
    send(&r);
}

/// The answer when a façade request's body did not arrive in time.
pub fn body_not_arrived(metrics: &Metrics, endpoint: Endpoint) {
    log::error!(
        "façade {}: the request body did not reach the filter within \
         authorization_server.body_timeout; refusing it. If no body ever arrives, the Wasm \
         filter needs allow_on_headers_stop_iteration: true",
        name(endpoint)
    );
    let r = Response::oauth_error(
        408,
        "invalid_request",
        "the request body did not arrive in time",
    );
    count(metrics, endpoint, r.status);
    send(&r);
}

/// The answer to a façade request whose body is over the limit.
pub fn too_large(metrics: &Metrics, endpoint: Endpoint, limit: usize) {
    let r = Response::oauth_error(
        413,
        "invalid_request",
        &format!("the request body exceeds the {limit}-byte limit"),
    );
    count(metrics, endpoint, r.status);
    send(&r);
}

/// The settings for endpoints a metadata document named (the core checks them again).
fn live_from(f: &Facade, endpoints: discovery::Endpoints) -> Result<Live, String> {
    let mut spec = f.settings.spec.clone();
    spec.upstream.authorization_endpoint = endpoints.authorization_endpoint;
    spec.upstream.token_endpoint = endpoints.token_endpoint;
    let (token_authority, token_path) = authority_and_path(&spec.upstream.token_endpoint);
    let settings = Settings::new(spec).map_err(|e| format!("the endpoints it names: {e}"))?;
    Ok(Live {
        settings,
        token_authority,
        token_path,
    })
}

/// Root-context side of `upstream.discovery`: fetches the upstream's metadata document and
/// keeps this VM's [`UpstreamState`] current.
pub struct MetadataFetcher {
    config: Rc<Config>,
    discovery: UpstreamDiscovery,
    upstream: SharedUpstream,
    metrics: Rc<Metrics>,
    schedule: Schedule,
    in_flight: Option<u32>,
}

impl MetadataFetcher {
    /// `None` unless the configuration has a façade with `upstream.discovery`.
    pub fn new(
        config: Rc<Config>,
        upstream: SharedUpstream,
        metrics: Rc<Metrics>,
    ) -> Option<MetadataFetcher> {
        let discovery = config.facade()?.discovery.clone()?;
        Some(MetadataFetcher {
            config,
            discovery,
            upstream,
            metrics,
            schedule: Schedule::default(),
            in_flight: None,
        })
    }

    pub fn tick(&mut self, now_ms: u64) {
        if !self.schedule.due(now_ms) {
            return;
        }
        let d = &self.discovery;
        match host::dispatch_get(&d.cluster, &d.target.request_headers(), d.timeout_ms) {
            Ok(token) => {
                self.in_flight = Some(token);
                self.schedule.started(now_ms);
            }
            Err(e) => self.failed(now_ms, format!("callout not sent: {e}")),
        }
    }

    /// The answer to a callout; `false` when it was not this fetcher's.
    pub fn on_response(&mut self, token: u32, body_size: usize, now_ms: u64) -> bool {
        if self.in_flight != Some(token) {
            return false;
        }
        self.in_flight = None;
        let limit = self.discovery.max_response_bytes;
        let (status, body) = host::call_response(body_size, limit);
        let status = status.and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        let body = body.unwrap_or_default();
        let envoy_local = status == 503
            && (body.starts_with(b"upstream connect error")
                || body.starts_with(b"no healthy upstream"));
        let status = if envoy_local { 0 } else { status };
        let result = if status == 200 && body_size > limit {
            Err(format!(
                "response of {body_size} bytes exceeds the {limit}-byte limit \
                 (upstream.discovery.max_response_bytes)"
            ))
        } else {
            self.accept(status, &body)
        };
        match result {
            Ok(live) => {
                let changed = self.upstream.borrow().live.as_ref().is_none_or(|old| {
                    old.settings.spec.upstream.authorization_endpoint
                        != live.settings.spec.upstream.authorization_endpoint
                        || old.settings.spec.upstream.token_endpoint
                            != live.settings.spec.upstream.token_endpoint
                });
                if changed {
                    log::info!(
                        "sign-in façade: upstream metadata from {}: authorization_endpoint {}, \
                         token_endpoint {} (token callouts via cluster {})",
                        self.discovery.uri,
                        live.settings.spec.upstream.authorization_endpoint,
                        live.settings.spec.upstream.token_endpoint,
                        self.config
                            .facade()
                            .map_or("", |f| f.token_cluster.as_str())
                    );
                }
                self.metrics
                    .increment("mcp_edge_auth.facade.upstream_metadata_ok");
                let mut u = self.upstream.borrow_mut();
                u.live = Some(Rc::new(live));
                u.last_error = None;
                drop(u);
                self.schedule.succeeded(now_ms, self.discovery.refresh_ms);
            }
            Err(e) => self.failed(now_ms, e),
        }
        true
    }

    /// Checks the document and builds the settings from its endpoints.
    fn accept(&self, status: u16, body: &[u8]) -> Result<Live, String> {
        let Some(f) = self.config.facade() else {
            return Err("no façade configured".into());
        };
        let d = &self.discovery;
        let rules = discovery::Rules {
            document_uri: &d.uri,
            issuer: d.issuer.as_deref(),
            token_cluster_set: d.token_cluster_set,
            max_bytes: d.max_response_bytes,
        };
        let endpoints = discovery::parse(status, body, &rules).map_err(|e| e.to_string())?;
        let shared = format!(
            "{}\n{}",
            endpoints.authorization_endpoint, endpoints.token_endpoint
        );
        let live = live_from(f, endpoints)?;
        host::shared_set(
            &format!("{ENDPOINTS_PREFIX}{}", d.uri),
            shared.as_bytes(),
            None,
        );
        Ok(live)
    }

    fn failed(&mut self, now_ms: u64, error: String) {
        let jitter = f64::from(host::clock_nanos() % 1000) / 1000.0;
        let delay = self.schedule.failed(now_ms, jitter);
        self.metrics
            .increment("mcp_edge_auth.facade.upstream_metadata_error");
        let have = self.upstream.borrow().live.is_some();
        let d = &self.discovery;
        let line = format!(
            "sign-in façade: upstream metadata {} via cluster {}: {error}; {}retrying in {} ms",
            d.uri,
            d.cluster,
            if have {
                "keeping the endpoints fetched before; "
            } else {
                "/authorize and /token answer 503 until it succeeds; "
            },
            delay
        );
        if have {
            log::warn!("{line}");
        } else {
            log::error!("{line}");
        }
        self.upstream.borrow_mut().last_error = Some(error);
    }
}
