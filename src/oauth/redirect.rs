//! Client redirect URIs: what may be registered (the configured allow-list), and whether a
//! URI presented at `/authorize` is one the client registered.
//!
//! Every URI is parsed with an RFC 3986 parser (`fluent-uri`) and compared component by
//! component: scheme, host, port, path, query. No string prefix tests, which is how open
//! redirects happen. Before any comparison a URI must pass [`check`]: ASCII only, no
//! whitespace or control characters anywhere (so ` javascript:` or `java\tscript:` never
//! reach a scheme comparison), not a script/data/file scheme in any case, no userinfo
//! (`http://localhost@evil`), no fragment, no `.`/`..` path segments even percent-encoded,
//! no encoded `/` or `\`, plain `http` only for loopback hosts.
//!
//! Allow-list patterns are URIs too, with two wildcards: a path ending in `/*` matches any
//! path below it (any query), and `:*` any port. Loopback patterns (`http://127.0.0.1/*`,
//! `http://localhost/*`, `http://[::1]/*`) match any port whatever they say (RFC 8252 §7.3):
//! a native client listens on a port it picks at run time. `https` and custom-scheme
//! (`vscode://…`) patterns otherwise match exactly. A URI on the façade's own origin (its
//! callback, its `/authorize`) is never a client redirect.

use std::net::{Ipv4Addr, Ipv6Addr};

use fluent_uri::component::Host;
use fluent_uri::Uri;

/// Longest redirect URI accepted.
pub const MAX_URI_LEN: usize = 2048;

/// Schemes never allowed as a redirect target, compared case-insensitively.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "filesystem",
    "view-source",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectError {
    TooLong,
    /// Whitespace, a control character or a non-ASCII byte.
    BadCharacter,
    /// Not an absolute RFC 3986 URI.
    Syntax,
    ForbiddenScheme,
    Userinfo,
    Fragment,
    DotSegment,
    /// `%2F` or `%5C` in the path.
    EncodedSeparator,
    /// `http`/`https` without a host.
    NoHost,
    /// A port that is empty, zero or above 65535.
    BadPort,
    /// Plain `http` to a host that is not loopback.
    PlainHttp,
    /// The façade's own origin.
    OwnOrigin,
    /// Well-formed but matches no allow-list entry.
    NotAllowed,
    /// Not among the client's registered redirect URIs.
    NotRegistered,
}

impl RedirectError {
    /// A description fit for an error body (names the rule, never echoes the URI).
    pub fn describe(self) -> &'static str {
        match self {
            RedirectError::TooLong => "redirect URI is too long",
            RedirectError::BadCharacter => {
                "redirect URI contains whitespace, control or non-ASCII characters"
            }
            RedirectError::Syntax => "redirect URI is not an absolute URI",
            RedirectError::ForbiddenScheme => "redirect URI scheme is not allowed",
            RedirectError::Userinfo => "redirect URI must not contain userinfo",
            RedirectError::Fragment => "redirect URI must not contain a fragment",
            RedirectError::DotSegment => "redirect URI must not contain dot segments",
            RedirectError::EncodedSeparator => {
                "redirect URI must not contain encoded path separators"
            }
            RedirectError::NoHost => "redirect URI has no host",
            RedirectError::BadPort => "redirect URI has an invalid port",
            RedirectError::PlainHttp => "plain http redirect URIs must use a loopback host",
            RedirectError::OwnOrigin => "redirect URI points at this authorization server",
            RedirectError::NotAllowed => "redirect URI is not in the allow-list",
            RedirectError::NotRegistered => "redirect_uri is not registered for this client",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostKey {
    None,
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    /// Lowercased registered name (or an IPvFuture literal as written).
    Name(String),
}

/// A redirect URI that passed [`check`], in comparable parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Lowercased.
    pub scheme: String,
    host: HostKey,
    /// `None` when absent or the scheme's default.
    port: Option<u16>,
    /// As written (`/` when an http(s) URI has an empty path).
    path: String,
    query: Option<String>,
    /// Loopback host (127.0.0.0/8, `localhost`, `::1`).
    pub loopback: bool,
}

impl Target {
    /// The host as shown to a person on the consent page (lowercased; IPv6 in brackets).
    pub fn host_display(&self) -> String {
        match &self.host {
            HostKey::None => String::new(),
            HostKey::V4(a) => a.to_string(),
            HostKey::V6(a) => format!("[{a}]"),
            HostKey::Name(n) => n.clone(),
        }
    }

    fn same_origin_ignoring_port(&self, other: &Target) -> bool {
        self.scheme == other.scheme && self.host == other.host
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The hygiene every redirect URI (and every allow-list entry) must pass.
pub fn check(uri: &str) -> Result<Target, RedirectError> {
    if uri.len() > MAX_URI_LEN {
        return Err(RedirectError::TooLong);
    }
    if uri.bytes().any(|b| b <= 0x20 || b >= 0x7f) {
        return Err(RedirectError::BadCharacter);
    }
    let parsed = Uri::parse(uri).map_err(|_| RedirectError::Syntax)?;
    let scheme = parsed.scheme().as_str().to_ascii_lowercase();
    if FORBIDDEN_SCHEMES.contains(&scheme.as_str()) {
        return Err(RedirectError::ForbiddenScheme);
    }
    if parsed.has_fragment() {
        return Err(RedirectError::Fragment);
    }
    let web = scheme == "http" || scheme == "https";
    let (host, port) = match parsed.authority() {
        Some(auth) => {
            if auth.has_userinfo() {
                return Err(RedirectError::Userinfo);
            }
            let port = if auth.has_port() {
                match auth.port_to_u16() {
                    Ok(Some(p)) if p != 0 => Some(p),
                    _ => return Err(RedirectError::BadPort),
                }
            } else {
                None
            };
            let port = port.filter(|p| Some(*p) != default_port(&scheme));
            let host = match auth.host_parsed() {
                Host::Ipv4(a) => HostKey::V4(a),
                Host::Ipv6(a) => HostKey::V6(a),
                Host::RegName(name) if name.is_empty() => HostKey::None,
                Host::RegName(name) => HostKey::Name(name.as_str().to_ascii_lowercase()),
                _ => HostKey::Name(auth.host().to_ascii_lowercase()),
            };
            (host, port)
        }
        None => (HostKey::None, None),
    };
    if web && host == HostKey::None {
        return Err(RedirectError::NoHost);
    }
    let path = parsed.path();
    for segment in path.as_str().split('/') {
        let lower = segment.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(RedirectError::EncodedSeparator);
        }
        // `.` and `..`, including any percent-encoded spelling (`%2e`, `.%2E`).
        let decoded = lower.replace("%2e", ".");
        if decoded == "." || decoded == ".." {
            return Err(RedirectError::DotSegment);
        }
    }
    let loopback = match &host {
        HostKey::V4(a) => a.is_loopback(),
        HostKey::V6(a) => a.is_loopback(),
        HostKey::Name(n) => n == "localhost",
        HostKey::None => false,
    };
    if scheme == "http" && !loopback {
        return Err(RedirectError::PlainHttp);
    }
    let mut path = path.as_str().to_string();
    if web && path.is_empty() {
        path.push('/');
    }
    Ok(Target {
        scheme,
        host,
        port,
        path,
        query: parsed.query().map(|q| q.as_str().to_string()),
        loopback,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    target: Target,
    any_port: bool,
    /// The path ended in `/*`: `target.path` (ending in `/`) is a prefix, any query.
    path_prefix: bool,
}

impl Pattern {
    fn matches(&self, t: &Target) -> bool {
        let p = &self.target;
        if !p.same_origin_ignoring_port(t) {
            return false;
        }
        let port_ok = self.any_port || (p.loopback && t.loopback) || p.port == t.port;
        if !port_ok {
            return false;
        }
        if self.path_prefix {
            t.path.starts_with(&p.path)
        } else {
            p.path == t.path && p.query == t.query
        }
    }
}

/// The configured redirect allow-list, and the façade's own origin (never a target).
#[derive(Clone, Debug)]
pub struct AllowList {
    patterns: Vec<Pattern>,
    own: Option<Target>,
}

impl AllowList {
    /// Parses the configured patterns. `own_origin` is the façade's base URL (its issuer).
    pub fn new<S: AsRef<str>>(patterns: &[S], own_origin: &str) -> Result<AllowList, String> {
        let own = check(own_origin).ok();
        let mut out = Vec::with_capacity(patterns.len());
        for raw in patterns {
            let raw = raw.as_ref();
            let (mut text, any_port) = strip_any_port(raw);
            let path_prefix = text.ends_with("/*");
            if path_prefix {
                text.pop();
            }
            if text.contains('*') {
                return Err(format!(
                    "redirect_uris entry {raw:?}: '*' is only allowed as ':*' (port) or a final '/*' (path)"
                ));
            }
            let target = check(&text)
                .map_err(|e| format!("redirect_uris entry {raw:?}: {}", e.describe()))?;
            if path_prefix && target.query.is_some() {
                return Err(format!(
                    "redirect_uris entry {raw:?}: a '/*' pattern cannot have a query"
                ));
            }
            let pattern = Pattern {
                target,
                any_port,
                path_prefix,
            };
            if let Some(own) = &own {
                if is_own(own, &pattern.target) {
                    return Err(format!(
                        "redirect_uris entry {raw:?} points at this authorization server"
                    ));
                }
            }
            out.push(pattern);
        }
        Ok(AllowList { patterns: out, own })
    }

    /// May `uri` be registered? Its checked parts when it may.
    pub fn allows(&self, uri: &str) -> Result<Target, RedirectError> {
        let target = check(uri)?;
        if let Some(own) = &self.own {
            if is_own(own, &target) {
                return Err(RedirectError::OwnOrigin);
            }
        }
        if self.patterns.iter().any(|p| p.matches(&target)) {
            Ok(target)
        } else {
            Err(RedirectError::NotAllowed)
        }
    }

    /// Is `presented` (from `/authorize`) one of `registered`, and still allowed? Exact
    /// component match, except that a loopback URI's port may differ (RFC 8252 §7.3).
    pub fn registered<S: AsRef<str>>(
        &self,
        registered: &[S],
        presented: &str,
    ) -> Result<Target, RedirectError> {
        let target = self.allows(presented)?;
        for r in registered {
            let Ok(reg) = check(r.as_ref()) else {
                continue;
            };
            let port_ok = reg.port == target.port || (reg.loopback && target.loopback);
            if reg.same_origin_ignoring_port(&target)
                && port_ok
                && reg.path == target.path
                && reg.query == target.query
            {
                return Ok(target);
            }
        }
        Err(RedirectError::NotRegistered)
    }
}

/// `scheme://host:*/…` → (`scheme://host/…`, true); only a `:*` that ends the authority.
fn strip_any_port(raw: &str) -> (String, bool) {
    if let Some(i) = raw.find("://") {
        let start = i + 3;
        let rest = raw.get(start..).unwrap_or("");
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(authority) = rest.get(..end) {
            if let Some(host) = authority.strip_suffix(":*") {
                let tail = rest.get(end..).unwrap_or("");
                let head = raw.get(..start).unwrap_or("");
                return (format!("{head}{host}{tail}"), true);
            }
        }
    }
    (raw.to_string(), false)
}

/// Same origin as the façade; two loopback hosts count as one machine (same port, same
/// server, whatever the spelling).
fn is_own(own: &Target, t: &Target) -> bool {
    if own.loopback && t.loopback {
        return own.port == t.port && own.scheme == t.scheme;
    }
    own.same_origin_ignoring_port(t) && own.port == t.port
}

/// Fuzz entry: the check on arbitrary bytes.
pub fn fuzz_check(input: &[u8]) -> Result<Target, RedirectError> {
    let text = std::str::from_utf8(input).map_err(|_| RedirectError::BadCharacter)?;
    check(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList::new(
            &[
                "http://127.0.0.1/*",
                "http://localhost/*",
                "http://[::1]/*",
                "https://claude.ai/api/mcp/auth_callback",
                "vscode://vscode.github-authentication/did-authenticate",
                "https://app.example.com:*/oauth/*",
            ],
            "https://mcp.example.com",
        )
        .unwrap()
    }

    #[test]
    fn allowed_ones() {
        let l = list();
        for ok in [
            "http://127.0.0.1:33418/callback",
            "http://127.0.0.1/",
            "http://127.0.0.1:1",
            "http://localhost:6274/oauth/callback?x=1",
            "http://LOCALHOST:6274/oauth/callback",
            "http://[::1]:9999/cb",
            "https://claude.ai/api/mcp/auth_callback",
            "HTTPS://CLAUDE.AI:443/api/mcp/auth_callback",
            "vscode://vscode.github-authentication/did-authenticate",
            "https://app.example.com:8443/oauth/cb",
        ] {
            assert!(l.allows(ok).is_ok(), "{ok}: {:?}", l.allows(ok));
        }
    }

    #[test]
    fn hostile_and_lookalike_ones() {
        use RedirectError::*;
        let l = list();
        for (bad, why) in [
            ("javascript:alert(1)", ForbiddenScheme),
            ("JaVaScRiPt:alert(1)", ForbiddenScheme),
            (" javascript:alert(1)", BadCharacter),
            ("java\tscript:alert(1)", BadCharacter),
            ("javascript\n:alert(1)", BadCharacter),
            ("\u{0}javascript:x", BadCharacter),
            ("data:text/html;base64,PHNjcmlwdD4", ForbiddenScheme),
            ("data:text/html,<script>", Syntax),
            ("DATA:text/html,x", ForbiddenScheme),
            ("file:///etc/passwd", ForbiddenScheme),
            ("VBScript:msgbox", ForbiddenScheme),
            ("http://localhost@evil.com/cb", Userinfo),
            ("http://evil.com@localhost/cb", Userinfo),
            ("http://@localhost/cb", Userinfo),
            ("https://claude.ai/api/mcp/auth_callback#x", Fragment),
            ("https://claude.ai/api/mcp/auth_callback#", Fragment),
            ("http://127.0.0.1/cb/../../evil", DotSegment),
            ("http://127.0.0.1/cb/%2e%2E/x", DotSegment),
            ("http://127.0.0.1/./x", DotSegment),
            ("https://app.example.com/oauth/..", DotSegment),
            ("https://app.example.com/oauth/a%2F..%2Fb", EncodedSeparator),
            ("https://app.example.com/oauth/a%5cb", EncodedSeparator),
            ("http://localhost.evil.com/cb", PlainHttp),
            ("http://127.0.0.1.evil/cb", PlainHttp),
            ("http://evil.com/cb", PlainHttp),
            ("http://localhost./cb", PlainHttp),
            ("https://claude.ai:8443/api/mcp/auth_callback", NotAllowed),
            ("https://claude.ai/api/mcp/auth_callback/x", NotAllowed),
            ("https://claude.ai/api/mcp/auth_callback?x=1", NotAllowed),
            (
                "https://claude.ai.evil.com/api/mcp/auth_callback",
                NotAllowed,
            ),
            ("https://evil.com/api/mcp/auth_callback", NotAllowed),
            ("https://127.0.0.1/cb", NotAllowed),
            ("vscode://evil/did-authenticate", NotAllowed),
            ("cursor://anysphere/cb", NotAllowed),
            ("https://app.example.com/other", NotAllowed),
            ("https://app.example.com/oauth", NotAllowed),
            ("https://mcp.example.com/auth/callback", OwnOrigin),
            ("https://MCP.example.com:443/authorize", OwnOrigin),
            ("http://127.0.0.1:0/cb", BadPort),
            ("http://127.0.0.1:/cb", BadPort),
            ("http://127.0.0.1:65536/cb", BadPort),
            ("https:///cb", NoHost),
            ("/relative/cb", Syntax),
            ("//evil.com/cb", Syntax),
            ("http://[::1/cb", Syntax),
            ("http://exämple.com/cb", BadCharacter),
        ] {
            assert_eq!(l.allows(bad).err(), Some(why), "{bad:?}");
        }
        assert!(l
            .allows(&format!("http://127.0.0.1/{}", "a".repeat(MAX_URI_LEN)))
            .is_err());
    }

    #[test]
    fn empty_list_allows_nothing() {
        let l = AllowList::new::<&str>(&[], "https://mcp.example.com").unwrap();
        assert_eq!(
            l.allows("http://127.0.0.1:3000/cb").err(),
            Some(RedirectError::NotAllowed)
        );
    }

    #[test]
    fn bad_patterns_refused_at_load() {
        for bad in [
            "http://*.example.com/cb",
            "https://a.com/*/x",
            "http://evil.com/*",
            "javascript:*",
            "https://mcp.example.com/auth/callback",
            "https://a.com/cb#f",
            "https://a.com/x?y=1/*",
        ] {
            assert!(
                AllowList::new(&[bad], "https://mcp.example.com").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn registered_match_lets_only_loopback_ports_vary() {
        let l = list();
        let reg = [
            "http://127.0.0.1:33418/callback",
            "https://claude.ai/api/mcp/auth_callback",
        ];
        assert!(l
            .registered(&reg, "http://127.0.0.1:50000/callback")
            .is_ok());
        assert!(l.registered(&reg, "http://127.0.0.1/callback").is_ok());
        assert!(l
            .registered(&reg, "https://claude.ai/api/mcp/auth_callback")
            .is_ok());
        assert_eq!(
            l.registered(&reg, "http://127.0.0.1:50000/other").err(),
            Some(RedirectError::NotRegistered)
        );
        assert_eq!(
            l.registered(&reg, "http://localhost:33418/callback").err(),
            Some(RedirectError::NotRegistered)
        );
        assert_eq!(
            l.registered(&reg, "http://[::1]:33418/callback").err(),
            Some(RedirectError::NotRegistered)
        );
        assert_eq!(
            l.registered(&reg, "http://127.0.0.1:33418/callback?x=1")
                .err(),
            Some(RedirectError::NotRegistered)
        );
        // Registered earlier but the allow-list no longer has it.
        let narrowed = AllowList::new(&["http://127.0.0.1/*"], "https://mcp.example.com").unwrap();
        assert_eq!(
            narrowed
                .registered(&reg, "https://claude.ai/api/mcp/auth_callback")
                .err(),
            Some(RedirectError::NotAllowed)
        );
    }

    #[test]
    fn loopback_facade_is_its_own_origin_only_on_its_port() {
        let l = AllowList::new(
            &["http://localhost/*", "http://127.0.0.1/*"],
            "http://localhost:10000",
        )
        .unwrap();
        assert!(l.allows("http://localhost:33333/cb").is_ok());
        assert_eq!(
            l.allows("http://127.0.0.1:10000/auth/callback").err(),
            Some(RedirectError::OwnOrigin)
        );
    }

    #[test]
    fn host_display_and_fuzz_entry() {
        assert_eq!(check("http://[::1]:3/x").unwrap().host_display(), "[::1]");
        assert_eq!(
            check("https://Claude.AI/x").unwrap().host_display(),
            "claude.ai"
        );
        assert!(fuzz_check(&[0xff]).is_err());
        assert!(fuzz_check(b"http://127.0.0.1:1/").is_ok());
    }
}
