//! The configuration's unit tests.

use super::*;
use serde_json::json;

fn jwks() -> String {
    json!({"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x": crate::crypto::b64::encode(&[9u8;32])}]})
        .to_string()
}

fn base() -> serde_json::Value {
    json!({
        "providers": {"entra": {
            "issuer": "https://login.example.com/t/v2.0",
            "audiences": ["api://x"],
            "local_jwks": {"inline_string": jwks()},
            "algorithms": ["EdDSA"],
            "claim_to_headers": [{"claim_name":"sub","header_name":"X-MCP-Subject"}]
        }},
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"}},
            {"match": {"path": "/healthz"}}
        ]
    })
}

fn err(v: serde_json::Value) -> ConfigError {
    Config::parse(v.to_string().as_bytes()).expect_err("must be refused")
}

#[test]
fn valid_config_parses_with_defaults() {
    let c = Config::parse(base().to_string().as_bytes()).expect("valid");
    assert_eq!(c.providers.len(), 1);
    let p = &c.providers[0];
    assert_eq!(p.clock_skew_seconds, 60);
    assert_eq!(p.algorithms, vec![Alg::EdDsa]);
    assert_eq!(p.claim_to_headers[0].header_name, "x-mcp-subject");
    assert_eq!(&*c.strip_unprotected, ["x-mcp-subject"]);
    assert_eq!(
        &*c.strip_allowed,
        [Arc::from([
            "x-mcp-subject".to_string(),
            "authorization".to_string()
        ])]
    );
    assert_eq!(c.rules.len(), 2);
    assert_eq!(c.rules[0].requires, Some(0));
    assert_eq!(c.unmatched, Unmatched::Deny);
    assert!(c.host_crypto, "host_crypto defaults to auto");
    assert_eq!(c.max_token_bytes, 8192);
    assert_eq!(
        c.protected_resource.authorization_servers,
        vec!["https://login.example.com/t/v2.0"]
    );
}

#[test]
fn host_crypto_auto_and_off() {
    for (value, on) in [("auto", true), ("off", false)] {
        let mut v = base();
        v["host_crypto"] = json!(value);
        let c = Config::parse(v.to_string().as_bytes()).expect("valid");
        assert_eq!(c.host_crypto, on, "{value}");
    }
}

#[test]
fn duplicate_members_are_refused_with_their_path() {
    // serde_json keeps the last of two equal keys; a config must never mean that.
    let text = base().to_string();
    let twice = text.replacen(
        "\"issuer\":",
        "\"issuer\":\"https://evil.example.com\",\"issuer\":",
        1,
    );
    let e = Config::parse(twice.as_bytes()).expect_err("duplicate issuer");
    assert_eq!(e.field, "providers.entra.issuer");
    assert_eq!(
        e.to_string(),
        "invalid plugin configuration: providers.entra.issuer: duplicate member \"issuer\""
    );
    let two_providers = text.replacen("\"providers\":{", "\"providers\":{\"entra\":{},", 1);
    let e = Config::parse(two_providers.as_bytes()).expect_err("provider named twice");
    assert_eq!(e.field, "providers.entra");
    let e = Config::parse(br#"{"providers":{"a":{"issuer":}}}"#).expect_err("syntax");
    assert_eq!(e.field, "providers.a.issuer");
}

#[test]
fn default_algorithms_are_rs256_and_es256() {
    let mut v = base();
    v["providers"]["entra"]
        .as_object_mut()
        .unwrap()
        .remove("algorithms");
    let c = Config::parse(v.to_string().as_bytes()).unwrap();
    assert_eq!(c.providers[0].algorithms, vec![Alg::Rs256, Alg::Es256]);
}

#[test]
fn refusals_name_the_field() {
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            Box::new(|v| v["bogus"] = json!(1)),
            "bogus",
            "unknown field `bogus`",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["audience"] = json!("x")),
            "providers.entra.audience",
            "unknown field `audience`",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["audiences"] = json!([])),
            "providers.entra.audiences",
            "at least one audience",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["audiences"] = json!("api://x")),
            "providers.entra.audiences",
            "invalid type",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["RS256", "HS256"])),
            "providers.entra.algorithms[1]",
            "symmetric algorithm HS256",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["none"])),
            "providers.entra.algorithms[0]",
            "alg \"none\"",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["algorithms"] = json!(["ES512"])),
            "providers.entra.algorithms[0]",
            "unsupported algorithm ES512",
        ),
        (
            Box::new(|v| v["rules"][0]["requires"]["provider_name"] = json!("okta")),
            "rules[0].requires.provider_name",
            "no provider named \"okta\"",
        ),
        (
            Box::new(|v| {
                v["providers"]["entra"]["local_jwks"]["inline_string"] = json!("{not json")
            }),
            "providers.entra.local_jwks.inline_string",
            "JWKS is not valid JSON",
        ),
        (
            Box::new(|v| {
                v["providers"]["entra"]["local_jwks"]["inline_string"] = json!("{\"keys\":[]}")
            }),
            "providers.entra.local_jwks.inline_string",
            "no usable key",
        ),
        (
            Box::new(|v| {
                v["providers"]["entra"]
                    .as_object_mut()
                    .unwrap()
                    .remove("local_jwks");
            }),
            "providers.entra",
            "a key source is required",
        ),
        (
            Box::new(|v| v["rules"][0]["match"] = json!({"prefix":"/a","path":"/b"})),
            "rules[0].match",
            "exactly one",
        ),
        (
            Box::new(|v| v["rules"][0]["match"] = json!({"prefix":"mcp"})),
            "rules[0].match",
            "must start with '/'",
        ),
        (
            Box::new(|v| {
                v["providers"]["entra"]["claim_to_headers"][0]["header_name"] =
                    json!("Authorization")
            }),
            "providers.entra.claim_to_headers[0].header_name",
            "reserved",
        ),
        (
            Box::new(|v| {
                v["providers"]["entra"]["claim_to_headers"][0]["header_name"] = json!("x y")
            }),
            "providers.entra.claim_to_headers[0].header_name",
            "not a valid header name",
        ),
        (
            Box::new(|v| v["unmatched"] = json!("maybe")),
            "unmatched",
            "not \"deny\" or \"allow\"",
        ),
        (
            Box::new(|v| v["host_crypto"] = json!("on")),
            "host_crypto",
            "\"on\" is not \"auto\" or \"off\"",
        ),
        (
            Box::new(|v| v["protected_resource"] = json!({"authorization_servers": []})),
            "protected_resource.authorization_servers",
            "at least one authorization server",
        ),
        (
            Box::new(|v| v["protected_resource"] = json!({"resource": "mcp.example.com"})),
            "protected_resource.resource",
            "not an absolute http(s) URL",
        ),
        (
            Box::new(|v| v["protected_resource"] = json!({"scopes_supported": ["a", "a"]})),
            "protected_resource.scopes_supported[1]",
            "listed twice",
        ),
        (
            Box::new(|v| v["providers"]["entra"]["clock_skew_seconds"] = json!(-1)),
            "providers.entra.clock_skew_seconds",
            "invalid value",
        ),
        (
            Box::new(|v| v["max_token_bytes"] = json!(10)),
            "max_token_bytes",
            "between 256 and 65536",
        ),
    ];
    for (mutate, field, msg) in cases {
        let mut v = base();
        mutate(&mut v);
        let e = err(v);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(msg), "{e} should contain {msg:?}");
        assert!(e.to_string().starts_with("invalid plugin configuration: "));
    }
}

fn remote(v: serde_json::Value) -> serde_json::Value {
    let mut c = base();
    let p = c["providers"]["entra"].as_object_mut().unwrap();
    p.remove("local_jwks");
    for (k, val) in v.as_object().unwrap() {
        p.insert(k.clone(), val.clone());
    }
    c
}

#[test]
fn remote_sources_parse_with_defaults() {
    let c = Config::parse(
        remote(json!({"remote_jwks": {"http_uri": {"uri": "https://idp.example.com/keys", "cluster": "idp"}}}))
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let KeySource::Remote(r) = &c.providers[0].keys else {
        panic!("expected remote");
    };
    assert_eq!(r.kind, RemoteKind::Jwks);
    assert_eq!(r.target.authority, "idp.example.com");
    assert_eq!(r.target.path, "/keys");
    assert_eq!(r.cluster, "idp");
    assert_eq!(r.policy.timeout, 5_000);
    assert_eq!(r.policy.cache_duration, 600_000);
    assert_eq!(r.policy.max_stale, 86_400_000);
    assert_eq!(r.policy.unknown_kid_interval, 30_000);
    assert_eq!(r.cold_start_wait, 5_000);
    assert_eq!(r.max_response_bytes, 512 * 1024);

    let c = Config::parse(
        remote(json!({"discovery": {
            "http_uri": {"uri": "https://idp.example.com/.well-known/openid-configuration", "cluster": "idp", "timeout": "2s"},
            "jwks_cluster": "idp_keys", "cache_duration": "60s", "max_stale": "3600s",
            "unknown_kid_refetch_interval": "5s", "cold_start_wait": "1.5s", "max_response_bytes": 2048
        }}))
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let KeySource::Remote(r) = &c.providers[0].keys else {
        panic!("expected remote");
    };
    assert_eq!(
        r.kind,
        RemoteKind::Discovery {
            jwks_cluster: "idp_keys".into()
        }
    );
    assert_eq!(
        (
            r.policy.timeout,
            r.policy.cache_duration,
            r.policy.max_stale
        ),
        (2_000, 60_000, 3_600_000)
    );
    assert_eq!(
        (r.policy.unknown_kid_interval, r.cold_start_wait),
        (5_000, 1_500)
    );
}

#[test]
fn remote_source_refusals() {
    let uri = json!({"uri": "https://idp/keys", "cluster": "idp"});
    let cases = vec![
        (
            json!({"remote_jwks": {"http_uri": uri}, "local_jwks": {"inline_string": jwks()}}),
            "providers.entra",
            "mutually exclusive",
        ),
        (
            json!({"remote_jwks": {"http_uri": uri}, "discovery": {"http_uri": uri}}),
            "providers.entra",
            "mutually exclusive",
        ),
        (
            json!({"remote_jwks": {"http_uri": {"uri": "idp/keys", "cluster": "idp"}}}),
            "providers.entra.remote_jwks.http_uri.uri",
            "not an absolute http(s) URI",
        ),
        (
            json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys", "cluster": " "}}}),
            "providers.entra.remote_jwks.http_uri.cluster",
            "Envoy cluster",
        ),
        (
            json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys"}}}),
            "providers.entra.remote_jwks.http_uri",
            "missing field `cluster`",
        ),
        (
            json!({"remote_jwks": {"http_uri": uri, "cache_duration": "10m"}}),
            "providers.entra.remote_jwks.cache_duration",
            "not a duration",
        ),
        (
            json!({"remote_jwks": {"http_uri": uri, "jwks_cluster": "x"}}),
            "providers.entra.remote_jwks.jwks_cluster",
            "only applies to discovery",
        ),
        (
            json!({"remote_jwks": {"http_uri": {"uri": "https://idp/keys", "cluster": "idp", "timeout": "0s"}}}),
            "providers.entra.remote_jwks.http_uri.timeout",
            "between 0.1s and 60s",
        ),
        (
            json!({"discovery": {"http_uri": uri, "max_response_bytes": 10}}),
            "providers.entra.discovery.max_response_bytes",
            "between 1024",
        ),
    ];
    for (v, field, msg) in cases {
        let e = err(remote(v));
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(msg), "{e} should contain {msg:?}");
    }
}

#[test]
fn empty_or_non_object_config_is_refused() {
    assert!(Config::parse(b"").is_err());
    assert!(Config::parse(b"  ").is_err());
    assert!(Config::parse(b"[]").is_err());
    assert!(Config::parse(b"{}").is_err());
    assert!(Config::parse(b"{\"providers\":{},\"rules\":[]} x").is_err());
}

/// Two providers, two servers with their own metadata, one open path, no top-level
/// `protected_resource`.
fn gateway() -> serde_json::Value {
    let mut v = base();
    v["providers"]["okta"] = v["providers"]["entra"].clone();
    v["providers"]["okta"]["issuer"] = json!("https://okta.example.com/oauth2/default");
    v["rules"] = json!([
        {"match": {"prefix": "/a/mcp"}, "requires": {"provider_name": "entra"},
         "protected_resource": {"resource": "https://mcp.example.com/a/mcp",
                                "scopes_supported": ["a.read", "a.write"],
                                "resource_name": "A"}},
        {"match": {"prefix": "/b/mcp"}, "requires": {"provider_name": "okta"},
         "required_scopes": ["b.use"],
         "protected_resource": {"resource": "https://mcp.example.com/b/mcp"}},
        {"match": {"prefix": "/open"}}
    ]);
    v
}

#[test]
fn rules_carry_their_own_protected_resource_derived_once() {
    let c = Config::parse(gateway().to_string().as_bytes()).expect("valid");
    // No top-level document: the root form has nothing to say (404 in decide).
    assert!(c.protected_resource.authorization_servers.is_empty());
    assert!(c.protected_resource.resource.is_none());
    let a = c.resource_for(0);
    assert_eq!(a.resource.as_deref(), Some("https://mcp.example.com/a/mcp"));
    // Unset authorization_servers: the rule's own provider's issuer, not every issuer.
    assert_eq!(
        a.authorization_servers,
        ["https://login.example.com/t/v2.0"]
    );
    assert_eq!(
        a.metadata_url.as_deref(),
        Some("https://mcp.example.com/.well-known/oauth-protected-resource/a/mcp")
    );
    let doc: serde_json::Value = serde_json::from_slice(a.document.as_deref().unwrap()).unwrap();
    assert_eq!(doc["resource_name"], "A");
    let b = c.resource_for(1);
    assert_eq!(
        b.authorization_servers,
        ["https://okta.example.com/oauth2/default"]
    );
    assert_eq!(
        b.metadata_url.as_deref(),
        Some("https://mcp.example.com/.well-known/oauth-protected-resource/b/mcp")
    );
    // The 401 scope: the rule's required scopes, else its own scopes_supported.
    assert_eq!(c.rules[0].challenge_scope, "a.read a.write");
    assert_eq!(c.rules[1].challenge_scope, "b.use");
    // An open rule has none; the top-level stands in (and describes nothing here).
    assert!(c.rule_resources[2].is_none());
    assert!(c.resource_for(2).authorization_servers.is_empty());

    // With a top-level document, rules without their own use it.
    let mut v = gateway();
    v["protected_resource"] = json!({"scopes_supported": ["top"]});
    v["rules"][2] = json!({"match": {"prefix": "/c"}, "requires": {"provider_name": "entra"}});
    let c = Config::parse(v.to_string().as_bytes()).expect("valid");
    assert_eq!(c.rules[2].challenge_scope, "top");
    assert_eq!(
        c.resource_for(2).authorization_servers,
        [
            "https://login.example.com/t/v2.0",
            "https://okta.example.com/oauth2/default"
        ]
    );
    assert_eq!(c.rules[0].challenge_scope, "a.read a.write");
}

#[test]
fn a_rules_protected_resource_is_checked_and_errors_name_the_rule() {
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            Box::new(|v| v["rules"][2]["protected_resource"] = json!({})),
            "rules[2].protected_resource",
            "add requires.provider_name",
        ),
        (
            Box::new(|v| {
                v["rules"][1]["protected_resource"]["resource"] =
                    json!("https://mcp.example.com/other")
            }),
            "rules[1].protected_resource.resource",
            "must end in the path this rule protects (\"/b/mcp\")",
        ),
        (
            Box::new(|v| {
                v["rules"][1]["protected_resource"]["resource"] = json!("https://mcp.example.com/")
            }),
            "rules[1].protected_resource.resource",
            "must end in the path this rule protects (\"/b/mcp\"): clients fetch its metadata from https://mcp.example.com/.well-known/oauth-protected-resource (RFC 9728",
        ),
        (
            Box::new(|v| {
                v["rules"][1]["protected_resource"]["authorization_servers"] = json!([])
            }),
            "rules[1].protected_resource.authorization_servers",
            "at least one authorization server",
        ),
        (
            Box::new(|v| {
                v["rules"][0]["protected_resource"]["scopes_supported"] = json!(["x", "x"])
            }),
            "rules[0].protected_resource.scopes_supported[1]",
            "listed twice",
        ),
        (
            // A second rule claiming A's resource with another document.
            Box::new(|v| {
                let rules = v["rules"].as_array_mut().unwrap();
                rules.insert(
                    1,
                    json!({"match": {"prefix": "/a"}, "requires": {"provider_name": "okta"},
                           "protected_resource": {"resource": "https://mcp.example.com/a/mcp"}}),
                );
            }),
            "rules[1].protected_resource",
            "rules[0] claims the same resource with a different document",
        ),
        (
            // An earlier rule answers the resource's path with another document.
            Box::new(|v| {
                let rules = v["rules"].as_array_mut().unwrap();
                rules.insert(
                    0,
                    json!({"match": {"prefix": "/b"}, "requires": {"provider_name": "okta"},
                           "protected_resource": {"resource": "https://mcp.example.com/b"}}),
                );
            }),
            "rules[2].protected_resource",
            "https://mcp.example.com/.well-known/oauth-protected-resource/b/mcp (RFC 9728 §3.3), but rules[0] matches that path first",
        ),
        (
            Box::new(|v| {
                v["rules"][2] =
                    json!({"match": {"prefix": "/c"}, "requires": {"provider_name": "entra"}})
            }),
            "rules[2]",
            "no top-level protected_resource",
        ),
        (
            Box::new(|v| {
                v["protected_resource"] = json!({"resource": "https://mcp.example.com/a/mcp"})
            }),
            "protected_resource.resource",
            "rules[0]'s, which has its own protected_resource",
        ),
    ];
    for (mutate, field, msg) in cases {
        let mut v = gateway();
        mutate(&mut v);
        let e = err(v);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(msg), "{e} should contain {msg:?}");
    }
    // Two rules may share a resource with the same document (an exact path, then its
    // prefix); the metadata URL reaches the first, which says the same.
    let mut v = gateway();
    let a = v["rules"][0].clone();
    let mut exact = a.clone();
    exact["match"] = json!({"path": "/a/mcp"});
    v["rules"].as_array_mut().unwrap().insert(0, exact);
    let c = Config::parse(v.to_string().as_bytes()).expect("same document, same resource");
    assert_eq!(c.resource_for(0).document, c.resource_for(1).document);
}

// ---------------------------------------------------------------------------------------
// authorization_server (the sign-in façade).

const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj"; // 36 bytes
const SECRET: &str = "UPSTREAM-SECRET-VALUE";

fn facade_base() -> serde_json::Value {
    let mut v = base();
    v["protected_resource"] = json!({
        "resource": "https://mcp.example.com/mcp",
        "scopes_supported": ["calculator.add"]
    });
    v["authorization_server"] = json!({
        "provider_name": "entra",
        "sealing_keys_env": ["SEAL_KEY_A"],
        "redirect_uris": ["http://127.0.0.1/*", "https://claude.ai/api/mcp/auth_callback"],
        "upstream": {
            "authorization_endpoint": "https://login.example.com/t/oauth2/v2.0/authorize",
            "token_endpoint": {
                "uri": "https://login.example.com/t/oauth2/v2.0/token",
                "cluster": "entra",
                "timeout": "3s"
            },
            "client_id": "app-id",
            "client_secret_env": "UPSTREAM_SECRET",
            "scope_prefix": "api://app-id",
            "extra_scopes": ["offline_access"],
            "authorize_params": {"prompt": "select_account"}
        }
    });
    v
}

fn env(name: &str) -> Option<String> {
    match name {
        "SEAL_KEY_A" => Some(KEY_A.into()),
        "SHORT" => Some("AAECAwQ=".into()),
        "UPSTREAM_SECRET" => Some(SECRET.into()),
        _ => None,
    }
}

fn facade_parse(v: &serde_json::Value) -> Result<Config, ConfigError> {
    Config::parse_with_env(v.to_string().as_bytes(), &env)
}

#[test]
fn facade_builds_settings_and_names_itself_in_the_prm() {
    let c = facade_parse(&facade_base()).expect("valid");
    let f = c.facade.as_ref().expect("façade on");
    assert_eq!(f.settings.spec.issuer, "https://mcp.example.com");
    assert_eq!(f.settings.spec.resource, "https://mcp.example.com/mcp");
    assert_eq!(f.settings.spec.scopes_supported, vec!["calculator.add"]);
    assert_eq!(
        f.settings.callback_url,
        "https://mcp.example.com/auth/callback"
    );
    assert_eq!(f.token_cluster, "entra");
    assert_eq!(f.token_authority, "login.example.com");
    assert_eq!(f.token_path, "/t/oauth2/v2.0/token");
    assert_eq!(f.token_timeout_ms, 3000);
    assert_eq!(f.keys.len(), 1);
    let up = &f.settings.spec.upstream;
    assert_eq!(up.client_secret.as_ref().map(|s| s.expose()), Some(SECRET));
    assert!(!up.send_resource);
    assert_eq!(
        up.authorize_params,
        vec![("prompt".to_string(), "select_account".to_string())]
    );
    assert_eq!(
        c.protected_resource.authorization_servers,
        vec!["https://mcp.example.com"]
    );
    // No secret in Debug.
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(SECRET) && !dbg.contains(KEY_A));
    // Without an environment (Config::parse) the keys are missing: refused.
    let e = Config::parse(facade_base().to_string().as_bytes()).unwrap_err();
    assert_eq!(e.field, "authorization_server.sealing_keys_env[0]");
}

#[test]
fn facade_refusals_name_the_field_and_never_a_secret() {
    type Change = fn(&mut serde_json::Value);
    let cases: Vec<(Change, &str)> = vec![
        (
            |v| v["authorization_server"]["sealing_keys_env"] = json!(["SHORT"]),
            "authorization_server.sealing_keys_env[0]",
        ),
        (
            |v| v["authorization_server"]["sealing_keys_env"] = json!(["SEAL_KEY_A", "NOPE"]),
            "authorization_server.sealing_keys_env[1]",
        ),
        (
            |v| v["authorization_server"]["sealing_keys_env"] = json!([]),
            "authorization_server.sealing_keys_env",
        ),
        (
            |v| v["authorization_server"]["upstream"]["client_secret_env"] = json!("NOPE"),
            "authorization_server.upstream.client_secret_env",
        ),
        (
            |v| v["authorization_server"]["provider_name"] = json!("other"),
            "authorization_server.provider_name",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"] = json!({"http_uri": {"uri": "https://x/.well-known/openid-configuration", "cluster": "x"}}),
            "authorization_server.upstream.discovery",
        ),
        (
            |v| {
                v["authorization_server"]["upstream"]
                    .as_object_mut()
                    .unwrap()
                    .remove("token_endpoint");
            },
            "authorization_server.upstream.token_endpoint",
        ),
        (
            |v| v["authorization_server"]["upstream"]["token_endpoint"]["cluster"] = json!(" "),
            "authorization_server.upstream.token_endpoint.cluster",
        ),
        (
            |v| v["authorization_server"]["consent"] = json!("never"),
            "authorization_server.consent",
        ),
        (
            |v| v["authorization_server"]["redirect_uris"] = json!(["http://evil.com/*"]),
            "authorization_server",
        ),
        (
            |v| {
                v["protected_resource"]
                    .as_object_mut()
                    .unwrap()
                    .remove("resource");
            },
            "authorization_server.issuer",
        ),
        (
            |v| v["protected_resource"]["authorization_servers"] = json!(["https://other.example"]),
            "protected_resource.authorization_servers",
        ),
        (
            |v| v["authorization_server"]["upstream"]["surprise"] = json!(1),
            "authorization_server.upstream.surprise",
        ),
    ];
    for (i, (change, field)) in cases.iter().enumerate() {
        let mut v = facade_base();
        change(&mut v);
        let e = facade_parse(&v).expect_err(&format!("case {i} must be refused"));
        assert_eq!(e.field, *field, "case {i}: {e}");
        let text = e.to_string();
        assert!(
            !text.contains(SECRET) && !text.contains(KEY_A),
            "case {i}: {text}"
        );
    }
}

#[test]
fn facade_issuer_may_be_set() {
    let mut v = facade_base();
    v["authorization_server"]["issuer"] = json!("https://auth.example.com/");
    v["authorization_server"]["callback_path"] = json!("/oauth/cb");
    let c = facade_parse(&v).expect("valid");
    let f = c.facade.as_ref().unwrap();
    assert_eq!(f.settings.spec.issuer, "https://auth.example.com");
    assert_eq!(f.settings.callback_url, "https://auth.example.com/oauth/cb");
    assert_eq!(
        c.protected_resource.authorization_servers,
        vec!["https://auth.example.com"]
    );
}

#[test]
fn facade_names_itself_only_for_its_providers_rules() {
    let mut v = facade_base();
    v["providers"]["other"] = json!({
        "issuer": "https://other.example.com",
        "audiences": ["o"],
        "local_jwks": {"inline_string": jwks()},
        "algorithms": ["EdDSA"]
    });
    v["rules"] = json!([
        {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"}},
        {"match": {"prefix": "/other"}, "requires": {"provider_name": "other"},
         "protected_resource": {"resource": "https://mcp.example.com/other"}}
    ]);
    let c = facade_parse(&v).expect("valid");
    assert!(c.rule_resources[0].is_none());
    assert_eq!(
        c.resource_for(0).authorization_servers,
        vec!["https://mcp.example.com"]
    );
    assert_eq!(
        c.rule_resources[1].as_ref().unwrap().authorization_servers,
        vec!["https://other.example.com"]
    );
}

/// `facade_base` with `upstream.discovery` in place of the two endpoints.
fn facade_discovery() -> serde_json::Value {
    let mut v = facade_base();
    let up = v["authorization_server"]["upstream"]
        .as_object_mut()
        .unwrap();
    up.remove("authorization_endpoint");
    up.remove("token_endpoint");
    up.insert(
        "discovery".into(),
        json!({"http_uri": {
            "uri": "https://login.example.com/t/v2.0/.well-known/openid-configuration",
            "cluster": "entra_meta", "timeout": "2s"}}),
    );
    v
}

#[test]
fn facade_upstream_discovery_is_accepted_with_its_defaults() {
    let c = facade_parse(&facade_discovery()).expect("valid");
    let f = c.facade.as_ref().unwrap();
    let d = f.discovery.as_ref().unwrap();
    assert_eq!(
        d.uri,
        "https://login.example.com/t/v2.0/.well-known/openid-configuration"
    );
    assert_eq!(d.target.authority, "login.example.com");
    assert_eq!((d.cluster.as_str(), d.timeout_ms), ("entra_meta", 2_000));
    assert_eq!(d.issuer, None);
    assert!(!d.token_cluster_set);
    assert_eq!(d.refresh_ms, 24 * 3600 * 1000);
    // The token callout goes through the document's cluster unless told otherwise.
    assert_eq!(f.token_cluster, "entra_meta");
    assert_eq!(f.token_timeout_ms, 10_000);
    assert_eq!(
        (f.token_authority.as_str(), f.token_path.as_str()),
        ("", "")
    );

    let mut v = facade_discovery();
    let disc = &mut v["authorization_server"]["upstream"]["discovery"];
    disc["issuer"] = json!("https://login.example.com/t/v2.0");
    disc["token_cluster"] = json!("entra_token");
    disc["token_timeout"] = json!("4s");
    disc["cache_duration"] = json!("3600s");
    disc["max_response_bytes"] = json!(65536);
    let c = facade_parse(&v).expect("valid");
    let f = c.facade.as_ref().unwrap();
    let d = f.discovery.as_ref().unwrap();
    assert_eq!(
        d.issuer.as_deref(),
        Some("https://login.example.com/t/v2.0")
    );
    assert!(d.token_cluster_set);
    assert_eq!(
        (f.token_cluster.as_str(), f.token_timeout_ms),
        ("entra_token", 4_000)
    );
    assert_eq!((d.refresh_ms, d.max_response_bytes), (3_600_000, 65_536));
}

#[test]
fn facade_upstream_discovery_refusals_name_the_field() {
    type Change = fn(&mut serde_json::Value);
    let cases: Vec<(Change, &str)> = vec![
        (
            |v| {
                v["authorization_server"]["upstream"]["token_endpoint"] =
                    json!({"uri": "https://x/t", "cluster": "x"})
            },
            "authorization_server.upstream.discovery",
        ),
        (
            |v| {
                v["authorization_server"]["upstream"]["discovery"]["http_uri"]["uri"] =
                    json!("ftp://x/")
            },
            "authorization_server.upstream.discovery.http_uri.uri",
        ),
        (
            |v| {
                v["authorization_server"]["upstream"]["discovery"]["http_uri"]["cluster"] =
                    json!("")
            },
            "authorization_server.upstream.discovery.http_uri.cluster",
        ),
        (
            |v| {
                v["authorization_server"]["upstream"]["discovery"]["http_uri"]["timeout"] =
                    json!("90s")
            },
            "authorization_server.upstream.discovery.http_uri.timeout",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"]["token_cluster"] = json!(" "),
            "authorization_server.upstream.discovery.token_cluster",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"]["token_timeout"] = json!("10ms"),
            "authorization_server.upstream.discovery.token_timeout",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"]["cache_duration"] = json!("5s"),
            "authorization_server.upstream.discovery.cache_duration",
        ),
        (
            |v| {
                v["authorization_server"]["upstream"]["discovery"]["max_response_bytes"] = json!(10)
            },
            "authorization_server.upstream.discovery.max_response_bytes",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"]["issuer"] = json!("not a url"),
            "authorization_server.upstream.discovery.issuer",
        ),
        (
            |v| v["authorization_server"]["upstream"]["discovery"]["jwks_cluster"] = json!("x"),
            "authorization_server.upstream.discovery.jwks_cluster",
        ),
    ];
    for (i, (change, field)) in cases.iter().enumerate() {
        let mut v = facade_discovery();
        change(&mut v);
        let e = facade_parse(&v).expect_err(&format!("case {i} must be refused"));
        assert_eq!(e.field, *field, "case {i}: {e}");
    }
}
