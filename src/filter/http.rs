//! HttpContext: request headers (and, for MCP rules, the body) in → `decide` → local
//! response, continue, or hold the request while keys are fetched or the body arrives.
//!
//! A held request is in [`Shared::holds`], so the root context can finish it (wake-ups,
//! deadlines) and body callbacks never let a held request slip through: only a finished,
//! allowed request returns `Continue`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::facade;
use super::fetcher::update_state;
use super::host::{self, Metrics};
use super::keycache::KeyCache;
use super::waiters::{self, Waiter, Waiters};
use crate::config::Config;
use crate::decide::{
    decide, decide_at, decide_body, jsonrpc_error, BodyCheck, Decision, Forward, Outcome, Request,
    Retry,
};
use crate::http::filter_state::Published;
use crate::http::headers::Headers;
use crate::http::response::Response;
use crate::keys::source::KeySource;
use crate::util::clock::Clock;

/// Why a request is held.
pub enum Phase {
    /// Waiting for keys (cold start or unknown kid); body data is buffered meanwhile.
    Keys,
    /// Token checked; waiting for the whole body to check the MCP messages.
    Body(BodyCheck),
    /// A sign-in façade request (`authorization_server`) waiting for its whole body.
    Facade(crate::oauth::Endpoint),
    /// Answered locally; nothing may pass any more.
    Refused,
}

pub struct Hold {
    pub phase: Phase,
    pub headers: Headers,
    /// The complete body, if it arrived while the request waited for keys
    /// (`Err(size)` when it was over the limit).
    pub body: Option<Result<Vec<u8>, usize>>,
    /// The request had no body at all.
    pub no_body: bool,
    pub body_deadline: Option<u64>,
}

pub type Holds = Rc<RefCell<HashMap<u32, Hold>>>;

/// Everything a request needs from its VM.
#[derive(Clone)]
pub struct Shared {
    pub config: Rc<Config>,
    /// The sign-in façade's upstream endpoints on this VM.
    pub facade_upstream: facade::SharedUpstream,
    pub metrics: Rc<Metrics>,
    pub cache: Rc<KeyCache>,
    pub waiters: Waiters,
    pub holds: Holds,
}

pub struct Http {
    context_id: u32,
    shared: Option<Shared>,
    metrics: Rc<Metrics>,
    /// The request's `Origin`, for the CORS headers of the backend's response.
    origin: Option<String>,
    /// A sign-in façade token callout on its way.
    facade: Option<facade::Pending>,
}

/// The time for a decision: the exact time is a host call (and renews the coarse time);
/// the coarse time is the last exact reading this VM made (`util/clock.rs`).
struct HostClock<'a> {
    cache: &'a KeyCache,
}

impl Clock for HostClock<'_> {
    fn now(&self) -> u64 {
        let now_ms = host::now_millis();
        self.cache.set_now(now_ms);
        now_ms / 1000
    }

    fn coarse(&self) -> Option<u64> {
        self.cache.coarse_secs()
    }
}

/// Counts the outcome and logs denials (never the token: reason and path only).
pub fn record(metrics: &Metrics, outcome: &Outcome, headers: &Headers) {
    match outcome {
        Outcome::Allowed { .. } => metrics.increment("mcp_edge_auth.allowed"),
        Outcome::Unprotected => metrics.increment("mcp_edge_auth.unprotected"),
        Outcome::PrmServed => metrics.increment("mcp_edge_auth.prm_served"),
        Outcome::Preflight => metrics.increment("mcp_edge_auth.preflight"),
        Outcome::Denied { reason, detail } => {
            metrics.increment("mcp_edge_auth.denied");
            metrics.increment_labeled("mcp_edge_auth.denied.", reason);
            log::debug!(
                "denied {} {} ({reason}): {detail}",
                headers.get(":method").unwrap_or(""),
                crate::authz::rules::path_only(headers.get(":path").unwrap_or(""))
            );
        }
    }
}

/// Publishes what a decision tells the rest of Envoy as filter state: one property per
/// non-empty value the configuration's `filter_state` names (`decide.rs`,
/// `Decision::filter_state`); nothing, and no host call, when it names none.
fn publish(wanted: Published, values: impl FnOnce(&mut dyn FnMut(&'static str, &str))) {
    if wanted.is_empty() {
        return;
    }
    values(&mut |name, value| {
        if wanted.contains(name) {
            host::set_property(name, value);
        }
    });
}

pub fn send(r: &Response) {
    host::send_response(r.status, &r.headers, &r.body);
}

/// `headers` is what the request carries now (nothing changes them while this filter holds
/// the request), so a header it does not carry costs no host call to remove.
fn apply_forward(forward: &Forward, headers: &Headers) {
    for name in forward.remove_headers.iter() {
        if headers.contains(name) {
            host::remove_request_header(name);
        }
    }
    for (name, value) in forward.set_headers.iter() {
        host::add_request_header(name, value);
    }
}

/// The largest body any MCP rule accepts (bodies buffered while waiting for keys).
fn body_limit(config: &Config, check: Option<&BodyCheck>) -> usize {
    match check {
        Some(c) => config
            .rules
            .get(c.rule)
            .and_then(|r| r.mcp.as_ref())
            .map_or(crate::config::DEFAULT_MAX_BODY_BYTES, |m| m.max_body_bytes),
        None => config
            .rules
            .iter()
            .filter_map(|r| r.mcp.as_ref().map(|m| m.max_body_bytes))
            .max()
            .unwrap_or(crate::config::DEFAULT_MAX_BODY_BYTES),
    }
}

fn too_large(limit: usize) -> Decision {
    jsonrpc_error(
        413,
        &serde_json::Value::Null,
        -32600,
        &format!("Invalid Request: the body exceeds the {limit}-byte limit"),
        "body_too_large",
    )
}

/// Carries out a decision for request `id` (the current effective context). Returns
/// `Continue` only when the request may go on to the backend now.
pub fn finish(s: &Shared, id: u32, decision: Decision, headers: Headers) -> Action {
    publish(s.config.filter_state, |set| decision.filter_state(set));
    match decision {
        Decision::Continue {
            forward, outcome, ..
        } => {
            record(&s.metrics, &outcome, &headers);
            apply_forward(&forward, &headers);
            let mut holds = s.holds.borrow_mut();
            if !holds.is_empty() {
                holds.remove(&id);
            }
            Action::Continue
        }
        Decision::Respond {
            response, outcome, ..
        } => {
            record(&s.metrics, &outcome, &headers);
            send(&response);
            refuse_hold(s, id, headers);
            Action::Pause
        }
        Decision::NeedBody { forward, check, .. } => {
            apply_forward(&forward, &headers);
            let previous = s.holds.borrow_mut().remove(&id);
            let (body, no_body) = previous.map_or((None, false), |h| (h.body, h.no_body));
            match (body, no_body) {
                (_, true) => {
                    let d = decide_body(&s.config, &check, b"");
                    finish(s, id, d, headers)
                }
                (Some(Ok(bytes)), _) => {
                    let d = decide_body(&s.config, &check, &bytes);
                    finish(s, id, d, headers)
                }
                (Some(Err(_)), _) => {
                    let limit = body_limit(&s.config, Some(&check));
                    finish(s, id, too_large(limit), headers)
                }
                (None, false) => {
                    let timeout = s
                        .config
                        .rules
                        .get(check.rule)
                        .and_then(|r| r.mcp.as_ref())
                        .map_or(15_000, |m| m.body_timeout_ms);
                    s.holds.borrow_mut().insert(
                        id,
                        Hold {
                            phase: Phase::Body(check),
                            headers,
                            body: None,
                            no_body: false,
                            body_deadline: Some(host::now_millis().saturating_add(timeout)),
                        },
                    );
                    Action::Pause
                }
            }
        }
    }
}

/// Request `id` was answered locally: nothing of it may pass any more.
pub fn refuse(s: &Shared, id: u32) {
    refuse_hold(s, id, Headers::default());
}

fn refuse_hold(s: &Shared, id: u32, headers: Headers) {
    s.holds.borrow_mut().insert(
        id,
        Hold {
            phase: Phase::Refused,
            headers,
            body: None,
            no_body: false,
            body_deadline: None,
        },
    );
}

/// Answers a held request whose wait ran out.
pub fn give_up(s: &Shared, id: u32, response: &Response, outcome: &Outcome, headers: Headers) {
    publish(s.config.filter_state, |set| outcome.filter_state(set));
    record(&s.metrics, outcome, &headers);
    send(response);
    refuse_hold(s, id, headers);
}

impl Http {
    pub fn new(context_id: u32, shared: Option<Shared>, metrics: Rc<Metrics>) -> Http {
        Http {
            context_id,
            shared,
            metrics,
            origin: None,
            facade: None,
        }
    }

    /// A request for the sign-in façade: answered here, never passed to the backend.
    fn facade_request(
        &mut self,
        s: &Shared,
        endpoint: crate::oauth::Endpoint,
        headers: Headers,
        end_of_stream: bool,
    ) -> Action {
        let Some(f) = s.config.facade() else {
            return Action::Pause;
        };
        let id = self.context_id;
        if crate::oauth::needs_body(endpoint) && !end_of_stream {
            s.holds.borrow_mut().insert(
                id,
                Hold {
                    phase: Phase::Facade(endpoint),
                    headers,
                    body: None,
                    no_body: false,
                    body_deadline: Some(host::now_millis().saturating_add(f.body_timeout_ms)),
                },
            );
            return Action::Pause;
        }
        self.facade_run(s, endpoint, headers, b"")
    }

    fn facade_run(
        &mut self,
        s: &Shared,
        endpoint: crate::oauth::Endpoint,
        headers: Headers,
        body: &[u8],
    ) -> Action {
        if let Some(f) = s.config.facade() {
            if let facade::Step::Calling(p) =
                facade::run(f, &s.facade_upstream, &s.metrics, endpoint, &headers, body)
            {
                self.facade = Some(p);
            }
        }
        refuse_hold(s, self.context_id, Headers::default());
        Action::Pause
    }

    /// A refusal that fresher keys might turn around: look at shared data once more, and
    /// either decide again, wait for a fetch, or give the answer now.
    fn retry_or_wait(
        &self,
        s: &Shared,
        retry: Retry,
        decision: Decision,
        headers: Headers,
        end_of_stream: bool,
    ) -> Action {
        let id = self.context_id;
        let (Retry::KeysMissing(i) | Retry::UnknownKid(i)) = retry;
        let Some(provider) = s.config.providers.get(i) else {
            return finish(s, id, decision, headers);
        };
        let KeySource::Remote(src) = &provider.keys else {
            return finish(s, id, decision, headers);
        };
        let now_ms = host::now_millis();
        s.cache.set_now(now_ms);
        let since = s.cache.version(i);
        if s.cache.sync(i) {
            // Another worker already stored newer keys. Decide again; if the token's kid is
            // still unknown in them (this VM had not loaded any keys yet), that refusal may
            // itself warrant a refetch, so it goes through this path once more (the keys are
            // now in sync, so the recursion ends there).
            let again = decide(
                &s.config,
                &Request::from_headers(&headers),
                &*s.cache,
                now_ms / 1000,
            );
            if let Decision::Respond {
                retry: Some(next), ..
            } = &again
            {
                let next = *next;
                return self.retry_or_wait(s, next, again, headers, end_of_stream);
            }
            return finish(s, id, again, headers);
        }
        let deadline = match retry {
            Retry::KeysMissing(_) => now_ms.saturating_add(src.cold_start_wait),
            Retry::UnknownKid(_) => {
                let key = KeyCache::prefix(provider).map(|p| format!("{p}state"));
                let mut scheduled = false;
                let mut in_progress = false;
                if let Some(key) = key {
                    let _ = update_state(&key, |st| {
                        in_progress =
                            st.lease_held(now_ms) || st.kid_refetch_pending(now_ms, &src.policy);
                        scheduled = !in_progress && st.request_kid_refetch(now_ms, &src.policy);
                    });
                }
                if scheduled {
                    s.metrics
                        .increment("mcp_edge_auth.jwks_refetch_unknown_kid");
                    log::info!("provider {}: unknown kid, refetching keys", provider.name);
                } else if !in_progress {
                    return finish(s, id, decision, headers);
                }
                now_ms.saturating_add(src.policy.timeout.saturating_mul(2))
            }
        };
        let Decision::Respond {
            response, outcome, ..
        } = decision
        else {
            return finish(s, id, decision, headers);
        };
        s.holds.borrow_mut().insert(
            id,
            Hold {
                phase: Phase::Keys,
                headers: headers.clone(),
                body: None,
                no_body: end_of_stream,
                body_deadline: None,
            },
        );
        s.waiters.borrow_mut().push(Waiter {
            context_id: id,
            provider: i,
            since_version: since,
            deadline,
            headers,
            fallback: response,
            fallback_outcome: outcome,
        });
        Action::Pause
    }
}

impl Context for Http {
    /// The sign-in façade's upstream token callout answered (or failed).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let (Some(s), Some(p)) = (&self.shared, self.facade.take()) else {
            return;
        };
        if p.token != token_id {
            self.facade = Some(p);
            return;
        }
        if let Some(f) = s.config.facade() {
            facade::finish(f, &s.metrics, p, body_size);
        }
    }
}

/// The stream is gone (`proxy_on_delete`: finished, reset, or the client went away): forget
/// anything it still held. This is here rather than in `on_done` because the shipped module
/// does not export `proxy_on_done` (scripts/wasm-opt.sh): Envoy then skips that call on every
/// request, and deletes the context right after the point it would have made it.
impl Drop for Http {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            waiters::remove(&s.waiters, self.context_id);
            // Nearly always empty (nothing held): no hashing. `try_`: never panic in a drop.
            if let Ok(mut holds) = s.holds.try_borrow_mut() {
                if !holds.is_empty() {
                    holds.remove(&self.context_id);
                }
            }
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(s) = self.shared.clone() else {
            let r = Response::new(503)
                .error_body("temporarily_unavailable", "mcp-edge-auth is not configured");
            let outcome = Outcome::Denied {
                reason: "not_configured",
                detail: "no valid configuration".into(),
            };
            record(&self.metrics, &outcome, &Headers::default());
            send(&r);
            return Action::Pause;
        };
        let headers = host::request_headers();
        if let Some(f) = s.config.facade() {
            if let Some(endpoint) =
                crate::oauth::route(&f.settings, headers.get(":path").unwrap_or(""))
            {
                return self.facade_request(&s, endpoint, headers, end_of_stream);
            }
        }
        let request = Request::from_headers(&headers);
        self.origin = request.origin.map(str::to_string);
        let clock = HostClock { cache: &s.cache };
        let decision = decide_at(&s.config, &request, &*s.cache, &clock);
        match &decision {
            Decision::Respond {
                retry: Some(retry), ..
            } => self.retry_or_wait(&s, *retry, decision.clone(), headers, end_of_stream),
            Decision::NeedBody { .. } if end_of_stream => {
                // No body follows: check an empty one now.
                s.holds.borrow_mut().insert(
                    self.context_id,
                    Hold {
                        phase: Phase::Keys,
                        headers: Headers::default(),
                        body: None,
                        no_body: true,
                        body_deadline: None,
                    },
                );
                finish(&s, self.context_id, decision, headers)
            }
            _ => finish(&s, self.context_id, decision, headers),
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Cross-origin callers must be able to read the backend's answer (and its
        // Mcp-Session-Id). Local answers already carry the same headers.
        if let Some(s) = &self.shared {
            for (name, value) in s
                .config
                .origins
                .backend_response_headers(self.origin.as_deref())
            {
                if name == "vary" {
                    host::add_response_header(&name, &value);
                } else {
                    host::set_response_header(&name, &value);
                }
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(s) = self.shared.clone() else {
            return Action::Pause;
        };
        let id = self.context_id;
        let mut holds = s.holds.borrow_mut();
        let Some(hold) = holds.get_mut(&id) else {
            return Action::Continue; // not held: decided and allowed
        };
        match &hold.phase {
            Phase::Refused => Action::Pause,
            Phase::Facade(endpoint) => {
                let endpoint = *endpoint;
                let limit = s.config.facade().map_or(0, |f| f.max_body_bytes);
                if body_size > limit {
                    hold.phase = Phase::Refused;
                    hold.body_deadline = None;
                    drop(holds);
                    facade::too_large(&s.metrics, endpoint, limit);
                    return Action::Pause;
                }
                if !end_of_stream {
                    return Action::Pause;
                }
                let headers = std::mem::take(&mut hold.headers);
                holds.remove(&id);
                drop(holds);
                let body = host::request_body(body_size);
                self.facade_run(&s, endpoint, headers, &body)
            }
            Phase::Keys => {
                // Keep buffering; remember a complete body for the check after the wait.
                if end_of_stream {
                    let limit = body_limit(&s.config, None);
                    hold.body = Some(if body_size > limit {
                        Err(body_size)
                    } else {
                        Ok(host::request_body(body_size))
                    });
                }
                Action::Pause
            }
            Phase::Body(check) => {
                let limit = body_limit(&s.config, Some(check));
                if body_size > limit {
                    let headers = std::mem::take(&mut hold.headers);
                    drop(holds);
                    return finish(&s, id, too_large(limit), headers);
                }
                if !end_of_stream {
                    return Action::Pause; // Envoy buffers until the whole body is in.
                }
                let check = check.clone();
                let headers = std::mem::take(&mut hold.headers);
                holds.remove(&id);
                drop(holds);
                let body = host::request_body(body_size);
                let d = decide_body(&s.config, &check, &body);
                finish(&s, id, d, headers)
            }
        }
    }
}

/// What a request whose body did not arrive was waiting for.
pub enum Expired {
    /// An MCP rule's body check (`None`: it was waiting for keys).
    Mcp(Option<BodyCheck>),
    /// A sign-in façade endpoint.
    Facade(crate::oauth::Endpoint),
}

/// Requests whose body did not arrive in time (with what each waited for): refuse them
/// (fail closed) and say why.
pub fn expire_bodies(s: &Shared, now_ms: u64) -> Vec<(u32, Headers, Expired)> {
    let mut holds = s.holds.borrow_mut();
    let ids: Vec<u32> = holds
        .iter()
        .filter(|(_, h)| h.body_deadline.is_some_and(|d| now_ms >= d))
        .map(|(id, _)| *id)
        .collect();
    ids.into_iter()
        .filter_map(|id| {
            holds.remove(&id).map(|h| {
                let check = match h.phase {
                    Phase::Body(c) => Expired::Mcp(Some(c)),
                    Phase::Facade(e) => Expired::Facade(e),
                    _ => Expired::Mcp(None),
                };
                (id, h.headers, check)
            })
        })
        .collect()
}
