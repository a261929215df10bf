//! Plugin configuration changes through a file-based dynamic listener (LDS from a path),
//! under load: no request fails or is wrongly allowed during the switch, and a broken new
//! configuration is refused while the old one keeps serving.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::envoy::{envoy_binary, free_port, wasm_module_path};
use support::http;

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn plugin(audiences: Value, jwks: &str) -> String {
    json!({
        "providers": {"p": {"issuer": "https://idp.test/", "audiences": audiences,
                            "local_jwks": {"inline_string": jwks}}},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "p"}}]
    })
    .to_string()
}

fn lds(port: u16, plugin_json: &str) -> String {
    let listener = json!({
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
            "name": "mcp",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "mcp",
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}]},
                    "http_filters": [
                        {"name": "envoy.filters.http.wasm", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                            "config": {
                                "name": "mcp_edge_auth", "root_id": "mcp_edge_auth",
                                "failure_policy": "FAIL_CLOSED", "allow_on_headers_stop_iteration": true,
                                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin_json},
                                "vm_config": {"vm_id": "mcp_edge_auth", "runtime": "envoy.wasm.runtime.v8",
                                              "code": {"local": {"filename": wasm_module_path().display().to_string()}}}
                            }}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                    ]
                }
            }]}]
        }]
    });
    listener.to_string()
}

/// Replaces the LDS file atomically (Envoy watches the directory for moves).
fn publish(dir: &Path, content: &str) {
    let tmp = dir.join("lds.tmp");
    fs::write(&tmp, content).unwrap();
    fs::rename(&tmp, dir.join("lds.json")).unwrap();
}

#[test]
fn plugin_config_changes_under_load_are_atomic_and_broken_ones_are_refused() {
    let key = SigningKey::cached(KeyKind::Rsa2048, "reload-1");
    let jwks = KeyRing::new(vec![key.clone()]).jwks().to_string();
    let backend = Recorder::start();
    let dir = tempfile_dir();
    let port = free_port();
    let admin = free_port();
    publish(
        &dir,
        &lds(port, &plugin(json!(["aud-a", "aud-common"]), &jwks)),
    );
    let bootstrap = json!({
        "node": {"id": "mcp-edge-auth-test", "cluster": "test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "dynamic_resources": {"lds_config": {"resource_api_version": "V3",
            "path_config_source": {"path": dir.join("lds.json").display().to_string(),
                                   "watched_directory": {"path": dir.display().to_string()}}}},
        "static_resources": {"clusters": [{"name": "backend", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [{"endpoint":
                {"address": {"socket_address": {"address": "127.0.0.1", "port_value": backend.port()}}}}]}]}}]}
    });
    fs::write(dir.join("bootstrap.json"), bootstrap.to_string()).unwrap();
    let log = fs::File::create(dir.join("envoy.log")).unwrap();
    let _envoy = Proc(
        Command::new(envoy_binary())
            .args([
                "-c",
                &dir.join("bootstrap.json").display().to_string(),
                "--use-dynamic-base-id",
                "--concurrency",
                "2",
                "-l",
                "info",
                "--component-log-level",
                "wasm:debug",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let claims =
        |aud: &str| json!({"iss": "https://idp.test/", "aud": aud, "exp": devstack::now() + 600});
    let tok = |aud: &str| {
        format!(
            "Bearer {}",
            sign_jws(
                &key,
                "RS256",
                &json!({"alg":"RS256","kid":"reload-1"}),
                &claims(aud)
            )
        )
    };
    let (a, b, common) = (tok("aud-a"), tok("aud-b"), tok("aud-common"));
    let forged = format!(
        "Bearer {}",
        sign_jws(
            &SigningKey::cached(KeyKind::Rsa2048, "other").with_kid("reload-1"),
            "RS256",
            &json!({"alg":"RS256","kid":"reload-1"}),
            &claims("aud-common")
        )
    );
    let status = |t: &str| {
        http::try_request(port, "GET", "/mcp", &[("authorization", t)], b"")
            .map(|r| r.status)
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&a) != 200 {
        assert!(
            Instant::now() < deadline,
            "listener never served: {}",
            fs::read_to_string(dir.join("envoy.log")).unwrap_or_default()
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&b), 401);

    // Load: a token valid under both configs must always pass; a forged one never.
    let stop = Arc::new(AtomicBool::new(false));
    let bad = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let (stop, bad, common, forged) =
                (stop.clone(), bad.clone(), common.clone(), forged.clone());
            thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (t, want) = if (n + i).is_multiple_of(2) {
                        (&common, 200)
                    } else {
                        (&forged, 401)
                    };
                    let got = http::try_request(port, "GET", "/mcp", &[("authorization", t)], b"")
                        .map(|r| r.status)
                        .unwrap_or(0);
                    if got != want {
                        bad.lock().unwrap().push(format!("want {want}, got {got}"));
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();

    // Switch to config B: aud-b replaces aud-a.
    thread::sleep(Duration::from_millis(500));
    publish(
        &dir,
        &lds(port, &plugin(json!(["aud-b", "aud-common"]), &jwks)),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while status(&b) != 200 {
        assert!(Instant::now() < deadline, "new config never took effect");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status(&a), 401, "the old audience is gone");

    // A broken config is refused; B keeps serving.
    let rejected_before = admin_stat(admin, "listener_manager.lds.update_rejected");
    publish(&dir, &lds(port, &plugin(json!([]), &jwks)));
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin_stat(admin, "listener_manager.lds.update_rejected") == rejected_before {
        assert!(
            Instant::now() < deadline,
            "the broken config was not rejected"
        );
        thread::sleep(Duration::from_millis(100));
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let sent: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(status(&b), 200, "the last good config still serves");
    assert_eq!(status(&a), 401);
    let bad = bad.lock().unwrap();
    assert!(sent > 200, "{sent} requests");
    assert!(
        bad.is_empty(),
        "{} of {sent} requests failed or were wrongly allowed: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    let log = fs::read_to_string(dir.join("envoy.log")).unwrap_or_default();
    assert!(
        log.contains("providers.p.audiences: must list at least one audience"),
        "the refusal names the field"
    );
}

fn admin_stat(admin: u16, name: &str) -> u64 {
    http::try_request(admin, "GET", &format!("/stats?filter=^{name}$"), &[], b"")
        .map(|r| r.text())
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mcp-edge-auth-reload-{}-{}",
        std::process::id(),
        devstack::now()
    ));
    fs::create_dir_all(&d).unwrap();
    d
}
