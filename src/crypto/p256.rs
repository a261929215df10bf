//! ES256 verification (ECDSA over P-256, SHA-256), in variable time: every input of a
//! verification is public, so nothing here needs to hide its timing.
//!
//! The p256 crate's own `verify` computes `u1·G + u2·Q` as two separate constant-time
//! multiplications with complete formulas (about 512 doublings and 128 additions, each window
//! chosen by a scan of the whole table) and then an inversion for `x(R)`. Here:
//!
//! - one interleaved pass over both scalars (Shamir's trick): 256 doublings shared by both,
//!   additions only at the nonzero digits of width-w NAF recodings (w = 7 for `G`, 5 for `Q`);
//! - Jacobian coordinates, with the doubling for a = −3 (3M + 5S);
//! - the odd multiples of `G` in affine form, computed once per VM (mixed additions; 32
//!   points of 64 bytes: 2 KiB per VM);
//! - the odd multiples of `Q` with their Z² and Z³, so that each addition of one saves a
//!   square and a multiplication;
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

use std::sync::OnceLock;

use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{FieldBytes, Scalar, U256};
use sha2::{Digest, Sha256};

use crate::p256_field::Fe;

/// NAF width for `G` (a table of 2^(w−2) = 32 affine points, built once).
const G_WINDOW: u32 = 7;
/// NAF width for the key `Q` (8 Jacobian points, built per verification).
const Q_WINDOW: u32 = 5;

/// The group order n, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The generator's coordinates, big-endian (SEC 2).
const GX: [u8; 32] = [
    0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2,
    0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
];
const GY: [u8; 32] = [
    0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16,
    0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
];

/// A point in Jacobian coordinates: (X/Z², Y/Z²); `Z = 0` is the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
}

/// A point in Jacobian coordinates with its Z² and Z³, for repeated additions of it.
#[derive(Clone, Copy, Debug)]
struct Cached {
    p: Jacobian,
    zz: Fe,
    zzz: Fe,
}

impl Cached {
    fn new(p: &Jacobian) -> Cached {
        let zz = p.z.square();
        Cached {
            p: *p,
            zz,
            zzz: zz.mul(&p.z),
        }
    }
}

/// A finite point in affine coordinates.
#[derive(Clone, Copy, Debug)]
struct Affine {
    x: Fe,
    y: Fe,
}

impl Jacobian {
    const INFINITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
    };

    fn from_affine(p: &Affine) -> Jacobian {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Fe::ONE,
        }
    }

    fn is_infinity(&self) -> bool {
        self.z.is_zero()
    }

    /// 2·P for a = −3 ("dbl-2001-b"). Infinity doubles to infinity (Z stays 0); P-256 has
    /// no point of order 2, so Y = 0 never occurs on a finite point.
    fn double(&self) -> Jacobian {
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.mul_small(3);
        let beta4 = beta.mul_small(4);
        let x = alpha.square().sub(&beta.mul_small(8));
        let z = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let gamma2_8 = gamma.square().mul_small(8);
        let y = alpha.mul(&beta4.sub(&x)).sub(&gamma2_8);
        Jacobian { x, y, z }
    }

    /// P + Q (or P − Q when `negate`) for a Q with its Z² and Z³ at hand: "add-2007-bl"
    /// less the square and the multiplication that give them.
    fn add_cached(&self, q: &Cached, negate: bool) -> Jacobian {
        let qy = if negate { q.p.y.neg() } else { q.p.y };
        if self.is_infinity() {
            return Jacobian { y: qy, ..q.p };
        }
        if q.p.is_infinity() {
            return *self;
        }
        let z1z1 = self.z.square();
        let u1 = self.x.mul(&q.zz);
        let u2 = q.p.x.mul(&z1z1);
        let s1 = self.y.mul(&q.zzz);
        let s2 = qy.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&u1);
        let r = s2.sub(&s1);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let i = h.double().square();
        let j = h.mul(&i);
        let r = r.double();
        let v = u1.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&s1.mul(&j).double());
        let z = self.z.add(&q.p.z).square().sub(&z1z1).sub(&q.zz).mul(&h);
        Jacobian { x, y, z }
    }

    /// P + Q for an affine Q, negated first when `negate` ("madd-2007-bl").
    fn add_affine(&self, q: &Affine, negate: bool) -> Jacobian {
        let qy = if negate { q.y.neg() } else { q.y };
        if self.is_infinity() {
            return Jacobian {
                x: q.x,
                y: qy,
                z: Fe::ONE,
            };
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = qy.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let r = s2.sub(&self.y);
        if h.is_zero() {
            return if r.is_zero() {
                self.double()
            } else {
                Jacobian::INFINITY
            };
        }
        let hh = h.square();
        let i = hh.mul_small(4);
        let j = h.mul(&i);
        let r = r.double();
        let v = self.x.mul(&i);
        let x = r.square().sub(&j).sub(&v.double());
        let y = r.mul(&v.sub(&x)).sub(&self.y.mul(&j).double());
        let z = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        Jacobian { x, y, z }
    }

    /// The affine form of a finite point (one inversion).
    fn to_affine(self) -> Option<Affine> {
        if self.z.is_zero() {
            return None;
        }
        let zinv = self.z.invert();
        let zinv2 = zinv.square();
        Some(Affine {
            x: self.x.mul(&zinv2),
            y: self.y.mul(&zinv2.mul(&zinv)),
        })
    }
}

/// P, 3P, 5P, …, (2^(w−1) − 1)P.
fn odd_multiples(p: &Jacobian, w: u32) -> Vec<Jacobian> {
    let count = 1usize << (w - 2);
    let twice = Cached::new(&p.double());
    let mut out = Vec::with_capacity(count);
    let mut last = *p;
    out.push(last);
    for _ in 1..count {
        last = last.add_cached(&twice, false);
        out.push(last);
    }
    out
}

fn fe(bytes: &[u8; 32]) -> Option<Fe> {
    Fe::from_bytes(bytes)
}

/// The odd multiples of `G` in affine form, made at the first ES256 verification of a VM.
fn g_table() -> Option<&'static [Affine]> {
    static TABLE: OnceLock<Option<Vec<Affine>>> = OnceLock::new();
    TABLE
        .get_or_init(|| {
            let g = Affine {
                x: fe(&GX)?,
                y: fe(&GY)?,
            };
            odd_multiples(&Jacobian::from_affine(&g), G_WINDOW)
                .into_iter()
                .map(Jacobian::to_affine)
                .collect()
        })
        .as_deref()
}

/// The width-`w` NAF of a 256-bit big-endian scalar, least significant digit first: odd
/// digits in (−2^(w−1), 2^(w−1)) or 0, at most one nonzero in any `w` consecutive.
fn naf(scalar: &[u8; 32], w: u32) -> [i8; 257] {
    // Little-endian 64-bit limbs with one spare limb for the carries of negative digits.
    let mut k = [0u64; 5];
    for (limb, chunk) in k.iter_mut().zip(scalar.rchunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
    }
    let mut out = [0i8; 257];
    let full = 1i64 << w;
    let half = 1i64 << (w - 1);
    for digit in out.iter_mut() {
        if k.iter().all(|&l| l == 0) {
            break;
        }
        if k[0] & 1 == 1 {
            let mut d = (k[0] & (full as u64 - 1)) as i64;
            if d >= half {
                d -= full;
            }
            *digit = d as i8;
            sub_digit(&mut k, d);
        }
        shift_right_one(&mut k);
    }
    out
}

/// `k −= d` for a small signed `d` (a negative one adds); `k ≥ d` whenever `d > 0`.
fn sub_digit(k: &mut [u64; 5], d: i64) {
    let mut carry = d.unsigned_abs();
    for limb in k.iter_mut() {
        let (r, c) = if d > 0 {
            limb.overflowing_sub(carry)
        } else {
            limb.overflowing_add(carry)
        };
        *limb = r;
        carry = u64::from(c);
        if carry == 0 {
            break;
        }
    }
}

fn shift_right_one(k: &mut [u64; 5]) {
    let mut high = 0u64;
    for limb in k.iter_mut().rev() {
        let low_bit = *limb & 1;
        *limb = (*limb >> 1) | (high << 63);
        high = low_bit;
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
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    let digest: FieldBytes = Sha256::digest(message);
    verify_prehash(key, &digest, &sig).unwrap_or(false)
}

fn verify_prehash(key: &VerifyingKey, digest: &FieldBytes, sig: &Signature) -> Option<bool> {
    let (r, s) = sig.split_scalars();
    let z = <Scalar as Reduce<U256>>::reduce_bytes(digest);
    let s_inv = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(invert_mod_n(
        &s.to_bytes().into(),
    )?));
    let u1 = z * s_inv;
    let u2 = *r * s_inv;

    let point = key.as_affine().to_encoded_point(false);
    let q = Affine {
        x: fe(&<[u8; 32]>::from(*point.x()?))?,
        y: fe(&<[u8; 32]>::from(*point.y()?))?,
    };
    let g_table = g_table()?;
    let q_table: Vec<Cached> = odd_multiples(&Jacobian::from_affine(&q), Q_WINDOW)
        .iter()
        .map(Cached::new)
        .collect();

    let n1 = naf(&u1.to_bytes().into(), G_WINDOW);
    let n2 = naf(&u2.to_bytes().into(), Q_WINDOW);
    let top = n1.iter().zip(&n2).rposition(|(a, b)| *a != 0 || *b != 0)?;
    let mut acc = Jacobian::INFINITY;
    for (d1, d2) in n1.iter().zip(&n2).take(top + 1).rev() {
        acc = acc.double();
        if *d1 != 0 {
            let p = g_table.get(usize::from(d1.unsigned_abs() / 2))?;
            acc = acc.add_affine(p, *d1 < 0);
        }
        if *d2 != 0 {
            let p = q_table.get(usize::from(d2.unsigned_abs() / 2))?;
            acc = acc.add_cached(p, *d2 < 0);
        }
    }
    if acc.is_infinity() {
        return Some(false);
    }
    // x(R) = X/Z² is in [0, p) and p < 2n, so x(R) mod n = r means x(R) = r or r + n.
    let zz = acc.z.square();
    let r_bytes: [u8; 32] = r.to_bytes().into();
    if fe(&r_bytes)?.mul(&zz) == acc.x {
        return Some(true);
    }
    Some(
        add_be(&r_bytes, &ORDER)
            .and_then(|rn| fe(&rn))
            .is_some_and(|rn| rn.mul(&zz) == acc.x),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use p256::ecdsa::signature::DigestVerifier;
    use p256::ecdsa::SigningKey;

    /// Test-only operations on points.
    impl Jacobian {
        fn neg(&self) -> Jacobian {
            Jacobian {
                x: self.x,
                y: self.y.neg(),
                z: self.z,
            }
        }

        /// P + Q for any two points ("add-2007-bl", with the equal and opposite cases).
        fn add(&self, q: &Jacobian) -> Jacobian {
            self.add_cached(&Cached::new(q), false)
        }
    }

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
    fn naf_digits_add_up_to_the_scalar() {
        for w in [Q_WINDOW, G_WINDOW] {
            for bytes in [[0xffu8; 32], ORDER, GX, [0u8; 32], {
                let mut b = [0u8; 32];
                b[31] = 1;
                b
            }] {
                let digits = naf(&bytes, w);
                // Rebuild the value from the digits, most significant first: acc = 2·acc + d.
                let mut acc = [0u64; 5];
                for d in digits.iter().rev() {
                    shift_left_one(&mut acc);
                    sub_digit(&mut acc, -i64::from(*d));
                }
                let mut expect = [0u64; 5];
                for (limb, chunk) in expect.iter_mut().zip(bytes.rchunks_exact(8)) {
                    *limb = u64::from_be_bytes(chunk.try_into().unwrap());
                }
                assert_eq!(acc, expect, "w={w}");
                // At most one nonzero digit in any w consecutive ones, all odd and in range.
                for win in digits.windows(w as usize) {
                    assert!(win.iter().filter(|d| **d != 0).count() <= 1);
                }
                for d in digits.iter().filter(|d| **d != 0) {
                    assert!(d.rem_euclid(2) == 1 && i32::from(d.unsigned_abs()) < (1 << (w - 1)));
                }
            }
        }
    }

    fn shift_left_one(k: &mut [u64; 5]) {
        let mut carry = 0;
        for limb in k.iter_mut() {
            let top = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = top;
        }
    }

    #[test]
    fn the_generator_table_holds_odd_multiples_of_g() {
        let table = g_table().unwrap();
        assert_eq!(table.len(), 32);
        let g = Jacobian::from_affine(&table[0]);
        assert_eq!(table[0].x, fe(&GX).unwrap());
        // 3G = 2G + G, and 63G = 64G − G.
        let three = g.double().add(&g).to_affine().unwrap();
        assert_eq!((three.x, three.y), (table[1].x, table[1].y));
        let mut sixty_four = g;
        for _ in 0..6 {
            sixty_four = sixty_four.double();
        }
        let last = sixty_four.add(&g.neg()).to_affine().unwrap();
        assert_eq!((last.x, last.y), (table[31].x, table[31].y));
        // The p256 crate agrees on 63G.
        let theirs = (p256::ProjectivePoint::GENERATOR * Scalar::from(63u64))
            .to_affine()
            .to_encoded_point(false);
        assert_eq!(
            fe(&<[u8; 32]>::from(*theirs.x().unwrap())).unwrap(),
            table[31].x
        );
    }

    #[test]
    fn additions_handle_equal_opposite_and_infinite_points() {
        let g = Jacobian::from_affine(&g_table().unwrap()[0]);
        let ga = g.to_affine().unwrap();
        let doubled = g.double().to_affine().unwrap();
        let via_add = g.add(&g).to_affine().unwrap();
        assert_eq!((doubled.x, doubled.y), (via_add.x, via_add.y));
        let via_mixed = g.add_affine(&ga, false).to_affine().unwrap();
        assert_eq!((doubled.x, doubled.y), (via_mixed.x, via_mixed.y));
        assert!(g.add(&g.neg()).is_infinity());
        assert!(g.add_affine(&ga, true).is_infinity());
        assert!(Jacobian::INFINITY.double().is_infinity());
        let back = Jacobian::INFINITY.add(&g).to_affine().unwrap();
        assert_eq!(back.x, ga.x);
        let back = Jacobian::INFINITY
            .add_affine(&ga, true)
            .to_affine()
            .unwrap();
        assert_eq!((back.x, back.y), (ga.x, ga.y.neg()));
    }

    #[test]
    fn agrees_with_the_p256_crate_on_valid_and_altered_signatures() {
        for seed in 1..=12u8 {
            let sk = key(seed);
            let vk = *sk.verifying_key();
            for m in 0..8u8 {
                let message = vec![m; usize::from(m) * 7 + 1];
                let digest = Sha256::digest(&message);
                let sig: Signature = sk.sign_prehash(&digest).unwrap();
                let good = sig.to_bytes().to_vec();
                assert!(verify(&vk, &message, &good), "seed {seed} message {m}");
                // s → n − s is also valid.
                let high = Signature::from_scalars(sig.r(), -*sig.s())
                    .unwrap()
                    .to_bytes();
                assert_eq!(
                    verify(&vk, &message, &high),
                    reference(&vk, &message, &high)
                );
                assert!(verify(&vk, &message, &high));
                for flip in [0usize, 31, 32, 63] {
                    let mut bad = good.clone();
                    bad[flip] ^= 0x40;
                    assert_eq!(
                        verify(&vk, &message, &bad),
                        reference(&vk, &message, &bad),
                        "flip {flip}"
                    );
                    assert!(!verify(&vk, &message, &bad));
                }
                let other = key(seed.wrapping_add(100));
                assert!(!verify(other.verifying_key(), &message, &good));
                assert!(!verify(&vk, b"other message", &good));
            }
        }
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
        let vk = *key(3).verifying_key();
        assert!(!verify(&vk, b"m", &[]));
        assert!(!verify(&vk, b"m", &[1u8; 63]));
        assert!(!verify(&vk, b"m", &[0u8; 64]));
        let mut n_as_r = [1u8; 64];
        n_as_r[..32].copy_from_slice(&ORDER);
        assert!(!verify(&vk, b"m", &n_as_r));
        assert!(!verify(&vk, b"m", &[0xffu8; 64]));
    }
}
