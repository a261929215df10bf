//! Tokens shaped like Auth0's, Okta's and Keycloak's (issuer forms, audience forms, scope
//! forms) through the real Envoy. Entra ID shapes are in `authorization.rs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http;
use support::EnvoyBuilder;

fn now() -> u64 {
    devstack::now()
}

#[test]
fn auth0_okta_and_keycloak_tokens_pass_with_their_own_claim_shapes() {
    let rsa = SigningKey::cached(KeyKind::Rsa2048, "idp-rsa");
    let ec = SigningKey::cached(KeyKind::EcP256, "kc-ec");
    let jwks =
        |keys: Vec<SigningKey>| json!({"inline_string": KeyRing::new(keys).jwks().to_string()});
    let tools = |scope: &str| json!({"tools": {"add": [scope]}});
    let cfg = json!({
        "providers": {
            "auth0": {"issuer": "https://tenant.auth0.com/", "audiences": ["https://api.example.com"],
                      "local_jwks": jwks(vec![rsa.clone()]), "algorithms": ["RS256"],
                      "scope_claims": ["scope", "permissions"], "forward_identity": true},
            "okta": {"issuer": "https://dev-1.okta.com/oauth2/default", "audiences": ["api://default"],
                     "local_jwks": jwks(vec![rsa.clone()]), "algorithms": ["RS256"], "forward_identity": true},
            "keycloak": {"issuer": "https://kc.example.com/realms/mcp", "audiences": ["mcp-server"],
                         "local_jwks": jwks(vec![rsa.clone(), ec.clone()]), "algorithms": ["RS256", "ES256"],
                         "scope_claims": ["scope", "realm_access.roles"], "forward_identity": true}
        },
        "rules": [
            {"match": {"prefix": "/auth0/mcp"}, "requires": {"provider_name": "auth0"}, "mcp": tools("tools:add")},
            {"match": {"prefix": "/okta/mcp"}, "requires": {"provider_name": "okta"}, "mcp": tools("mcp.tools")},
            {"match": {"prefix": "/kc/mcp"}, "requires": {"provider_name": "keycloak"},
             "required_scopes": ["mcp-user"], "mcp": tools("mcp:tools")}
        ]
    });
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .start()
        .unwrap();
    let t = now();
    let auth0 = json!({"iss": "https://tenant.auth0.com/", "sub": "auth0|abc", "azp": "spa-client",
        "aud": ["https://api.example.com", "https://tenant.auth0.com/userinfo"],
        "scope": "openid profile", "permissions": ["tools:add"], "iat": t, "exp": t + 600});
    let okta = json!({"iss": "https://dev-1.okta.com/oauth2/default", "sub": "00u1", "cid": "0oa-client",
        "aud": "api://default", "scp": ["openid", "mcp.tools"], "iat": t, "exp": t + 600});
    let keycloak = json!({"iss": "https://kc.example.com/realms/mcp", "sub": "f:1:alice", "azp": "mcp-client",
        "aud": ["mcp-server", "account"], "scope": "openid mcp:tools", "typ": "Bearer",
        "realm_access": {"roles": ["mcp-user", "offline_access"]}, "iat": t, "exp": t + 600});
    let body =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add"}}).to_string();
    let call = |path: &str, key: &SigningKey, alg: &str, claims: &Value| {
        let tok = sign_jws(
            key,
            alg,
            &json!({"alg": alg, "kid": key.kid, "typ": "JWT"}),
            claims,
        );
        let auth = format!("Bearer {tok}");
        http::request(
            envoy.port(),
            "POST",
            path,
            &[("authorization", &auth), ("x-test-id", path)],
            body.as_bytes(),
        )
    };

    assert_eq!(call("/auth0/mcp", &rsa, "RS256", &auth0).status, 200);
    assert_eq!(call("/okta/mcp", &rsa, "RS256", &okta).status, 200);
    assert_eq!(call("/kc/mcp", &ec, "ES256", &keycloak).status, 200);
    let client = |path: &str| {
        backend
            .requests()
            .into_iter()
            .find(|r| r.header("x-test-id") == Some(path))
            .and_then(|r| r.header("x-mcp-client-id").map(str::to_string))
    };
    assert_eq!(client("/auth0/mcp").as_deref(), Some("spa-client"));
    assert_eq!(client("/okta/mcp").as_deref(), Some("0oa-client"));
    assert_eq!(client("/kc/mcp").as_deref(), Some("mcp-client"));
    let kc_scopes = backend
        .requests()
        .into_iter()
        .find(|r| r.header("x-test-id") == Some("/kc/mcp"))
        .and_then(|r| r.header("x-mcp-scopes").map(str::to_string));
    assert_eq!(
        kc_scopes.as_deref(),
        Some("mcp-user mcp:tools offline_access openid")
    );

    // Near misses each IdP's users hit.
    let mut a = auth0.clone();
    a["iss"] = json!("https://tenant.auth0.com");
    let r = call("/auth0/mcp", &rsa, "RS256", &a);
    assert_eq!(r.status, 401, "Auth0 issuer without its trailing slash");
    let mut a = auth0.clone();
    a["permissions"] = json!([]);
    assert_eq!(
        call("/auth0/mcp", &rsa, "RS256", &a).status,
        403,
        "RBAC permission missing"
    );
    let mut o = okta.clone();
    o["scp"] = json!(["openid"]);
    assert_eq!(
        call("/okta/mcp", &rsa, "RS256", &o).status,
        403,
        "Okta scp array without the scope"
    );
    let mut k = keycloak.clone();
    k["aud"] = json!("account");
    let r = call("/kc/mcp", &ec, "ES256", &k);
    assert_eq!(r.status, 401, "Keycloak token without an audience mapper");
    assert!(r.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("audience"));
    let mut k = keycloak.clone();
    k["realm_access"] = json!({"roles": []});
    assert_eq!(
        call("/kc/mcp", &ec, "ES256", &k).status,
        403,
        "realm role missing"
    );
    assert_eq!(
        backend.count(),
        3,
        "only the three good calls reached the backend"
    );
}
