//! `jwks` and `explain --jwks` against the dev IdP (real HTTP), through the real binary.

// Test code: panicking on a broken fixture is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::{Idp, IdpConfig, JwksMode, KeyKind, KeyRing, SigningKey};
use serde_json::json;
use support::*;

fn idp_with_weak_key() -> Idp {
    let ring = KeyRing::new(vec![
        SigningKey::cached(KeyKind::Rsa2048, "rsa-1"),
        SigningKey::cached(KeyKind::EcP256, "ec-1"),
        SigningKey::cached(KeyKind::Rsa1024, "weak-1"),
        SigningKey::cached(KeyKind::Ed25519, "ed-1").with_jwk_alg("ES256"),
    ]);
    Idp::start(IdpConfig {
        keys: Some(ring),
        ..IdpConfig::default()
    })
}

#[test]
fn jwks_uri_lists_used_and_skipped_keys() {
    let idp = idp_with_weak_key();
    let r = cli(&["jwks", "--uri", &idp.jwks_url()]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    assert!(out.contains("status: 200"), "{out}");
    assert!(
        out.contains("keys: 4 in the document, 2 used, 2 skipped"),
        "{out}"
    );
    assert!(
        out.contains("#0 kid \"rsa-1\" kty RSA, use sig, 2048-bit modulus: used"),
        "{out}"
    );
    assert!(
        out.contains("#1 kid \"ec-1\" kty EC, crv P-256, use sig: used"),
        "{out}"
    );
    assert!(
        out.contains("#2 kid \"weak-1\" kty RSA, use sig: SKIPPED: RSA modulus of 1024 bits is below the 2048-bit minimum"),
        "{out}"
    );
    assert!(
        out.contains("#3 kid \"ed-1\" kty OKP, crv Ed25519, alg ES256, use sig: SKIPPED: alg ES256 does not fit a OKP Ed25519 key"),
        "{out}"
    );
    assert!(
        out.contains("verdict: the filter accepts this key set (2 usable key(s), 2 skipped"),
        "{out}"
    );
}

#[test]
fn jwks_discovery_checks_the_issuer_and_follows_jwks_uri() {
    let idp = Idp::start(IdpConfig::default());
    let r = cli(&[
        "jwks",
        "--discovery",
        &idp.discovery_url(),
        "--issuer",
        &idp.issuer(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout.contains(&format!("jwks_uri: {}", idp.jwks_url())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("equals --issuer"), "{}", r.stdout);

    let r = cli(&[
        "jwks",
        "--discovery",
        &idp.discovery_url(),
        "--issuer",
        &format!("{}/", idp.issuer()),
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("differs from the configured issuer"),
        "{}",
        r.stdout
    );

    let r = cli(&["jwks", "--discovery", &idp.discovery_url()]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("not checked"), "{}", r.stdout);
}

#[test]
fn jwks_refused_responses() {
    let idp = Idp::start(IdpConfig::default());
    idp.set_jwks_mode(JwksMode::Status500);
    let r = cli(&["jwks", "--uri", &idp.jwks_url()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("refuses this response: HTTP status 500"),
        "{}",
        r.stdout
    );

    idp.set_jwks_mode(JwksMode::Oversized);
    let r = cli(&["jwks", "--uri", &idp.jwks_url()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("-byte limit"), "{}", r.stdout);

    idp.set_jwks_mode(JwksMode::Custom(
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}]}).to_string(),
    ));
    let r = cli(&["jwks", "--uri", &idp.jwks_url()]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("SKIPPED: symmetric (oct) keys are never used"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("JWKS has no usable key"), "{}", r.stdout);

    // Nothing listening.
    let port = idp.port();
    drop(idp);
    let r = cli(&["jwks", "--uri", &format!("http://127.0.0.1:{port}/jwks")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("no response"), "{}", r.stdout);

    assert_eq!(cli(&["jwks"]).code, 2);
    assert_eq!(cli(&["jwks", "--uri", "ftp://x/keys"]).code, 2);
}

#[test]
fn jwks_file() {
    let file = temp_file("jwks.json", jwks().as_bytes());
    let r = cli(&["jwks", "--file", &file]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("#0 kid \"key-1\""), "{}", r.stdout);
}

#[test]
fn explain_with_remote_keys_from_the_idp() {
    let idp = Idp::start(IdpConfig::default());
    let cfg = json!({
        "providers": {"dev": {
            "issuer": idp.issuer(),
            "audiences": ["mcp-demo"],
            "discovery": {"http_uri": {"uri": idp.discovery_url(), "cluster": "idp"}}
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "dev"}}]
    })
    .to_string();
    let t = idp.mint("RS256", json!({"sub": "ada", "scope": "mcp:tools"}));

    // Without --jwks: a usage error naming the configured URI.
    let file = temp_file("remote.json", cfg.as_bytes());
    let r = cli(&["explain", "--config", &file, "--token", &t]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--jwks"), "{}", r.stderr);
    assert_no_token(&r, &t);

    // JWKS URL, and the discovery URL (followed, issuer checked).
    for src in [idp.jwks_url(), idp.discovery_url()] {
        let r = cli(&["explain", "--config", &file, "--token", &t, "--jwks", &src]);
        assert_no_token(&r, &t);
        assert_eq!(r.code, 0, "{}", r.all());
        assert!(r.stdout.contains("PASS  signature"), "{}", r.stdout);
        assert!(
            r.stdout.contains(&format!("keys: {}", idp.jwks_url())),
            "{}",
            r.stdout
        );
    }

    // A key rotated away at the IdP: unknown kid.
    let new_key = SigningKey::cached(KeyKind::Rsa2048, "rsa-2");
    let t2 = devstack::mint(&new_key, "RS256", idp.claims_for("ada", "mcp:tools"));
    let r = cli(&[
        "explain",
        "--config",
        &file,
        "--token",
        &t2,
        "--jwks",
        &idp.jwks_url(),
    ]);
    assert_no_token(&r, &t2);
    assert_eq!(r.code, 1, "{}", r.all());
    let fix = r.fix_after("key");
    assert!(fix.contains("rotated"), "{fix}");
    assert!(fix.contains("--jwks points at the wrong key set"), "{fix}");
    // After the IdP publishes it, the same token passes.
    idp.add_key(new_key);
    let r = cli(&[
        "explain",
        "--config",
        &file,
        "--token",
        &t2,
        "--jwks",
        &idp.jwks_url(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
}
