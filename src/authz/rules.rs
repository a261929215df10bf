//! Route rules: which path needs which provider. First match wins.

/// How a rule matches the request path (the `:path` without its query string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// `{"prefix": "/mcp"}`: the path starts with this string.
    Prefix(String),
    /// `{"path": "/mcp"}`: the path equals this string.
    Exact(String),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
        }
    }

    pub fn pattern(&self) -> &str {
        match self {
            PathMatch::Prefix(p) | PathMatch::Exact(p) => p,
        }
    }
}

/// One entry of `rules`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub matcher: PathMatch,
    /// Index into `Config::providers`; `None` lets the request through without a token.
    pub requires: Option<usize>,
    /// Scopes every request on this rule needs (all of them).
    pub required_scopes: Vec<String>,
    /// MCP-aware checks of POST bodies (methods, tools, prompts, resources).
    pub mcp: Option<crate::authz::policy::McpRule>,
    /// The `scope` of this rule's 401 challenge, from [`challenge_scope`] (set by the
    /// configuration; empty: no `scope` parameter).
    pub challenge_scope: String,
}

/// What a 401 on `rule` asks for: the scopes the route needs at least, in the form a
/// client requests them (MCP clients request exactly this, then step up on a 403), else
/// every scope the resource advertises.
pub fn challenge_scope(rule: &Rule, prefix: Option<&str>, scopes_supported: &[String]) -> String {
    if rule.required_scopes.is_empty() {
        scopes_supported.join(" ")
    } else {
        rule.required_scopes
            .iter()
            .map(|s| crate::authz::policy::requestable(s, prefix))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What happens to a path no rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmatched {
    Deny,
    Allow,
}

/// The first rule whose matcher accepts `path`, with its index.
pub fn first_match<'a>(rules: &'a [Rule], path: &str) -> Option<(usize, &'a Rule)> {
    rules
        .iter()
        .enumerate()
        .find(|(_, r)| r.matcher.matches(path))
}

/// The path part of a `:path` value: everything before `?` or `#`.
pub fn path_only(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

/// Whether a path has `.`/`..` segments or encoded separators, which Envoy should have
/// normalized away (`normalize_path`); we refuse them rather than guess.
pub fn is_suspicious(path: &str) -> bool {
    let encoded = |b: &[u8]| {
        matches!(
            b,
            [b'%', b'2', b'f' | b'F' | b'e' | b'E'] | [b'%', b'5', b'c' | b'C']
        )
    };
    path.split('/').any(|seg| seg == ".." || seg == ".")
        || path.contains('\\')
        || path.as_bytes().windows(3).any(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(m: PathMatch, requires: Option<usize>) -> Rule {
        Rule {
            matcher: m,
            requires,
            required_scopes: Vec::new(),
            mcp: None,
            challenge_scope: String::new(),
        }
    }

    #[test]
    fn first_match_wins() {
        let rules = vec![
            rule(PathMatch::Exact("/mcp/public".into()), None),
            rule(PathMatch::Prefix("/mcp".into()), Some(0)),
            rule(PathMatch::Prefix("/".into()), None),
        ];
        assert_eq!(first_match(&rules, "/mcp/public").map(|m| m.0), Some(0));
        assert_eq!(first_match(&rules, "/mcp/public/x").map(|m| m.0), Some(1));
        assert_eq!(first_match(&rules, "/mcp").map(|m| m.0), Some(1));
        assert_eq!(first_match(&rules, "/other").map(|m| m.0), Some(2));
        assert!(first_match(&rules[..2], "/other").is_none());
    }

    #[test]
    fn path_only_strips_query_and_fragment() {
        assert_eq!(path_only("/mcp?x=1"), "/mcp");
        assert_eq!(path_only("/mcp#f"), "/mcp");
        assert_eq!(path_only("/mcp"), "/mcp");
    }

    #[test]
    fn suspicious_paths() {
        assert!(is_suspicious("/healthz/../mcp"));
        assert!(is_suspicious("/healthz/%2e%2e/mcp"));
        assert!(is_suspicious("/healthz%2Fmcp"));
        assert!(is_suspicious("/./mcp"));
        assert!(!is_suspicious("/mcp/tools.list"));
    }
}
