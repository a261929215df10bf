//! Authorization after authentication: which scopes a token grants, which scopes a rule and
//! each MCP call need, and what is missing. Pure: claims and parsed messages in, a verdict out.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::authz::mcp::Message;

/// What to do with a method, tool, prompt or resource a rule does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlisted {
    Allow,
    Deny,
}

/// Scopes per name, with the policy for names not listed. The key `"*"` gives the scopes
/// for any name not listed explicitly (and makes it allowed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeMap {
    pub entries: BTreeMap<String, Vec<String>>,
    pub unlisted: Option<Unlisted>,
}

impl ScopeMap {
    /// `Some(scopes)` if `name` may be called with those scopes, `None` if it is not allowed.
    pub fn scopes_for(&self, name: &str, default_unlisted: Unlisted) -> Option<&[String]> {
        if let Some(s) = self.entries.get(name) {
            return Some(s);
        }
        if let Some(s) = self.entries.get("*") {
            return Some(s);
        }
        match self.unlisted.unwrap_or(default_unlisted) {
            Unlisted::Allow => Some(&[]),
            Unlisted::Deny => None,
        }
    }
}

/// The `mcp` block of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpRule {
    pub methods: ScopeMap,
    pub tools: Option<ScopeMap>,
    pub prompts: Option<ScopeMap>,
    pub resources: Option<ScopeMap>,
    pub max_body_bytes: usize,
    /// How long the body may take to arrive after the headers (ms).
    pub body_timeout_ms: u64,
    /// Decide a POST from its `Mcp-Method` / `Mcp-Name` headers without reading the body
    /// (the backend must refuse a body that disagrees with them).
    pub trust_headers: bool,
}

/// The scopes a verified token grants: the union of the configured scope claims, each a
/// space-separated string or an array of strings.
pub fn granted_scopes(claims: &Map<String, Value>, scope_claims: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for name in scope_claims {
        match crate::token::verify::claim_at(claims, name) {
            Some(Value::String(s)) => {
                out.extend(s.split(' ').filter(|t| !t.is_empty()).map(str::to_string));
            }
            Some(Value::Array(list)) => {
                out.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
            }
            _ => {}
        }
    }
    out
}

/// Whether `scope` (as configured, short form) is granted: the token may carry it short
/// (`calculator.add`, as Entra's `scp` does) or prefixed (`api://id/calculator.add`).
pub fn has_scope(granted: &BTreeSet<String>, scope: &str, prefix: Option<&str>) -> bool {
    granted.contains(scope)
        || prefix.is_some_and(|p| {
            granted.contains(&format!("{p}{scope}"))
                || scope.strip_prefix(p).is_some_and(|s| granted.contains(s))
        })
}

/// The form a client must request: `scope_prefix` + scope, unless already prefixed.
pub fn requestable(scope: &str, prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !scope.starts_with(p) => format!("{p}{scope}"),
        _ => scope.to_string(),
    }
}

/// The outcome of checking a request's needs against a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The token lacks scopes: every scope the request needs, and the missing ones.
    InsufficientScope {
        needed: Vec<String>,
        missing: Vec<String>,
    },
    /// The request does something no scope allows (an unlisted tool under `deny`).
    Forbidden(String),
}

/// Collects what a request needs; `check` compares with what the token grants.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    scopes: BTreeSet<String>,
    forbidden: Vec<String>,
}

impl Needs {
    pub fn add(&mut self, scopes: &[String]) {
        self.scopes.extend(scopes.iter().cloned());
    }

    /// Adds what the MCP messages of a body need.
    pub fn add_messages(&mut self, rule: &McpRule, messages: &[Message]) {
        for m in messages {
            let (method, target) = match m {
                Message::Request { method, target, .. } => (method, target.as_deref()),
                Message::Notification { method } => (method, None),
                Message::Response => continue,
            };
            match rule.methods.scopes_for(method, Unlisted::Allow) {
                Some(s) => self.add(s),
                None => {
                    self.forbidden
                        .push(format!("method {}", crate::util::text::printable(method)));
                    continue;
                }
            }
            let map = match method.as_str() {
                "tools/call" => rule.tools.as_ref().map(|m| (m, "tool")),
                "prompts/get" => rule.prompts.as_ref().map(|m| (m, "prompt")),
                "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                    rule.resources.as_ref().map(|m| (m, "resource"))
                }
                _ => None,
            };
            if let (Some((map, kind)), Some(name)) = (map, target) {
                match map.scopes_for(name, Unlisted::Deny) {
                    Some(s) => self.add(s),
                    None => self
                        .forbidden
                        .push(format!("{kind} {}", crate::util::text::printable(name))),
                }
            }
        }
    }

    pub fn check(&self, granted: &BTreeSet<String>, prefix: Option<&str>) -> Verdict {
        if let Some(f) = self.forbidden.first() {
            return Verdict::Forbidden(format!("{f} is not allowed"));
        }
        let missing: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| !has_scope(granted, s, prefix))
            .map(|s| requestable(s, prefix))
            .collect();
        if missing.is_empty() {
            Verdict::Allow
        } else {
            Verdict::InsufficientScope {
                needed: self.scopes.iter().map(|s| requestable(s, prefix)).collect(),
                missing,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn map(v: Value, unlisted: Option<Unlisted>) -> ScopeMap {
        ScopeMap {
            entries: serde_json::from_value(v).unwrap(),
            unlisted,
        }
    }

    fn rule() -> McpRule {
        McpRule {
            methods: map(json!({"resources/read": ["files.read"]}), None),
            tools: Some(map(
                json!({"add": ["calculator.add"], "subtract": ["calculator.subtract"]}),
                None,
            )),
            prompts: None,
            resources: None,
            max_body_bytes: 1 << 20,
            body_timeout_ms: 15_000,
            trust_headers: false,
        }
    }

    fn call(tool: &str) -> Message {
        Message::Request {
            id: json!(1),
            method: "tools/call".into(),
            target: Some(tool.into()),
        }
    }

    #[test]
    fn granted_scopes_from_strings_and_arrays() {
        let claims =
            json!({"scp": "a b  c", "scope": ["d"], "roles": ["e"], "realm": {"roles": ["f"]}});
        let c = claims.as_object().unwrap();
        assert_eq!(
            granted_scopes(c, &["scp".into(), "scope".into()]),
            set(&["a", "b", "c", "d"])
        );
        assert_eq!(
            granted_scopes(c, &["roles".into(), "realm.roles".into()]),
            set(&["e", "f"])
        );
        assert!(granted_scopes(c, &["missing".into()]).is_empty());
    }

    #[test]
    fn prefixed_and_short_forms() {
        let p = Some("api://x/");
        assert!(has_scope(&set(&["calculator.add"]), "calculator.add", p));
        assert!(has_scope(
            &set(&["api://x/calculator.add"]),
            "calculator.add",
            p
        ));
        assert!(has_scope(
            &set(&["calculator.add"]),
            "api://x/calculator.add",
            p
        ));
        assert!(!has_scope(&set(&["calculator.sub"]), "calculator.add", p));
        assert_eq!(requestable("calculator.add", p), "api://x/calculator.add");
        assert_eq!(requestable("api://x/a", p), "api://x/a");
        assert_eq!(requestable("a", None), "a");
    }

    #[test]
    fn tools_are_checked_one_by_one() {
        let r = rule();
        let granted = set(&["calculator.add"]);
        let mut n = Needs::default();
        n.add_messages(&r, &[call("add")]);
        assert_eq!(n.check(&granted, None), Verdict::Allow);

        let mut n = Needs::default();
        n.add_messages(&r, &[call("add"), call("subtract")]);
        assert_eq!(
            n.check(&granted, Some("api://x/")),
            Verdict::InsufficientScope {
                needed: vec![
                    "api://x/calculator.add".into(),
                    "api://x/calculator.subtract".into()
                ],
                missing: vec!["api://x/calculator.subtract".into()],
            }
        );

        let mut n = Needs::default();
        n.add_messages(&r, &[call("rm_rf")]);
        assert_eq!(
            n.check(&granted, None),
            Verdict::Forbidden("tool rm_rf is not allowed".into())
        );
    }

    #[test]
    fn methods_default_allow_and_star_default() {
        let mut r = rule();
        let list = Message::Request {
            id: json!(1),
            method: "tools/list".into(),
            target: None,
        };
        let read = Message::Request {
            id: json!(2),
            method: "resources/read".into(),
            target: Some("file:///x".into()),
        };
        let mut n = Needs::default();
        n.add_messages(
            &r,
            &[
                list.clone(),
                Message::Response,
                Message::Notification {
                    method: "notifications/initialized".into(),
                },
            ],
        );
        assert_eq!(n.check(&BTreeSet::new(), None), Verdict::Allow);
        let mut n = Needs::default();
        n.add_messages(&r, &[read]);
        assert!(matches!(
            n.check(&BTreeSet::new(), None),
            Verdict::InsufficientScope { .. }
        ));

        r.methods.unlisted = Some(Unlisted::Deny);
        let mut n = Needs::default();
        n.add_messages(&r, &[list]);
        assert!(matches!(
            n.check(&BTreeSet::new(), None),
            Verdict::Forbidden(_)
        ));

        let mut r = rule();
        r.tools = Some(map(json!({"*": ["calculator.any"]}), None));
        let mut n = Needs::default();
        n.add_messages(&r, &[call("whatever")]);
        assert!(matches!(
            n.check(&set(&["calculator.any"]), None),
            Verdict::Allow
        ));
        r.tools = Some(map(json!({}), Some(Unlisted::Allow)));
        let mut n = Needs::default();
        n.add_messages(&r, &[call("whatever")]);
        assert_eq!(n.check(&BTreeSet::new(), None), Verdict::Allow);
    }
}
