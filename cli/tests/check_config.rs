//! `check-config` through the real binary: the demo configuration (rule table, the PRM URL
//! and document the filter serves) and broken configurations (Config::parse's message).

// Test code: panicking on a broken fixture is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use mcp_edge_auth::config::Config;
use serde_json::{json, Value};
use support::*;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../envoy/demo-plugin.json");

#[test]
fn demo_config_rules_and_metadata() {
    let r = cli(&["check-config", DEMO]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    let out = &r.stdout;
    assert!(out.contains("configuration is valid"), "{out}");
    assert!(
        out.contains("rules (first match wins; unmatched paths: deny (403)):"),
        "{out}"
    );
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("  0 ") || l.starts_with("  1 "))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].contains("prefix /mcp") && rows[0].contains("devidp"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("path /healthz") && rows[1].contains("(none: no token)"),
        "{}",
        rows[1]
    );
    assert!(out.contains("discovery http://127.0.0.1:9000/.well-known/openid-configuration"));
    let url = "http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp";
    assert!(
        out.contains(&format!("rules[0] /mcp: 401 challenges point to {url}")),
        "{out}"
    );
    assert!(out.contains(&format!("GET {url} -> 200")), "{out}");

    // The printed document is exactly prm::document for the configured resource.
    let json_text: String = out
        .lines()
        .skip_while(|l| !l.contains("-> 200"))
        .skip(1)
        .map(str::trim)
        .collect();
    let printed: Value = serde_json::from_str(&json_text).expect("document JSON");
    let cfg = Config::parse(&std::fs::read(DEMO).unwrap()).unwrap();
    let expected =
        mcp_edge_auth::http::prm::document(&cfg.protected_resource, "http://127.0.0.1:10000/mcp");
    assert_eq!(printed, expected);
    assert_eq!(
        printed["authorization_servers"],
        json!(["http://127.0.0.1:9000"])
    );
}

#[test]
fn broken_configs_fail_with_the_filters_message() {
    let demo: Value = serde_json::from_slice(&std::fs::read(DEMO).unwrap()).unwrap();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    let mut no_aud = demo.clone();
    no_aud["providers"]["devidp"]["audiences"] = json!([]);
    cases.push(no_aud.to_string().into_bytes());
    let mut typo = demo.clone();
    typo["rules"][0]["requires"]["provider_name"] = json!("devidP");
    cases.push(typo.to_string().into_bytes());
    let mut unknown = demo.clone();
    unknown["providers"]["devidp"]["audience"] = json!("x");
    cases.push(unknown.to_string().into_bytes());
    cases.push(b"{\"providers\": {}, \"rules\": [}".to_vec());
    cases.push(b"   ".to_vec());
    for bytes in cases {
        let expected = Config::parse(&bytes).expect_err("broken").to_string();
        let file = temp_file("broken.json", &bytes);
        let r = cli(&["check-config", &file]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert_eq!(r.stderr, format!("{expected}\n"));
        assert!(r.stdout.is_empty(), "{}", r.stdout);
    }
}

#[test]
fn mcp_rules_and_derived_metadata_urls() {
    let cfg = json!({
        "providers": {"entra": {
            "issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "audiences": [API_ID],
            "local_jwks": {"inline_string": jwks()}
        }},
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "entra"},
             "required_scopes": ["Tools.Read"],
             "mcp": {"tools": {"add": ["calculator.add"]}, "unlisted_tools": "deny"}},
            {"match": {"prefix": "/admin"}, "requires": {"provider_name": "entra"}}
        ],
        "unmatched": "allow"
    })
    .to_string();
    let file = temp_file("mcp.json", cfg.as_bytes());
    let r = cli(&["check-config", &file, "--origin", "https://api.example.com"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    assert!(out.contains("unmatched paths: allow"), "{out}");
    assert!(
        out.contains("tools {add: calculator.add; unlisted deny}"),
        "{out}"
    );
    assert!(out.contains("methods {unlisted allow}"), "{out}");
    assert!(out.contains("Tools.Read"), "{out}");
    for path in ["/mcp", "/admin"] {
        let url = format!("https://api.example.com/.well-known/oauth-protected-resource{path}");
        assert!(out.contains(&format!("GET {url} -> 200")), "{out}");
        assert!(
            out.contains(&format!("\"resource\": \"https://api.example.com{path}\"")),
            "{out}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(cli(&["check-config"]).code, 2);
    assert_eq!(cli(&["check-config", "/nonexistent/file.json"]).code, 2);
    assert_eq!(cli(&["frobnicate"]).code, 2);
    assert_eq!(cli(&[]).code, 2);
    let help = cli(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("check-config FILE"));
}

#[test]
fn each_rules_own_metadata_is_shown() {
    let provider = |iss: &str| {
        json!({"issuer": iss, "audiences": ["mcp"], "algorithms": ["RS256"],
               "local_jwks": {"inline_string": jwks()}})
    };
    let cfg = json!({
        "providers": {"a": provider("https://a.example.com/"), "b": provider("https://b.example.com/")},
        "rules": [
            {"match": {"prefix": "/a/mcp"}, "requires": {"provider_name": "a"},
             "protected_resource": {"resource": "https://mcp.example.com/a/mcp"}},
            {"match": {"prefix": "/b/mcp"}, "requires": {"provider_name": "b"},
             "protected_resource": {"resource": "https://mcp.example.com/b/mcp"}},
            {"match": {"prefix": "/open"}}
        ]
    });
    let file = temp_file("gateway.json", cfg.to_string().as_bytes());
    let r = cli(&["check-config", &file]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    for (i, s) in [(0, "a"), (1, "b")] {
        let url = format!("https://mcp.example.com/.well-known/oauth-protected-resource/{s}/mcp");
        assert!(
            out.contains(&format!(
                "rules[{i}] /{s}/mcp: 401 challenges point to {url}"
            )),
            "{out}"
        );
        assert!(out.contains(&format!("GET {url} -> 200")), "{out}");
        assert!(
            out.contains(&format!("\"https://{s}.example.com/\"")),
            "{s}'s issuer in its document: {out}"
        );
    }
    assert!(!out.contains("same document as above"), "{out}");
}

/// The demo's façade with `upstream.discovery` in place of its two endpoints: check-config
/// says where the endpoints will come from (the secrets from this process's environment).
#[test]
fn facade_with_upstream_discovery_names_the_metadata_document() {
    std::env::set_var(
        "FACADE_SEAL_KEY",
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    );
    std::env::set_var("FACADE_CLIENT_SECRET", "not-a-real-secret");
    let demo = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../envoy/demo-facade-plugin.json"
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(demo).unwrap()).unwrap();
    let up = v["authorization_server"]["upstream"]
        .as_object_mut()
        .unwrap();
    up.remove("authorization_endpoint");
    up.remove("token_endpoint");
    up.insert(
        "discovery".into(),
        json!({"http_uri": {"uri": "http://127.0.0.1:9001/.well-known/openid-configuration",
                            "cluster": "idp_entra"}}),
    );
    let file = temp_file("facade-discovery.json", v.to_string().as_bytes());
    let r = cli(&["check-config", &file]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(
            "authorize and token endpoints from the metadata at \
             http://127.0.0.1:9001/.well-known/openid-configuration via cluster idp_entra"
        ),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains("not-a-real-secret"));

    // Both ways at once: refused, naming the field.
    let mut both = v.clone();
    both["authorization_server"]["upstream"]["authorization_endpoint"] =
        json!("http://127.0.0.1:9001/authorize");
    let file = temp_file("facade-both.json", both.to_string().as_bytes());
    let r = cli(&["check-config", &file]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("authorization_server.upstream.discovery"),
        "{}",
        r.all()
    );
}
