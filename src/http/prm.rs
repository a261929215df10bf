//! OAuth 2.0 Protected Resource Metadata (RFC 9728) served at the edge, and the URLs
//! that point to it.

use std::borrow::Cow;

use serde_json::{json, Map, Value};

use crate::http::response::Response;

/// What the RFC 9728 document says (values the operator set, or defaults).
#[derive(Clone, Debug, Default)]
pub struct ProtectedResource {
    /// Absolute URL of the protected resource; derived from the request when absent.
    pub resource: Option<String>,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    pub resource_policy_uri: Option<String>,
    pub resource_tos_uri: Option<String>,
    /// Derived once when `resource` is configured (every answer would compute the same):
    /// the challenges' `resource_metadata` URL and the metadata document's JSON bytes.
    pub metadata_url: Option<String>,
    pub document: Option<Vec<u8>>,
}

impl ProtectedResource {
    /// Fills the derived fields from `resource`.
    pub fn prepared(mut self) -> ProtectedResource {
        self.metadata_url = self.resource.as_deref().map(metadata_url_for_resource);
        self.document = self
            .resource
            .as_deref()
            .and_then(|r| serde_json::to_vec(&document(&self, r)).ok());
        self
    }
}

/// RFC 9728 §3: the well-known suffix.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// For a request path under [`WELL_KNOWN`], the resource path it describes:
/// `""` for the root form, `"/mcp"` for `/.well-known/oauth-protected-resource/mcp`.
/// `None` when the path is not a metadata path at all.
pub fn resource_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(WELL_KNOWN)?;
    if rest.is_empty() || rest.starts_with('/') {
        Some(rest)
    } else {
        None
    }
}

/// `scheme://authority` of the request, from `x-forwarded-proto` (or `:scheme`) and
/// `:authority`. `None` when the authority has characters a host never has.
pub fn request_origin(
    forwarded_proto: Option<&str>,
    scheme: Option<&str>,
    authority: Option<&str>,
) -> Option<String> {
    let proto = forwarded_proto
        .and_then(|p| p.split(',').next())
        .map(str::trim)
        .filter(|p| p.eq_ignore_ascii_case("https") || p.eq_ignore_ascii_case("http"))
        .or(scheme.filter(|s| *s == "https" || *s == "http"))
        .unwrap_or("http")
        .to_ascii_lowercase();
    let authority = authority?;
    let valid = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b));
    valid.then(|| format!("{proto}://{authority}"))
}

/// Splits an absolute URL into (`scheme://authority`, path-and-query).
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url
        .get(after_scheme..)
        .and_then(|rest| rest.find(['/', '?']))
    {
        Some(i) => (
            url.get(..after_scheme + i).unwrap_or(url),
            url.get(after_scheme + i..).unwrap_or(""),
        ),
        None => (url, ""),
    }
}

/// The path of a resource URL, without its query: what a rule must match for the
/// metadata URL derived from it (RFC 9728 §3.3) to be answered with its document.
/// `""` for a URL without a path (or with `/`: the root form).
pub fn resource_url_path(resource: &str) -> &str {
    let (_, path) = split_url(resource);
    let path = path.split('?').next().unwrap_or("");
    if path == "/" {
        ""
    } else {
        path
    }
}

/// The metadata URL for a resource URL: the well-known suffix goes between the origin and
/// the path (RFC 9728 §3.1). A path of `/` counts as no path.
pub fn metadata_url_for_resource(resource: &str) -> String {
    let (origin, path) = split_url(resource);
    let path = if path == "/" { "" } else { path };
    format!("{origin}{WELL_KNOWN}{path}")
}

/// The `resource_metadata` URL a challenge for `request_path` points to: derived from the
/// configured `resource` when there is one, otherwise from the request's origin and path.
pub fn metadata_url<'a>(
    cfg: &'a ProtectedResource,
    origin: Option<&str>,
    request_path: &str,
) -> Option<Cow<'a, str>> {
    match (&cfg.resource, origin) {
        (Some(r), _) => Some(match &cfg.metadata_url {
            Some(url) => Cow::Borrowed(url.as_str()),
            None => Cow::Owned(metadata_url_for_resource(r)),
        }),
        (None, Some(o)) => Some(Cow::Owned(metadata_url_for_resource(&format!(
            "{o}{request_path}"
        )))),
        (None, None) => None,
    }
}

/// The metadata document for `resource`; parameters without a value are omitted.
pub fn document(cfg: &ProtectedResource, resource: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("resource".into(), json!(resource));
    doc.insert(
        "authorization_servers".into(),
        json!(cfg.authorization_servers),
    );
    if !cfg.scopes_supported.is_empty() {
        doc.insert("scopes_supported".into(), json!(cfg.scopes_supported));
    }
    doc.insert("bearer_methods_supported".into(), json!(["header"]));
    for (name, value) in [
        ("resource_name", &cfg.resource_name),
        ("resource_documentation", &cfg.resource_documentation),
        ("resource_policy_uri", &cfg.resource_policy_uri),
        ("resource_tos_uri", &cfg.resource_tos_uri),
    ] {
        if let Some(v) = value {
            doc.insert(name.into(), json!(v));
        }
    }
    Value::Object(doc)
}

fn cors(r: Response) -> Response {
    r.header("access-control-allow-origin", "*")
}

/// 200 with the document.
pub fn ok(cfg: &ProtectedResource, resource: &str) -> Response {
    let r = cors(Response::new(200)).header("cache-control", "public, max-age=3600");
    match &cfg.document {
        // The configured resource's document, rendered with the configuration.
        Some(bytes) if cfg.resource.as_deref() == Some(resource) => {
            let mut r = r.header("content-type", "application/json");
            r.body = bytes.clone();
            r
        }
        _ => r.json(&document(cfg, resource)),
    }
}

/// 204 answer to a CORS preflight for the metadata.
pub fn preflight() -> Response {
    cors(Response::new(204))
        .header("access-control-allow-methods", "GET, OPTIONS")
        .header(
            "access-control-allow-headers",
            "MCP-Protocol-Version, Content-Type, Authorization",
        )
        .header("access-control-max-age", "86400")
}

/// 405 for methods other than GET, HEAD, OPTIONS.
pub fn method_not_allowed() -> Response {
    cors(Response::new(405))
        .header("allow", "GET, HEAD, OPTIONS")
        .error_body(
            "invalid_request",
            "protected resource metadata supports GET only",
        )
}

/// 404 for well-known paths that describe nothing this filter protects.
pub fn not_found(path: &str) -> Response {
    cors(Response::new(404)).error_body(
        "not_found",
        &format!(
            "no protected resource metadata for {}",
            crate::http::challenge::sanitize(path)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ProtectedResource {
        ProtectedResource {
            resource: None,
            authorization_servers: vec!["https://as.example.com".into()],
            scopes_supported: vec![],
            resource_name: Some("Demo".into()),
            ..ProtectedResource::default()
        }
    }

    #[test]
    fn prepared_document_and_url_are_what_each_answer_would_compute() {
        let mut c = cfg();
        c.resource = Some("https://mcp.example.com/mcp".into());
        c.scopes_supported = vec!["a".into(), "b".into()];
        let p = c.clone().prepared();
        let r = "https://mcp.example.com/mcp";
        assert_eq!(
            p.document.as_deref(),
            Some(&serde_json::to_vec(&document(&c, r)).unwrap()[..])
        );
        assert_eq!(ok(&p, r), ok(&c, r));
        assert_eq!(
            metadata_url(&p, None, "/x").as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(metadata_url(&p, None, "/x"), metadata_url(&c, None, "/x"));
        // Another resource (never asked for when one is configured) is rendered afresh.
        let other = "https://other.example.com/mcp";
        assert_eq!(ok(&p, other), ok(&c, other));
        assert!(String::from_utf8(ok(&p, other).body)
            .unwrap()
            .contains(other));
    }

    #[test]
    fn resource_paths() {
        assert_eq!(resource_path(WELL_KNOWN), Some(""));
        assert_eq!(
            resource_path("/.well-known/oauth-protected-resource/mcp"),
            Some("/mcp")
        );
        assert_eq!(
            resource_path("/.well-known/oauth-protected-resourcex"),
            None
        );
        assert_eq!(resource_path("/.well-known/openid-configuration"), None);
    }

    #[test]
    fn metadata_urls_insert_the_well_known_part() {
        assert_eq!(
            metadata_url_for_resource("https://mcp.example.com/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url_for_resource("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            metadata_url_for_resource("https://mcp.example.com/"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let mut c = cfg();
        assert_eq!(
            metadata_url(&c, Some("http://127.0.0.1:10000"), "/mcp").as_deref(),
            Some("http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp")
        );
        c.resource = Some("https://public.example.com/mcp".into());
        assert_eq!(
            metadata_url(&c, Some("http://127.0.0.1:10000"), "/other").as_deref(),
            Some("https://public.example.com/.well-known/oauth-protected-resource/mcp")
        );
    }

    #[test]
    fn origin_from_headers() {
        assert_eq!(
            request_origin(Some("https"), Some("http"), Some("a.example:8443")).as_deref(),
            Some("https://a.example:8443")
        );
        assert_eq!(
            request_origin(None, Some("http"), Some("a")).as_deref(),
            Some("http://a")
        );
        assert_eq!(
            request_origin(Some("gopher"), None, Some("a")).as_deref(),
            Some("http://a")
        );
        assert_eq!(request_origin(None, None, Some("a\"b")), None);
        assert_eq!(request_origin(None, None, None), None);
    }

    #[test]
    fn document_omits_empty_values() {
        let d = document(&cfg(), "https://x/mcp");
        assert_eq!(d["resource"], "https://x/mcp");
        assert_eq!(d["bearer_methods_supported"], json!(["header"]));
        assert!(d.get("scopes_supported").is_none());
        assert!(d.get("resource_documentation").is_none());
        assert_eq!(d["resource_name"], "Demo");
    }
}
