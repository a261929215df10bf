//! The Istio manifests in `deploy/istio/` and the Envoy Gateway example in
//! `deploy/envoy-gateway/`:
//!
//! - every Istio resource validates against the OpenAPI v3 schema of its CRD, read from
//!   `<repo>/../shared/istio/crds.yaml` (istio/api, unchanged; `ISTIO_CRDS` overrides the
//!   path). The schemas are turned into JSON Schema the way the Kubernetes API server reads
//!   them: unknown fields are errors unless `x-kubernetes-preserve-unknown-fields`,
//!   `nullable`, `x-kubernetes-int-or-string`, `format: int32/int64` (as bounds) and
//!   `date-time` are honoured, apiVersion and kind must match a served version. CEL rules
//!   (`x-kubernetes-validations`) cannot be evaluated here; the few that matter for these
//!   files are checked by hand. Negative cases show the validator rejects a wrong enum, a
//!   wrong type, an unknown field, a broken pattern, a `oneOf` violation and an unserved
//!   version. Without the CRD file the test fails in CI (`CI=true`) and is skipped, loudly,
//!   elsewhere;
//! - each WasmPlugin's `pluginConfig` passes `Config::parse`, names clusters
//!   `outbound|443||<host>` backed by a ServiceEntry and a TLS-originating DestinationRule,
//!   matches the Envoy recipe of its provider, and uses no `mcp` rule that needs the body
//!   (a WasmPlugin cannot set allow_on_headers_stop_iteration; `trust_headers` ones can);
//! - the same plugin configuration, the EnvoyFilter variant and the Envoy Gateway policy
//!   (with its patched-in cluster) are loaded by the real Envoy (`--mode validate`, which
//!   runs the filter's on_configure) in a bootstrap shaped like what the control plane
//!   generates.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod deploy_support;
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use deploy_support::*;
use mcp_edge_auth::config::Config;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// CRD schemas → JSON Schema validators

fn crds_path() -> PathBuf {
    match std::env::var_os("ISTIO_CRDS") {
        Some(p) => PathBuf::from(p),
        None => support::envoy::repo_root().join("../shared/istio/crds.yaml"),
    }
}

/// The CRD file, or None (after saying so) when it is absent outside CI.
fn crds_text() -> Option<String> {
    let p = crds_path();
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(t),
        Err(e) if in_ci() => panic!(
            "{}: {e}. CI must provide the Istio CRDs (../shared/istio/crds.yaml beside the clone)",
            p.display()
        ),
        Err(e) => {
            eprintln!(
                "\n!!! SKIPPED: Istio CRD schema validation: {}: {e}\n!!! (CI=true makes this a failure)\n",
                p.display()
            );
            None
        }
    }
}

struct Schemas {
    /// "group/version" + kind → validator.
    by_type: BTreeMap<(String, String), jsonschema::Validator>,
    /// CEL rules present in the schemas and not evaluated here.
    cel_rules: usize,
}

impl Schemas {
    fn load(text: &str) -> Schemas {
        let mut by_type = BTreeMap::new();
        let mut cel_rules = 0;
        for crd in yaml_docs(text) {
            assert_eq!(crd["kind"], "CustomResourceDefinition");
            let group = crd["spec"]["group"].as_str().unwrap();
            let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
            for v in crd["spec"]["versions"].as_array().unwrap() {
                if v["served"] != true {
                    continue;
                }
                let version = v["name"].as_str().unwrap();
                let api_version = format!("{group}/{version}");
                let mut schema = v["schema"]["openAPIV3Schema"].clone();
                cel_rules += kubernetes_to_json_schema(&mut schema);
                let root = schema.as_object_mut().unwrap();
                // The API server validates these itself; the CRD schema leaves them out.
                let props = root
                    .entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .unwrap();
                props.insert("apiVersion".into(), json!({ "const": api_version }));
                props.insert("kind".into(), json!({ "const": kind }));
                props.insert(
                    "metadata".into(),
                    json!({
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": { "type": "string", "minLength": 1, "maxLength": 253,
                                      "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" },
                            "namespace": { "type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" },
                            "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                            "annotations": { "type": "object", "additionalProperties": { "type": "string" } }
                        }
                    }),
                );
                let mut req: Vec<Value> = root
                    .get("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for r in ["apiVersion", "kind", "metadata"] {
                    req.push(r.into());
                }
                root.insert("required".into(), Value::Array(req));
                root.insert(
                    "$schema".into(),
                    "https://json-schema.org/draft/2020-12/schema".into(),
                );
                let validator = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("{api_version} {kind}: schema: {e}"));
                by_type.insert((api_version, kind.to_string()), validator);
            }
        }
        Schemas { by_type, cel_rules }
    }

    /// Schema errors of one resource (empty: valid).
    fn errors(&self, doc: &Value) -> Vec<String> {
        let key = (
            doc["apiVersion"].as_str().unwrap_or("").to_string(),
            doc["kind"].as_str().unwrap_or("").to_string(),
        );
        let Some(v) = self.by_type.get(&key) else {
            return vec![format!("no served CRD version for {} {}", key.0, key.1)];
        };
        v.iter_errors(doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    fn knows(&self, doc: &Value) -> bool {
        self.by_type.keys().any(|(_, k)| doc["kind"] == k.as_str())
    }
}

/// Rewrites a Kubernetes structural schema (OpenAPI v3 subset) into JSON Schema 2020-12
/// with the API server's semantics; returns how many CEL rules it dropped.
fn kubernetes_to_json_schema(s: &mut Value) -> usize {
    let Some(m) = s.as_object_mut() else { return 0 };
    let mut cel = 0;
    m.remove("description");
    if let Some(rules) = m.remove("x-kubernetes-validations") {
        cel += rules.as_array().map_or(0, Vec::len);
    }
    for k in ["x-kubernetes-list-type", "x-kubernetes-list-map-keys"] {
        m.remove(k);
    }
    // int-or-string: the anyOf next to it says it; the type must not.
    if m.remove("x-kubernetes-int-or-string") == Some(Value::Bool(true)) {
        m.remove("type");
        m.entry("anyOf")
            .or_insert_with(|| json!([{ "type": "integer" }, { "type": "string" }]));
    }
    // format int32/int64 on integers: the API server enforces the range.
    if m.get("type") == Some(&json!("integer")) {
        let bounds = match m.get("format").and_then(Value::as_str) {
            Some("int32") => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
            Some("int64") => Some((i64::MIN, i64::MAX)),
            _ => None,
        };
        if let Some((lo, hi)) = bounds {
            m.remove("format");
            let min = m
                .get("minimum")
                .and_then(Value::as_i64)
                .unwrap_or(lo)
                .max(lo);
            let max = m
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(hi)
                .min(hi);
            m.insert("minimum".into(), min.into());
            m.insert("maximum".into(), max.into());
        }
    }
    // nullable: true → null is a valid value too.
    if m.remove("nullable") == Some(Value::Bool(true)) {
        if let Some(t) = m.get("type").and_then(Value::as_str).map(str::to_string) {
            m.insert("type".into(), json!([t, "null"]));
        }
        if let Some(Value::Array(e)) = m.get_mut("enum") {
            e.push(Value::Null);
        }
    }
    // Unknown fields are errors (kubectl's strict field validation) unless preserved.
    let preserve = m.remove("x-kubernetes-preserve-unknown-fields") == Some(Value::Bool(true));
    if m.get("type") == Some(&json!("object"))
        && !preserve
        && !m.contains_key("additionalProperties")
    {
        m.insert("additionalProperties".into(), Value::Bool(false));
    }
    for key in ["properties"] {
        if let Some(Value::Object(props)) = m.get_mut(key) {
            for v in props.values_mut() {
                cel += kubernetes_to_json_schema(v);
            }
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(v) = m.get_mut(key) {
            cel += kubernetes_to_json_schema(v);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(list)) = m.get_mut(key) {
            for v in list {
                cel += kubernetes_to_json_schema(v);
            }
        }
    }
    cel
}

/// Stand-ins for the CEL rules of the CRDs that these manifests could break.
fn cel_stand_in_errors(doc: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let spec = &doc["spec"];
    match doc["kind"].as_str() {
        Some("WasmPlugin") => {
            let url = spec["url"].as_str().unwrap_or("");
            let scheme = url.split_once("://").map_or("", |x| x.0);
            if !["oci", "file", "http", "https"].contains(&scheme) {
                errs.push(format!(
                    "url must have schema one of [http, https, file, oci]: {url}"
                ));
            }
            let n = ["selector", "targetRef", "targetRefs"]
                .iter()
                .filter(|k| spec.get(**k).is_some())
                .count();
            if n > 1 {
                errs.push("only one of targetRefs or selector can be set".into());
            }
        }
        Some("ServiceEntry") => {
            for h in spec["hosts"].as_array().into_iter().flatten() {
                if h == "*" {
                    errs.push("hostname cannot be wildcard".into());
                }
            }
            for p in spec["ports"].as_array().into_iter().flatten() {
                let n = p["number"].as_u64().unwrap_or(0);
                if !(1..=65535).contains(&n) {
                    errs.push(format!("port must be between 1-65535: {n}"));
                }
            }
        }
        _ => {}
    }
    errs
}

const ISTIO_FILES: [&str; 7] = [
    "deploy/istio/auth0.yaml",
    "deploy/istio/entra-envoyfilter.yaml",
    "deploy/istio/entra-facade-envoyfilter.yaml",
    "deploy/istio/entra-file.yaml",
    "deploy/istio/entra.yaml",
    "deploy/istio/keycloak.yaml",
    "deploy/istio/okta.yaml",
];

/// Kinds shipped here that the CRD file does not cover.
const NO_SCHEMA_KINDS: [&str; 2] = ["EnvoyFilter", "Deployment"];

fn istio_docs() -> Vec<(String, Value)> {
    assert_eq!(files("deploy/istio", ".yaml"), ISTIO_FILES.to_vec());
    ISTIO_FILES
        .iter()
        .flat_map(|f| yaml_docs(&read(f)).into_iter().map(|d| (f.to_string(), d)))
        .collect()
}

#[test]
fn istio_manifests_validate_against_the_crd_schemas() {
    let Some(text) = crds_text() else { return };
    let schemas = Schemas::load(&text);
    for kind in ["WasmPlugin", "ServiceEntry", "DestinationRule"] {
        assert!(
            schemas.by_type.keys().any(|(_, k)| k == kind),
            "no {kind} schema in {}",
            crds_path().display()
        );
    }
    eprintln!(
        "CRD schemas: {} served versions; {} CEL rules not evaluated (stand-ins check url scheme, selector exclusivity, hosts, ports)",
        schemas.by_type.len(),
        schemas.cel_rules
    );
    let mut checked = BTreeMap::<String, usize>::new();
    for (f, doc) in istio_docs() {
        let kind = doc["kind"].as_str().unwrap_or("").to_string();
        if !schemas.knows(&doc) {
            assert!(
                NO_SCHEMA_KINDS.contains(&kind.as_str()),
                "{f}: {kind} has no schema to check against"
            );
            continue;
        }
        let mut errs = schemas.errors(&doc);
        errs.extend(cel_stand_in_errors(&doc));
        assert!(
            errs.is_empty(),
            "{f}: {kind} {}: {errs:#?}",
            doc["metadata"]["name"]
        );
        *checked.entry(kind).or_default() += 1;
    }
    // Four providers each ship a ServiceEntry, a DestinationRule and a WasmPlugin; plus the
    // file:// WasmPlugin.
    assert_eq!(checked.get("WasmPlugin"), Some(&5), "{checked:?}");
    assert_eq!(checked.get("ServiceEntry"), Some(&4), "{checked:?}");
    assert_eq!(checked.get("DestinationRule"), Some(&4), "{checked:?}");
}

fn entra_doc(kind: &str) -> Value {
    yaml_docs(&read("deploy/istio/entra.yaml"))
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap()
}

#[test]
fn the_crd_validator_rejects_broken_manifests() {
    let Some(text) = crds_text() else { return };
    let schemas = Schemas::load(&text);
    let wp = entra_doc("WasmPlugin");
    let se = entra_doc("ServiceEntry");
    let dr = entra_doc("DestinationRule");
    for (what, doc) in [
        ("WasmPlugin", &wp),
        ("ServiceEntry", &se),
        ("DestinationRule", &dr),
    ] {
        assert!(schemas.errors(doc).is_empty(), "{what} baseline");
    }

    let rejects = |label: &str, doc: Value, needle: &str| {
        let errs = schemas.errors(&doc);
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{label}: expected an error mentioning {needle:?}, got {errs:#?}"
        );
    };
    let with = |base: &Value, pointer: &str, v: Value| {
        let mut d = base.clone();
        *d.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("no {pointer}")) = v;
        d
    };
    let insert = |base: &Value, pointer: &str, key: &str, v: Value| {
        let mut d = base.clone();
        d.pointer_mut(pointer)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("no object at {pointer}"))
            .insert(key.into(), v);
        d
    };

    // Wrong enum: Envoy's spelling of the fail-closed policy is not Istio's.
    rejects(
        "failStrategy",
        with(&wp, "/spec/failStrategy", "FAIL_CLOSED".into()),
        "/spec/failStrategy",
    );
    rejects(
        "phase",
        with(&wp, "/spec/phase", "authn".into()),
        "/spec/phase",
    );
    // Unknown field (only pluginConfig keeps unknown fields).
    rejects(
        "vmConfig.vmId",
        insert(&wp, "/spec", "vmConfig", json!({ "vmId": "x" })),
        "vmId",
    );
    rejects(
        "allowOnHeadersStopIteration",
        insert(&wp, "/spec", "allowOnHeadersStopIteration", true.into()),
        "allowOnHeadersStopIteration",
    );
    // Pattern: sha256 must be 64 lowercase hex digits.
    rejects(
        "sha256",
        with(&wp, "/spec/sha256", "sha256:ABC".into()),
        "/spec/sha256",
    );
    // int32 with nullable: null is fine, 2^31 is not.
    assert!(schemas
        .errors(&insert(&wp, "/spec", "priority", Value::Null))
        .is_empty());
    rejects(
        "priority",
        insert(&wp, "/spec", "priority", json!(2_147_483_648_i64)),
        "/spec/priority",
    );
    // Wrong type.
    rejects(
        "port as string",
        with(&se, "/spec/ports/0/number", "443".into()),
        "/spec/ports/0/number",
    );
    rejects(
        "hosts as string",
        with(&se, "/spec/hosts", "login.microsoftonline.com".into()),
        "/spec/hosts",
    );
    rejects(
        "tls mode",
        with(
            &dr,
            "/spec/trafficPolicy/portLevelSettings/0/tls/mode",
            "simple".into(),
        ),
        "/tls/mode",
    );
    // oneOf with required: simple and consistentHash together.
    rejects(
        "loadBalancer oneOf",
        insert(
            &dr,
            "/spec/trafficPolicy",
            "loadBalancer",
            json!({ "simple": "ROUND_ROBIN", "consistentHash": { "useSourceIp": true } }),
        ),
        "/spec/trafficPolicy/loadBalancer",
    );
    assert!(schemas
        .errors(&insert(
            &dr,
            "/spec/trafficPolicy",
            "loadBalancer",
            json!({ "simple": "ROUND_ROBIN" })
        ))
        .is_empty());
    // format: date-time.
    rejects(
        "date-time",
        insert(
            &wp,
            "",
            "status",
            json!({ "conditions": [{ "lastProbeTime": "yesterday" }] }),
        ),
        "lastProbeTime",
    );
    // A version the CRD does not serve, and a missing required field.
    rejects(
        "apiVersion",
        with(&wp, "/apiVersion", "extensions.istio.io/v1".into()),
        "no served CRD version",
    );
    let mut no_url = wp.clone();
    no_url["spec"].as_object_mut().unwrap().remove("url");
    rejects("url required", no_url, "url");
    // The CEL stand-ins.
    assert!(!cel_stand_in_errors(&with(&wp, "/spec/url", "ftp://x/y".into())).is_empty());
    assert!(!cel_stand_in_errors(&insert(
        &wp,
        "/spec",
        "targetRefs",
        json!([{ "kind": "Gateway", "name": "g" }])
    ))
    .is_empty());
}

// ---------------------------------------------------------------------------------------
// Plugin configurations in the manifests

fn recipe_plugin(file: &str) -> Value {
    let doc = yaml_doc(&read(file));
    serde_json::from_str(&plugin_json(wasm_plugin_configs(&doc)[0])).unwrap()
}

/// The plugin configuration with every cluster name replaced by "<cluster>".
fn without_clusters(mut v: Value) -> Value {
    if let Some(ps) = v["providers"].as_object_mut() {
        for p in ps.values_mut() {
            for src in ["remote_jwks", "discovery"] {
                if let Some(r) = p.get_mut(src) {
                    r["http_uri"]["cluster"] = "<cluster>".into();
                }
            }
        }
    }
    v
}

#[test]
fn wasmplugin_configs_parse_and_match_their_infrastructure() {
    let docs = istio_docs();
    let mut plugins = 0;
    for (f, wp) in docs.iter().filter(|(_, d)| d["kind"] == "WasmPlugin") {
        plugins += 1;
        let spec = &wp["spec"];
        let pc = &spec["pluginConfig"];
        let text = serde_json::to_string(pc).unwrap();
        let cfg = Config::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{f}: pluginConfig refused: {e}"));
        assert!(
            cfg.rules
                .iter()
                .all(|r| r.mcp.as_ref().is_none_or(|m| m.trust_headers)),
            "{f}: a WasmPlugin cannot set allow_on_headers_stop_iteration, so `mcp` rules would never see a body (only `trust_headers` ones can decide)"
        );
        assert_eq!(spec["failStrategy"], "FAIL_CLOSE", "{f}");
        assert_eq!(spec["phase"], "AUTHN", "{f}");
        assert_eq!(spec["pluginName"], "mcp_edge_auth", "{f}");
        let url = spec["url"].as_str().unwrap();
        assert!(
            url.starts_with("oci://") || url.starts_with("file://"),
            "{f}"
        );
        assert_eq!(spec["sha256"].as_str().unwrap().len(), 64, "{f}");

        // Each callout cluster is outbound|443||<uri host>, with a ServiceEntry for the
        // host (port 443) and a DestinationRule originating TLS with SNI = host. The
        // file:// variant relies on entra.yaml's.
        let infra_file = if f.ends_with("entra-file.yaml") {
            "deploy/istio/entra.yaml"
        } else {
            f.as_str()
        };
        let infra: Vec<&Value> = docs
            .iter()
            .filter(|(g, _)| g == infra_file)
            .map(|(_, d)| d)
            .collect();
        for (provider, uri, cluster) in callouts(pc) {
            let host = uri_host(&uri);
            assert_eq!(cluster, format!("outbound|443||{host}"), "{f}: {provider}");
            let se = infra
                .iter()
                .find(|d| d["kind"] == "ServiceEntry" && d["spec"]["hosts"][0] == host)
                .unwrap_or_else(|| panic!("{f}: no ServiceEntry for {host}"));
            assert_eq!(se["spec"]["location"], "MESH_EXTERNAL");
            assert_eq!(se["spec"]["resolution"], "DNS");
            assert!(se["spec"]["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["number"] == 443));
            let dr = infra
                .iter()
                .find(|d| d["kind"] == "DestinationRule" && d["spec"]["host"] == host)
                .unwrap_or_else(|| panic!("{f}: no DestinationRule for {host}"));
            let pls = &dr["spec"]["trafficPolicy"]["portLevelSettings"][0];
            assert_eq!(pls["port"]["number"], 443);
            assert_eq!(pls["tls"]["mode"], "SIMPLE");
            assert_eq!(pls["tls"]["sni"], host);
            // The DestinationRule applies where the plugin runs.
            assert_eq!(
                dr["spec"]["workloadSelector"]["matchLabels"], spec["selector"]["matchLabels"],
                "{f}"
            );
            assert_eq!(se["metadata"]["namespace"], wp["metadata"]["namespace"]);
        }

        // Same providers and metadata as the Envoy recipe (cluster names aside).
        let provider = pc["providers"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let recipe = recipe_plugin(&format!("envoy/recipes/{provider}.yaml"));
        assert_eq!(
            without_clusters(pc.clone())["providers"],
            without_clusters(recipe.clone())["providers"],
            "{f}: providers drifted from envoy/recipes/{provider}.yaml"
        );
        for k in ["resource", "authorization_servers", "resource_name"] {
            assert_eq!(
                pc["protected_resource"][k], recipe["protected_resource"][k],
                "{f}: protected_resource.{k}"
            );
        }
    }
    assert_eq!(plugins, 5);
}

/// The Istio clusters a plugin configuration names, as Envoy clusters with TLS.
fn istio_clusters(plugin: &Value) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for (_, uri, cluster) in callouts(plugin) {
        if !uri.is_empty() && !out.iter().any(|c| c["name"] == cluster.as_str()) {
            out.push(tls_cluster(&cluster, uri_host(&uri)));
        }
    }
    out
}

#[test]
fn envoy_loads_each_wasmplugin_config_as_istio_would_pass_it() {
    // Istio hands the pluginConfig to the filter as a JSON string, with its own
    // FAIL_CLOSE mapped to Envoy's FAIL_CLOSED and no allow_on_headers_stop_iteration.
    for (f, wp) in istio_docs()
        .iter()
        .filter(|(_, d)| d["kind"] == "WasmPlugin")
    {
        let pc = &wp["spec"]["pluginConfig"];
        let plugin_config = json!({
            "name": wp["metadata"]["name"],
            "root_id": wp["spec"]["pluginName"],
            "failure_policy": "FAIL_CLOSED",
            "configuration": { "@type": STRING_VALUE_TYPE, "value": serde_json::to_string(pc).unwrap() },
            "vm_config": { "runtime": "envoy.wasm.runtime.v8",
                           "code": { "local": { "filename": MODULE_PLACEHOLDERS[0] } } }
        });
        let yaml = for_this_host(&bootstrap_with(&plugin_config, &istio_clusters(pc)));
        let v = envoy_validate(&yaml, f);
        assert!(v.ok, "{f}:\n{}", v.errors());
        assert!(v.log.contains("configured 1 provider(s)"), "{f}: {}", v.log);
    }
}

#[test]
fn the_envoyfilter_variant_carries_the_full_mcp_config_and_loads() {
    let f = "deploy/istio/entra-envoyfilter.yaml";
    let doc = yaml_doc(&read(f));
    assert_eq!(doc["apiVersion"], "networking.istio.io/v1alpha3");
    assert_eq!(doc["kind"], "EnvoyFilter");
    let patch = &doc["spec"]["configPatches"][0];
    assert_eq!(patch["applyTo"], "HTTP_FILTER");
    assert_eq!(patch["match"]["context"], "SIDECAR_INBOUND");
    assert_eq!(
        doc["spec"]["workloadSelector"]["labels"],
        entra_doc("WasmPlugin")["spec"]["selector"]["matchLabels"]
    );
    let pcs = wasm_plugin_configs(&doc);
    assert_eq!(pcs.len(), 1);
    let pc = pcs[0];
    assert_eq!(pc["allow_on_headers_stop_iteration"], true);
    assert_eq!(pc["failure_policy"], "FAIL_CLOSED");
    let plugin: Value = serde_json::from_str(&plugin_json(pc)).unwrap();
    let cfg = Config::parse(plugin_json(pc).as_bytes()).unwrap();
    assert!(cfg.rules.iter().any(|r| r.mcp.is_some()));
    // The same configuration as the Envoy recipe, with Istio's cluster names.
    assert_eq!(
        without_clusters(plugin.clone()),
        without_clusters(recipe_plugin("envoy/recipes/entra.yaml"))
    );
    for (_, uri, cluster) in callouts(&plugin) {
        assert_eq!(cluster, format!("outbound|443||{}", uri_host(&uri)));
    }
    // The patch value is an HTTP filter as Envoy takes it.
    let filter = &patch["patch"]["value"];
    let mut yaml_doc_v: Value =
        serde_json::from_str(&bootstrap_with(pc, &istio_clusters(&plugin))).unwrap();
    yaml_doc_v["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]["http_filters"][0] = filter.clone();
    let yaml = for_this_host(&serde_json::to_string_pretty(&yaml_doc_v).unwrap());
    let v = envoy_validate(&yaml, "entra-envoyfilter");
    assert!(v.ok, "{}", v.errors());
    assert!(v.log.contains("configured 1 provider(s)"), "{}", v.log);
}

#[test]
fn the_facade_envoyfilter_is_the_facade_recipe_with_its_secrets_from_the_sidecar_and_loads() {
    let f = "deploy/istio/entra-facade-envoyfilter.yaml";
    let docs = yaml_docs(&read(f));
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("{f}: no {k}"))
    };
    let (deployment, filter) = (kind("Deployment"), kind("EnvoyFilter"));
    assert_eq!(
        filter["spec"]["workloadSelector"]["labels"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    let pcs = wasm_plugin_configs(filter);
    assert_eq!(pcs.len(), 1);
    let pc = pcs[0];
    assert_eq!(
        pc["allow_on_headers_stop_iteration"], true,
        "the façade reads bodies"
    );
    assert_eq!(pc["failure_policy"], "FAIL_CLOSED");
    assert_eq!(
        pc["vm_config"]["code"]["local"]["filename"],
        MODULE_PLACEHOLDERS[1]
    );
    // The Envoy recipe's configuration, with Istio's cluster names.
    let plugin: Value = serde_json::from_str(&plugin_json(pc)).unwrap();
    let strip = |v: Value| {
        let mut v = without_clusters(v);
        v["authorization_server"]["upstream"]["token_endpoint"]["cluster"] = "<cluster>".into();
        v
    };
    assert_eq!(
        strip(plugin.clone()),
        strip(recipe_plugin("envoy/recipes/entra-facade.yaml"))
    );
    for (_, uri, cluster) in callouts(&plugin) {
        assert_eq!(cluster, format!("outbound|443||{}", uri_host(&uri)));
    }
    let token = &plugin["authorization_server"]["upstream"]["token_endpoint"];
    assert_eq!(
        token["cluster"],
        format!("outbound|443||{}", uri_host(token["uri"].as_str().unwrap()))
    );
    // The secrets: Envoy's environment variables the VM reads are the ones the injected
    // sidecar gets from a Kubernetes Secret, and the ones the configuration names.
    let keys: Vec<&str> = pc["vm_config"]["environment_variables"]["host_env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(pc["vm_config"]["environment_variables"]
        .get("key_values")
        .is_none());
    let proxy = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "istio-proxy")
        .expect("an istio-proxy container to merge into the sidecar");
    let env = proxy["env"].as_array().unwrap();
    let names: Vec<&str> = env.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, keys);
    for e in env {
        assert!(e.get("value").is_none(), "{e}: a secret inline");
        let r = &e["valueFrom"]["secretKeyRef"];
        assert!(r["name"].is_string() && r["key"].is_string(), "{e}");
    }
    let a = &plugin["authorization_server"];
    assert!(keys.contains(&a["upstream"]["client_secret_env"].as_str().unwrap()));
    for k in a["sealing_keys_env"].as_array().unwrap() {
        assert!(keys.contains(&k.as_str().unwrap()), "{k}");
    }
    // Envoy loads it with the façade's module and the variables set (placeholders).
    std::env::set_var(
        "FACADE_SEAL_KEY",
        "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
    );
    std::env::set_var("ENTRA_CLIENT_SECRET", "placeholder-not-a-secret");
    let mut boot: Value =
        serde_json::from_str(&bootstrap_with(pc, &istio_clusters(&plugin))).unwrap();
    boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0] = filter["spec"]["configPatches"][0]["patch"]["value"].clone();
    let yaml = for_this_host(&serde_json::to_string_pretty(&boot).unwrap());
    let v = envoy_validate(&yaml, "entra-facade-envoyfilter");
    assert!(v.ok, "{}", v.errors());
    assert!(
        v.log
            .contains("sign-in façade: issuer https://mcp.example.com"),
        "{}",
        v.log
    );
    assert!(!v.log.contains("placeholder-not-a-secret"));
}

#[test]
fn envoy_gateway_policy_parses_and_its_cluster_exists() {
    let f = "deploy/envoy-gateway/entra.yaml";
    assert_eq!(files("deploy/envoy-gateway", ".yaml"), vec![f.to_string()]);
    let docs = yaml_docs(&read(f));
    let eep = docs
        .iter()
        .find(|d| d["kind"] == "EnvoyExtensionPolicy")
        .expect("EnvoyExtensionPolicy");
    let epp = docs
        .iter()
        .find(|d| d["kind"] == "EnvoyPatchPolicy")
        .expect("EnvoyPatchPolicy");
    for d in [eep, epp] {
        assert_eq!(d["apiVersion"], "gateway.envoyproxy.io/v1alpha1");
    }
    let wasm = &eep["spec"]["wasm"][0];
    assert_eq!(wasm["rootID"], "mcp_edge_auth");
    assert_eq!(wasm["failOpen"], false);
    assert_eq!(wasm["code"]["type"], "Image");
    let config = &wasm["config"];
    let cfg = Config::parse(serde_json::to_string(config).unwrap().as_bytes())
        .unwrap_or_else(|e| panic!("{f}: {e}"));
    assert!(
        cfg.rules.iter().all(|r| r.mcp.is_none()),
        "EnvoyExtensionPolicy cannot set allow_on_headers_stop_iteration"
    );
    // The cluster the plugin names is the one the patch adds.
    let clusters: Vec<Value> = epp["spec"]["jsonPatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "type.googleapis.com/envoy.config.cluster.v3.Cluster")
        .map(|p| {
            assert_eq!(p["operation"]["op"], "add");
            assert_eq!(p["name"], p["operation"]["value"]["name"]);
            p["operation"]["value"].clone()
        })
        .collect();
    for (_, _, cluster) in callouts(config) {
        assert!(
            clusters.iter().any(|c| c["name"] == cluster.as_str()),
            "{f}: cluster {cluster} is not added by the EnvoyPatchPolicy"
        );
    }
    // And Envoy takes that cluster and the configuration.
    let plugin_config = json!({
        "root_id": "mcp_edge_auth",
        "failure_policy": "FAIL_CLOSED",
        "configuration": { "@type": STRING_VALUE_TYPE, "value": serde_json::to_string(config).unwrap() },
        "vm_config": { "runtime": "envoy.wasm.runtime.v8",
                       "code": { "local": { "filename": MODULE_PLACEHOLDERS[0] } } }
    });
    let v = envoy_validate(
        &for_this_host(&bootstrap_with(&plugin_config, &clusters)),
        f,
    );
    assert!(v.ok, "{}", v.errors());
    assert!(v.log.contains("configured 1 provider(s)"), "{}", v.log);
}

#[test]
fn the_dockerfile_packs_only_the_module_as_plugin_wasm() {
    // The layout Istio's and Envoy Gateway's OCI pullers take: one layer, /plugin.wasm.
    let module = "target/wasm/mcp_edge_auth.wasm";
    let instructions = |f: &str| -> Vec<String> {
        read(f)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        instructions("Dockerfile"),
        ["FROM scratch", &format!("COPY {module} ./plugin.wasm")]
    );
    // The build context is the module alone (target/ is gigabytes).
    assert_eq!(instructions(".dockerignore"), ["*", &format!("!{module}")]);
}
