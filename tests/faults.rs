//! IdP faults under concurrent load (issue "Hardening"): while client threads send valid and
//! invalid tokens, the JWKS endpoint goes down, returns 500, hangs, returns garbage, rotates
//! keys and comes back. No valid token is refused, no invalid token is accepted, nothing but
//! 200/401 is answered, and the fetch count stays bounded. Two wrk instances (Debian's wrk,
//! installed by `make test`; script `bench/pool.lua`) add load throughout: one with valid
//! tokens whose keys stay published (every answer must be 2xx), one with invalid tokens
//! (every answer must be non-2xx, and none may reach the backend); the client threads check
//! each individual answer, including across the key rotation.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use devstack::idp::{Idp, IdpConfig, JwksMode};
use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, SigningKey};
use serde_json::json;
use support::http;
use support::EnvoyBuilder;

/// Starts wrk for `secs` seconds sending `tokens` in turn to `path`.
fn wrk(port: u16, tokens: &[String], path: &str, secs: u32) -> (Child, std::path::PathBuf) {
    let file = std::env::temp_dir().join(format!(
        "mcp-edge-auth-faults-{}-{}.tokens",
        std::process::id(),
        path.replace('/', "_")
    ));
    std::fs::write(&file, tokens.join("\n")).unwrap();
    let script = support::envoy::repo_root().join("bench/pool.lua");
    let child = Command::new("wrk")
        .args(["-t1", "-c4", "--timeout", "5s", &format!("-d{secs}s"), "-s"])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}"))
        .env("TOKENS", &file)
        .env("BENCH_PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run wrk (make test installs it): {e}"));
    (child, file)
}

/// (requests completed, non-2xx/3xx answers, socket errors line) from wrk's report.
fn wrk_result(child: Child, file: std::path::PathBuf) -> (u64, u64, String) {
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(file);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number_before = |marker: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.contains(marker))?;
        line.split_whitespace().find_map(|w| w.parse().ok())
    };
    let total = number_before(" requests in ").unwrap_or_else(|| panic!("no total: {text}"));
    let non2xx = number_before("Non-2xx or 3xx responses:").unwrap_or(0);
    let errors = text
        .lines()
        .find(|l| l.contains("Socket errors"))
        .unwrap_or("")
        .to_string();
    (total, non2xx, errors)
}

#[test]
fn jwks_faults_under_load_never_cause_a_wrong_decision() {
    let idp = Idp::start(IdpConfig::default());
    let backend = Recorder::start();
    let cfg = json!({
        "providers": {"idp": {
            "issuer": idp.issuer(), "audiences": [idp.audience()],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "0.5s"},
                            "cache_duration": "1s", "unknown_kid_refetch_interval": "1s"},
            "algorithms": ["RS256", "ES256"]
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}}],
        "token_cache": {"max_entries": 0}
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .extra_cluster("idp", idp.port())
        .start()
        .unwrap();

    let claims = idp.claims_for("u", "mcp:tools");
    let sign = |k: &SigningKey, c: &serde_json::Value| {
        let alg = k.kind.default_alg();
        sign_jws(k, alg, &json!({"alg": alg, "kid": k.kid, "typ": "JWT"}), c)
    };
    let rsa1 = idp.key("rsa-1").unwrap();
    let ec1 = idp.key("ec-1").unwrap();
    let rsa2 = SigningKey::cached(KeyKind::Rsa2048, "rsa-2");
    let forger = SigningKey::cached(KeyKind::Rsa2048, "forger").with_kid("rsa-1");
    let mut expired = claims.clone();
    expired["exp"] = json!(devstack::now() - 600);
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("someone-else");
    let valid_before = vec![sign(&rsa1, &claims), sign(&ec1, &claims)];
    let valid_after = vec![
        sign(&rsa1, &claims),
        sign(&rsa2, &claims),
        sign(&ec1, &claims),
    ];
    let invalid = vec![
        sign(&forger, &claims),
        sign(&rsa1, &expired),
        sign(&ec1, &wrong_aud),
    ];

    // Warm up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http::request(
        envoy.port(),
        "GET",
        "/mcp",
        &[("authorization", &format!("Bearer {}", valid_before[0]))],
        b"",
    )
    .status
        != 200
    {
        assert!(Instant::now() < deadline, "keys never arrived");
        thread::sleep(Duration::from_millis(50));
    }
    let fetches_at_start = idp.jwks_fetch_count();
    let seen_at_start = backend.count();
    // wrk load for the whole run (phases ≈ 15.5 s).
    let wrk_valid = wrk(envoy.port(), &valid_before, "/mcp/wrk-valid", 15);
    let wrk_invalid = wrk(envoy.port(), &invalid, "/mcp/wrk-invalid", 15);

    let rotated = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let valid_sent = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let port = envoy.port();
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (rotated, stop, sent, valid_sent, wrong) = (
                rotated.clone(),
                stop.clone(),
                sent.clone(),
                valid_sent.clone(),
                wrong.clone(),
            );
            let (vb, va, inv) = (valid_before.clone(), valid_after.clone(), invalid.clone());
            thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (token, want) = if i % 3 == 0 {
                        (inv[i % inv.len()].clone(), 401)
                    } else if rotated.load(Ordering::Relaxed) {
                        (va[i % va.len()].clone(), 200)
                    } else {
                        (vb[i % vb.len()].clone(), 200)
                    };
                    let auth = format!("Bearer {token}");
                    let r = http::request(port, "GET", "/mcp", &[("authorization", &auth)], b"");
                    sent.fetch_add(1, Ordering::Relaxed);
                    if want == 200 {
                        valid_sent.fetch_add(1, Ordering::Relaxed);
                    }
                    if r.status != want {
                        wrong.lock().unwrap().push(format!(
                            "want {want}, got {}: {}",
                            r.status,
                            r.text()
                        ));
                    }
                }
            })
        })
        .collect();

    let phases = [
        ("down (500)", JwksMode::Status500),
        ("hanging", JwksMode::Hang),
        ("garbage", JwksMode::Garbage),
        ("oversized", JwksMode::Oversized),
        ("back", JwksMode::Normal),
    ];
    for (name, mode) in phases {
        idp.set_jwks_mode(mode);
        thread::sleep(Duration::from_millis(2500));
        eprintln!(
            "phase {name}: {} requests so far",
            sent.load(Ordering::Relaxed)
        );
    }
    // The IdP rotates: a new key is published and used alongside the old ones.
    idp.add_key(rsa2.clone());
    rotated.store(true, Ordering::Relaxed);
    thread::sleep(Duration::from_millis(3000));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let (valid_total, valid_refused, valid_errors) = wrk_result(wrk_valid.0, wrk_valid.1);
    let (invalid_total, invalid_refused, invalid_errors) = wrk_result(wrk_invalid.0, wrk_invalid.1);
    eprintln!(
        "wrk valid: {valid_total} requests, {valid_refused} non-2xx {valid_errors}; \
         wrk invalid: {invalid_total} requests, {invalid_refused} non-2xx {invalid_errors}"
    );
    assert!(
        valid_total > 100 && invalid_total > 100,
        "wrk sent too little"
    );
    assert_eq!(valid_refused, 0, "wrk: valid tokens refused");
    assert_eq!(
        invalid_refused, invalid_total,
        "wrk: invalid tokens accepted"
    );
    let by_path = |p: &str| {
        backend
            .requests()
            .iter()
            .filter(|r| r.path.starts_with(p))
            .count()
    };
    assert_eq!(
        by_path("/mcp/wrk-invalid"),
        0,
        "an invalid token reached the backend"
    );
    // wrk counts completed answers; a few may be in flight when it stops.
    let valid_seen = by_path("/mcp/wrk-valid") as u64;
    assert!(
        valid_seen >= valid_total && valid_seen <= valid_total + 4,
        "backend saw {valid_seen} wrk-valid requests, wrk completed {valid_total}"
    );

    let wrong = wrong.lock().unwrap();
    let total = sent.load(Ordering::Relaxed);
    assert!(total > 300, "only {total} requests were sent");
    assert!(
        wrong.is_empty(),
        "{} wrong decisions of {total}, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        backend.count() - seen_at_start - valid_seen as usize,
        valid_sent.load(Ordering::Relaxed),
        "exactly the valid requests reached the backend"
    );
    let fetches = idp.jwks_fetch_count() - fetches_at_start;
    // ~13.5 s with cache_duration 1 s: at most one fetch per refresh plus backoff retries.
    assert!(fetches <= 30, "{fetches} fetches");
    eprintln!(
        "{total} requests, {fetches} JWKS fetches, {} failed fetches",
        envoy
            .stat("wasmcustom.mcp_edge_auth.jwks_fetch_failed")
            .unwrap_or(0)
    );
}
