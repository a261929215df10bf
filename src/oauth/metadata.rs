//! RFC 8414 authorization server metadata for the façade, served at
//! `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration` (the
//! same body), each also with the issuer's path inserted or (OIDC) appended.

use serde_json::{json, Value};

use super::response::Response;
use super::settings::Settings;

pub const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";
pub const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Is `path` (no query) one of the metadata URLs of this issuer?
pub fn is_metadata_path(s: &Settings, path: &str) -> bool {
    let base = s.base_path.as_str();
    [OAUTH_WELL_KNOWN, OIDC_WELL_KNOWN]
        .iter()
        .any(|wk| path.strip_prefix(wk) == Some(base))
        || (!base.is_empty() && path.strip_prefix(base) == Some(OIDC_WELL_KNOWN))
}

/// The metadata document.
pub fn document(s: &Settings) -> Value {
    let mut doc = json!({
        "issuer": s.spec.issuer,
        "authorization_endpoint": s.endpoint_url("/authorize"),
        "token_endpoint": s.endpoint_url("/token"),
        "registration_endpoint": s.endpoint_url("/register"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
    });
    // Never an empty list (clients read it as "ask for no scope").
    if !s.spec.scopes_supported.is_empty() {
        if let Some(map) = doc.as_object_mut() {
            map.insert("scopes_supported".into(), json!(s.spec.scopes_supported));
        }
    }
    doc
}

/// 200 with the document; public, cacheable, readable cross-origin.
pub fn respond(s: &Settings) -> Response {
    Response::new(200)
        .header("access-control-allow-origin", "*")
        .header("cache-control", "public, max-age=3600")
        .json(&document(s))
}

#[cfg(test)]
mod tests {
    use super::super::settings::testing;
    use super::super::settings::Settings;
    use super::*;

    #[test]
    fn document_fields() {
        let s = testing::settings();
        let r = respond(&s);
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["issuer"], "https://mcp.example.com");
        assert_eq!(
            v["authorization_endpoint"],
            "https://mcp.example.com/authorize"
        );
        assert_eq!(v["token_endpoint"], "https://mcp.example.com/token");
        assert_eq!(
            v["registration_endpoint"],
            "https://mcp.example.com/register"
        );
        assert_eq!(v["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(v["token_endpoint_auth_methods_supported"], json!(["none"]));
        assert_eq!(v["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            v["scopes_supported"],
            json!(["calculator.add", "calculator.subtract"])
        );
        assert_eq!(r.get_header("access-control-allow-origin"), Some("*"));
        let mut spec = testing::spec();
        spec.scopes_supported.clear();
        let v = document(&Settings::new(spec).unwrap());
        assert!(v.get("scopes_supported").is_none());
    }

    #[test]
    fn paths() {
        let s = testing::settings();
        assert!(is_metadata_path(&s, OAUTH_WELL_KNOWN));
        assert!(is_metadata_path(&s, OIDC_WELL_KNOWN));
        assert!(!is_metadata_path(
            &s,
            "/.well-known/oauth-authorization-server/x"
        ));
        let mut spec = testing::spec();
        spec.issuer = "https://mcp.example.com/t1".into();
        let s = Settings::new(spec).unwrap();
        assert!(is_metadata_path(
            &s,
            "/.well-known/oauth-authorization-server/t1"
        ));
        assert!(is_metadata_path(&s, "/.well-known/openid-configuration/t1"));
        assert!(is_metadata_path(&s, "/t1/.well-known/openid-configuration"));
        assert!(!is_metadata_path(&s, OAUTH_WELL_KNOWN));
        assert!(!is_metadata_path(
            &s,
            "/.well-known/oauth-authorization-server/t2"
        ));
        assert_eq!(
            document(&s)["token_endpoint"],
            "https://mcp.example.com/t1/token"
        );
    }
}
