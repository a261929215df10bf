//! HttpContext: request headers in → `decide` → local response, continue, or wait for keys.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::fetcher::update_state;
use super::host::{self, Metrics};
use super::keycache::KeyCache;
use super::waiters::{self, Waiter, Waiters};
use crate::config::{Config, KeySource};
use crate::decide::{decide, Decision, Outcome, Request, Retry};
use crate::response::Response;

/// Everything a request needs from its VM.
#[derive(Clone)]
pub struct Shared {
    pub config: Rc<Config>,
    pub metrics: Rc<Metrics>,
    pub cache: Rc<KeyCache>,
    pub waiters: Waiters,
}

pub struct Http {
    context_id: u32,
    shared: Option<Shared>,
    metrics: Rc<Metrics>,
}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The decision input from a header list.
pub fn request_from(headers: &[(String, String)]) -> Request<'_> {
    Request {
        method: first(headers, ":method").unwrap_or(""),
        path: first(headers, ":path").unwrap_or(""),
        scheme: first(headers, ":scheme"),
        authority: first(headers, ":authority"),
        forwarded_proto: first(headers, "x-forwarded-proto"),
        authorization: headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .collect(),
        origin: first(headers, "origin"),
        access_control_request_method: first(headers, "access-control-request-method"),
    }
}

/// Counts the outcome and logs denials (never the token: reason and path only).
pub fn record(metrics: &Metrics, outcome: &Outcome, headers: &[(String, String)]) {
    match outcome {
        Outcome::Allowed { .. } => metrics.increment("mcp_edge_auth.allowed"),
        Outcome::Unprotected => metrics.increment("mcp_edge_auth.unprotected"),
        Outcome::PrmServed => metrics.increment("mcp_edge_auth.prm_served"),
        Outcome::Preflight => metrics.increment("mcp_edge_auth.preflight"),
        Outcome::Denied { reason, detail } => {
            metrics.increment("mcp_edge_auth.denied");
            metrics.increment(&format!("mcp_edge_auth.denied.{reason}"));
            log::debug!(
                "denied {} {} ({reason}): {detail}",
                first(headers, ":method").unwrap_or(""),
                crate::rules::path_only(first(headers, ":path").unwrap_or(""))
            );
        }
    }
}

/// Carries out a final decision on the current (effective) request.
pub fn apply(metrics: &Metrics, decision: Decision, headers: &[(String, String)]) -> Action {
    record(metrics, decision.outcome(), headers);
    match decision {
        Decision::Continue { forward, .. } => {
            for name in &forward.remove_headers {
                host::remove_request_header(name);
            }
            for (name, value) in &forward.set_headers {
                host::add_request_header(name, value);
            }
            Action::Continue
        }
        Decision::Respond { response, .. } => {
            send(&response);
            Action::Pause
        }
    }
}

pub fn send(r: &Response) {
    host::send_response(r.status, &r.headers, &r.body);
}

impl Http {
    pub fn new(context_id: u32, shared: Option<Shared>, metrics: Rc<Metrics>) -> Http {
        Http {
            context_id,
            shared,
            metrics,
        }
    }

    /// A refusal that fresher keys might turn around: look at shared data once more, and
    /// either decide again, wait for a fetch, or give the answer now.
    fn retry_or_wait(
        &self,
        s: &Shared,
        retry: Retry,
        decision: Decision,
        headers: Vec<(String, String)>,
    ) -> Action {
        let (Retry::KeysMissing(i) | Retry::UnknownKid(i)) = retry;
        let Some(provider) = s.config.providers.get(i) else {
            return apply(&s.metrics, decision, &headers);
        };
        let KeySource::Remote(src) = &provider.keys else {
            return apply(&s.metrics, decision, &headers);
        };
        let now_ms = host::now_millis();
        s.cache.set_now(now_ms);
        let since = s.cache.version(i);
        if s.cache.sync(i) {
            // Another worker already stored newer keys.
            let again = decide(&s.config, &request_from(&headers), &*s.cache, now_ms / 1000);
            return apply(&s.metrics, again, &headers);
        }
        let deadline = match retry {
            Retry::KeysMissing(_) => now_ms.saturating_add(src.cold_start_wait),
            Retry::UnknownKid(_) => {
                let key = KeyCache::prefix(provider).map(|p| format!("{p}state"));
                let mut scheduled = false;
                let mut in_progress = false;
                if let Some(key) = key {
                    let _ = update_state(&key, |st| {
                        in_progress = st.lease_held(now_ms);
                        scheduled = !in_progress && st.request_kid_refetch(now_ms, &src.policy);
                    });
                }
                if scheduled {
                    s.metrics
                        .increment("mcp_edge_auth.jwks_refetch_unknown_kid");
                    log::info!("provider {}: unknown kid, refetching keys", provider.name);
                } else if !in_progress {
                    return apply(&s.metrics, decision, &headers);
                }
                now_ms.saturating_add(src.policy.timeout.saturating_mul(2))
            }
        };
        let Decision::Respond {
            response, outcome, ..
        } = decision
        else {
            return apply(&s.metrics, decision, &headers);
        };
        s.waiters.borrow_mut().push(Waiter {
            context_id: self.context_id,
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
    fn on_done(&mut self) -> bool {
        if let Some(s) = &self.shared {
            waiters::remove(&s.waiters, self.context_id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(s) = self.shared.clone() else {
            let r = Response::new(503)
                .error_body("temporarily_unavailable", "mcp-edge-auth is not configured");
            record(
                &self.metrics,
                &Outcome::Denied {
                    reason: "not_configured",
                    detail: "no valid configuration".into(),
                },
                &[],
            );
            send(&r);
            return Action::Pause;
        };
        let headers = host::request_headers();
        let now_ms = host::now_millis();
        s.cache.set_now(now_ms);
        let decision = decide(&s.config, &request_from(&headers), &*s.cache, now_ms / 1000);
        match &decision {
            Decision::Respond {
                retry: Some(retry), ..
            } => self.retry_or_wait(&s, *retry, decision.clone(), headers),
            _ => apply(&s.metrics, decision, &headers),
        }
    }
}
