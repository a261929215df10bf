//! ES256 verification against the p256 crate's own verifier (the reference): for two fixed
//! keys, fuzzed signatures and messages must get the same accept/reject from
//! `signature::verify` (src/crypto/p256.rs) as from the crate. So that the fuzzer reaches
//! valid signatures and their near misses, a set top bit of the first byte has the target sign
//! the message itself and XOR the 64 bytes that follow into the signature (all zero: valid).
//! Input: [mode·key selector][64 signature or mask bytes][message…].
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::keys::jwks::PublicKey;
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::token::signature::verify;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::signature::DigestVerifier;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

fn key(i: u8) -> SigningKey {
    let mut secret = [0x5au8; 32];
    secret[0] = 0x01;
    secret[31] = i;
    SigningKey::from_bytes(&secret.into()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if rest.len() < 64 {
        return;
    }
    let (sig_bytes, message) = rest.split_at(64);
    let sk = key(mode & 1);
    let vk = *sk.verifying_key();
    let mut signature = sig_bytes.to_vec();
    if mode & 0x80 != 0 {
        let sig: Signature = sk.sign_prehash(&Sha256::digest(message)).unwrap();
        for (s, m) in signature.iter_mut().zip(sig.to_bytes().iter()) {
            *s ^= m;
        }
    }
    let ours = verify(Alg::Es256, &PublicKey::P256(Arc::new(vk.into())), message, &signature);
    let theirs = match Signature::from_slice(&signature) {
        Ok(sig) => vk.verify_digest(Sha256::new_with_prefix(message), &sig).is_ok(),
        Err(_) => false,
    };
    assert_eq!(ours, theirs, "signature {signature:02x?} message {message:02x?}");
});
