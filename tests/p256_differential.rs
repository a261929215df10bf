//! Differential tests of the filter's ES256 verification (`src/crypto/p256.rs`, reached through
//! `signature::verify`) against the p256 crate's own ECDSA verifier, the one it replaced:
//! identical accept/reject on valid signatures (low and high `s`) and on altered ones (a bit
//! of the signature, a bit of the message, another key, random `r || s`). Each key is one
//! `PublicKey` for all its messages (its fixed-base tables built at the first verification and
//! reused), and a new one for each valid signature more (tables built by that verification).
//!
//! `p256_differential_quick` (always on) checks 48 keys; `p256_differential_full` (`#[ignore]`,
//! `make p256-diff`, release mode) checks P256_DIFF_KEYS keys (default 2000), 5 messages each,
//! seven comparisons per message: 70,000 with the default.
//!
//! The field arithmetic under it (`src/crypto/p256_field.rs`) against the p256 crate's
//! `FieldElement`: `field_quick` on 5,000 pairs of values (random, near 0, near p, sparse
//! words), the full run on 50 pairs per key more.

// Test code: helpers fail the test by panicking.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use mcp_edge_auth::crypto::p256_field::Fe;
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::keys::jwks::PublicKey;
use mcp_edge_auth::token::signature::verify;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::{FieldBytes, FieldElement};
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

/// A key as the p256 crate has it and as the filter has it.
type Key = (VerifyingKey, PublicKey);

#[derive(Default, Debug)]
struct Tally {
    compared: usize,
    accepted: usize,
}

/// The filter's key for `key`: its tables are built at its first verification and kept.
fn ours(key: &VerifyingKey) -> PublicKey {
    PublicKey::P256(Arc::new((*key).into()))
}

fn check(tally: &mut Tally, key: &Key, message: &[u8], signature: &[u8], what: &str) {
    let (key, shared) = key;
    let ours = verify(Alg::Es256, shared, message, signature);
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
    let mut previous: Option<Key> = None;
    for _ in 0..keys {
        let sk = SigningKey::random(&mut rng);
        let vk = *sk.verifying_key();
        // One key for all its messages (tables built at the first, reused after), and a fresh
        // one (tables built by this very verification) for the valid signatures.
        let key = (vk, ours(&vk));
        for _ in 0..messages {
            let mut message = vec![0u8; rng.gen_range(0..300)];
            rng.fill_bytes(&mut message);
            let sig: Signature = sk.sign_prehash(&Sha256::digest(&message)).unwrap();
            let good = sig.to_bytes().to_vec();
            check(&mut tally, &key, &message, &good, "valid");
            check(
                &mut tally,
                &(vk, ours(&vk)),
                &message,
                &good,
                "valid, new key",
            );
            let high = Signature::from_scalars(sig.r(), -*sig.s())
                .unwrap()
                .to_bytes()
                .to_vec();
            check(&mut tally, &key, &message, &high, "valid, high s");

            let mut bad = good.clone();
            let bit = rng.gen_range(0..512);
            bad[bit / 8] ^= 1 << (bit % 8);
            check(&mut tally, &key, &message, &bad, "signature bit flipped");

            let mut other_message = message.clone();
            if other_message.is_empty() {
                other_message.push(0);
            } else {
                let bit = rng.gen_range(0..other_message.len() * 8);
                other_message[bit / 8] ^= 1 << (bit % 8);
            }
            check(
                &mut tally,
                &key,
                &other_message,
                &good,
                "message bit flipped",
            );

            if let Some(other) = &previous {
                check(&mut tally, other, &message, &good, "another key");
            }
            let mut random = [0u8; 64];
            rng.fill_bytes(&mut random);
            check(&mut tally, &key, &message, &random, "random r || s");
        }
        previous = Some(key);
    }
    tally
}

/// p, big-endian.
const P: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

/// A 32-byte value for the field tests: uniform, small, just below or above p, or made of
/// all-zero and all-one words (the carries and borrows of the reduction).
fn field_value(rng: &mut StdRng) -> [u8; 32] {
    let mut b = [0u8; 32];
    match rng.gen_range(0..6) {
        0 | 1 => rng.fill_bytes(&mut b),
        2 => b[31] = rng.gen(),
        3 | 4 => {
            // p − k or p + k for a small k (the latter is refused by both).
            let k: u8 = rng.gen_range(0..4);
            b = P;
            let mut borrow = k;
            for byte in b.iter_mut().rev() {
                let (v, o) = if rng.gen_bool(0.5) {
                    byte.overflowing_sub(borrow)
                } else {
                    byte.overflowing_add(borrow)
                };
                *byte = v;
                borrow = u8::from(o);
            }
        }
        _ => {
            for word in b.chunks_exact_mut(4) {
                let fill = if rng.gen_bool(0.5) { 0xff } else { 0 };
                word.fill(fill);
            }
        }
    }
    b
}

/// One pair of values through every operation of `Fe`, against the p256 crate's field.
fn field_check(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let theirs = |x: &[u8; 32]| -> Option<FieldElement> {
        Option::from(FieldElement::from_bytes(&FieldBytes::from(*x)))
    };
    let bytes = |x: FieldElement| -> [u8; 32] { x.to_bytes().into() };
    let (x, tx) = (Fe::from_bytes(a), theirs(a));
    let (y, ty) = (Fe::from_bytes(b), theirs(b));
    assert_eq!(x.is_some(), tx.is_some(), "from_bytes {a:02x?}");
    assert_eq!(y.is_some(), ty.is_some(), "from_bytes {b:02x?}");
    let (Some(x), Some(tx), Some(y), Some(ty)) = (x, tx, y, ty) else {
        return false;
    };
    let what = format!("a {a:02x?} b {b:02x?}");
    assert_eq!(x.to_bytes(), *a, "{what}");
    assert_eq!(x.add(&y).to_bytes(), bytes(tx.add(&ty)), "add {what}");
    assert_eq!(x.sub(&y).to_bytes(), bytes(tx.sub(&ty)), "sub {what}");
    assert_eq!(x.neg().to_bytes(), bytes(tx.neg()), "neg {what}");
    assert_eq!(x.double().to_bytes(), bytes(tx.double()), "double {what}");
    assert_eq!(x.mul(&y).to_bytes(), bytes(tx.multiply(&ty)), "mul {what}");
    assert_eq!(x.square().to_bytes(), bytes(tx.square()), "square {what}");
    for k in [3u32, 4, 8] {
        let tk = FieldElement::from_u64(u64::from(k));
        assert_eq!(
            x.mul_small(k).to_bytes(),
            bytes(tx.multiply(&tk)),
            "×{k} {what}"
        );
    }
    assert_eq!(x.is_zero(), bool::from(tx.is_zero()), "{what}");
    assert_eq!(x == y, tx == ty, "{what}");
    true
}

fn field_run(pairs: usize, seed: u64) -> usize {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..pairs)
        .filter(|_| field_check(&field_value(&mut rng), &field_value(&mut rng)))
        .count()
}

#[test]
fn field_quick() {
    let checked = field_run(5000, 11);
    assert!(checked > 2000, "{checked}");
    // Inversion (the per-VM table's) on a few values, against the crate's.
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..20 {
        let a = field_value(&mut rng);
        let (Some(x), Some(tx)) = (
            Fe::from_bytes(&a),
            Option::<FieldElement>::from(FieldElement::from_bytes(&FieldBytes::from(a))),
        ) else {
            continue;
        };
        let inv: Option<FieldElement> = tx.invert().into();
        let want: [u8; 32] = inv.map_or([0; 32], |i| i.to_bytes().into());
        assert_eq!(x.invert().to_bytes(), want, "invert {a:02x?}");
    }
}

#[test]
fn p256_differential_quick() {
    let t = run(48, 4, 7);
    assert!(t.compared >= 48 * 4 * 5, "{t:?}");
    // Exactly the valid ones (low and high s, and low s with a new key) pass.
    assert_eq!(t.accepted, 48 * 4 * 3, "{t:?}");
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
    assert_eq!(t.accepted, keys * 5 * 3, "{t:?}");
    let field = field_run(keys * 50, seed);
    println!(
        "p256 differential: {keys} keys, {} comparisons, {} accepted, all equal; field: {} pairs of elements through every operation ({:.1} s, seed {seed})",
        t.compared,
        t.accepted,
        field,
        started.elapsed().as_secs_f64()
    );
}
