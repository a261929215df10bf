//! Tokens from the dev IdP's Entra mode (devstack `EntraConfig`) meet the filter's own
//! decision code with the provider of `envoy/recipes/entra.yaml` (its issuer, audiences,
//! `scope_claims`, `scope_prefix`; keys inline instead of discovery): a delegated v2 token
//! passes and its `scp` short names satisfy per-route scopes, a token for another scope gets
//! 403, and the Graph token Entra hands out for OIDC-only requests is refused as such. No
//! Envoy: `decide_at` natively.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;

use devstack::entra::EntraConfig;
use devstack::{b64url, http, Idp, IdpConfig};
use mcp_edge_auth::config::Config;
use mcp_edge_auth::decide::{decide_at, ConfiguredKeysWithCache, Decision, Outcome, Request};
use mcp_edge_auth::http::extract::Authorization;
use mcp_edge_auth::token::cache::TokenCache;
use mcp_edge_auth::util::clock::Fixed;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CALLBACK: &str = "http://127.0.0.1:10000/auth/callback";

/// The plugin JSON embedded in the recipe.
fn recipe_plugin() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/envoy/recipes/entra.yaml");
    let yaml: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    fn find(v: &Value) -> Option<String> {
        if let Some(s) = v
            .get("configuration")
            .and_then(|c| c.get("value"))
            .and_then(Value::as_str)
        {
            return Some(s.to_string());
        }
        match v {
            Value::Object(m) => m.values().find_map(find),
            Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    serde_json::from_str(&find(&yaml).expect("plugin JSON in the recipe")).unwrap()
}

/// The recipe's configuration with the IdP's keys inline and two routes, one per scope.
fn config_for(idp: &Idp) -> Config {
    let mut plugin = recipe_plugin();
    let provider = plugin["providers"]["entra"].as_object_mut().unwrap();
    assert_eq!(
        provider["issuer"],
        idp.issuer(),
        "the recipe's tenant is EntraConfig's default"
    );
    provider.remove("discovery");
    provider.insert(
        "local_jwks".into(),
        json!({"inline_string": idp.jwks_json().to_string()}),
    );
    plugin["rules"] = json!([
        {"match": {"prefix": "/add"}, "requires": {"provider_name": "entra"},
         "required_scopes": ["calculator.add"]},
        {"match": {"prefix": "/sub"}, "requires": {"provider_name": "entra"},
         "required_scopes": ["calculator.subtract"]},
    ]);
    Config::parse(plugin.to_string().as_bytes()).unwrap()
}

/// A token through `/authorize` and `/token` as the façade gets it.
fn token_for(idp: &Idp, scope: &str) -> String {
    let verifier = "entra-idp-test-verifier-0123456789012345678901234567890";
    let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
    let q = http::form_encode(&[
        ("client_id", devstack::entra::DEFAULT_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let resp = http::get(&format!("{}?{q}", idp.authorize_url())).unwrap();
    assert_eq!(resp.status, 302, "{}", resp.text());
    let loc = resp.header("location").unwrap();
    // base64url codes need no decoding.
    let code = loc
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap()
        .to_string();
    let resp = http::post_form(
        &idp.token_url(),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", devstack::entra::DEFAULT_CLIENT_ID),
            ("client_secret", devstack::entra::DEFAULT_CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
            ("scope", scope),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// (status, outcome) of a GET to `path` with this bearer token.
fn decide(cfg: &Config, path: &str, token: &str) -> (u16, Outcome) {
    let bearer = format!("Bearer {token}");
    let req = Request {
        method: "GET",
        path,
        scheme: Some("https"),
        authority: Some("mcp.example.com"),
        forwarded_proto: None,
        authorization: Authorization::from_values(&[bearer.as_str()]),
        origin: None,
        access_control_request_method: None,
        mcp_method: None,
        mcp_name: None,
    };
    let store = ConfiguredKeysWithCache(RefCell::new(TokenCache::new(100, 1 << 20)));
    let d = decide_at(cfg, &req, &store, &Fixed(devstack::now()));
    let status = match &d {
        Decision::Continue { .. } | Decision::NeedBody { .. } => 200,
        Decision::Respond { response, .. } => response.status,
    };
    (status, d.outcome().clone())
}

#[test]
fn entra_mode_tokens_pass_the_entra_recipe_provider() {
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig::default()),
        ..IdpConfig::default()
    });
    let cfg = config_for(&idp);
    let add = token_for(
        &idp,
        "openid offline_access api://22222222-2222-2222-2222-222222222222/calculator.add",
    );
    let (status, outcome) = decide(&cfg, "/add", &add);
    assert_eq!(status, 200, "{outcome:?}");
    assert!(matches!(outcome, Outcome::Allowed { .. }), "{outcome:?}");
    // scp has calculator.add only.
    let (status, outcome) = decide(&cfg, "/sub", &add);
    assert_eq!(status, 403, "{outcome:?}");

    // .default: every scope of the API.
    let all = token_for(&idp, "api://22222222-2222-2222-2222-222222222222/.default");
    assert_eq!(decide(&cfg, "/sub", &all).0, 200);

    // OIDC scopes only: Entra's Graph token, refused as one.
    let graph = token_for(&idp, "openid profile");
    let (status, outcome) = decide(&cfg, "/add", &graph);
    assert_eq!(status, 401);
    match outcome {
        Outcome::Denied { detail, .. } => assert!(detail.contains("Microsoft Graph"), "{detail}"),
        other => panic!("{other:?}"),
    }

    // aud = App ID URI (the recipe lists both forms).
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            audience_is_uri: true,
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let cfg = config_for(&idp);
    let add = token_for(
        &idp,
        "api://22222222-2222-2222-2222-222222222222/calculator.add",
    );
    assert_eq!(decide(&cfg, "/add", &add).0, 200);
}
