//! The P-256 base field, GF(p) with p = 2^256 − 2^224 + 2^192 + 2^96 − 1, for
//! `src/crypto/p256.rs`, written for wasm32: eight 32-bit limbs (wasm has a native
//! 64-bit multiply but no 64×64→128 one, which the p256 crate's field uses on every target
//! and wasm32 emulates with a call per product), schoolbook products with 64-bit carries,
//! and the special form of p for the reduction (Solinas: the upper half of a product is
//! folded back with word additions and subtractions, no multiplications).
//!
//! Elements are always fully reduced (in `[0, p)`), so equality and zero tests are word
//! comparisons. Variable time (every input of a verification is public). Differential
//! tests against the p256 crate's `FieldElement` below, in `tests/p256_differential.rs` and
//! in the `p256_field` fuzz target.

/// p, little-endian 32-bit words.
const P: [u32; 8] = [
    0xffff_ffff,
    0xffff_ffff,
    0xffff_ffff,
    0,
    0,
    0,
    1,
    0xffff_ffff,
];

/// An element of GF(p), fully reduced, little-endian 32-bit words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fe([u32; 8]);

impl Fe {
    pub const ZERO: Fe = Fe([0; 8]);
    pub const ONE: Fe = Fe([1, 0, 0, 0, 0, 0, 0, 0]);

    /// The element of a 32-byte big-endian encoding; `None` when it is not below p.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let mut w = [0u32; 8];
        for (limb, chunk) in w.iter_mut().zip(bytes.rchunks_exact(4)) {
            let mut b = [0u8; 4];
            b.copy_from_slice(chunk);
            *limb = u32::from_be_bytes(b);
        }
        (!at_least_p(&w)).then_some(Fe(w))
    }

    /// The 32-byte big-endian encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.rchunks_exact_mut(4).zip(&self.0) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 8]
    }

    #[inline(never)]
    pub fn add(&self, b: &Fe) -> Fe {
        let mut w = [0u32; 8];
        let mut carry = 0u64;
        for ((r, x), y) in w.iter_mut().zip(&self.0).zip(&b.0) {
            let v = u64::from(*x) + u64::from(*y) + carry;
            *r = v as u32;
            carry = v >> 32;
        }
        if carry != 0 || at_least_p(&w) {
            sub_p(&mut w);
        }
        Fe(w)
    }

    #[inline(never)]
    pub fn sub(&self, b: &Fe) -> Fe {
        let mut w = [0u32; 8];
        let mut borrow = 0i64;
        for ((r, x), y) in w.iter_mut().zip(&self.0).zip(&b.0) {
            let v = i64::from(*x) - i64::from(*y) + borrow;
            *r = v as u32;
            borrow = v >> 32;
        }
        if borrow != 0 {
            add_p(&mut w);
        }
        Fe(w)
    }

    pub fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    pub fn double(&self) -> Fe {
        self.add(self)
    }

    /// `k·self` for a small `k` (the doublings' 3, 4 and 8).
    #[inline(never)]
    pub fn mul_small(&self, k: u32) -> Fe {
        let mut w = [0i64; 8];
        for (r, x) in w.iter_mut().zip(&self.0) {
            *r = i64::from(*x) * i64::from(k);
        }
        fold(w)
    }

    #[inline(never)]
    pub fn mul(&self, b: &Fe) -> Fe {
        // Product scanning (column by column), each column's sum split into its low and
        // high 32-bit halves so that nothing overflows a u64.
        let a = self.0.map(u64::from);
        let b = b.0.map(u64::from);
        let mut t = [0u64; 16];
        let mut carry = 0u64;
        t[0] = column(&mut carry, [a[0] * b[0]]);
        t[1] = column(&mut carry, [a[0] * b[1], a[1] * b[0]]);
        t[2] = column(&mut carry, [a[0] * b[2], a[1] * b[1], a[2] * b[0]]);
        t[3] = column(
            &mut carry,
            [a[0] * b[3], a[1] * b[2], a[2] * b[1], a[3] * b[0]],
        );
        t[4] = column(
            &mut carry,
            [
                a[0] * b[4],
                a[1] * b[3],
                a[2] * b[2],
                a[3] * b[1],
                a[4] * b[0],
            ],
        );
        t[5] = column(
            &mut carry,
            [
                a[0] * b[5],
                a[1] * b[4],
                a[2] * b[3],
                a[3] * b[2],
                a[4] * b[1],
                a[5] * b[0],
            ],
        );
        t[6] = column(
            &mut carry,
            [
                a[0] * b[6],
                a[1] * b[5],
                a[2] * b[4],
                a[3] * b[3],
                a[4] * b[2],
                a[5] * b[1],
                a[6] * b[0],
            ],
        );
        t[7] = column(
            &mut carry,
            [
                a[0] * b[7],
                a[1] * b[6],
                a[2] * b[5],
                a[3] * b[4],
                a[4] * b[3],
                a[5] * b[2],
                a[6] * b[1],
                a[7] * b[0],
            ],
        );
        t[8] = column(
            &mut carry,
            [
                a[1] * b[7],
                a[2] * b[6],
                a[3] * b[5],
                a[4] * b[4],
                a[5] * b[3],
                a[6] * b[2],
                a[7] * b[1],
            ],
        );
        t[9] = column(
            &mut carry,
            [
                a[2] * b[7],
                a[3] * b[6],
                a[4] * b[5],
                a[5] * b[4],
                a[6] * b[3],
                a[7] * b[2],
            ],
        );
        t[10] = column(
            &mut carry,
            [
                a[3] * b[7],
                a[4] * b[6],
                a[5] * b[5],
                a[6] * b[4],
                a[7] * b[3],
            ],
        );
        t[11] = column(
            &mut carry,
            [a[4] * b[7], a[5] * b[6], a[6] * b[5], a[7] * b[4]],
        );
        t[12] = column(&mut carry, [a[5] * b[7], a[6] * b[6], a[7] * b[5]]);
        t[13] = column(&mut carry, [a[6] * b[7], a[7] * b[6]]);
        t[14] = column(&mut carry, [a[7] * b[7]]);
        t[15] = carry;
        reduce_wide(&t)
    }

    #[inline(never)]
    pub fn square(&self) -> Fe {
        // As `mul`, with each product a_i·a_j (i ≠ j) computed once and counted twice.
        let a = self.0.map(u64::from);
        let mut t = [0u64; 16];
        let mut carry = 0u64;
        t[0] = square_column(&mut carry, [], a[0] * a[0]);
        t[1] = square_column(&mut carry, [a[0] * a[1]], 0);
        t[2] = square_column(&mut carry, [a[0] * a[2]], a[1] * a[1]);
        t[3] = square_column(&mut carry, [a[0] * a[3], a[1] * a[2]], 0);
        t[4] = square_column(&mut carry, [a[0] * a[4], a[1] * a[3]], a[2] * a[2]);
        t[5] = square_column(&mut carry, [a[0] * a[5], a[1] * a[4], a[2] * a[3]], 0);
        t[6] = square_column(
            &mut carry,
            [a[0] * a[6], a[1] * a[5], a[2] * a[4]],
            a[3] * a[3],
        );
        t[7] = square_column(
            &mut carry,
            [a[0] * a[7], a[1] * a[6], a[2] * a[5], a[3] * a[4]],
            0,
        );
        t[8] = square_column(
            &mut carry,
            [a[1] * a[7], a[2] * a[6], a[3] * a[5]],
            a[4] * a[4],
        );
        t[9] = square_column(&mut carry, [a[2] * a[7], a[3] * a[6], a[4] * a[5]], 0);
        t[10] = square_column(&mut carry, [a[3] * a[7], a[4] * a[6]], a[5] * a[5]);
        t[11] = square_column(&mut carry, [a[4] * a[7], a[5] * a[6]], 0);
        t[12] = square_column(&mut carry, [a[5] * a[7]], a[6] * a[6]);
        t[13] = square_column(&mut carry, [a[6] * a[7]], 0);
        t[14] = square_column(&mut carry, [], a[7] * a[7]);
        t[15] = carry;
        reduce_wide(&t)
    }

    /// `self^(p−2)`, the inverse of a nonzero element (zero for zero). Square-and-multiply
    /// over the bits of p − 2: for the per-VM table, not per verification.
    pub fn invert(&self) -> Fe {
        let mut e = P;
        e[0] -= 2;
        let mut acc = Fe::ONE;
        for limb in e.iter().rev() {
            for bit in (0..32).rev() {
                acc = acc.square();
                if (limb >> bit) & 1 == 1 {
                    acc = acc.mul(self);
                }
            }
        }
        acc
    }
}

/// One column of a product: the 32-bit word `Σ products + carry mod 2^32`, with the carry
/// into the next column left in `carry`. Sums of the low and the high halves are kept apart
/// (each at most 8·2^32 plus the carry), so nothing overflows.
#[inline(always)]
fn column<const N: usize>(carry: &mut u64, products: [u64; N]) -> u64 {
    let mut lo = *carry & 0xffff_ffff;
    let mut hi = *carry >> 32;
    for p in products {
        lo += p & 0xffff_ffff;
        hi += p >> 32;
    }
    *carry = hi + (lo >> 32);
    lo & 0xffff_ffff
}

/// A column of a square: the products off the diagonal twice, the square on it once.
#[inline(always)]
fn square_column<const N: usize>(carry: &mut u64, products: [u64; N], diagonal: u64) -> u64 {
    let mut lo = 0u64;
    let mut hi = 0u64;
    for p in products {
        lo += p & 0xffff_ffff;
        hi += p >> 32;
    }
    lo = 2 * lo + (diagonal & 0xffff_ffff) + (*carry & 0xffff_ffff);
    hi = 2 * hi + (diagonal >> 32) + (*carry >> 32);
    *carry = hi + (lo >> 32);
    lo & 0xffff_ffff
}

/// `x mod p` for a 512-bit `x` (little-endian 32-bit words, each in a u64; higher bits are
/// ignored): the Solinas reduction for P-256. With
/// `c_i` the words of `x`, x ≡ s1 + 2·s2 + 2·s3 + s4 + s5 − s6 − s7 − s8 − s9 (mod p), each
/// `s` a 256-bit number made of words of `x` (FIPS 186-4, D.2.3); below, word by word.
#[inline(never)]
pub fn reduce_wide(x: &[u64; 16]) -> Fe {
    let [c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15] =
        x.map(|w| (w & 0xffff_ffff) as i64);
    fold([
        c0 + c8 + c9 - c11 - c12 - c13 - c14,
        c1 + c9 + c10 - c12 - c13 - c14 - c15,
        c2 + c10 + c11 - c13 - c14 - c15,
        c3 + 2 * (c11 + c12) + c13 - c15 - c8 - c9,
        c4 + 2 * (c12 + c13) + c14 - c9 - c10,
        c5 + 2 * (c13 + c14) + c15 - c10 - c11,
        c6 + 3 * c14 + 2 * c15 + c13 - c8 - c9,
        c7 + 3 * c15 + c8 - c10 - c11 - c12 - c13,
    ])
}

/// The element `Σ w_i·2^(32i) mod p` for signed word sums `w_i` (each |w_i| < 2^40): carries
/// propagated, then what lands at 2^256 folded back with 2^256 ≡ 2^224 − 2^192 − 2^96 + 1
/// (each fold shrinks it: at most three rounds here), then at most one subtraction of p.
fn fold(mut w: [i64; 8]) -> Fe {
    loop {
        let mut carry = 0i64;
        for x in w.iter_mut() {
            let v = *x + carry;
            *x = v & 0xffff_ffff;
            carry = v >> 32;
        }
        if carry == 0 {
            break;
        }
        let [w0, _, _, w3, _, _, w6, w7] = &mut w;
        *w0 += carry;
        *w3 -= carry;
        *w6 -= carry;
        *w7 += carry;
    }
    let mut out = w.map(|x| x as u32);
    if at_least_p(&out) {
        sub_p(&mut out);
    }
    Fe(out)
}

/// Whether the 256-bit `w` is ≥ p.
fn at_least_p(w: &[u32; 8]) -> bool {
    for (x, p) in w.iter().zip(&P).rev() {
        if x != p {
            return x > p;
        }
    }
    true
}

/// `w −= p` (mod 2^256).
fn sub_p(w: &mut [u32; 8]) {
    let mut borrow = 0i64;
    for (x, p) in w.iter_mut().zip(&P) {
        let v = i64::from(*x) - i64::from(*p) + borrow;
        *x = v as u32;
        borrow = v >> 32;
    }
}

/// `w += p` (mod 2^256).
fn add_p(w: &mut [u32; 8]) {
    let mut carry = 0u64;
    for (x, p) in w.iter_mut().zip(&P) {
        let v = u64::from(*x) + u64::from(*p) + carry;
        *x = v as u32;
        carry = v >> 32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::{FieldBytes, FieldElement};

    /// The p256 crate's element of `bytes`, `None` where it refuses them (not below p).
    fn theirs(bytes: &[u8; 32]) -> Option<FieldElement> {
        Option::from(FieldElement::from_bytes(&FieldBytes::from(*bytes)))
    }

    fn bytes_of(x: &FieldElement) -> [u8; 32] {
        x.to_bytes().into()
    }

    /// SplitMix64: reproducible test values without a dependency.
    fn random_bytes(state: &mut u64) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
        }
        out
    }

    fn p_minus(k: u8) -> [u8; 32] {
        let mut p = Fe(P).to_bytes();
        p[31] -= k;
        p
    }

    /// 0, 1, 2, p − 1, p − 2, and values whose words sit at the edges of the reduction.
    fn edge_values() -> Vec<[u8; 32]> {
        let mut out = vec![[0u8; 32], p_minus(1), p_minus(2), p_minus(3)];
        for k in [1u8, 2, 3, 0xff] {
            let mut b = [0u8; 32];
            b[31] = k;
            out.push(b);
        }
        let mut top = [0u8; 32];
        top[0] = 0x80;
        out.push(top);
        // 2^256 − 2^224 (just below p), 2^224, 2^192 − 1, 2^96 and all-ones words below p.
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&[0xff; 4]);
        b[4..12].copy_from_slice(&[0; 8]);
        out.push(b);
        let mut b = [0u8; 32];
        b[3] = 1;
        out.push(b);
        let mut b = [0u8; 32];
        b[8..].copy_from_slice(&[0xff; 24]);
        out.push(b);
        let mut b = [0u8; 32];
        b[19] = 1;
        out.push(b);
        out
    }

    fn check_pair(a: &[u8; 32], b: &[u8; 32]) {
        let (Some(x), Some(y), Some(tx), Some(ty)) =
            (Fe::from_bytes(a), Fe::from_bytes(b), theirs(a), theirs(b))
        else {
            panic!("not field elements: {a:02x?} {b:02x?}");
        };
        assert_eq!(x.to_bytes(), *a);
        assert_eq!(x.add(&y).to_bytes(), bytes_of(&tx.add(&ty)), "add");
        assert_eq!(x.sub(&y).to_bytes(), bytes_of(&tx.sub(&ty)), "sub");
        assert_eq!(x.neg().to_bytes(), bytes_of(&tx.neg()), "neg");
        assert_eq!(x.double().to_bytes(), bytes_of(&tx.double()), "double");
        assert_eq!(x.mul(&y).to_bytes(), bytes_of(&tx.multiply(&ty)), "mul");
        assert_eq!(x.square().to_bytes(), bytes_of(&tx.square()), "square");
        for k in [3u32, 4, 8] {
            let tk = FieldElement::from_u64(u64::from(k));
            assert_eq!(
                x.mul_small(k).to_bytes(),
                bytes_of(&tx.multiply(&tk)),
                "×{k}"
            );
        }
        assert_eq!(x.is_zero(), bool::from(tx.is_zero()));
        assert_eq!(x == y, tx == ty);
    }

    #[test]
    fn agrees_with_the_p256_crate_on_edge_and_random_values() {
        let mut state = 7u64;
        let mut values = edge_values();
        while values.len() < 64 {
            let b = random_bytes(&mut state);
            if theirs(&b).is_some() {
                values.push(b);
            }
        }
        for a in &values {
            for b in &values {
                check_pair(a, b);
            }
        }
    }

    #[test]
    fn inverts_like_the_p256_crate() {
        let mut state = 11u64;
        let mut values = edge_values();
        values.push(random_bytes(&mut state));
        for a in values.iter().filter(|a| theirs(a).is_some()) {
            let x = Fe::from_bytes(a).unwrap();
            let tx = theirs(a).unwrap();
            match Option::<FieldElement>::from(tx.invert()) {
                Some(inv) => assert_eq!(x.invert().to_bytes(), bytes_of(&inv)),
                None => assert!(x.is_zero() && x.invert().is_zero()),
            }
        }
        assert_eq!(Fe::ONE.invert(), Fe::ONE);
    }

    #[test]
    fn refuses_encodings_not_below_p() {
        let mut p = p_minus(0);
        assert!(Fe::from_bytes(&p).is_none());
        // p + 1: the low twelve bytes of p are all ones.
        p[19] = 1;
        p[20..].fill(0);
        assert!(Fe::from_bytes(&p).is_none());
        assert!(Fe::from_bytes(&[0xff; 32]).is_none());
        assert!(Fe::from_bytes(&p_minus(1)).is_some());
    }

    /// The reference for `reduce_wide`: `H·2^256 + L` with the p256 crate, H and L first
    /// brought below p (each is below 2^256 < 2p, so by one subtraction).
    fn reference_wide(x: &[u32; 16]) -> [u8; 32] {
        let half = |words: &[u32]| {
            let mut w = [0u32; 8];
            w.copy_from_slice(words);
            if at_least_p(&w) {
                sub_p(&mut w);
            }
            theirs(&Fe(w).to_bytes()).unwrap()
        };
        let two_256 = {
            // 2^256 mod p = 2^224 − 2^192 − 2^96 + 1.
            let w = [
                1u32,
                0,
                0,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_ffff,
                0xffff_fffe,
                0,
            ];
            theirs(&Fe(w).to_bytes()).unwrap()
        };
        let (lo, hi) = x.split_at(8);
        bytes_of(&half(hi).multiply(&two_256).add(&half(lo)))
    }

    #[test]
    fn reduces_any_512_bit_value() {
        let mut state = 3u64;
        let mut inputs = vec![[0u32; 16], [0xffff_ffff; 16]];
        let mut p_squared_ish = [0u32; 16];
        p_squared_ish[..8].copy_from_slice(&P);
        p_squared_ish[8..].copy_from_slice(&P);
        inputs.push(p_squared_ish);
        for _ in 0..2000 {
            let (a, b) = (random_bytes(&mut state), random_bytes(&mut state));
            let mut w = [0u32; 16];
            for (limb, chunk) in w.iter_mut().zip(a.chunks_exact(4).chain(b.chunks_exact(4))) {
                *limb = u32::from_be_bytes(chunk.try_into().unwrap());
            }
            inputs.push(w);
            // Sparse words: runs of zeros and of ones.
            inputs.push(w.map(|x| if x & 1 == 1 { 0xffff_ffff } else { x & 0xffff }));
        }
        for x in &inputs {
            assert_eq!(
                reduce_wide(&x.map(u64::from)).to_bytes(),
                reference_wide(x),
                "{x:08x?}"
            );
        }
    }
}
