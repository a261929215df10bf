//! Issue "Remote JWKS and OIDC discovery": keys fetched by callouts from the dev IdP,
//! shared across worker VMs, refreshed, refetched on unknown kid, served stale while the
//! IdP is down, and waited for on a cold start. Real Envoy, `--concurrency 4` where
//! workers matter.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::thread;
use std::time::{Duration, Instant};

use devstack::idp::{Idp, IdpConfig, JwksMode};
use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, SigningKey};
use serde_json::{json, Value};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

struct Stack {
    idp: Idp,
    envoy: Envoy,
    _backend: Recorder,
}

/// `source` is the provider's key-source object (`{"remote_jwks": …}` or `{"discovery": …}`).
fn start_with(idp: Idp, source: Value, issuer: &str, concurrency: u32) -> Stack {
    let backend = Recorder::start();
    let mut provider = json!({
        "issuer": issuer,
        "audiences": [idp.audience()],
        "algorithms": ["RS256", "ES256"],
    });
    for (k, v) in source.as_object().unwrap() {
        provider[k] = v.clone();
    }
    let cfg = json!({
        "providers": {"idp": provider},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"}}],
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .extra_cluster("idp", idp.port())
        .concurrency(concurrency)
        .start()
        .unwrap();
    Stack {
        idp,
        envoy,
        _backend: backend,
    }
}

fn remote(idp: &Idp, extra: Value) -> Value {
    let mut r = json!({"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "1s"}});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    json!({ "remote_jwks": r })
}

fn start(extra: Value, concurrency: u32) -> Stack {
    let idp = Idp::start(IdpConfig::default());
    let source = remote(&idp, extra);
    let issuer = idp.issuer();
    start_with(idp, source, &issuer, concurrency)
}

impl Stack {
    fn token(&self, key: &SigningKey) -> String {
        let alg = key.kind.default_alg();
        sign_jws(
            key,
            alg,
            &json!({"alg": alg, "kid": key.kid, "typ": "JWT"}),
            &self.idp.claims_for("user-1", "mcp:tools"),
        )
    }

    fn call(&self, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        http::request(
            self.envoy.port(),
            "GET",
            "/mcp",
            &[("authorization", &auth)],
            b"",
        )
    }

    fn stat(&self, name: &str) -> u64 {
        self.envoy.filter_stat(name)
    }

    fn stat_at_least(&self, name: &str, min: u64) -> u64 {
        self.envoy.filter_stat_at_least(name, min)
    }

    /// Waits until the first key set is in (one successful fetch).
    fn warm(&self) {
        let t = self.token(&self.idp.key("rsa-1").unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.call(&t).status != 200 {
            assert!(Instant::now() < deadline, "keys never arrived");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

fn rsa(kid: &str) -> SigningKey {
    SigningKey::cached(KeyKind::Rsa2048, kid)
}

#[test]
fn first_request_waits_for_the_cold_start_fetch_then_passes() {
    let idp = Idp::start(IdpConfig::default());
    // The first fetches fail; the request that arrives meanwhile must wait, not fail.
    idp.set_jwks_mode(JwksMode::Status500);
    let source = remote(&idp, json!({"cold_start_wait": "8s"}));
    let issuer = idp.issuer();
    let s = start_with(idp, source, &issuer, 2);
    let t = s.token(&s.idp.key("rsa-1").unwrap());
    let began = Instant::now();
    let port = s.envoy.port();
    let waiter = thread::spawn(move || {
        let auth = format!("Bearer {t}");
        let r = http::request(port, "GET", "/mcp", &[("authorization", &auth)], b"");
        (r.status, began.elapsed())
    });
    thread::sleep(Duration::from_millis(600));
    s.idp.set_jwks_mode(JwksMode::Normal);
    let (status, took) = waiter.join().unwrap();
    assert_eq!(
        status, 200,
        "the waiting request must pass once keys arrive"
    );
    assert!(took >= Duration::from_millis(500), "it did wait: {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "woken by the fetch, not the deadline: {took:?}"
    );
    assert!(s.stat_at_least("jwks_fetch_failed", 1) >= 1);
    assert!(s.stat_at_least("jwks_fetch_success", 1) >= 1);
}

#[test]
fn idp_down_from_the_start_gives_503_with_retry_after() {
    let idp = Idp::start(IdpConfig::default());
    idp.set_jwks_mode(JwksMode::Status500);
    let source = remote(&idp, json!({"cold_start_wait": "1s"}));
    let issuer = idp.issuer();
    let s = start_with(idp, source, &issuer, 2);
    let t = s.token(&s.idp.key("rsa-1").unwrap());
    let began = Instant::now();
    let r = s.call(&t);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        began.elapsed() >= Duration::from_millis(900),
        "waited cold_start_wait first"
    );
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    assert!(
        r.header("www-authenticate").is_none(),
        "not an authentication failure"
    );
    assert!(
        s.envoy.logs().contains("JWKS fetch: HTTP status 500"),
        "the log says why"
    );
}

#[test]
fn rotation_new_kid_passes_within_one_refetch_and_removed_key_fails_after_refresh() {
    // Key generation first: on a busy machine it can take longer than a refresh period,
    // and a periodic refresh inside the measured window would count as a second fetch.
    let new = rsa("rsa-2");
    let s = start(json!({"cache_duration": "3s"}), 2);
    s.warm();
    let old = s.idp.key("rsa-1").unwrap();

    // The IdP publishes a new key and starts signing with it.
    let new_token = s.token(&new);
    let before = s.idp.jwks_fetch_count();
    s.idp.add_key(new.clone());
    let r = s.call(&new_token);
    assert_eq!(r.status, 200, "new kid: {}", r.text());
    assert_eq!(s.idp.jwks_fetch_count(), before + 1, "exactly one refetch");
    assert_eq!(s.stat("jwks_refetch_unknown_kid"), 1);

    // The old key is withdrawn: its tokens still pass until the next refresh, then fail.
    s.idp.remove_key("rsa-1");
    let old_token = s.token(&old);
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let r = s.call(&old_token);
        if r.status == 401 {
            assert!(r.json()["error_description"]
                .as_str()
                .unwrap()
                .contains("no key with kid"));
            break;
        }
        assert_eq!(r.status, 200);
        assert!(
            Instant::now() < deadline,
            "removed key still accepted after refresh"
        );
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.call(&s.token(&new)).status, 200);
}

#[test]
fn a_storm_of_unknown_kids_causes_at_most_two_fetches() {
    let s = start(json!({}), 2);
    s.warm();
    let fetches_after_warmup = s.idp.jwks_fetch_count();
    assert_eq!(
        fetches_after_warmup, 1,
        "one fetch for all workers at cold start"
    );
    let garbage = rsa("rsa-storm");
    let port = s.envoy.port();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let key = garbage.with_kid(format!("garbage-{i}"));
            let claims = s.idp.claims_for("u", "mcp:tools");
            thread::spawn(move || {
                let mut statuses = Vec::new();
                for j in 0..100 {
                    let k = key.with_kid(format!("{}-{j}", key.kid));
                    let t = sign_jws(&k, "RS256", &json!({"alg":"RS256","kid":k.kid}), &claims);
                    let auth = format!("Bearer {t}");
                    statuses.push(
                        http::request(port, "GET", "/mcp", &[("authorization", &auth)], b"").status,
                    );
                }
                statuses
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        for status in h.join().unwrap() {
            assert_eq!(status, 401);
            total += 1;
        }
    }
    assert_eq!(total, 1000);
    let fetches = s.idp.jwks_fetch_count();
    assert!(fetches <= 2, "1,000 unknown kids caused {fetches} fetches");
    assert_eq!(s.stat_at_least("denied.unknown_kid", 1000), 1000);
}

#[test]
fn idp_down_keeps_serving_stale_keys_with_backoff() {
    let s = start(json!({"cache_duration": "1s", "max_stale": "3600s"}), 2);
    s.warm();
    let t = s.token(&s.idp.key("rsa-1").unwrap());
    s.idp.set_jwks_mode(JwksMode::Status500);
    let down_at = s.idp.jwks_fetch_count();
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(6) {
        assert_eq!(s.call(&t).status, 200, "stale keys must still verify");
        thread::sleep(Duration::from_millis(100));
    }
    let failed = s.idp.jwks_fetch_count() - down_at;
    // Without backoff a 100 ms tick would try ~60 times; with 1 s → 2 s → 4 s (± jitter)
    // it is a handful.
    assert!((2..=6).contains(&failed), "{failed} fetches while down");
    assert!(s.stat_at_least("jwks_fetch_failed", 2) >= 2);
    assert!(s.stat_at_least("keys_stale_served", 1) > 0);

    // Garbage, oversized and hanging responses are failures too, never an empty key set.
    // Between faults the IdP recovers once, which resets the backoff.
    for mode in [JwksMode::Garbage, JwksMode::Oversized, JwksMode::Hang] {
        s.idp.set_jwks_mode(JwksMode::Normal);
        let ok_before = s.stat("jwks_fetch_success");
        let deadline = Instant::now() + Duration::from_secs(70);
        while s.stat("jwks_fetch_success") == ok_before {
            assert!(Instant::now() < deadline, "never recovered before {mode:?}");
            thread::sleep(Duration::from_millis(100));
        }
        s.idp.set_jwks_mode(mode.clone());
        let failed_before = s.stat("jwks_fetch_failed");
        let deadline = Instant::now() + Duration::from_secs(15);
        while s.stat("jwks_fetch_failed") == failed_before {
            assert!(
                Instant::now() < deadline,
                "{mode:?} never counted as a failure"
            );
            assert_eq!(s.call(&t).status, 200, "{mode:?}");
            thread::sleep(Duration::from_millis(100));
        }
    }
    let logs = s.envoy.logs();
    assert!(
        logs.contains("response is not a JSON document"),
        "garbage logged"
    );
    assert!(
        logs.contains("exceeds the 524288-byte limit"),
        "oversize logged"
    );
    // Envoy answers a timed-out callout with a local 504.
    assert!(logs.contains("JWKS fetch: HTTP status 504"), "hang logged");

    // The IdP comes back: the next attempt succeeds.
    s.idp.set_jwks_mode(JwksMode::Normal);
    let ok_before = s.stat("jwks_fetch_success");
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.stat("jwks_fetch_success") == ok_before {
        assert!(Instant::now() < deadline, "never recovered");
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.call(&t).status, 200);
}

#[test]
fn all_four_workers_accept_a_rotated_key_without_disagreeing() {
    let s = start(json!({}), 4);
    s.warm();
    assert_eq!(s.idp.jwks_fetch_count(), 1, "one fetch for four workers");
    let new = SigningKey::cached(KeyKind::EcP256, "ec-2");
    s.idp.add_key(new.clone());
    let t = s.token(&new);
    // The first request triggers the refetch; then every connection (spread over the
    // four workers) must accept the new key.
    assert_eq!(s.call(&t).status, 200);
    let port = s.envoy.port();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let t = t.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|_| {
                        let auth = format!("Bearer {t}");
                        http::request(port, "GET", "/mcp", &[("authorization", &auth)], b"").status
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(|s| *s == 200));
    }
    assert_eq!(
        s.idp.jwks_fetch_count(),
        2,
        "one refetch, not one per worker"
    );
    // Every VM (4 workers and the main thread's) loaded version 2 from shared data, once
    // each: the log line's thread id is distinct per VM.
    let logs = s.envoy.logs();
    let threads: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("key set version 2 loaded"))
        .filter_map(|l| l.split("][").nth(1))
        .collect();
    let mut distinct = threads.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        threads.len(),
        "a VM parsed version 2 twice: {threads:?}"
    );
    assert!(
        threads.len() >= 4,
        "only {} VMs loaded the rotated keys",
        threads.len()
    );
}

#[test]
fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let idp = Idp::start(IdpConfig::default());
    let issuer = idp.issuer();
    let source = json!({"discovery": {"http_uri": {"uri": idp.discovery_url(), "cluster": "idp", "timeout": "1s"}}});
    let s = start_with(idp, source, &issuer, 2);
    s.warm();
    assert!(s.idp.discovery_fetch_count() >= 1);
    assert_eq!(s.idp.jwks_fetch_count(), 1);

    // A discovery document whose issuer is not the provider's is refused.
    let idp = Idp::start(IdpConfig::default());
    let wrong = format!("{}/", idp.issuer());
    let source = json!({"discovery": {"http_uri": {"uri": idp.discovery_url(), "cluster": "idp", "timeout": "1s"}, "cold_start_wait": "1s"}});
    let s = start_with(idp, source, &wrong, 2);
    let mut claims = s.idp.claims_for("u", "mcp:tools");
    claims["iss"] = json!(wrong);
    let k = s.idp.key("rsa-1").unwrap();
    let t = sign_jws(&k, "RS256", &json!({"alg":"RS256","kid":"rsa-1"}), &claims);
    let r = s.call(&t);
    assert_eq!(
        r.status, 503,
        "no keys from a mismatched discovery document"
    );
    assert_eq!(s.idp.jwks_fetch_count(), 0, "its jwks_uri is never fetched");
    assert!(s
        .envoy
        .logs()
        .contains("differs from the configured issuer"));
}

#[test]
fn requests_held_for_keys_keep_their_body_until_it_is_checked() {
    // Cold start with an MCP rule: the body arrives while the request waits for keys; it
    // must neither slip through to the backend nor be lost.
    let idp = Idp::start(IdpConfig::default());
    idp.set_jwks_mode(JwksMode::Status500);
    let backend = Recorder::start();
    let cfg = json!({
        "providers": {"idp": {
            "issuer": idp.issuer(),
            "audiences": [idp.audience()],
            "remote_jwks": {"http_uri": {"uri": idp.jwks_url(), "cluster": "idp", "timeout": "1s"},
                            "cold_start_wait": "8s"}
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
                   "mcp": {"tools": {"add": ["mcp:tools"], "admin": ["mcp:admin"]}}}],
    });
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .extra_cluster("idp", idp.port())
        .start()
        .unwrap();
    let token = idp.mint("RS256", idp.claims_for("u", "mcp:tools"));
    let port = envoy.port();
    let send = move |tool: &'static str, token: String| {
        thread::spawn(move || {
            let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":tool}})
                .to_string();
            let auth = format!("Bearer {token}");
            let r = http::request(
                port,
                "POST",
                "/mcp",
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                    ("x-test-id", tool),
                ],
                body.as_bytes(),
            );
            (r.status, body)
        })
    };
    let allowed = send("add", token.clone());
    let forbidden = send("admin", token);
    thread::sleep(Duration::from_millis(700));
    assert_eq!(backend.count(), 0, "nothing passes while keys are missing");
    idp.set_jwks_mode(JwksMode::Normal);
    let (status, body) = allowed.join().unwrap();
    assert_eq!(status, 200);
    let (status, _) = forbidden.join().unwrap();
    assert_eq!(
        status, 403,
        "the held body was checked after the keys arrived"
    );
    let seen = backend.requests();
    assert_eq!(seen.len(), 1, "only the allowed call reached the backend");
    assert_eq!(seen[0].header("x-test-id"), Some("add"));
    assert_eq!(
        seen[0].body,
        body.into_bytes(),
        "its body arrived unchanged"
    );
}
