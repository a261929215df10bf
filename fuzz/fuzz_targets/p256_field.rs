//! The P-256 field arithmetic of src/crypto/p256_field.rs against the p256 crate's
//! `FieldElement` (the reference): two 32-byte big-endian values must be accepted or refused
//! alike (below p or not) and, when both are elements, agree through every operation. The
//! same 64 bytes as one 512-bit number must reduce mod p alike.
//! Input: [32 bytes a][32 bytes b], the rest ignored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::crypto::p256_field::{reduce_wide, Fe};
use p256::{FieldBytes, FieldElement};

fn theirs(x: &[u8; 32]) -> Option<FieldElement> {
    Option::from(FieldElement::from_bytes(&FieldBytes::from(*x)))
}

fn bytes(x: FieldElement) -> [u8; 32] {
    x.to_bytes().into()
}

/// A 256-bit value brought below p by one subtraction at most (it is below 2^256 < 2p).
fn below_p(x: &[u8; 32]) -> FieldElement {
    theirs(x).unwrap_or_else(|| {
        let p = FieldElement::ZERO - FieldElement::ONE; // p − 1
        let mut diff = [0u8; 32];
        let p1: [u8; 32] = bytes(p);
        // x − (p − 1) − 1, byte by byte.
        let mut borrow = 1i16;
        for ((d, a), b) in diff.iter_mut().zip(x).zip(&p1).rev() {
            let v = i16::from(*a) - i16::from(*b) - borrow;
            *d = v.rem_euclid(256) as u8;
            borrow = i16::from(v < 0);
        }
        theirs(&diff).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 64 {
        return;
    }
    let a: [u8; 32] = data[..32].try_into().unwrap();
    let b: [u8; 32] = data[32..64].try_into().unwrap();

    // The 512-bit value a·2^256 + b, as little-endian 32-bit words.
    let mut wide = [0u64; 16];
    for (w, chunk) in wide.iter_mut().zip(data[..64].rchunks_exact(4)) {
        *w = u64::from(u32::from_be_bytes(chunk.try_into().unwrap()));
    }
    // 2^256 mod p = 2^224 − 2^192 − 2^96 + 1.
    let mut r = [0u8; 32];
    r[4..8].copy_from_slice(&[0xff, 0xff, 0xff, 0xfe]);
    r[8..20].copy_from_slice(&[0xff; 12]);
    r[31] = 1;
    let expect = below_p(&a).multiply(&theirs(&r).unwrap()).add(&below_p(&b));
    assert_eq!(
        reduce_wide(&wide).to_bytes(),
        bytes(expect),
        "reduce {data:02x?}"
    );

    let (x, tx) = (Fe::from_bytes(&a), theirs(&a));
    let (y, ty) = (Fe::from_bytes(&b), theirs(&b));
    assert_eq!(x.is_some(), tx.is_some());
    assert_eq!(y.is_some(), ty.is_some());
    let (Some(x), Some(tx), Some(y), Some(ty)) = (x, tx, y, ty) else {
        return;
    };
    assert_eq!(x.to_bytes(), a);
    assert_eq!(x.add(&y).to_bytes(), bytes(tx.add(&ty)));
    assert_eq!(x.sub(&y).to_bytes(), bytes(tx.sub(&ty)));
    assert_eq!(x.neg().to_bytes(), bytes(tx.neg()));
    assert_eq!(x.double().to_bytes(), bytes(tx.double()));
    assert_eq!(x.mul(&y).to_bytes(), bytes(tx.multiply(&ty)));
    assert_eq!(x.square().to_bytes(), bytes(tx.square()));
    for k in [3u32, 4, 8] {
        let tk = FieldElement::from_u64(u64::from(k));
        assert_eq!(x.mul_small(k).to_bytes(), bytes(tx.multiply(&tk)));
    }
    assert_eq!(x.is_zero(), bool::from(tx.is_zero()));
    assert_eq!(x == y, tx == ty);
});
