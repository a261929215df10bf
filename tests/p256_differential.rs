//! Differential tests of the filter's ES256 verification (`src/crypto/p256.rs`, reached through
//! `signature::verify`) against the p256 crate's own ECDSA verifier, the one it replaced:
//! identical accept/reject on valid signatures (low and high `s`) and on altered ones (a bit
//! of the signature, a bit of the message, another key, random `r || s`).
//!
//! `p256_differential_quick` (always on) checks 48 keys; `p256_differential_full` (`#[ignore]`,
//! `make p256-diff`, release mode) checks P256_DIFF_KEYS keys (default 2000), 5 messages each,
//! six comparisons per message: 60,000 with the default.

// Test code: helpers fail the test by panicking.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::keys::jwks::PublicKey;
use mcp_edge_auth::token::signature::verify;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};

/// The p256 crate's verdict (what `signature::verify` did before src/crypto/p256.rs).
fn reference(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    match Signature::from_slice(signature) {
        Ok(sig) => key
            .verify_digest(Sha256::new_with_prefix(message), &sig)
            .is_ok(),
        Err(_) => false,
    }
}

#[derive(Default, Debug)]
struct Tally {
    compared: usize,
    accepted: usize,
}

fn check(tally: &mut Tally, key: &VerifyingKey, message: &[u8], signature: &[u8], what: &str) {
    let ours = verify(Alg::Es256, &PublicKey::P256(*key), message, signature);
    let theirs = reference(key, message, signature);
    assert_eq!(
        ours,
        theirs,
        "{what}: ours {ours}, p256 {theirs}; key {:02x?} message {:02x?} signature {:02x?}",
        key.to_encoded_point(false).as_bytes(),
        message,
        signature
    );
    tally.compared += 1;
    tally.accepted += usize::from(ours);
}

fn run(keys: usize, messages: usize, seed: u64) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let mut previous: Option<VerifyingKey> = None;
    for _ in 0..keys {
        let sk = SigningKey::random(&mut rng);
        let vk = *sk.verifying_key();
        for _ in 0..messages {
            let mut message = vec![0u8; rng.gen_range(0..300)];
            rng.fill_bytes(&mut message);
            let sig: Signature = sk.sign_prehash(&Sha256::digest(&message)).unwrap();
            let good = sig.to_bytes().to_vec();
            check(&mut tally, &vk, &message, &good, "valid");
            let high = Signature::from_scalars(sig.r(), -*sig.s())
                .unwrap()
                .to_bytes()
                .to_vec();
            check(&mut tally, &vk, &message, &high, "valid, high s");

            let mut bad = good.clone();
            let bit = rng.gen_range(0..512);
            bad[bit / 8] ^= 1 << (bit % 8);
            check(&mut tally, &vk, &message, &bad, "signature bit flipped");

            let mut other_message = message.clone();
            if other_message.is_empty() {
                other_message.push(0);
            } else {
                let bit = rng.gen_range(0..other_message.len() * 8);
                other_message[bit / 8] ^= 1 << (bit % 8);
            }
            check(
                &mut tally,
                &vk,
                &other_message,
                &good,
                "message bit flipped",
            );

            if let Some(other) = previous {
                check(&mut tally, &other, &message, &good, "another key");
            }
            let mut random = [0u8; 64];
            rng.fill_bytes(&mut random);
            check(&mut tally, &vk, &message, &random, "random r || s");
        }
        previous = Some(vk);
    }
    tally
}

#[test]
fn p256_differential_quick() {
    let t = run(48, 4, 7);
    assert!(t.compared >= 48 * 4 * 5, "{t:?}");
    // Exactly the valid ones (low and high s) pass.
    assert_eq!(t.accepted, 48 * 4 * 2, "{t:?}");
}

#[test]
#[ignore = "long: make p256-diff"]
fn p256_differential_full() {
    let keys = std::env::var("P256_DIFF_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let seed = std::env::var("P256_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    let t = run(keys, 5, seed);
    assert_eq!(t.accepted, keys * 5 * 2, "{t:?}");
    println!(
        "p256 differential: {keys} keys, {} comparisons, {} accepted, all equal ({:.1} s, seed {seed})",
        t.compared,
        t.accepted,
        started.elapsed().as_secs_f64()
    );
}
