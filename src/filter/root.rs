//! RootContext: validates the configuration, runs the key fetcher on ticks and callout
//! answers, wakes paused requests, and creates HTTP contexts.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use super::facade::{self, MetadataFetcher};
use super::fetcher::Fetcher;
use super::host::{self, Metrics};
use super::http::{self, Http, Shared};
use super::keycache::KeyCache;
use super::waiters::{self, Wake};
use crate::config::Config;
use crate::decide::decide;
use crate::keys::source::KeySource;

/// Tick period while any provider's keys are remote.
const TICK_MS: u64 = 100;

pub struct Root {
    context_id: u32,
    metrics: Rc<Metrics>,
    shared: Option<Shared>,
    fetcher: Option<Fetcher>,
    /// The sign-in façade's `upstream.discovery`, when configured.
    facade_metadata: Option<MetadataFetcher>,
}

impl Root {
    pub fn new(context_id: u32) -> Root {
        Root {
            context_id,
            metrics: Rc::new(Metrics::default()),
            shared: None,
            fetcher: None,
            facade_metadata: None,
        }
    }

    /// Decides again for requests whose keys changed, or answers those out of time.
    fn wake(&self, now_ms: u64) {
        let Some(s) = &self.shared else {
            return;
        };
        let due = waiters::due(&s.waiters, now_ms, |i| s.cache.version(i));
        if due.is_empty() {
            return;
        }
        s.cache.set_now(now_ms);
        for wake in due {
            match wake {
                Wake::Decide(w) => {
                    if host::switch_to(w.context_id) {
                        let d = decide(
                            &s.config,
                            &crate::decide::Request::from_headers(&w.headers),
                            &*s.cache,
                            now_ms / 1000,
                        );
                        // New keys arrived but not the ones this token needs, while the
                        // refetch its unknown kid triggered is still under way: keep waiting.
                        if let crate::decide::Decision::Respond {
                            retry: Some(crate::decide::Retry::UnknownKid(i)),
                            ..
                        } = &d
                        {
                            let pending = match (s.cache.state(*i), s.config.providers.get(*i)) {
                                (Some(st), Some(p)) => match &p.keys {
                                    KeySource::Remote(r) => {
                                        st.kid_refetch_pending(now_ms, &r.policy)
                                    }
                                    KeySource::Local(_) => false,
                                },
                                _ => false,
                            };
                            if pending && now_ms < w.deadline {
                                let mut w = w;
                                w.since_version = s.cache.version(*i);
                                s.waiters.borrow_mut().push(w);
                                continue;
                            }
                        }
                        if let Action::Continue = http::finish(s, w.context_id, d, w.headers) {
                            host::resume_request();
                        }
                    }
                }
                Wake::GiveUp(w) => {
                    if host::switch_to(w.context_id) {
                        http::give_up(s, w.context_id, &w.fallback, &w.fallback_outcome, w.headers);
                    }
                }
            }
        }
        // Callouts and later host calls must belong to the root again.
        host::switch_to(self.context_id);
    }

    /// Requests whose body never arrived: refuse them (fail closed) and say why.
    fn expire_bodies(&self, now_ms: u64) {
        let Some(s) = &self.shared else {
            return;
        };
        let expired = http::expire_bodies(s, now_ms);
        if expired.is_empty() {
            return;
        }
        for (id, headers, expired) in expired {
            let check = match expired {
                http::Expired::Mcp(check) => check,
                http::Expired::Facade(endpoint) => {
                    if host::switch_to(id) {
                        super::facade::body_not_arrived(&s.metrics, endpoint);
                        http::refuse(s, id);
                    }
                    continue;
                }
            };
            let crate::decide::Decision::Respond {
                response, outcome, ..
            } = crate::decide::body_not_arrived(&s.config, check.as_ref())
            else {
                continue;
            };
            if matches!(
                &outcome,
                crate::decide::Outcome::Denied {
                    reason: "mcp_headers_missing",
                    ..
                }
            ) {
                log::error!(
                    "POST on an mcp.trust_headers rule without the Mcp-Method header (or without \
                     Mcp-Name for tools/call, prompts/get, resources/read), and its body did not \
                     reach the filter within mcp.body_timeout; refusing it with 400. Where the \
                     Wasm filter cannot set allow_on_headers_stop_iteration (Istio WasmPlugin, \
                     Envoy Gateway) only requests carrying these headers can be decided"
                );
            } else {
                log::error!(
                    "request body did not reach the filter within mcp.body_timeout; refusing the \
                     request. If no MCP request body ever arrives, the Wasm filter needs \
                     allow_on_headers_stop_iteration: true"
                );
            }
            if host::switch_to(id) {
                http::give_up(s, id, &response, &outcome, headers);
            }
        }
        host::switch_to(self.context_id);
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now = host::now_millis();
        let facade = self
            .facade_metadata
            .as_mut()
            .is_some_and(|m| m.on_response(token_id, body_size, now));
        if !facade {
            if let Some(f) = self.fetcher.as_mut() {
                f.on_response(token_id, body_size, now);
            }
        }
        self.wake(now);
    }
}

/// The VM is going away (configuration replaced, Envoy draining): send what was counted.
/// In a drop (`proxy_on_delete`), not `on_done`: the shipped module does not export
/// `proxy_on_done` (scripts/wasm-opt.sh), and Envoy deletes a root context whose
/// `proxy_on_done` is missing straight away.
impl Drop for Root {
    fn drop(&mut self) {
        self.metrics.flush();
    }
}

/// Whether RS* and ES256 signatures go to the host's `verify_signature` (BoringSSL): `host_crypto`
/// not `"off"`, and the host passed the self-check (`token/host_signature.rs`). Logged
/// either way, once per VM.
fn host_rsa(cfg: &Config) -> bool {
    if !cfg.host_crypto {
        log::info!(
            "RS256/RS384/RS512/ES256 signatures: checked in the module (host_crypto is \"off\")"
        );
        return false;
    }
    match crate::token::host_signature::self_check(&host::HostRsa { metrics: None }) {
        Ok(()) => {
            log::info!(
                "RS256/RS384/RS512/ES256 signatures: checked by the host's verify_signature \
                 (BoringSSL; self-check passed); PS* and EdDSA in the module"
            );
            true
        }
        Err(e) => {
            log::warn!("RS256/RS384/RS512/ES256 signatures: checked in the module ({e})");
            false
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        host::follow_log_level(host::now_millis());
        let bytes = host::plugin_configuration().unwrap_or_default();
        // The VM environment (Envoy vm_config.environment_variables, Istio vmConfig.env)
        // reaches std::env under WASI: the sign-in façade's keys and secret.
        let cfg = match Config::parse_with_env(&bytes, &|name| std::env::var(name).ok()) {
            Ok(cfg) => Rc::new(cfg),
            Err(e) => {
                log::error!("{e}");
                self.shared = None;
                self.fetcher = None;
                self.facade_metadata = None;
                return false;
            }
        };
        for p in &cfg.providers {
            match &p.keys {
                KeySource::Local(keys) => log::info!(
                    "provider {} (issuer {}): local JWKS with {}",
                    p.name,
                    p.issuer,
                    keys.summary()
                ),
                KeySource::Remote(r) => log::info!(
                    "provider {} (issuer {}): keys from {} via cluster {}",
                    p.name,
                    p.issuer,
                    r.uri,
                    r.cluster
                ),
            }
        }
        log::info!(
            "configured {} provider(s), {} rule(s)",
            cfg.providers.len(),
            cfg.rules.len()
        );
        if let Some(f) = cfg.facade() {
            match &f.discovery {
                None => log::info!(
                    "sign-in façade: issuer {}, upstream token endpoint {} via cluster {}, {} sealing key(s)",
                    f.settings.spec.issuer,
                    f.settings.spec.upstream.token_endpoint,
                    f.token_cluster,
                    f.keys.len()
                ),
                Some(d) => log::info!(
                    "sign-in façade: issuer {}, upstream endpoints from the metadata at {} via \
                     cluster {} (token callouts via cluster {}), {} sealing key(s)",
                    f.settings.spec.issuer,
                    d.uri,
                    d.cluster,
                    f.token_cluster,
                    f.keys.len()
                ),
            }
            super::facade::init_used_slots(f);
        }
        let facade_upstream = facade::initial_upstream(cfg.facade());
        self.facade_metadata = MetadataFetcher::new(
            Rc::clone(&cfg),
            Rc::clone(&facade_upstream),
            Rc::clone(&self.metrics),
        );
        let mut cache = KeyCache::new(Rc::clone(&cfg), Rc::clone(&self.metrics));
        if host_rsa(&cfg) {
            cache.use_host_rsa();
        }
        let cache = Rc::new(cache);
        cache.set_now(host::now_millis());
        let owner = format!("vm-{}-{}", self.context_id, host::clock_nanos());
        let fetcher = Fetcher::new(
            Rc::clone(&cfg),
            Rc::clone(&cache),
            Rc::clone(&self.metrics),
            owner,
        );
        let has_remote = fetcher.remote_providers().next().is_some();
        if has_remote || self.facade_metadata.is_some() {
            if has_remote {
                fetcher.init_shared_state();
            }
            host::set_tick_period_ms(TICK_MS);
        } else {
            // Body deadlines, and following Envoy's log level (not done per request).
            host::set_tick_period_ms(1_000);
        }
        self.fetcher = Some(fetcher);
        self.shared = Some(Shared {
            config: cfg,
            facade_upstream,
            metrics: Rc::clone(&self.metrics),
            cache,
            waiters: Rc::new(RefCell::new(Vec::new())),
            holds: Rc::new(RefCell::new(std::collections::HashMap::new())),
        });
        true
    }

    fn on_tick(&mut self) {
        let now = host::now_millis();
        host::follow_log_level(now);
        self.metrics.flush();
        if let Some(s) = &self.shared {
            s.cache.set_now(now);
        }
        if let Some(f) = self.fetcher.as_mut() {
            f.tick(now);
        }
        if let Some(m) = self.facade_metadata.as_mut() {
            m.tick(now);
        }
        self.wake(now);
        self.expire_bodies(now);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(
            context_id,
            self.shared.clone(),
            Rc::clone(&self.metrics),
        )))
    }
}
