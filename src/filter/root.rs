//! RootContext: reads and validates the plugin configuration, creates HTTP contexts.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host::{self, Metrics};
use super::http::Http;
use crate::config::Config;

#[derive(Default)]
pub struct Root {
    config: Option<Rc<Config>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = host::plugin_configuration().unwrap_or_default();
        match Config::parse(&bytes) {
            Ok(cfg) => {
                for p in &cfg.providers {
                    let crate::config::KeySource::Local(keys) = &p.keys;
                    log::info!(
                        "provider {} (issuer {}): local JWKS with {}",
                        p.name,
                        p.issuer,
                        keys.summary()
                    );
                }
                log::info!(
                    "configured {} provider(s), {} rule(s)",
                    cfg.providers.len(),
                    cfg.rules.len()
                );
                self.config = Some(Rc::new(cfg));
                true
            }
            Err(e) => {
                log::error!("{e}");
                self.config = None;
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(
            self.config.clone(),
            Rc::clone(&self.metrics),
        )))
    }
}
