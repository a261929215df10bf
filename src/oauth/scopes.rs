//! Scopes between the client and the upstream IdP. Clients ask for bare names
//! (`calculator.add`); Entra wants them qualified with the API's identifier URI
//! (`api://<id>/calculator.add`, else AADSTS650053 or a Graph token). OIDC scopes are never
//! qualified; configured extra scopes (`offline_access`) are added; on the way back the
//! prefix is stripped again so clients see the names they asked for.

/// Scopes defined by OpenID Connect (and `offline_access`): sent as they are.
pub const OIDC_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// RFC 6749 §3.3 `scope-token`: `%x21 / %x23-5B / %x5D-7E`, at least one.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A space-separated `scope` value as distinct tokens, in order. `None` when a token is
/// malformed (a tab, a quote, a control character) or there are more than 64.
pub fn parse(scope: &str) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in scope.split(' ').filter(|t| !t.is_empty()) {
        if !is_token(t) || out.len() >= 64 {
            return None;
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Some(out)
}

fn joined_prefix(prefix: &str) -> String {
    if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

/// One scope as the upstream knows it.
pub fn qualify(scope: &str, prefix: Option<&str>) -> String {
    match prefix {
        Some(p) if !OIDC_SCOPES.contains(&scope) && !scope.contains("://") => {
            format!("{}{scope}", joined_prefix(p))
        }
        _ => scope.to_string(),
    }
}

/// The upstream `scope` value: the client's scopes qualified, then the extra scopes, each
/// once.
pub fn to_upstream(client: &[String], prefix: Option<&str>, extra: &[String]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(client.len() + extra.len());
    for s in client.iter().chain(extra) {
        let q = qualify(s, prefix);
        if !out.contains(&q) {
            out.push(q);
        }
    }
    out.join(" ")
}

/// The upstream's `scope` in a token response, prefix stripped (`api://x/a` → `a`).
pub fn from_upstream(scope: &str, prefix: Option<&str>) -> String {
    let Some(p) = prefix else {
        return scope
            .split(' ')
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
    };
    let p = joined_prefix(p);
    scope
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.strip_prefix(p.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(t)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn prefixing() {
        let prefix = Some("api://1234");
        assert_eq!(
            qualify("calculator.add", prefix),
            "api://1234/calculator.add"
        );
        assert_eq!(
            qualify("calculator.add", Some("api://1234/")),
            "api://1234/calculator.add"
        );
        assert_eq!(qualify("openid", prefix), "openid");
        assert_eq!(qualify("offline_access", prefix), "offline_access");
        assert_eq!(qualify("api://1234/x", prefix), "api://1234/x");
        assert_eq!(qualify("calculator.add", None), "calculator.add");
        assert_eq!(
            to_upstream(
                &v(&["calculator.add", "openid", "calculator.add"]),
                prefix,
                &v(&["offline_access", "openid"])
            ),
            "api://1234/calculator.add openid offline_access"
        );
    }

    #[test]
    fn stripping() {
        assert_eq!(
            from_upstream(
                "api://1234/calculator.add openid  api://other/x",
                Some("api://1234")
            ),
            "calculator.add openid api://other/x"
        );
        assert_eq!(from_upstream("a  b", None), "a b");
        assert_eq!(
            from_upstream("api://1234/", Some("api://1234")),
            "api://1234/"
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(parse("a b  a").unwrap(), v(&["a", "b"]));
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("a\tb"), None);
        assert_eq!(parse("a\"b"), None);
        assert_eq!(parse("a\\b"), None);
        let many: Vec<String> = (0..65).map(|i| format!("s{i}")).collect();
        assert_eq!(parse(&many.join(" ")), None);
    }
}
