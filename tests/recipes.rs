//! The Envoy recipes in `envoy/recipes/` and the demo config are what users copy, so they
//! are checked the way Envoy and the filter will check them:
//!
//! - the plugin JSON embedded in each passes `Config::parse` (the filter's own validation);
//! - the Wasm filter options that matter are set (FAIL_CLOSED, allow_on_headers_stop_iteration,
//!   V8, a vm_id, the module path), and every cluster the plugin names exists, with TLS and
//!   SNI for its host;
//! - provider-specific shapes (Auth0 trailing slash, Entra v2 issuer, Okta custom AS,
//!   Keycloak realm);
//! - `envoy --mode validate` (the real Envoy 1.40) accepts each file with the built module,
//!   and its log shows the filter's on_configure ran;
//! - negative checks: a recipe with a refused plugin field or a misspelt Envoy field fails
//!   validation, and a plugin naming a missing cluster is caught here (Envoy's validate mode
//!   does not notice it);
//! - each recipe's access log prints every published filter state value (the decision, who,
//!   which tool: `tests/filter_state.rs` runs the format) and neither the token nor the query;
//! - each recipe boots for real (listener and admin on 127.0.0.1) and answers its RFC 9728
//!   metadata and a 401 challenge naming it;
//! - the gateway recipe (one listener, three MCP servers, Entra and Okta, one open): every
//!   protected rule has its own metadata naming its provider's issuer and an Envoy route to
//!   its own upstream cluster, and once booted each server answers its own document and
//!   its own challenge.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod deploy_support;
mod support;

use deploy_support::*;
use mcp_edge_auth::config::Config;
use serde_json::{json, Value};
use support::{http, EnvoyBuilder};

const RECIPES: [&str; 5] = [
    "envoy/recipes/auth0.yaml",
    "envoy/recipes/entra-remote-jwks.yaml",
    "envoy/recipes/entra.yaml",
    "envoy/recipes/keycloak.yaml",
    "envoy/recipes/okta.yaml",
];

/// Several MCP servers behind one listener, each rule with its own `protected_resource`.
const GATEWAY: &str = "envoy/recipes/gateway.yaml";

/// Entra behind the sign-in façade (`authorization_server`, issue 19): the filter is the
/// authorization server clients see; its secrets come from Envoy's environment.
const FACADE: &str = "envoy/recipes/entra-facade.yaml";

/// Placeholder values for the variables the façade recipe passes to the VM
/// (`host_env_keys`): Envoy processes these tests start inherit them.
fn facade_env() {
    std::env::set_var(
        "FACADE_SEAL_KEY",
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    );
    std::env::set_var("ENTRA_CLIENT_SECRET", "placeholder-not-a-secret");
    // The demo's façade (envoy/demo-facade-plugin.json).
    std::env::set_var("FACADE_CLIENT_SECRET", "placeholder-not-a-secret");
}

fn facade_lookup(name: &str) -> Option<String> {
    facade_env();
    std::env::var(name).ok()
}

/// Every recipe: the single-provider ones, the façade and the gateway.
fn all_recipes() -> Vec<&'static str> {
    let mut all = RECIPES.to_vec();
    all.push(FACADE);
    all.push(GATEWAY);
    all.sort_unstable();
    all
}

struct Recipe {
    file: String,
    text: String,
    doc: Value,
    plugin_text: String,
    plugin: Value,
}

fn recipe(file: &str) -> Recipe {
    let text = read(file);
    let doc = yaml_doc(&text);
    let pcs = wasm_plugin_configs(&doc);
    assert_eq!(pcs.len(), 1, "{file}: expected exactly one Wasm filter");
    let plugin_text = plugin_json(pcs[0]);
    let plugin: Value = serde_json::from_str(&plugin_text)
        .unwrap_or_else(|e| panic!("{file}: plugin configuration is not JSON: {e}"));
    Recipe {
        file: file.to_string(),
        text,
        doc,
        plugin_text,
        plugin,
    }
}

fn clusters(doc: &Value) -> &Vec<Value> {
    doc["static_resources"]["clusters"]
        .as_array()
        .expect("static_resources.clusters")
}

#[test]
fn the_recipe_set_is_complete() {
    assert_eq!(files("envoy/recipes", ".yaml"), all_recipes());
}

#[test]
fn recipe_plugin_configs_pass_config_parse() {
    for f in RECIPES {
        let r = recipe(f);
        let cfg = Config::parse(r.plugin_text.as_bytes())
            .unwrap_or_else(|e| panic!("{f}: the filter refuses its configuration: {e}"));
        assert_eq!(cfg.providers.len(), 1, "{f}");
        // Every recipe shows per-tool scopes with an `mcp` rule.
        assert!(
            cfg.rules.iter().any(|rule| rule.mcp.is_some()),
            "{f}: no `mcp` rule"
        );
        let prm = &r.plugin["protected_resource"];
        assert!(
            prm["resource"].as_str().unwrap().starts_with("https://"),
            "{f}"
        );
        let issuer = cfg.providers[0].issuer.as_str();
        assert!(
            prm["authorization_servers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == issuer),
            "{f}: authorization_servers must name the issuer {issuer}"
        );
    }
}

#[test]
fn recipe_wasm_options_are_the_ones_that_matter() {
    for f in all_recipes() {
        let r = recipe(f);
        let pc = wasm_plugin_configs(&r.doc)[0];
        assert_eq!(pc["failure_policy"], "FAIL_CLOSED", "{f}");
        assert_eq!(pc["allow_on_headers_stop_iteration"], true, "{f}");
        assert_eq!(pc["root_id"], "mcp_edge_auth", "{f}");
        let vm = &pc["vm_config"];
        assert_eq!(vm["runtime"], "envoy.wasm.runtime.v8", "{f}");
        assert!(!vm["vm_id"].as_str().unwrap_or("").is_empty(), "{f}: vm_id");
        assert_eq!(
            vm["code"]["local"]["filename"], MODULE_PLACEHOLDERS[0],
            "{f}: module path"
        );
        // The filter rejects dot segments; Envoy should normalize first.
        let hcm = r.doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]
            .clone();
        assert_eq!(hcm["normalize_path"], true, "{f}");
        assert_eq!(hcm["merge_slashes"], true, "{f}");
        // The Wasm filter runs before the router.
        let names: Vec<&str> = hcm["http_filters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["envoy.filters.http.wasm", "envoy.filters.http.router"],
            "{f}"
        );
    }
}

/// Problems with the clusters a plugin configuration names, given the bootstrap's clusters.
fn cluster_problems(plugin: &Value, clusters: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (provider, uri, cluster) in callouts(plugin) {
        let Some(c) = clusters.iter().find(|c| c["name"] == cluster.as_str()) else {
            problems.push(format!("{provider}: cluster {cluster:?} is not defined"));
            continue;
        };
        if uri.is_empty() {
            continue;
        }
        let host = uri_host(&uri);
        let addr = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"];
        if addr["address"] != host {
            problems.push(format!(
                "{provider}: cluster {cluster} does not point at {host}"
            ));
        }
        if uri.starts_with("https://") {
            let tls = &c["transport_socket"]["typed_config"];
            if addr["port_value"] != 443 {
                problems.push(format!("{provider}: cluster {cluster} is not on port 443"));
            }
            if tls["sni"] != host {
                problems.push(format!("{provider}: cluster {cluster} has no SNI {host}"));
            }
            let vc = &tls["common_tls_context"]["validation_context"];
            if vc["trusted_ca"]["filename"].as_str().is_none() {
                problems.push(format!("{provider}: cluster {cluster} trusts no CA"));
            }
            if vc["match_typed_subject_alt_names"][0]["matcher"]["exact"] != host {
                problems.push(format!(
                    "{provider}: cluster {cluster} does not check the certificate names {host}"
                ));
            }
        }
    }
    problems
}

#[test]
fn recipe_callout_clusters_exist_with_tls_for_their_host() {
    for f in all_recipes() {
        let r = recipe(f);
        assert!(!callouts(&r.plugin).is_empty(), "{f}: no remote key source");
        let problems = cluster_problems(&r.plugin, clusters(&r.doc));
        assert!(problems.is_empty(), "{f}: {problems:?}");
    }
}

#[test]
fn a_plugin_naming_a_missing_cluster_is_caught() {
    // envoy --mode validate accepts this (the filter only uses the cluster name when it
    // calls out), so the static check above is what catches it.
    let r = recipe("envoy/recipes/entra.yaml");
    let mut plugin = r.plugin.clone();
    plugin["providers"]["entra"]["discovery"]["http_uri"]["cluster"] = "entra".into();
    let problems = cluster_problems(&plugin, clusters(&r.doc));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("\"entra\" is not defined"));
    // And a cluster without SNI is reported too.
    let mut cl = clusters(&r.doc).clone();
    cl[1]["transport_socket"]["typed_config"]["sni"] = "example.com".into();
    assert!(cluster_problems(&r.plugin, &cl)
        .iter()
        .any(|p| p.contains("no SNI")));
}

#[test]
fn recipe_provider_shapes() {
    let provider = |f: &str| {
        let r = recipe(f);
        let (_, p) = r.plugin["providers"]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap();
        p
    };
    for f in [
        "envoy/recipes/entra.yaml",
        "envoy/recipes/entra-remote-jwks.yaml",
    ] {
        let p = provider(f);
        let iss = p["issuer"].as_str().unwrap();
        assert!(
            iss.starts_with("https://login.microsoftonline.com/") && iss.ends_with("/v2.0"),
            "{f}: v2 issuer"
        );
        let auds: Vec<&str> = p["audiences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        // v2 tokens carry the client id GUID; list the App ID URI form too.
        assert!(
            auds.iter()
                .any(|a| mcp_edge_auth::token::provider::is_guid(a)),
            "{f}"
        );
        assert!(auds.iter().any(|a| a.starts_with("api://")), "{f}");
        assert_eq!(p["scope_prefix"], format!("{}/", auds[1]), "{f}");
        assert!(p["scope_claims"]
            .as_array()
            .unwrap()
            .contains(&"scp".into()));
    }
    assert!(provider("envoy/recipes/entra.yaml")
        .get("discovery")
        .is_some());
    assert!(provider("envoy/recipes/entra-remote-jwks.yaml")
        .get("remote_jwks")
        .is_some());

    let auth0 = provider("envoy/recipes/auth0.yaml");
    let iss = auth0["issuer"].as_str().unwrap();
    assert!(iss.ends_with(".auth0.com/"), "Auth0 issuers end in a slash");

    let okta = provider("envoy/recipes/okta.yaml");
    assert!(okta["issuer"].as_str().unwrap().contains("/oauth2/"));
    assert_eq!(okta["audiences"][0], "api://default");
    assert_eq!(okta["scope_claims"], serde_json::json!(["scp"]));

    let kc = provider("envoy/recipes/keycloak.yaml");
    assert!(kc["issuer"].as_str().unwrap().contains("/realms/"));
    assert!(kc["scope_claims"]
        .as_array()
        .unwrap()
        .contains(&"scope".into()));
}

#[test]
fn envoy_validates_every_recipe_and_runs_on_configure() {
    facade_env();
    for f in all_recipes() {
        let r = recipe(f);
        let providers = r.plugin["providers"].as_object().unwrap().len();
        let v = envoy_validate(&for_this_host(&r.text), f);
        assert!(v.ok, "{f}: envoy --mode validate failed:\n{}", v.errors());
        assert!(v.log.contains(" OK"), "{f}: {}", v.log);
        // The filter's on_configure logs this once it accepted the configuration.
        assert!(
            v.log
                .contains(&format!("configured {providers} provider(s)")),
            "{f}: validate did not run on_configure:\n{}",
            v.log
        );
    }
}

#[test]
fn envoy_validate_refuses_a_recipe_with_a_bad_plugin_field() {
    let r = recipe("envoy/recipes/okta.yaml");
    // The same mistake twice: what Config::parse says, and what Envoy says with the module.
    let bad = r.text.replace(
        r#""audiences": ["api://default"]"#,
        r#""audience": ["api://default"]"#,
    );
    assert_ne!(bad, r.text, "mutation did not apply");
    let pcs_doc = yaml_doc(&bad);
    let json = plugin_json(wasm_plugin_configs(&pcs_doc)[0]);
    let err = Config::parse(json.as_bytes()).expect_err("must be refused");
    assert_eq!(err.field, "providers.okta.audience");
    let v = envoy_validate(&for_this_host(&bad), "okta-bad-plugin");
    assert!(!v.ok, "envoy accepted a refused plugin configuration");
    assert!(
        v.log
            .contains("invalid plugin configuration: providers.okta.audience: unknown field"),
        "{}",
        v.log
    );
    assert!(v.log.contains("Unable to create Wasm plugin"), "{}", v.log);
}

#[test]
fn envoy_validate_refuses_a_recipe_with_a_misspelt_envoy_field() {
    let r = recipe("envoy/recipes/keycloak.yaml");
    let bad = r.text.replace(
        "allow_on_headers_stop_iteration: true",
        "allow_on_header_stop_iteration: true",
    );
    assert_ne!(bad, r.text);
    let v = envoy_validate(&for_this_host(&bad), "keycloak-typo");
    assert!(!v.ok);
    assert!(
        v.log.contains("allow_on_header_stop_iteration"),
        "{}",
        v.log
    );
}

#[test]
fn demo_config_is_valid() {
    let plugin = read("envoy/demo-plugin.json");
    Config::parse(plugin.as_bytes()).unwrap_or_else(|e| panic!("demo-plugin.json: {e}"));
    let facade = read("envoy/demo-facade-plugin.json");
    let facade_cfg = Config::parse_with_env(facade.as_bytes(), &facade_lookup)
        .unwrap_or_else(|e| panic!("demo-facade-plugin.json: {e}"));
    assert!(facade_cfg.facade.is_some());
    // Render them the way scripts/render-demo-config.sh does: the compact JSON as a JSON
    // string literal (also a YAML double-quoted scalar) on the PLUGIN_CONFIG and
    // FACADE_PLUGIN_CONFIG lines.
    let template = read("envoy/demo.yaml");
    let compact =
        |text: &str| serde_json::to_string(&serde_json::from_str::<Value>(text).unwrap()).unwrap();
    let (plain, with_facade) = (compact(&plugin), compact(&facade));
    let lines: Vec<String> = template
        .lines()
        .map(|l| match l.find("value: ") {
            Some(i) if l.trim_end().ends_with("# FACADE_PLUGIN_CONFIG") => format!(
                "{}value: {}",
                &l[..i],
                serde_json::to_string(&with_facade).unwrap()
            ),
            Some(i) if l.trim_end().ends_with("# PLUGIN_CONFIG") => format!(
                "{}value: {}",
                &l[..i],
                serde_json::to_string(&plain).unwrap()
            ),
            _ => l.to_string(),
        })
        .collect();
    let rendered = lines.join("\n");
    assert_eq!(
        rendered.matches("# PLUGIN_CONFIG").count()
            + rendered.matches("# FACADE_PLUGIN_CONFIG").count(),
        0,
        "envoy/demo.yaml: both plugin lines must be rendered"
    );
    let doc = yaml_doc(&rendered);
    let pcs = wasm_plugin_configs(&doc);
    assert_eq!(pcs.len(), 2, "the plain listener and the façade's");
    for (pc, json, module) in [
        (pcs[0], &plain, "target/wasm/mcp_edge_auth.wasm"),
        (pcs[1], &with_facade, "target/wasm/mcp_edge_auth.wasm"),
    ] {
        assert_eq!(&plugin_json(pc), json);
        assert_eq!(pc["failure_policy"], "FAIL_CLOSED");
        assert_eq!(pc["allow_on_headers_stop_iteration"], true);
        let problems = cluster_problems(&serde_json::from_str(json).unwrap(), clusters(&doc));
        assert!(problems.is_empty(), "{problems:?}");
        // Module paths are relative to the repository root (validate runs there).
        assert_eq!(pc["vm_config"]["code"]["local"]["filename"], module);
    }
    // The façade's secrets from Envoy's environment, never in the file.
    assert_eq!(
        pcs[1]["vm_config"]["environment_variables"]["host_env_keys"],
        json!(["FACADE_SEAL_KEY", "FACADE_CLIENT_SECRET"])
    );
    facade_env();
    let v = envoy_validate(&rendered, "demo");
    assert!(
        v.ok,
        "envoy/demo.yaml + demo-plugin.json + demo-facade-plugin.json:\n{}",
        v.errors()
    );
    assert!(v.log.contains("configured 1 provider(s)"), "{}", v.log);
    assert!(
        v.log
            .contains("sign-in façade: issuer http://127.0.0.1:10001"),
        "{}",
        v.log
    );
}

/// The recipe with its listener and admin on 127.0.0.1 ephemeral ports and the listener
/// named as the harness expects.
fn bootable(r: &Recipe) -> String {
    let text = for_this_host(&r.text)
        .replace(
            "socket_address: { address: 0.0.0.0, port_value: 8080 }",
            "socket_address: { address: 127.0.0.1, port_value: 0 }",
        )
        .replace(
            "socket_address: { address: 127.0.0.1, port_value: 9901 }",
            "socket_address: { address: 127.0.0.1, port_value: 0 }",
        )
        .replace(
            "  - name: mcp\n    address:",
            "  - name: main\n    address:",
        );
    assert!(
        !text.contains("0.0.0.0"),
        "{}: listener not rewritten",
        r.file
    );
    assert!(
        text.contains("- name: main"),
        "{}: listener not renamed",
        r.file
    );
    text
}

#[test]
fn every_recipe_boots_and_answers_metadata_and_challenges() {
    for f in RECIPES {
        let r = recipe(f);
        let yaml = bootable(&r);
        let envoy = EnvoyBuilder::new("{}")
            .map_yaml(move |_| yaml.clone())
            .start()
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        let prm = &r.plugin["protected_resource"];
        let resource = prm["resource"].as_str().unwrap();

        let doc = http::get(envoy.port(), "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(doc.status, 200, "{f}: {}", doc.text());
        let body = doc.json();
        assert_eq!(body["resource"], resource, "{f}");
        assert_eq!(
            body["authorization_servers"], prm["authorization_servers"],
            "{f}"
        );

        let resp = http::request(
            envoy.port(),
            "POST",
            "/mcp",
            &[("content-type", "application/json")],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        );
        assert_eq!(resp.status, 401, "{f}");
        let challenge = resp.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains(
                    "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
                ),
            "{f}: {challenge}"
        );
        // Paths no rule names are refused at the edge.
        assert_eq!(http::get(envoy.port(), "/admin").status, 403, "{f}");
    }
}

/// The access log format of a recipe's listener.
fn access_log_format(doc: &Value) -> &str {
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    hcm["access_log"][0]["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        .as_str()
        .unwrap_or("")
}

#[test]
fn every_recipe_logs_the_published_decision_and_never_the_token() {
    // tests/filter_state.rs runs the Entra recipe's format in a real Envoy.
    let entra = recipe("envoy/recipes/entra.yaml");
    let want = access_log_format(&entra.doc).to_string();
    for name in mcp_edge_auth::decide::state::ALL {
        assert!(
            want.contains(&format!("%FILTER_STATE(wasm.{name}:PLAIN)%")),
            "{name} in {want}"
        );
    }
    let upper = want.to_ascii_uppercase();
    assert!(
        !upper.contains("AUTHORIZATION") && !upper.contains(":PATH"),
        "{want}"
    );
    for f in all_recipes() {
        let r = recipe(f);
        assert_eq!(access_log_format(&r.doc), want, "{}", r.file);
    }
}

#[test]
fn gateway_recipe_gives_each_server_its_metadata_provider_route_and_cluster() {
    let r = recipe(GATEWAY);
    let cfg = Config::parse(r.plugin_text.as_bytes())
        .unwrap_or_else(|e| panic!("{GATEWAY}: the filter refuses its configuration: {e}"));
    assert_eq!(cfg.providers.len(), 2);
    assert!(
        r.plugin.get("protected_resource").is_none(),
        "no top-level document"
    );
    let routes = r.doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = clusters(&r.doc)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let mut upstreams = Vec::new();
    let mut issuers = Vec::new();
    for (i, rule) in cfg.rules.iter().enumerate() {
        let prefix = rule.matcher.pattern();
        // An Envoy route with exactly this prefix sends it to a cluster the file defines.
        let route = routes
            .iter()
            .find(|x| x["match"]["prefix"] == prefix)
            .unwrap_or_else(|| panic!("rules[{i}] {prefix}: no Envoy route"));
        let cluster = route["route"]["cluster"].as_str().unwrap();
        assert!(names.contains(&cluster), "rules[{i}]: {cluster} undefined");
        upstreams.push(cluster.to_string());
        let Some(p) = rule.requires else {
            assert!(cfg.rule_resources[i].is_none(), "rules[{i}]");
            continue;
        };
        // Its own metadata: its resource ends in its path; its provider's issuer.
        let own = cfg.rule_resources[i]
            .as_ref()
            .unwrap_or_else(|| panic!("rules[{i}]"));
        let resource = own.resource.as_deref().unwrap();
        assert_eq!(
            resource,
            format!("https://mcp.example.com{prefix}"),
            "rules[{i}]"
        );
        let issuer = &cfg.providers[p].issuer;
        assert_eq!(
            own.authorization_servers,
            std::slice::from_ref(issuer),
            "rules[{i}]"
        );
        issuers.push(issuer.clone());
    }
    upstreams.dedup();
    assert_eq!(upstreams.len(), 3, "three upstream clusters: {upstreams:?}");
    assert_eq!(cfg.rules.len(), 3);
    assert_eq!(issuers.len(), 2);
    assert_ne!(issuers[0], issuers[1], "two identity providers");
}

#[test]
fn gateway_recipe_boots_and_answers_each_servers_metadata_and_challenge() {
    let r = recipe(GATEWAY);
    let yaml = bootable(&r);
    let envoy = EnvoyBuilder::new("{}")
        .map_yaml(move |_| yaml.clone())
        .start()
        .unwrap_or_else(|e| panic!("{GATEWAY}: {e}"));
    for rule in r.plugin["rules"].as_array().unwrap() {
        let Some(prm) = rule.get("protected_resource") else {
            continue;
        };
        let path = rule["match"]["prefix"].as_str().unwrap();
        let metadata = format!("/.well-known/oauth-protected-resource{path}");
        let doc = http::get(envoy.port(), &metadata);
        assert_eq!(doc.status, 200, "{path}: {}", doc.text());
        let body = doc.json();
        assert_eq!(body["resource"], prm["resource"], "{path}");
        assert_eq!(
            body["authorization_servers"], prm["authorization_servers"],
            "{path}"
        );
        let resp = http::request(
            envoy.port(),
            "POST",
            path,
            &[("content-type", "application/json")],
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        );
        assert_eq!(resp.status, 401, "{path}");
        let challenge = resp.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"https://mcp.example.com{metadata}\""
            )),
            "{path}: {challenge}"
        );
    }
    // No top-level document; the open server is not challenged; other paths are refused.
    assert_eq!(
        http::get(envoy.port(), "/.well-known/oauth-protected-resource").status,
        404
    );
    let open = http::get(envoy.port(), "/docs/mcp");
    assert!(![401, 403].contains(&open.status), "{}", open.status);
    assert!(open.header("www-authenticate").is_none());
    assert_eq!(http::get(envoy.port(), "/admin").status, 403);
}

#[test]
fn facade_recipe_names_itself_and_reaches_the_token_endpoint() {
    let r = recipe(FACADE);
    let cfg = Config::parse_with_env(r.plugin_text.as_bytes(), &facade_lookup)
        .unwrap_or_else(|e| panic!("{FACADE}: the filter refuses its configuration: {e}"));
    // Without the environment the filter refuses it (fail closed), naming the variable.
    let err = Config::parse(r.plugin_text.as_bytes()).expect_err("keys come from the env");
    assert_eq!(err.field, "authorization_server.sealing_keys_env[0]");
    let f = cfg.facade.as_ref().expect("façade");
    assert_eq!(f.settings.spec.issuer, "https://mcp.example.com");
    assert_eq!(
        cfg.protected_resource.authorization_servers,
        ["https://mcp.example.com"]
    );
    assert!(
        !f.settings.spec.upstream.send_resource,
        "Entra refuses resource"
    );
    // The token endpoint's cluster exists, with TLS for its host.
    let token = json!({"providers": {"token": {"discovery": {"http_uri": {
        "uri": f.settings.spec.upstream.token_endpoint,
        "cluster": f.token_cluster,
    }}}}});
    let problems = cluster_problems(&token, clusters(&r.doc));
    assert!(problems.is_empty(), "{problems:?}");
    // Secrets only by name, from Envoy's environment.
    let vm = &wasm_plugin_configs(&r.doc)[0]["vm_config"];
    assert_eq!(
        vm["environment_variables"]["host_env_keys"],
        json!(["FACADE_SEAL_KEY", "ENTRA_CLIENT_SECRET"])
    );
    assert!(vm["environment_variables"].get("key_values").is_none());

    // Booted: the façade's metadata, and the PRM naming it.
    facade_env();
    let yaml = bootable(&r);
    let envoy = EnvoyBuilder::new("{}")
        .map_yaml(move |_| yaml.clone())
        .start()
        .unwrap_or_else(|e| panic!("{FACADE}: {e}"));
    let m = http::get(envoy.port(), "/.well-known/oauth-authorization-server");
    assert_eq!(m.status, 200, "{}", m.text());
    let m = m.json();
    assert_eq!(m["issuer"], "https://mcp.example.com");
    assert_eq!(
        m["registration_endpoint"],
        "https://mcp.example.com/register"
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    let doc = http::get(envoy.port(), "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(doc.status, 200, "{}", doc.text());
    assert_eq!(
        doc.json()["authorization_servers"],
        json!(["https://mcp.example.com"])
    );
    let log = envoy.logs();
    assert!(!log.contains("placeholder-not-a-secret"));
    assert!(!log.contains("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA="));
}
