//! `rules[i].mcp`: the per-method and per-tool scope maps of a rule, validated into
//! [`McpRule`].

use super::*;

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl RawMcp {
    #[inline(never)]
    pub(super) fn validate(
        self,
        field: &str,
    ) -> Result<crate::authz::policy::McpRule, ConfigError> {
        use crate::authz::policy::{McpRule, ScopeMap};
        let map = |name: &str,
                   entries: BTreeMap<String, Vec<String>>,
                   u: Option<String>|
         -> Result<ScopeMap, ConfigError> {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                if k.is_empty() {
                    return Err(ConfigError::new(
                        format!("{field}.{name}"),
                        "names must not be empty",
                    ));
                }
                let scopes = check_scopes(&format!("{field}.{name}.{k}"), v)?;
                out.insert(k, scopes);
            }
            Ok(ScopeMap {
                entries: out,
                unlisted: unlisted(&format!("{field}.unlisted_{name}"), u)?,
            })
        };
        let optional = |name: &str,
                        entries: Option<BTreeMap<String, Vec<String>>>,
                        u: Option<String>|
         -> Result<Option<ScopeMap>, ConfigError> {
            match (entries, u) {
                (None, None) => Ok(None),
                (e, u) => map(name, e.unwrap_or_default(), u).map(Some),
            }
        };
        let max_body_bytes = self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(ConfigError::new(
                format!("{field}.max_body_bytes"),
                "must be between 1024 and 67108864",
            ));
        }
        let body_timeout_ms = duration_ms(
            &format!("{field}.body_timeout"),
            self.body_timeout.as_deref(),
            15_000,
        )?;
        if !(100..=300_000).contains(&body_timeout_ms) {
            return Err(ConfigError::new(
                format!("{field}.body_timeout"),
                "must be between 0.1s and 300s",
            ));
        }
        Ok(McpRule {
            body_timeout_ms,
            trust_headers: self.trust_headers,
            methods: map("methods", self.methods, self.unlisted_methods)?,
            tools: optional("tools", self.tools, self.unlisted_tools)?,
            prompts: optional("prompts", self.prompts, self.unlisted_prompts)?,
            resources: optional("resources", self.resources, self.unlisted_resources)?,
            max_body_bytes,
        })
    }
}
