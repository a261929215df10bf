//! Native per-verify timing (not an assertion): `make bench-verify` runs it in release mode
//! next to the same measurement inside Envoy's V8 (bench/verify.py), so the V8/native ratio is
//! visible. `cargo test --release --test rsa_bench -- --ignored --nocapture`.

// Test code: helpers fail the test by panicking.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::time::Instant;

use devstack::{sign_bytes, KeyKind, KeyRing, SigningKey};
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::keys::jwks::{KeySet, PublicKey};
use mcp_edge_auth::token::signature::verify;

fn rsa10_verify(alg: Alg, key: &rsa10::PublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa10::sha2::{Digest, Sha256};
    use rsa10::{Pkcs1v15Sign, Pss};
    match alg {
        Alg::Rs256 => key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(message),
                signature,
            )
            .is_ok(),
        Alg::Ps256 => key
            .verify(
                Pss::<Sha256>::new_with_salt(32),
                &Sha256::digest(message),
                signature,
            )
            .is_ok(),
        _ => false,
    }
}

fn time(mut f: impl FnMut() -> bool, iterations: usize) -> f64 {
    for _ in 0..iterations / 10 {
        assert!(f());
    }
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        for _ in 0..iterations / 5 {
            assert!(f());
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / (iterations / 5) as f64);
    }
    best
}

#[test]
#[ignore = "timing, run by make bench-verify"]
fn native_per_verify_microseconds() {
    let iterations: usize = std::env::var("VERIFY_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rsa = SigningKey::cached(KeyKind::Rsa2048, "bench-native");
    let ec = SigningKey::cached(KeyKind::EcP256, "bench-native-ec");
    let jwks = KeyRing::new(vec![rsa.clone(), ec.clone()]).jwks();
    let set = KeySet::parse(jwks.to_string().as_bytes()).unwrap();
    let find = |alg: Alg| {
        set.keys
            .iter()
            .find(|k| alg.fits(&k.key))
            .unwrap()
            .key
            .clone()
    };
    let msg = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyIn0";
    let rsa_key = find(Alg::Rs256);
    let PublicKey::Rsa(fast) = &rsa_key else {
        unreachable!()
    };
    let reference = rsa10::PublicKey::new(
        rsa10::BoxedUint::from_be_slice_vartime(fast.n()),
        rsa10::BoxedUint::from_be_slice_vartime(&fast.e().to_be_bytes()),
    )
    .unwrap();
    for alg in [Alg::Rs256, Alg::Ps256] {
        let sig = sign_bytes(&rsa, alg.name(), msg);
        let r = time(|| rsa10_verify(alg, &reference, msg, &sig), iterations);
        println!("native verify {alg} [rsa10]: {r:.1} µs per verify (best batch)");
        let f = time(|| verify(alg, &rsa_key, msg, &sig), iterations);
        println!("native verify {alg} [fast]: {f:.1} µs per verify (best batch)");
    }
    let sig = sign_bytes(&ec, "ES256", msg);
    let ec_key = find(Alg::Es256);
    let mcp_edge_auth::keys::jwks::PublicKey::P256(p256_key) = &ec_key else {
        panic!("the bench's EC key is not P-256");
    };
    let reference = || {
        use p256::ecdsa::signature::DigestVerifier;
        use sha2::Digest;
        p256::ecdsa::Signature::from_slice(&sig).is_ok_and(|s| {
            p256_key
                .verifying_key()
                .verify_digest(sha2::Sha256::new_with_prefix(msg), &s)
                .is_ok()
        })
    };
    let r = time(reference, iterations);
    println!("native verify ES256 [p256]: {r:.1} µs per verify (best batch)");
    let e = time(|| verify(Alg::Es256, &ec_key, msg, &sig), iterations);
    println!("native verify ES256 [fast]: {e:.1} µs per verify (best batch)");
}
