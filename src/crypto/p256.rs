//! ES256 verification (ECDSA over P-256, SHA-256), in variable time: every input of a
//! verification is public, so nothing here needs to hide its timing.
//!
//! The p256 crate's own `verify` computes `u1·G + u2·Q` as two separate constant-time
//! multiplications with complete formulas (about 512 doublings and 128 additions, each window
//! chosen by a scan of the whole table) and then an inversion for `x(R)`. Here:
//!
//! - each scalar cut into four 64-bit pieces, `u = Σ u_j·2^(64j)`, and one interleaved pass of
//!   64 doublings over the width-w NAF digits of all eight pieces (`p256_table.rs`), each
//!   nonzero digit a mixed addition of an affine odd multiple of `2^(64j)·G` or `2^(64j)·Q`;
//! - the tables of G (w = 8: 4 × 64 points, 16 KiB) built once per VM; the key's (w = 7:
//!   4 × 32 points, 8 KiB) built at its first verification and kept in its [`P256Key`];
//! - Jacobian coordinates, with the doubling for a = −3 (3M + 5S; `p256_point.rs`);
//! - `s⁻¹ mod n` by a binary extended Euclidean algorithm on 64-bit limbs (variable time);
//! - `x(R) mod n = r` checked without an inversion: `X = r·Z²`, or `X = (r+n)·Z²` when
//!   `r + n < p`.
//!
//! The field arithmetic is `p256_field.rs` (32-bit limbs, Solinas reduction: the p256
//! crate's field multiplies with u128, which wasm32 emulates by a call per product); the
//! p256 crate still parses keys and signatures and does the two scalar multiplications mod n.
//! Differential tests against the crate's own verifier: `tests/p256_differential.rs`
//! (`make p256-diff` for the long run) and the `p256` fuzz target; for the field, the
//! `p256_field` fuzz target and the field tests there and in `p256_field.rs`.

use std::fmt;
use std::sync::OnceLock;

use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{FieldBytes, Scalar, U256};
use sha2::{Digest, Sha256};

use crate::p256_field::Fe;
use crate::p256_point::{Affine, Jacobian, ORDER};
use crate::p256_table::{g_tables, split_naf, Tables, DIGITS, G_WINDOW};

/// NAF width for a key: `PIECES` tables of 2^(w−2) = 32 affine points, 8 KiB per key.
const Q_WINDOW: u32 = 7;

/// An ES256 public key: the p256 crate's `VerifyingKey` (which parsed it and checked that it
/// is on the curve) and its fixed-base tables (`p256_table.rs`), built at the key's first
/// verification and kept for the next ones. Equality is the point's.
pub struct P256Key {
    key: VerifyingKey,
    tables: OnceLock<Option<Tables>>,
    /// The key as DER `SubjectPublicKeyInfo` (for a host that checks signatures itself).
    spki: Vec<u8>,
}

impl P256Key {
    pub fn new(key: VerifyingKey) -> P256Key {
        let point = key.as_affine().to_encoded_point(false);
        let spki = match (point.x(), point.y()) {
            (Some(x), Some(y)) => crate::der::p256_spki_der(&(*x).into(), &(*y).into()),
            _ => Vec::new(), // the identity: never a VerifyingKey
        };
        P256Key {
            key,
            tables: OnceLock::new(),
            spki,
        }
    }

    /// The key as DER `SubjectPublicKeyInfo` (`src/crypto/der.rs`).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key's tables, built at the first call (`None` only for a point the tables cannot
    /// hold, which a `VerifyingKey` never is).
    fn tables(&self) -> Option<&Tables> {
        self.tables
            .get_or_init(|| {
                let point = self.key.as_affine().to_encoded_point(false);
                let q = Affine {
                    x: Fe::from_bytes(&<[u8; 32]>::from(*point.x()?))?,
                    y: Fe::from_bytes(&<[u8; 32]>::from(*point.y()?))?,
                };
                Tables::new(&q, Q_WINDOW)
            })
            .as_ref()
    }
}

impl From<VerifyingKey> for P256Key {
    fn from(key: VerifyingKey) -> P256Key {
        P256Key::new(key)
    }
}

impl PartialEq for P256Key {
    fn eq(&self, other: &P256Key) -> bool {
        self.key == other.key
    }
}

impl Eq for P256Key {}

impl fmt::Debug for P256Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256Key")
            .field("key", &self.key)
            .field("tables", &self.tables.get().is_some())
            .finish()
    }
}

/// `s⁻¹ mod n` for `s` in `[1, n)` (big-endian), by the binary extended Euclidean algorithm
/// on 64-bit limbs (HAC 14.61 with the modulus n for one operand): the invariants are
/// `x1·s ≡ u` and `x2·s ≡ v (mod n)`, and gcd(u, v) = 1 throughout, so one of u and v reaches
/// 1. `None` for 0 (and, as a guard, were the loop ever to run past its bound).
fn invert_mod_n(s: &[u8; 32]) -> Option<[u8; 32]> {
    let n = limbs64(&ORDER);
    let mut u = limbs64(s);
    if u == [0; 4] || !less(&u, &n) {
        return None;
    }
    let mut v = n;
    let mut x1 = [1u64, 0, 0, 0];
    let mut x2 = [0u64; 4];
    // Each round shifts u or v right at least once and subtracts once: 2·256 rounds at most.
    for _ in 0..1024 {
        if u == [1, 0, 0, 0] {
            return Some(be_bytes64(&x1));
        }
        if v == [1, 0, 0, 0] {
            return Some(be_bytes64(&x2));
        }
        while u[0] & 1 == 0 {
            shr1(&mut u, false);
            halve_mod(&mut x1, &n);
        }
        while v[0] & 1 == 0 {
            shr1(&mut v, false);
            halve_mod(&mut x2, &n);
        }
        if less(&u, &v) {
            sub_in_place(&mut v, &u);
            sub_mod(&mut x2, &x1, &n);
        } else {
            sub_in_place(&mut u, &v);
            sub_mod(&mut x1, &x2, &n);
        }
    }
    None
}

/// Little-endian 64-bit limbs of a 256-bit big-endian number.
fn limbs64(bytes: &[u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(bytes.rchunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
    }
    out
}

fn be_bytes64(limbs: &[u64; 4]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, limb) in out.rchunks_exact_mut(8).zip(limbs) {
        chunk.copy_from_slice(&limb.to_be_bytes());
    }
    out
}

fn less(a: &[u64; 4], b: &[u64; 4]) -> bool {
    a.iter().rev().lt(b.iter().rev())
}

/// `a −= b`, returning the borrow out.
fn sub_in_place(a: &mut [u64; 4], b: &[u64; 4]) -> bool {
    let mut borrow = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(*y);
        let (d, b2) = d.overflowing_sub(u64::from(borrow));
        *x = d;
        borrow = b1 || b2;
    }
    borrow
}

/// `a += b`, returning the carry out.
fn add_in_place(a: &mut [u64; 4], b: &[u64; 4]) -> bool {
    let mut carry = false;
    for (x, y) in a.iter_mut().zip(b) {
        let (d, c1) = x.overflowing_add(*y);
        let (d, c2) = d.overflowing_add(u64::from(carry));
        *x = d;
        carry = c1 || c2;
    }
    carry
}

/// `a >>= 1`, with `top` shifted in as bit 255.
fn shr1(a: &mut [u64; 4], top: bool) {
    let mut high = u64::from(top);
    for limb in a.iter_mut().rev() {
        let low = *limb & 1;
        *limb = (*limb >> 1) | (high << 63);
        high = low;
    }
}

/// `x·2⁻¹ mod n` for `x` in `[0, n)`: `x/2`, or `(x + n)/2` for an odd `x` (n is odd).
fn halve_mod(x: &mut [u64; 4], n: &[u64; 4]) {
    let carry = if x[0] & 1 == 1 {
        add_in_place(x, n)
    } else {
        false
    };
    shr1(x, carry);
}

/// `a = a − b mod n` for `a`, `b` in `[0, n)`.
fn sub_mod(a: &mut [u64; 4], b: &[u64; 4], n: &[u64; 4]) {
    if sub_in_place(a, b) {
        add_in_place(a, n);
    }
}

/// `a + b` for 256-bit big-endian numbers, `None` when it does not fit in 256 bits.
fn add_be(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut carry = 0u16;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b).rev() {
        let s = u16::from(*x) + u16::from(*y) + carry;
        *o = (s & 0xff) as u8;
        carry = s >> 8;
    }
    (carry == 0).then_some(out)
}

/// Whether `signature` (raw `r || s`, 64 bytes) is a valid ES256 signature of `message` by
/// `key`. Zero or out-of-range `r`/`s` are refused; high `s` is accepted, as by the p256 crate
/// and RFC 7518 (ECDSA signatures are malleable; a token's signature is not its identity).
pub fn verify(key: &P256Key, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    let digest: FieldBytes = Sha256::digest(message);
    verify_prehash(key, &digest, &sig).unwrap_or(false)
}

fn verify_prehash(key: &P256Key, digest: &FieldBytes, sig: &Signature) -> Option<bool> {
    let (r, s) = sig.split_scalars();
    let z = <Scalar as Reduce<U256>>::reduce_bytes(digest);
    let s_inv = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(invert_mod_n(
        &s.to_bytes().into(),
    )?));
    let u1 = z * s_inv;
    let u2 = *r * s_inv;
    let acc = mul_add(&u1.to_bytes().into(), key.tables()?, &u2.to_bytes().into())?;
    if acc.is_infinity() {
        return Some(false);
    }
    // x(R) = X/Z² is in [0, p) and p < 2n, so x(R) mod n = r means x(R) = r or r + n.
    let zz = acc.z.square();
    let r_bytes: [u8; 32] = r.to_bytes().into();
    if Fe::from_bytes(&r_bytes)?.mul(&zz) == acc.x {
        return Some(true);
    }
    Some(
        add_be(&r_bytes, &ORDER)
            .and_then(|rn| Fe::from_bytes(&rn))
            .is_some_and(|rn| rn.mul(&zz) == acc.x),
    )
}

/// `u1·G + u2·Q` for `Q` the point of `q_tables`: one pass of `PIECE_BITS` doublings over the
/// NAF digits of the pieces of both scalars (`p256_table.rs`), each nonzero digit a mixed
/// addition of a table point.
fn mul_add(u1: &[u8; 32], q_tables: &Tables, u2: &[u8; 32]) -> Option<Jacobian> {
    let g_tables = g_tables()?;
    let n1 = split_naf(u1, G_WINDOW);
    let n2 = split_naf(u2, Q_WINDOW);
    let mut acc = Jacobian::INFINITY;
    for i in (0..DIGITS).rev() {
        if !acc.is_infinity() {
            acc = acc.double();
        }
        for (j, (d1, d2)) in n1.iter().zip(&n2).enumerate() {
            let d = *d1.get(i)?;
            if d != 0 {
                acc = acc.add_affine(g_tables.get(j, d)?, d < 0);
            }
            let d = *d2.get(i)?;
            if d != 0 {
                acc = acc.add_affine(q_tables.get(j, d)?, d < 0);
            }
        }
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p256_point::{GX, GY};
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::signature::DigestVerifier;
    use p256::ecdsa::SigningKey;

    fn reference(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
        match Signature::from_slice(signature) {
            Ok(sig) => key
                .verify_digest(Sha256::new_with_prefix(message), &sig)
                .is_ok(),
            Err(_) => false,
        }
    }

    fn key(seed: u8) -> SigningKey {
        let mut bytes = [seed; 32];
        bytes[0] = 0x11;
        SigningKey::from_bytes(&FieldBytes::from(bytes)).unwrap()
    }

    #[test]
    fn agrees_with_the_p256_crate_on_valid_and_altered_signatures() {
        for seed in 1..=12u8 {
            let sk = key(seed);
            let vk = *sk.verifying_key();
            // One key for all the messages (its tables built once), and a fresh one each time.
            let pk = P256Key::new(vk);
            for m in 0..8u8 {
                let message = vec![m; usize::from(m) * 7 + 1];
                let digest = Sha256::digest(&message);
                let sig: Signature = sk.sign_prehash(&digest).unwrap();
                let good = sig.to_bytes().to_vec();
                assert!(verify(&pk, &message, &good), "seed {seed} message {m}");
                assert!(verify(&P256Key::new(vk), &message, &good));
                // s → n − s is also valid.
                let high = Signature::from_scalars(sig.r(), -*sig.s())
                    .unwrap()
                    .to_bytes();
                assert_eq!(
                    verify(&pk, &message, &high),
                    reference(&vk, &message, &high)
                );
                assert!(verify(&pk, &message, &high));
                for flip in [0usize, 31, 32, 63] {
                    let mut bad = good.clone();
                    bad[flip] ^= 0x40;
                    assert_eq!(
                        verify(&pk, &message, &bad),
                        reference(&vk, &message, &bad),
                        "flip {flip}"
                    );
                    assert!(!verify(&pk, &message, &bad));
                }
                let other = P256Key::new(*key(seed.wrapping_add(100)).verifying_key());
                assert!(!verify(&other, &message, &good));
                assert!(!verify(&pk, b"other message", &good));
                // The same key again gives the same answers.
                assert!(verify(&pk, &message, &good));
            }
        }
    }

    #[test]
    fn key_tables_hold_odd_multiples_of_shifted_q() {
        for seed in [1u8, 7, 200] {
            let vk = *key(seed).verifying_key();
            let pk = P256Key::new(vk);
            assert!(format!("{pk:?}").contains("tables: false"));
            let tables = pk.tables().unwrap();
            assert!(format!("{pk:?}").contains("tables: true"));
            let point = vk.as_affine().to_encoded_point(false);
            let q = Affine {
                x: Fe::from_bytes(&<[u8; 32]>::from(*point.x().unwrap())).unwrap(),
                y: Fe::from_bytes(&<[u8; 32]>::from(*point.y().unwrap())).unwrap(),
            };
            crate::p256_table::tests::check_tables(tables, &q, Q_WINDOW);
            // Built once: the second call returns the same tables.
            assert!(std::ptr::eq(tables, pk.tables().unwrap()));
            assert_eq!(pk, P256Key::from(vk));
        }
    }

    /// `u1·G + u2·Q` by the p256 crate, affine (x, y), `None` at infinity.
    fn theirs(u1: &Scalar, q: &VerifyingKey, u2: &Scalar) -> Option<([u8; 32], [u8; 32])> {
        let r = p256::ProjectivePoint::GENERATOR * u1
            + p256::ProjectivePoint::from(*q.as_affine()) * u2;
        let e = r.to_affine().to_encoded_point(false);
        Some(((*e.x()?).into(), (*e.y()?).into()))
    }

    fn scalar(bytes: &[u8; 32]) -> Scalar {
        <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*bytes))
    }

    #[test]
    fn the_split_pass_agrees_with_the_p256_crate_on_edge_scalars() {
        let mut n_minus_1 = ORDER;
        n_minus_1[31] -= 1;
        let one_at = |byte: usize, v: u8| {
            let mut b = [0u8; 32];
            b[byte] = v;
            b
        };
        // 0, 1, n − 1, a lone bit at each piece's bottom and top, pieces that are zero or all
        // ones, and a few others.
        let mut edges = vec![[0u8; 32], one_at(31, 1), n_minus_1, one_at(0, 0x80), GX, GY];
        for byte in [7usize, 8, 15, 16, 23, 24] {
            edges.push(one_at(byte, 1));
            edges.push(one_at(byte, 0x80));
        }
        for zero in 0..4 {
            let mut b = [0xffu8; 32];
            b[0] = 0x7f;
            b[zero * 8..zero * 8 + 8].fill(0);
            edges.push(b);
        }
        let mut half = [0u8; 32];
        half[16..].fill(0xff);
        edges.push(half);
        for seed in [2u8, 9] {
            let vk = *key(seed).verifying_key();
            let pk = P256Key::new(vk);
            let tables = pk.tables().unwrap();
            for a in &edges {
                for b in &edges {
                    let ours = mul_add(a, tables, b).unwrap();
                    let want = theirs(&scalar(a), &vk, &scalar(b));
                    let got = if ours.is_infinity() {
                        None
                    } else {
                        let zinv = ours.z.invert();
                        let zinv2 = zinv.square();
                        Some((
                            ours.x.mul(&zinv2).to_bytes(),
                            ours.y.mul(&zinv2.mul(&zinv)).to_bytes(),
                        ))
                    };
                    assert_eq!(got, want, "u1 {a:02x?} u2 {b:02x?}");
                }
            }
        }
        // u1·G + u2·Q = infinity for Q = G and u2 = n − u1.
        let g = P256Key::new(VerifyingKey::from_affine(p256::AffinePoint::GENERATOR).unwrap());
        let minus = |a: &[u8; 32]| -> [u8; 32] { (-scalar(a)).to_bytes().into() };
        for a in edges.iter().filter(|a| **a != [0u8; 32]) {
            assert!(mul_add(a, g.tables().unwrap(), &minus(a))
                .unwrap()
                .is_infinity());
            // u·G + u·G = 2u·G: the pass meets equal points.
            let two: [u8; 32] = (scalar(a) + scalar(a)).to_bytes().into();
            let sum = mul_add(a, g.tables().unwrap(), a).unwrap();
            let want = mul_add(&two, g.tables().unwrap(), &[0u8; 32]).unwrap();
            let (zz, wz) = (sum.z.square(), want.z.square());
            assert_eq!(sum.x.mul(&wz), want.x.mul(&zz));
        }
    }

    /// One-time and per-verify cost, natively: `cargo test --release -p mcp-edge-auth-crypto
    /// -- --ignored --nocapture first_verify_cost`.
    #[test]
    #[ignore = "timing: run by hand"]
    fn first_verify_cost() {
        use std::time::Instant;
        let sk = key(5);
        let vk = *sk.verifying_key();
        let message = b"header.payload";
        let sig: Signature = sk.sign_prehash(&Sha256::digest(message)).unwrap();
        let sig = sig.to_bytes();
        assert!(verify(&P256Key::new(vk), message, &sig)); // G tables, warm-up
        let started = Instant::now();
        let count = 200;
        for _ in 0..count {
            let pk = P256Key::new(vk);
            std::hint::black_box(pk.tables());
        }
        let build = started.elapsed().as_secs_f64() * 1e6 / f64::from(count);
        let pk = P256Key::new(vk);
        assert!(verify(&pk, message, &sig));
        let started = Instant::now();
        for _ in 0..count {
            assert!(verify(&pk, message, &sig));
        }
        let each = started.elapsed().as_secs_f64() * 1e6 / f64::from(count);
        let started = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(Tables::new(&Affine::generator().unwrap(), G_WINDOW));
        }
        let g = started.elapsed().as_secs_f64() * 1e6 / 20.0;
        // Before the split: 32 odd multiples of G, one inversion each.
        let started = Instant::now();
        for _ in 0..20 {
            let mut points = Vec::new();
            let g = Jacobian::from_affine(&Affine::generator().unwrap());
            crate::p256_point::odd_multiples(&g, 7, &mut points);
            let affine: Vec<_> = points.into_iter().map(Jacobian::to_affine).collect();
            std::hint::black_box(affine);
        }
        let before = started.elapsed().as_secs_f64() * 1e6 / 20.0;
        println!(
            "key tables {build:.1} µs per key, G tables {g:.1} µs per VM (before the split: \
             {before:.1}), verify {each:.1} µs"
        );
    }

    #[test]
    fn scalar_inversion_agrees_with_the_p256_crate() {
        use p256::elliptic_curve::ops::Invert;
        let n_minus = |k: u8| {
            let mut b = ORDER;
            b[31] -= k;
            b
        };
        let mut inputs = vec![n_minus(1), n_minus(2), [0xab; 32], GX, GY];
        for k in [1u8, 2, 3, 0xff] {
            let mut b = [0u8; 32];
            b[31] = k;
            inputs.push(b);
        }
        let mut top = [0u8; 32];
        top[0] = 0x80;
        inputs.push(top);
        let mut x = Scalar::from(0x1234_5678_9abc_def1u64);
        for _ in 0..200 {
            x = x * x + Scalar::from(3u64);
            inputs.push(x.to_bytes().into());
        }
        for b in &inputs {
            let s = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(*b));
            let theirs: Scalar = Option::from(s.invert_vartime()).unwrap();
            let theirs: [u8; 32] = theirs.to_bytes().into();
            assert_eq!(invert_mod_n(b), Some(theirs), "{b:02x?}");
        }
        assert_eq!(invert_mod_n(&[0; 32]), None);
        assert_eq!(invert_mod_n(&ORDER), None);
        assert_eq!(invert_mod_n(&[0xff; 32]), None);
    }

    #[test]
    fn malformed_signatures_are_refused() {
        let vk = P256Key::new(*key(3).verifying_key());
        assert!(!verify(&vk, b"m", &[]));
        assert!(!verify(&vk, b"m", &[1u8; 63]));
        assert!(!verify(&vk, b"m", &[0u8; 64]));
        let mut n_as_r = [1u8; 64];
        n_as_r[..32].copy_from_slice(&ORDER);
        assert!(!verify(&vk, b"m", &n_as_r));
        assert!(!verify(&vk, b"m", &[0xffu8; 64]));
    }
}
