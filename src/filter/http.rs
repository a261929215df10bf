//! HttpContext: request headers in → `decide` → local response or continue.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host::{self, Metrics};
use crate::config::Config;
use crate::decide::{decide, ConfiguredKeys, Decision, Outcome, Request};
use crate::response::Response;

pub struct Http {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
}

impl Http {
    pub fn new(config: Option<Rc<Config>>, metrics: Rc<Metrics>) -> Http {
        Http { config, metrics }
    }

    fn record(&self, outcome: &Outcome, method: &str, path: &str) {
        match outcome {
            Outcome::Allowed { .. } => self.metrics.increment("mcp_edge_auth.allowed"),
            Outcome::Unprotected => self.metrics.increment("mcp_edge_auth.unprotected"),
            Outcome::PrmServed => self.metrics.increment("mcp_edge_auth.prm_served"),
            Outcome::Preflight => self.metrics.increment("mcp_edge_auth.preflight"),
            Outcome::Denied { reason, detail } => {
                self.metrics.increment("mcp_edge_auth.denied");
                self.metrics
                    .increment(&format!("mcp_edge_auth.denied.{reason}"));
                // Never the token: only the reason and the path without its query.
                log::debug!(
                    "denied {method} {} ({reason}): {detail}",
                    crate::rules::path_only(path)
                );
            }
        }
    }
}

impl Context for Http {}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            let r = Response::new(503)
                .error_body("temporarily_unavailable", "mcp-edge-auth is not configured");
            host::send_response(r.status, &r.headers, &r.body);
            return Action::Pause;
        };
        let headers = host::request_headers();
        let request = Request {
            method: first(&headers, ":method").unwrap_or(""),
            path: first(&headers, ":path").unwrap_or(""),
            scheme: first(&headers, ":scheme"),
            authority: first(&headers, ":authority"),
            forwarded_proto: first(&headers, "x-forwarded-proto"),
            authorization: headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.as_str())
                .collect(),
            origin: first(&headers, "origin"),
            access_control_request_method: first(&headers, "access-control-request-method"),
        };
        let decision = decide(&config, &request, &ConfiguredKeys, host::now_seconds());
        self.record(decision.outcome(), request.method, request.path);
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
                host::send_response(response.status, &response.headers, &response.body);
                Action::Pause
            }
        }
    }
}
