//! `docs/config.schema.json` (JSON Schema 2020-12, hand-written) against the Rust types in
//! `src/config/`, both ways:
//!
//! - Rust → schema: at every object the schema describes, a config with an unknown field is
//!   refused by `Config::parse`, whose error lists the fields serde accepts there; that list
//!   must equal the schema's `properties`, and the schema must say
//!   `additionalProperties: false` there (the Rust types use `deny_unknown_fields`).
//! - schema → Rust: a "kitchen sink" configuration sets every property the schema has (the
//!   test proves it covers them all) and both accept it; then every numeric bound and every
//!   enum found in the schema is probed at its edges, and a table of mutations (patterns,
//!   required fields, exclusive key sources, dependent fields, types) must be refused by
//!   both or accepted by both. Checks only the filter can do are listed in
//!   `known_differences` so a change on either side shows up.
//! - every configuration example in the repository (demo, recipes, Istio, Envoy Gateway,
//!   JSON blocks in README.md and docs/*.md) validates against the schema.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod deploy_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};

use deploy_support::*;
use mcp_edge_auth::config::{Config, ConfigError};
use serde_json::{json, Value};

fn schema() -> Value {
    serde_json::from_str(&read("docs/config.schema.json")).expect("docs/config.schema.json")
}

fn validator() -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema())
        .unwrap_or_else(|e| panic!("docs/config.schema.json does not compile: {e}"))
}

fn schema_errors(v: &jsonschema::Validator, config: &Value) -> Vec<String> {
    v.iter_errors(config)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The VM environment the kitchen sink's `authorization_server` names.
fn env(name: &str) -> Option<String> {
    match name {
        // The kitchen sink's names, then those of the façade recipe and CONFIG.md's example.
        "SEAL_KEY_A" | "SEAL_KEY_B" | "FACADE_SEAL_KEY" => {
            Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj".to_string())
        }
        "UPSTREAM_SECRET" | "ENTRA_CLIENT_SECRET" | "FACADE_CLIENT_SECRET" => {
            Some("not-a-real-secret".to_string())
        }
        _ => None,
    }
}

fn rust(config: &Value) -> Result<Config, ConfigError> {
    Config::parse_with_env(serde_json::to_string(config).unwrap().as_bytes(), &env)
}

const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk"}]}"#;

/// Sets every property the schema defines.
fn kitchen_sink() -> Value {
    json!({
        "providers": {
            "local": {
                "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                "issuers": ["https://sts.windows.net/{tenantid}/"],
                "allowed_tenants": ["72f988bf-86f1-41af-91ab-2d7cd011db47"],
                "audiences": ["api://x", "x"],
                "local_jwks": { "inline_string": JWKS },
                "algorithms": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "EdDSA"],
                "clock_skew_seconds": 60,
                "forward": false,
                "claim_to_headers": [{ "claim_name": "realm_access.roles", "header_name": "X-Roles" }],
                "require_typ": "at+jwt",
                "scope_claims": ["scp", "roles"],
                "scope_prefix": "api://x/",
                "forward_identity": true
            },
            "remote": {
                "issuer": "https://idp.example.com/",
                "audiences": ["https://mcp.example.com/mcp"],
                "remote_jwks": {
                    "http_uri": { "uri": "https://idp.example.com/.well-known/jwks.json", "cluster": "idp", "timeout": "5s" },
                    "cache_duration": "600s",
                    "max_stale": "86400s",
                    "unknown_kid_refetch_interval": "30s",
                    "cold_start_wait": "5s",
                    "max_response_bytes": 524288
                }
            },
            "disc": {
                "issuer": "https://kc.example.com/realms/r",
                "audiences": ["mcp"],
                "discovery": {
                    "http_uri": { "uri": "https://kc.example.com/realms/r/.well-known/openid-configuration", "cluster": "kc", "timeout": "5s" },
                    "jwks_cluster": "kc",
                    "cache_duration": "600s",
                    "max_stale": "86400s",
                    "unknown_kid_refetch_interval": "30s",
                    "cold_start_wait": "5s",
                    "max_response_bytes": 524288
                }
            }
        },
        "rules": [
            {
                "match": { "prefix": "/mcp" },
                "requires": { "provider_name": "local" },
                "required_scopes": ["mcp.access"],
                "mcp": {
                    "methods": { "tools/list": [], "resources/read": ["files.read"] },
                    "tools": { "add": ["calculator.add"], "*": ["calculator.admin"] },
                    "prompts": { "greet": [] },
                    "resources": { "file:///a": ["files.read"] },
                    "unlisted_methods": "allow",
                    "unlisted_tools": "deny",
                    "unlisted_prompts": "deny",
                    "unlisted_resources": "deny",
                    "max_body_bytes": 1048576,
                    "body_timeout": "15s",
                    "trust_headers": false
                }
            },
            { "match": { "path": "/healthz" } },
            {
                "match": { "prefix": "/tickets" },
                "requires": { "provider_name": "disc" },
                "protected_resource": {
                    "resource": "https://mcp.example.com/tickets",
                    "authorization_servers": ["https://kc.example.com/realms/r"],
                    "scopes_supported": ["tickets.read"],
                    "resource_name": "Tickets",
                    "resource_documentation": "https://mcp.example.com/tickets/docs",
                    "resource_policy_uri": "https://mcp.example.com/tickets/policy",
                    "resource_tos_uri": "https://mcp.example.com/tickets/tos"
                }
            }
        ],
        "unmatched": "deny",
        "max_token_bytes": 8192,
        "token_cache": { "max_entries": 1024, "max_bytes": 4194304 },
        "allowed_origins": ["https://app.example.com", "http://localhost:5173"],
        "filter_state": ["subject", "tool", "decision", "reason"],
        "host_crypto": "auto",
        "protected_resource": {
            "resource": "https://mcp.example.com/mcp",
            "authorization_servers": ["https://mcp.example.com", "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"],
            "scopes_supported": ["api://x/calculator.add"],
            "resource_name": "Calculator",
            "resource_documentation": "https://mcp.example.com/docs",
            "resource_policy_uri": "https://mcp.example.com/policy",
            "resource_tos_uri": "https://mcp.example.com/tos"
        },
        "authorization_server": {
            "upstream": {
                "authorization_endpoint": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/authorize",
                "token_endpoint": { "uri": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", "cluster": "entra", "timeout": "5s" },
                "client_id": "11111111-2222-3333-4444-555555555555",
                "client_secret_env": "UPSTREAM_SECRET",
                "client_auth": "client_secret_post",
                "scope_prefix": "api://x",
                "extra_scopes": ["offline_access"],
                "send_resource": false,
                "authorize_params": { "prompt": "select_account" }
            },
            "provider_name": "local",
            "sealing_keys_env": ["SEAL_KEY_A", "SEAL_KEY_B"],
            "redirect_uris": ["http://127.0.0.1/*", "http://localhost/*", "https://claude.ai/api/mcp/auth_callback"],
            "issuer": "https://mcp.example.com",
            "callback_path": "/auth/callback",
            "scopes_supported": ["calculator.add"],
            "consent": "always",
            "state_ttl": "600s",
            "code_ttl": "60s",
            "refresh_ttl": "2592000s",
            "approval_ttl": "2592000s",
            "max_body_bytes": 16384,
            "body_timeout": "15s"
        }
    })
}

/// The kitchen sink with `authorization_server.upstream.discovery` (every property of it) in
/// place of the two explicit endpoints, which it excludes.
fn kitchen_sink_discovery() -> Value {
    let mut s = kitchen_sink();
    let up = s["authorization_server"]["upstream"]
        .as_object_mut()
        .unwrap();
    up.remove("authorization_endpoint");
    up.remove("token_endpoint");
    up.insert(
        "discovery".into(),
        json!({
            "http_uri": {
                "uri": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration",
                "cluster": "entra",
                "timeout": "5s"
            },
            "issuer": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "token_cluster": "entra_token",
            "token_timeout": "10s",
            "cache_duration": "86400s",
            "max_response_bytes": 524288
        }),
    );
    s
}

/// Between them, these two set every property the schema defines.
fn kitchen_sinks() -> [Value; 2] {
    [kitchen_sink(), kitchen_sink_discovery()]
}

// ---------------------------------------------------------------------------------------
// Walking the schema alongside an instance

fn resolve<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let pointer = r.strip_prefix('#').expect("only local $ref");
        s = root
            .pointer(pointer)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    s
}

/// A visited instance node: its schema path (`providers.*.issuer`, `rules[].mcp`), its JSON
/// pointer, and its (resolved) schema.
struct Node<'a> {
    path: String,
    pointer: String,
    /// The schema as written at this place (a `$ref` names the shape it uses).
    raw: &'a Value,
    schema: &'a Value,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn visit<'a>(
    root: &'a Value,
    raw: &'a Value,
    v: &Value,
    path: &str,
    ptr: &str,
    out: &mut Vec<Node<'a>>,
) {
    let s = resolve(root, raw);
    out.push(Node {
        path: path.to_string(),
        pointer: ptr.to_string(),
        raw,
        schema: s,
    });
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{ptr}/{}", k.replace('~', "~0").replace('/', "~1"));
                if let Some(ps) = s.get("properties").and_then(|p| p.get(k)) {
                    visit(root, ps, x, &join(path, k), &p, out);
                } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    visit(root, ap, x, &join(path, "*"), &p, out);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    visit(
                        root,
                        items,
                        x,
                        &format!("{path}[]"),
                        &format!("{ptr}/{i}"),
                        out,
                    );
                }
            }
        }
        _ => {}
    }
}

fn nodes<'a>(root: &'a Value, instance: &Value) -> Vec<Node<'a>> {
    let mut out = Vec::new();
    visit(root, root, instance, "", "", &mut out);
    out
}

/// Every property path the schema defines (maps as `*`, array items as `[]`).
fn schema_paths(root: &Value) -> BTreeSet<String> {
    fn go(root: &Value, s: &Value, path: &str, out: &mut BTreeSet<String>) {
        let s = resolve(root, s);
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            for (k, ps) in props {
                let p = join(path, k);
                out.insert(p.clone());
                go(root, ps, &p, out);
            }
        }
        if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
            let p = join(path, "*");
            out.insert(p.clone());
            go(root, ap, &p, out);
        }
        if let Some(items) = s.get("items") {
            go(root, items, &format!("{path}[]"), out);
        }
    }
    let mut out = BTreeSet::new();
    go(root, root, "", &mut out);
    out
}

/// The paths of the objects with named properties the schema describes.
fn schema_object_paths(root: &Value) -> BTreeSet<String> {
    fn go(root: &Value, s: &Value, path: &str, out: &mut BTreeSet<String>) {
        let s = resolve(root, s);
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            out.insert(path.to_string());
            for (k, ps) in props {
                go(root, ps, &join(path, k), out);
            }
        }
        if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
            go(root, ap, &join(path, "*"), out);
        }
        if let Some(items) = s.get("items") {
            go(root, items, &format!("{path}[]"), out);
        }
    }
    let mut out = BTreeSet::new();
    go(root, root, "", &mut out);
    out
}

fn with(base: &Value, pointer: &str, v: Value) -> Value {
    let mut d = base.clone();
    *d.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in the kitchen sink")) = v;
    d
}

fn without(base: &Value, pointer: &str) -> Value {
    let mut d = base.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    d.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"))
        .remove(key)
        .unwrap_or_else(|| panic!("no {pointer}"));
    d
}

fn inserted(base: &Value, pointer: &str, key: &str, v: Value) -> Value {
    let mut d = base.clone();
    d.pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
        .insert(key.to_string(), v);
    d
}

/// The field names in serde's "unknown field `x`, expected one of `a`, `b`" message.
fn expected_fields(message: &str) -> BTreeSet<String> {
    let Some((_, rest)) = message.split_once("expected ") else {
        panic!("not an unknown-field error: {message}")
    };
    rest.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------------------------------

#[test]
fn the_schema_is_a_valid_2020_12_schema() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    jsonschema::meta::validate(&s).unwrap_or_else(|e| panic!("meta-schema: {e}"));
    validator();
}

#[test]
fn the_kitchen_sink_sets_every_schema_property_and_both_accept_it() {
    let root = schema();
    let mut used = BTreeSet::new();
    for sink in kitchen_sinks() {
        used.extend(nodes(&root, &sink).into_iter().map(|n| n.path));
        let errs = schema_errors(&validator(), &sink);
        assert!(errs.is_empty(), "{errs:#?}");
        rust(&sink).unwrap_or_else(|e| panic!("Config::parse: {e}"));
    }
    let missing: Vec<String> = schema_paths(&root)
        .into_iter()
        .filter(|p| !used.contains(p))
        .collect();
    assert!(
        missing.is_empty(),
        "the kitchen sinks do not set {missing:?}"
    );
}

/// Rust accepts these names at these schema paths (serde shares one struct) but refuses
/// them in validation; the schema leaves them out.
const RUST_NAMES_REFUSED_LATER: [(&str, &str); 1] = [("providers.*.remote_jwks", "jwks_cluster")];

#[test]
fn field_names_agree_at_every_object() {
    let root = schema();
    let v = validator();
    let mut seen = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for sink in kitchen_sinks() {
        for n in nodes(&root, &sink) {
            let Some(props) = n.schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            if !seen.insert(n.path.clone()) {
                continue;
            }
            let at = if n.path.is_empty() {
                "(top level)"
            } else {
                n.path.as_str()
            };
            assert_eq!(
                n.schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{at}: the Rust type denies unknown fields, so must the schema"
            );
            let mutated = inserted(&sink, &n.pointer, "zz_unknown_field", json!(1));
            assert!(
                !schema_errors(&v, &mutated).is_empty(),
                "{at}: schema took an unknown field"
            );
            let err = rust(&mutated).expect_err("Config::parse took an unknown field");
            assert!(
                err.message.starts_with("unknown field `zz_unknown_field`"),
                "{at}: {err}"
            );
            let mut rust_names = expected_fields(&err.message);
            for (path, name) in RUST_NAMES_REFUSED_LATER {
                if path == n.path && rust_names.remove(name) {
                    // ... and the filter does refuse it there.
                    let refused = inserted(&sink, &n.pointer, name, json!("x"));
                    assert!(rust(&refused).is_err(), "{at}.{name} must be refused");
                    assert!(!schema_errors(&v, &refused).is_empty());
                }
            }
            let schema_names: BTreeSet<String> = props.keys().cloned().collect();
            assert_eq!(
                schema_names, rust_names,
                "{at}: schema properties (left) differ from the Rust fields (right)"
            );
            checked.insert(n.path.clone());
        }
    }
    // Every object the schema describes was checked.
    assert_eq!(checked, schema_object_paths(&root));
    assert!(checked.len() >= 14, "{checked:?}");
}

/// Both refuse, or both accept.
fn agree(v: &jsonschema::Validator, label: &str, config: &Value, accept: bool) {
    let schema_ok = schema_errors(v, config).is_empty();
    let rust_res = rust(config);
    assert_eq!(
        schema_ok,
        accept,
        "{label}: schema {} it (Rust: {:?})",
        if schema_ok { "accepts" } else { "refuses" },
        rust_res.as_ref().err().map(ToString::to_string)
    );
    assert_eq!(
        rust_res.is_ok(),
        accept,
        "{label}: Config::parse {}: {:?}",
        if accept { "must accept" } else { "must refuse" },
        rust_res.err().map(|e| e.to_string())
    );
}

#[test]
fn numeric_bounds_and_enums_agree() {
    let root = schema();
    let v = validator();
    let sink = kitchen_sink();
    let mut bounds = 0;
    let mut enums = 0;
    for n in nodes(&root, &sink) {
        let s = n.schema;
        if s.get("type") == Some(&json!("integer")) {
            let min = s["minimum"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}: no minimum", n.path));
            let max = s["maximum"]
                .as_i64()
                .unwrap_or_else(|| panic!("{}: no maximum", n.path));
            for (x, ok) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
                agree(
                    &v,
                    &format!("{} = {x}", n.path),
                    &with(&sink, &n.pointer, json!(x)),
                    ok,
                );
            }
            bounds += 1;
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            for x in values {
                agree(
                    &v,
                    &format!("{} = {x}", n.path),
                    &with(&sink, &n.pointer, x.clone()),
                    true,
                );
            }
            for bad in ["bogus", "Deny", "HS256", "none"] {
                agree(
                    &v,
                    &format!("{} = {bad}", n.path),
                    &with(&sink, &n.pointer, json!(bad)),
                    false,
                );
            }
            enums += 1;
        }
    }
    assert!(bounds >= 7, "integer fields probed: {bounds}");
    assert!(enums >= 6, "enum fields probed: {enums}");
}

#[test]
fn string_shapes_agree() {
    let root = schema();
    let v = validator();
    let sink = kitchen_sink();
    // By the $def a property uses, so a new field with a known shape is covered.
    let defs: BTreeMap<&str, (Vec<Value>, Vec<Value>)> = BTreeMap::from([
        (
            "#/$defs/duration",
            (
                vec![json!("5s"), json!("30.25s"), json!("5.000000001s")],
                [
                    "5",
                    "5m",
                    "-1s",
                    "s",
                    ".5s",
                    "5.s",
                    "1.0000000001s",
                    "5 s",
                    "",
                    "1e3s",
                ]
                .map(Value::from)
                .to_vec(),
            ),
        ),
        (
            "#/$defs/scope",
            (
                vec![json!("api://x/y.z"), json!("read:all")],
                ["", "a b", "a\"b", "a\\b", "é", "a\tb"]
                    .map(Value::from)
                    .to_vec(),
            ),
        ),
        (
            "#/$defs/url",
            (
                vec![json!("http://127.0.0.1:10000/mcp"), json!("https://a?x=1")],
                [
                    "mcp.example.com",
                    "https://",
                    "https:///x",
                    "https://?x",
                    "https://a/#f",
                    "https://a/ b",
                    "https://a/\"",
                    "ftp://a",
                    "HTTPS://a",
                ]
                .map(Value::from)
                .to_vec(),
            ),
        ),
        (
            "#/$defs/nonblank",
            (vec![json!("x")], vec![json!(""), json!("  ")]),
        ),
    ]);
    let mut probed = BTreeMap::<&str, usize>::new();
    let mut seen = BTreeSet::new();
    for n in nodes(&root, &sink) {
        if !seen.insert(n.path.clone()) {
            continue;
        }
        // A rule's resource is a URL and more: its path must be the rule's
        // (known_differences), which the shape's sample URLs are not.
        if n.path == "rules[].protected_resource.resource" {
            continue;
        }
        // The façade's issuer must also be in protected_resource.authorization_servers
        // (known_differences), which the sample URLs are not.
        // provider_name must name a provider (known_differences).
        if [
            "authorization_server.issuer",
            "authorization_server.provider_name",
            "protected_resource.authorization_servers[]",
        ]
        .contains(&n.path.as_str())
        {
            continue;
        }
        let Some(r) = n.raw.get("$ref").and_then(Value::as_str) else {
            continue;
        };
        if let Some((good, bad)) = defs.get(r) {
            for x in good {
                agree(
                    &v,
                    &format!("{} = {x}", n.path),
                    &with(&sink, &n.pointer, x.clone()),
                    true,
                );
            }
            for x in bad {
                agree(
                    &v,
                    &format!("{} = {x}", n.path),
                    &with(&sink, &n.pointer, x.clone()),
                    false,
                );
            }
            *probed.entry(r).or_default() += 1;
        }
    }
    // Each shape is used by several fields (11 durations, for one).
    assert!(probed["#/$defs/duration"] >= 6, "{probed:?}");
    assert!(probed["#/$defs/scope"] >= 3, "{probed:?}");
    assert!(probed["#/$defs/url"] >= 5, "{probed:?}");
    assert!(probed["#/$defs/nonblank"] >= 4, "{probed:?}");
}

#[test]
fn structure_rules_agree() {
    let v = validator();
    let s = kitchen_sink();
    let p = "/providers/local";
    let r0 = "/rules/0";
    let remote = json!({ "http_uri": { "uri": "https://a/k", "cluster": "c" } });
    let cases: Vec<(&str, Value, bool)> = vec![
        ("no providers", without(&s, "/providers"), false),
        ("no rules", without(&s, "/rules"), false),
        ("no issuer", without(&s, &format!("{p}/issuer")), false),
        (
            "no audiences",
            without(&s, &format!("{p}/audiences")),
            false,
        ),
        (
            "empty audiences",
            with(&s, &format!("{p}/audiences"), json!([])),
            false,
        ),
        (
            "blank audience",
            with(&s, &format!("{p}/audiences/0"), json!(" ")),
            false,
        ),
        (
            "no key source",
            without(&s, &format!("{p}/local_jwks")),
            false,
        ),
        (
            "two key sources",
            inserted(&s, p, "remote_jwks", remote.clone()),
            false,
        ),
        (
            "three key sources",
            inserted(
                &inserted(&s, p, "remote_jwks", remote.clone()),
                p,
                "discovery",
                remote,
            ),
            false,
        ),
        (
            "local_jwks without inline_string",
            with(&s, &format!("{p}/local_jwks"), json!({})),
            false,
        ),
        (
            "empty algorithms",
            with(&s, &format!("{p}/algorithms"), json!([])),
            false,
        ),
        (
            "algorithms as a string",
            with(&s, &format!("{p}/algorithms"), json!("RS256")),
            false,
        ),
        (
            "forward as a string",
            with(&s, &format!("{p}/forward"), json!("yes")),
            false,
        ),
        (
            "empty scope_claims",
            with(&s, &format!("{p}/scope_claims"), json!([])),
            false,
        ),
        (
            "blank scope claim",
            with(&s, &format!("{p}/scope_claims"), json!([""])),
            false,
        ),
        (
            "scope_prefix with a space",
            with(&s, &format!("{p}/scope_prefix"), json!("api://x /")),
            false,
        ),
        (
            "empty scope_prefix",
            with(&s, &format!("{p}/scope_prefix"), json!("")),
            false,
        ),
        (
            "tenant not a GUID",
            with(&s, &format!("{p}/allowed_tenants/0"), json!("contoso")),
            false,
        ),
        (
            "claim path with empty segment",
            with(
                &s,
                &format!("{p}/claim_to_headers/0/claim_name"),
                json!("a..b"),
            ),
            false,
        ),
        (
            "claim path ending in a dot",
            with(
                &s,
                &format!("{p}/claim_to_headers/0/claim_name"),
                json!("a."),
            ),
            false,
        ),
        (
            "header name with a space",
            with(
                &s,
                &format!("{p}/claim_to_headers/0/header_name"),
                json!("x y"),
            ),
            false,
        ),
        (
            "header name with a colon",
            with(
                &s,
                &format!("{p}/claim_to_headers/0/header_name"),
                json!(":path"),
            ),
            false,
        ),
        (
            "claim_to_headers without header_name",
            without(&s, &format!("{p}/claim_to_headers/0/header_name")),
            false,
        ),
        (
            "empty provider name",
            with(
                &s,
                "/providers",
                json!({ "": s["providers"]["remote"].clone() }),
            ),
            false,
        ),
        (
            "http_uri without cluster",
            without(&s, "/providers/remote/remote_jwks/http_uri/cluster"),
            false,
        ),
        (
            "blank cluster",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/cluster",
                json!(" "),
            ),
            false,
        ),
        (
            "uri with a fragment",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/uri",
                json!("https://idp.example.com/k#x"),
            ),
            false,
        ),
        (
            "uri not http",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/uri",
                json!("ldap://idp.example.com/k"),
            ),
            false,
        ),
        (
            "uri host with a space",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/uri",
                json!("https://idp example/k"),
            ),
            false,
        ),
        (
            "uri with brackets and query",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/uri",
                json!("http://[::1]:9000/jwks?x=1"),
            ),
            true,
        ),
        (
            "jwks_cluster on remote_jwks",
            inserted(
                &s,
                "/providers/remote/remote_jwks",
                "jwks_cluster",
                json!("c"),
            ),
            false,
        ),
        (
            "match with prefix and path",
            inserted(&s, &format!("{r0}/match"), "path", json!("/x")),
            false,
        ),
        (
            "match with neither",
            with(&s, &format!("{r0}/match"), json!({})),
            false,
        ),
        (
            "relative prefix",
            with(&s, &format!("{r0}/match/prefix"), json!("mcp")),
            false,
        ),
        (
            "relative path",
            with(&s, "/rules/1/match/path", json!("healthz")),
            false,
        ),
        (
            "rule without match",
            without(&s, &format!("{r0}/match")),
            false,
        ),
        (
            "requires without provider_name",
            with(&s, &format!("{r0}/requires"), json!({})),
            false,
        ),
        (
            "mcp without requires",
            without(&s, &format!("{r0}/requires")),
            false,
        ),
        (
            "required_scopes without requires",
            inserted(&s, "/rules/1", "required_scopes", json!(["x"])),
            false,
        ),
        (
            "empty required_scopes without requires",
            inserted(&s, "/rules/1", "required_scopes", json!([])),
            true,
        ),
        (
            "empty method name",
            with(&s, &format!("{r0}/mcp/methods"), json!({ "": [] })),
            false,
        ),
        (
            "empty tool name",
            with(&s, &format!("{r0}/mcp/tools"), json!({ "": ["x"] })),
            false,
        ),
        (
            "tool scopes as a string",
            with(&s, &format!("{r0}/mcp/tools/add"), json!("calculator.add")),
            false,
        ),
        (
            "mcp without maps",
            with(&s, &format!("{r0}/mcp"), json!({})),
            true,
        ),
        (
            "protected_resource without requires",
            without(&s, "/rules/2/requires"),
            false,
        ),
        (
            "empty rule authorization_servers",
            with(
                &s,
                "/rules/2/protected_resource/authorization_servers",
                json!([]),
            ),
            false,
        ),
        (
            "rule protected_resource empty",
            with(&s, "/rules/2/protected_resource", json!({})),
            true,
        ),
        (
            "empty authorization_servers",
            with(&s, "/protected_resource/authorization_servers", json!([])),
            false,
        ),
        (
            "duplicate scopes_supported",
            with(
                &s,
                "/protected_resource/scopes_supported",
                json!(["a", "a"]),
            ),
            false,
        ),
        (
            "resource_name any string",
            with(&s, "/protected_resource/resource_name", json!("")),
            true,
        ),
        (
            "protected_resource empty (no façade)",
            without(
                &with(&s, "/protected_resource", json!({})),
                "/authorization_server",
            ),
            true,
        ),
        (
            "token_cache empty",
            with(&s, "/token_cache", json!({})),
            true,
        ),
        ("not an object", json!([]), false),
        ("minimal", json!({ "providers": {}, "rules": [] }), true),
    ];
    for (label, config, accept) in cases {
        agree(&v, label, &config, accept);
    }
}

/// What only the filter checks (the schema accepts it, Config::parse refuses it), and the
/// one thing only the schema refuses. If a line here fails, a check moved: update the
/// schema or this list, and docs/CONFIG.md.
#[test]
fn known_differences() {
    let v = validator();
    let s = kitchen_sink();
    let p = "/providers/local";
    let filter_only: Vec<(&str, Value)> = vec![
        (
            "façade without protected_resource.resource",
            without(&s, "/protected_resource/resource"),
        ),
        (
            "façade issuer not in protected_resource.authorization_servers",
            with(
                &s,
                "/authorization_server/issuer",
                json!("https://other.example.com"),
            ),
        ),
        (
            "façade naming a missing provider",
            with(&s, "/authorization_server/provider_name", json!("nope")),
        ),
        (
            "façade sealing key variable not set",
            with(
                &s,
                "/authorization_server/sealing_keys_env/0",
                json!("UNSET_VAR"),
            ),
        ),
        (
            "\"*\" mixed with listed origins",
            with(
                &s,
                "/allowed_origins",
                json!(["*", "https://app.example.com"]),
            ),
        ),
        (
            "rule naming a missing provider",
            with(&s, "/rules/0/requires/provider_name", json!("nope")),
        ),
        (
            "reserved claim header",
            with(
                &s,
                &format!("{p}/claim_to_headers/0/header_name"),
                json!("Authorization"),
            ),
        ),
        (
            "duplicate claim header",
            with(
                &s,
                &format!("{p}/claim_to_headers"),
                json!([
            { "claim_name": "a", "header_name": "x-a" }, { "claim_name": "b", "header_name": "X-A" }]),
            ),
        ),
        (
            "timeout below 0.1s",
            with(
                &s,
                "/providers/remote/remote_jwks/http_uri/timeout",
                json!("0.05s"),
            ),
        ),
        (
            "cache_duration below 1s",
            with(
                &s,
                "/providers/remote/remote_jwks/cache_duration",
                json!("0.5s"),
            ),
        ),
        (
            "cold_start_wait above 60s",
            with(
                &s,
                "/providers/remote/remote_jwks/cold_start_wait",
                json!("61s"),
            ),
        ),
        (
            "body_timeout above 300s",
            with(&s, "/rules/0/mcp/body_timeout", json!("301s")),
        ),
        (
            "JWKS without a usable key",
            with(
                &s,
                &format!("{p}/local_jwks/inline_string"),
                json!("{\"keys\":[]}"),
            ),
        ),
        (
            "a rule's resource not ending in its path",
            with(
                &s,
                "/rules/2/protected_resource/resource",
                json!("https://mcp.example.com/other"),
            ),
        ),
        (
            "a rule's resource without a path",
            with(
                &s,
                "/rules/2/protected_resource/resource",
                json!("https://mcp.example.com"),
            ),
        ),
        (
            "two rules claiming one resource with different documents",
            {
                let mut d = s.clone();
                let mut twin = s["rules"][2].clone();
                twin["match"] = json!({ "path": "/tickets" });
                twin["protected_resource"]["resource_name"] = json!("Other");
                d["rules"].as_array_mut().unwrap().insert(2, twin);
                d
            },
        ),
        (
            "a rule requiring a token without metadata when only rules have it",
            without(&s, "/protected_resource"),
        ),
        (
            "allowed_tenants without {tenantid}",
            without(
                &with(
                    &s,
                    &format!("{p}/issuer"),
                    json!("https://login.microsoftonline.com/t/v2.0"),
                ),
                &format!("{p}/issuers"),
            ),
        ),
    ];
    for (label, config) in filter_only {
        assert!(
            schema_errors(&v, &config).is_empty(),
            "{label}: the schema refuses it now"
        );
        assert!(rust(&config).is_err(), "{label}: the filter accepts it now");
    }
    // null for an optional field: the filter treats it as absent, the schema refuses it.
    let null_unmatched = with(&s, "/unmatched", Value::Null);
    assert!(rust(&null_unmatched).is_ok());
    assert!(!schema_errors(&v, &null_unmatched).is_empty());
}

/// `json` fenced blocks of a Markdown file that parse as a whole configuration.
fn markdown_configs(file: &str) -> Vec<Value> {
    let text = read(file);
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        match &mut block {
            None if line.trim_start() == "```json" => block = Some(String::new()),
            Some(b) if line.trim_start() == "```" => {
                if let Ok(v) = serde_json::from_str::<Value>(b) {
                    if v.get("providers").is_some() {
                        out.push(v);
                    }
                }
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_example_configuration_validates_against_the_schema() {
    let v = validator();
    let shipped = shipped_plugin_configs();
    // demo (plain + façade) + 7 recipes + 5 WasmPlugins + 2 EnvoyFilters (per-tool scopes,
    // the sign-in façade) + the Envoy Gateway policy.
    assert_eq!(
        shipped.len(),
        17,
        "{:?}",
        shipped.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    for (label, config) in &shipped {
        let errs = schema_errors(&v, config);
        assert!(errs.is_empty(), "{label}: {errs:#?}");
        rust(config).unwrap_or_else(|e| panic!("{label}: {e}"));
    }
    let mut docs = 0;
    for f in [
        "README.md",
        "docs/CONFIG.md",
        "docs/IDENTITY_PROVIDERS.md",
        "docs/DEPLOYMENT.md",
    ] {
        for (i, config) in markdown_configs(f).iter().enumerate() {
            let errs = schema_errors(&v, config);
            assert!(errs.is_empty(), "{f} JSON block {i}: {errs:#?}");
            docs += 1;
        }
    }
    // README.md and docs/CONFIG.md each show a whole configuration.
    assert!(docs >= 2, "configurations found in the docs: {docs}");
}
