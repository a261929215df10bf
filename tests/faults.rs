//! IdP faults under concurrent load (issue "Hardening"): while client threads send valid and
//! invalid tokens, the JWKS endpoint goes down, returns 500, hangs, returns garbage, rotates
//! keys and comes back. No valid token is refused, no invalid token is accepted, nothing but
//! 200/401 is answered, and the fetch count stays bounded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

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
        backend.count() - seen_at_start,
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
