//! `make soak` (not part of `make test`): SOAK_SECONDS (default 300) of mixed valid and
//! invalid traffic while the IdP rotates its signing key every ROTATE_SECONDS (default 60):
//! a new key is published one refresh period before clients use it (as Entra, Okta and
//! Auth0 do), and the old one is withdrawn after the switch; forged tokens keep using the
//! withdrawn kid. Zero wrong decisions; Envoy's RSS is sampled every 10 s and printed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use devstack::idp::{Idp, IdpConfig};
use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, SigningKey};
use serde_json::json;
use support::http;
use support::EnvoyBuilder;

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

#[test]
#[ignore = "long: run with `make soak`"]
fn soak_with_key_rotation() {
    let total = Duration::from_secs(env_secs("SOAK_SECONDS", 300));
    let rotate = Duration::from_secs(env_secs("ROTATE_SECONDS", 60));
    let idp = Idp::start(IdpConfig::default());
    let backend = Recorder::start();
    let cfg = json!({
        "providers": {"idp": {
            "issuer": idp.issuer(), "audiences": [idp.audience()],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "1s"},
                            "cache_duration": "10s", "unknown_kid_refetch_interval": "5s"},
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}}]
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .extra_cluster("idp", idp.port())
        .start()
        .unwrap();
    let claims = idp.claims_for("soak", "mcp:tools");
    let sign = |k: &SigningKey| sign_jws(k, "RS256", &json!({"alg":"RS256","kid":k.kid}), &claims);
    // The token clients currently use (signed by the newest published key).
    let current = Arc::new(RwLock::new(sign(&idp.key("rsa-1").unwrap())));
    let forged = sign(&SigningKey::cached(KeyKind::Rsa2048, "soak-forger").with_kid("rsa-1"));
    let warm = Instant::now() + Duration::from_secs(10);
    while http::request(
        envoy.port(),
        "GET",
        "/mcp",
        &[(
            "authorization",
            &format!("Bearer {}", current.read().unwrap()),
        )],
        b"",
    )
    .status
        != 200
    {
        assert!(Instant::now() < warm, "keys never arrived");
        thread::sleep(Duration::from_millis(50));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let port = envoy.port();
    let t0 = Instant::now();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, sent, wrong, current, forged) = (
                stop.clone(),
                sent.clone(),
                wrong.clone(),
                current.clone(),
                forged.clone(),
            );
            thread::spawn(move || {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (t, want) = if i % 4 == 0 {
                        (forged.clone(), 401)
                    } else {
                        (current.read().unwrap().clone(), 200)
                    };
                    let r = http::request(
                        port,
                        "GET",
                        "/mcp",
                        &[("authorization", &format!("Bearer {t}"))],
                        b"",
                    );
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status != want {
                        wrong.lock().unwrap().push(format!(
                            "want {want}, got {} after {:?}: {}",
                            r.status,
                            t0.elapsed(),
                            r.text()
                        ));
                    }
                }
            })
        })
        .collect();

    let start = Instant::now();
    let mut next_rotation = start + rotate;
    let mut next_sample = start;
    let mut generation = 1;
    let mut curve = Vec::new();
    while start.elapsed() < total {
        if Instant::now() >= next_sample {
            curve.push((
                start.elapsed().as_secs(),
                rss_kb(envoy.pid()) / 1024,
                sent.load(Ordering::Relaxed),
            ));
            next_sample += Duration::from_secs(10);
        }
        if Instant::now() >= next_rotation {
            // Like real IdPs: publish the new key ahead (one refresh period), switch the
            // clients to it, then withdraw the old one once nobody uses it.
            generation += 1;
            let new = SigningKey::cached(KeyKind::Rsa2048, format!("rsa-{generation}"));
            idp.add_key(new.clone());
            thread::sleep(Duration::from_secs(11));
            *current.write().unwrap() = sign(&new);
            thread::sleep(Duration::from_secs(2));
            idp.remove_key(&format!("rsa-{}", generation - 1));
            next_rotation += rotate;
        }
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    println!("t(s)  RSS(MB)  requests");
    for (t, mb, n) in &curve {
        println!("{t:>4}  {mb:>7}  {n:>8}");
    }
    let wrong = wrong.lock().unwrap();
    let n = sent.load(Ordering::Relaxed);
    println!(
        "{n} requests, {} wrong decisions, {} JWKS fetches, {generation} keys",
        wrong.len(),
        idp.jwks_fetch_count()
    );
    assert!(
        wrong.is_empty(),
        "{} wrong decisions: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
}
