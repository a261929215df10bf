//! `x^e mod n` for a public RSA modulus: Montgomery arithmetic built once per key.
//!
//! Numbers are little-endian vectors of 27-bit limbs held in `u32`s. A product of two limbs
//! is below 2^54, so a Montgomery product can add up every term of a result column in one
//! `u64` (at most 2 × 304 products for an 8192-bit modulus, < 2^63.3) and carry only once
//! per column instead of once per product. The columns are dot products of contiguous
//! slices (one operand is kept reversed), which the compiler turns into tight loops, and
//! into `i64x2.extmul` when the wasm build has SIMD128.
//!
//! `R = 2^(27·L)` is at least `4n`, so intermediate values may stay in `[0, 2n)`
//! ("almost Montgomery"): no conditional subtraction until the very end. Everything here
//! runs on public values (signature, key, exponent), so it is variable-time by design and
//! must never be used with a secret exponent.

/// Bits per limb.
const W: u32 = 27;
const MASK: u64 = (1 << W) - 1;
/// Largest modulus this arithmetic is sized for (the column bound above).
pub const MAX_BITS: usize = 8192;
/// Zero limbs in front of every limb vector: a dot product may then start up to 3 limbs
/// early (on terms that are zero) so that its length is a multiple of 4 and the SIMD loop
/// needs no scalar tail.
const P: usize = 4;

/// A public odd modulus with its Montgomery constants.
#[derive(Clone)]
pub struct Modulus {
    /// Number of limbs, L.
    l: usize,
    /// Limbs of `n`, least significant first (after `P` zero limbs, like every limb vector here).
    n: Vec<u32>,
    /// The same limbs, most significant first (after `P` zero limbs).
    n_rev: Vec<u32>,
    /// `-n⁻¹ mod 2^27`.
    n0inv: u32,
    /// The public exponent.
    e: u64,
    /// `R^e mod n`: one product with it turns the Montgomery-domain chain of `pow` back into
    /// `s^e mod n` (see `pow`).
    correction: Vec<u32>,
    /// Bytes of `n` (big-endian, no leading zero).
    len_bytes: usize,
}

/// Why a modulus is not usable here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModulusError {
    Even,
    TooLarge,
    ZeroExponent,
}

impl Modulus {
    /// Precomputes everything `pow` needs for exponent `e` (≥ 1). `n_be` is big-endian;
    /// leading zeros are allowed.
    pub fn new(n_be: &[u8], e: u64) -> Result<Modulus, ModulusError> {
        if e == 0 {
            return Err(ModulusError::ZeroExponent);
        }
        let start = n_be.iter().position(|b| *b != 0).unwrap_or(n_be.len());
        let n_be = n_be.get(start..).unwrap_or(&[]);
        let bits = n_be
            .first()
            .map_or(0, |b| n_be.len() * 8 - b.leading_zeros() as usize);
        if bits > MAX_BITS {
            return Err(ModulusError::TooLarge);
        }
        if n_be.last().is_none_or(|b| b & 1 == 0) || bits < 3 {
            return Err(ModulusError::Even);
        }
        // R = 2^(27·L) ≥ 4n  ⇔  27·L ≥ bits + 2.
        let limbs = (bits + 2).div_ceil(W as usize);
        let n = limbs_from_be(n_be, limbs).ok_or(ModulusError::TooLarge)?;
        let n0 = n.get(P).copied().unwrap_or(1);
        // Newton iteration for n0⁻¹ mod 2^32: each step doubles the correct low bits.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let n0inv = inv.wrapping_neg() & (MASK as u32);
        let mut n_rev = n.clone();
        if let Some(limbs) = n_rev.get_mut(P..) {
            limbs.reverse();
        }
        let r2 = r_squared(&n);
        let mut modulus = Modulus {
            l: limbs,
            n,
            n_rev,
            n0inv,
            e,
            correction: Vec::new(),
            len_bytes: n_be.len(),
        };
        // R^e mod n = mont(chain(R² mod n), 1): R² is R in Montgomery form.
        let mut scratch = Scratch::new(limbs);
        let mut one = vec![0u32; P + limbs];
        if let Some(first) = one.get_mut(P) {
            *first = 1;
        }
        let chained = modulus.chain(&r2, &mut scratch);
        modulus.correction = modulus.finish(&chained, &one, &mut scratch);
        Ok(modulus)
    }

    /// Byte length of `n`: the length of a signature and of `pow`'s output.
    pub fn len_bytes(&self) -> usize {
        self.len_bytes
    }

    fn limbs(&self) -> usize {
        self.l
    }

    /// `base^e mod n` as `len_bytes()` big-endian bytes. `base` must be below `n` (the
    /// caller checks; a larger value gives a wrong but harmless result).
    ///
    /// The base is not converted into the Montgomery domain: squaring and multiplying
    /// `base·R^c` with Montgomery products leaves `base^p · R^-(p-1)` after the bits of `e`
    /// up to value p, so the chain ends at `base^e · R^-(e-1)` and one product with the
    /// per-key `R^e mod n` gives `base^e mod n`. For e = 65537 that is 16 squarings and
    /// 2 products, instead of 16 squarings and 3 products with the usual conversions.
    pub fn pow(&self, base_be: &[u8]) -> Option<Vec<u8>> {
        let l = self.limbs();
        let base = limbs_from_be(base_be, l)?;
        let mut scratch = Scratch::new(l);
        let chained = self.chain(&base, &mut scratch);
        let out = self.finish(&chained, &self.correction, &mut scratch);
        limbs_to_be(out.get(P..)?, self.len_bytes)
    }

    /// Left-to-right square-and-multiply over the bits of e below the top one, with
    /// Montgomery products, starting from `b` (< 2n).
    fn chain(&self, b: &[u32], scratch: &mut Scratch) -> Vec<u32> {
        let l = self.limbs();
        let mut x = b.to_vec();
        let mut t = vec![0u32; P + l];
        let top = 63 - self.e.leading_zeros();
        for bit in (0..top).rev() {
            self.square(&x, &mut t, scratch);
            if (self.e >> bit) & 1 == 1 {
                self.mul(&t, b, &mut x, scratch);
            } else {
                std::mem::swap(&mut x, &mut t);
            }
        }
        x
    }

    /// `mont(x, z)` reduced below n (x, z < 2n gives a result below 2n: one subtraction).
    fn finish(&self, x: &[u32], z: &[u32], scratch: &mut Scratch) -> Vec<u32> {
        let mut out = vec![0u32; P + self.limbs()];
        self.mul(x, z, &mut out, scratch);
        if !less_than(&out, &self.n) {
            sub_in_place(&mut out, &self.n);
        }
        out
    }

    /// `out = a·b·R⁻¹`, with `a, b < 2n` giving `out < 2n`.
    fn mul(&self, a: &[u32], b: &[u32], out: &mut [u32], scratch: &mut Scratch) {
        reversed_into(b, &mut scratch.rev);
        let rev = &scratch.rev;
        let l = self.limbs();
        // Column k of a·b: Σ a[i]·b[k-i] over lo ≤ i < hi, and b[k-i] = rev[l-1-k+i].
        self.reduce(
            |k| {
                let (lo, hi) = if k < l { (0, k + 1) } else { (k + 1 - l, l) };
                dot(Acc::ZERO, a, rev, hi, l - 1 + hi - k, hi - lo)
            },
            &mut scratch.m,
            out,
        );
    }

    /// `out = a²·R⁻¹`: each cross product once, doubled.
    fn square(&self, a: &[u32], out: &mut [u32], scratch: &mut Scratch) {
        reversed_into(a, &mut scratch.rev);
        let rev = &scratch.rev;
        let l = self.limbs();
        self.reduce(
            |k| {
                // Pairs i < k-i: from lo (the first index in range) up to ⌈k/2⌉ − 1.
                let lo = (k + 1).saturating_sub(l);
                let hi = k.div_ceil(2);
                let cross = dot(Acc::ZERO, a, rev, hi, l - 1 + hi - k, hi - lo);
                let diagonal = if k % 2 == 0 {
                    a.get(P + k / 2).map_or(0, |&x| u64::from(x) * u64::from(x))
                } else {
                    0
                };
                cross.doubled().plus(diagonal)
            },
            &mut scratch.m,
            out,
        );
    }

    /// Product-scanning Montgomery reduction interleaved with the product columns.
    /// `column(k)` is column k (0 ≤ k ≤ 2L−2) of the plain product.
    fn reduce(&self, column: impl Fn(usize) -> Acc, m: &mut [u32], out: &mut [u32]) {
        let l = self.limbs();
        let n0 = u64::from(self.n.get(P).copied().unwrap_or(0));
        let mut acc: u64 = 0;
        for k in 0..l {
            // Σ m[i]·n[k-i] for i < k, with n[k-i] = n_rev[l-1-k+i]; m[k] is not known yet.
            let col = dot(column(k), m, &self.n_rev, k, l - 1, k);
            acc = acc.wrapping_add(col.total());
            let mk = ((acc & MASK).wrapping_mul(u64::from(self.n0inv))) & MASK;
            if let Some(slot) = m.get_mut(P + k) {
                *slot = mk as u32;
            }
            acc = acc.wrapping_add(mk * n0) >> W;
        }
        for k in l..2 * l - 1 {
            let lo = k + 1 - l;
            let col = dot(column(k), m, &self.n_rev, l, 2 * l - 1 - k, l - lo);
            acc = acc.wrapping_add(col.total());
            if let Some(slot) = out.get_mut(P + k - l) {
                *slot = (acc & MASK) as u32;
            }
            acc >>= W;
        }
        if let Some(slot) = out.get_mut(P + l - 1) {
            *slot = acc as u32;
        }
    }
}

/// `rev` = the limbs of `x` most significant first (both with `P` zero limbs in front).
#[inline(always)]
fn reversed_into(x: &[u32], rev: &mut [u32]) {
    if let (Some(src), Some(dst)) = (x.get(P..), rev.get_mut(P..)) {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
    }
}

/// `acc` + Σ x[i]·y[i + off] for the `count` limb indices i below `x_end`, where y's index
/// of the last term is `y_end − 1` (limb indices, before the `P` zero limbs). The range is
/// extended downwards to a multiple of 4 terms; the extra terms multiply a zero limb (a
/// padding limb, or a limb index < 0 on one side, which the callers' ranges guarantee).
#[inline(always)]
fn dot(acc: Acc, x: &[u32], y: &[u32], x_end: usize, y_end: usize, count: usize) -> Acc {
    let c = count.next_multiple_of(4);
    let (xe, ye) = (P + x_end, P + y_end);
    match (xe.checked_sub(c), ye.checked_sub(c)) {
        (Some(xs), Some(ys)) => acc.add_dot(x.get(xs..xe), y.get(ys..ye)),
        _ => acc.add_dot(x.get(xe - count.min(xe)..xe), y.get(ye - count.min(ye)..ye)),
    }
}

struct Scratch {
    rev: Vec<u32>,
    m: Vec<u32>,
}

impl Scratch {
    fn new(limbs: usize) -> Scratch {
        Scratch {
            rev: vec![0; P + limbs],
            m: vec![0; P + limbs],
        }
    }
}

/// A column sum in progress. Callers keep every column below 2^64 (see the module comment).
#[derive(Clone, Copy)]
struct Acc {
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    v: core::arch::wasm32::v128,
    s: u64,
}

/// Both slices cut to the shorter one's length (an absent range counts as empty).
#[inline(always)]
fn same_len<'a>(x: Option<&'a [u32]>, y: Option<&'a [u32]>) -> (&'a [u32], &'a [u32]) {
    let (x, y) = (x.unwrap_or(&[]), y.unwrap_or(&[]));
    let len = x.len().min(y.len());
    (x.get(..len).unwrap_or(&[]), y.get(..len).unwrap_or(&[]))
}

#[inline(always)]
fn scalar_dot(x: &[u32], y: &[u32]) -> u64 {
    x.iter().zip(y).fold(0u64, |s, (&p, &q)| {
        s.wrapping_add(u64::from(p) * u64::from(q))
    })
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
impl Acc {
    const ZERO: Acc = Acc { s: 0 };

    /// Adds Σ x[i]·y[i] over the shorter of the two.
    #[inline(always)]
    fn add_dot(self, x: Option<&[u32]>, y: Option<&[u32]>) -> Acc {
        let (x, y) = same_len(x, y);
        Acc {
            s: self.s.wrapping_add(scalar_dot(x, y)),
        }
    }

    #[inline(always)]
    fn doubled(self) -> Acc {
        Acc { s: self.s << 1 }
    }

    #[inline(always)]
    fn plus(self, s: u64) -> Acc {
        Acc {
            s: self.s.wrapping_add(s),
        }
    }

    #[inline(always)]
    fn total(self) -> u64 {
        self.s
    }
}

/// SIMD128: four limb products per `i64x2.extmul_{low,high}_i32x4_u` pair, on whole-vector
/// loads (built lane by lane, LLVM would turn them into `load32x2_u` + `i64x2.mul`, which V8
/// emulates with three multiplies).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Acc {
    const ZERO: Acc = Acc {
        v: core::arch::wasm32::u64x2(0, 0),
        s: 0,
    };

    /// Adds Σ x[i]·y[i] over the shorter of the two.
    #[inline(always)]
    fn add_dot(self, x: Option<&[u32]>, y: Option<&[u32]>) -> Acc {
        use core::arch::wasm32::{
            u64x2, u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, v128, v128_load,
        };
        #[inline(always)]
        fn load(a: &[u32; 4]) -> v128 {
            // SAFETY: `a` refers to 16 readable bytes; v128.load has no alignment requirement.
            unsafe { v128_load(a.as_ptr().cast()) }
        }
        #[inline(always)]
        fn mac(acc: v128, a: &[u32; 4], b: &[u32; 4]) -> v128 {
            let (va, vb) = (load(a), load(b));
            let lo = u64x2_extmul_low_u32x4(va, vb);
            let hi = u64x2_extmul_high_u32x4(va, vb);
            u64x2_add(acc, u64x2_add(lo, hi))
        }
        let (x, y) = same_len(x, y);
        let mut v0 = self.v;
        let mut v1 = u64x2(0, 0);
        let x8 = x.chunks_exact(8);
        let y8 = y.chunks_exact(8);
        let (x4, y4) = (x8.remainder(), y8.remainder());
        for (a, b) in x8.zip(y8) {
            if let (Some(a0), Some(b0), Some(a1), Some(b1)) = (
                a.first_chunk::<4>(),
                b.first_chunk::<4>(),
                a.last_chunk::<4>(),
                b.last_chunk::<4>(),
            ) {
                v0 = mac(v0, a0, b0);
                v1 = mac(v1, a1, b1);
            }
        }
        let mut s = self.s;
        let (x1, y1) = match (x4.split_first_chunk::<4>(), y4.split_first_chunk::<4>()) {
            (Some((a, x1)), Some((b, y1))) => {
                v0 = mac(v0, a, b);
                (x1, y1)
            }
            _ => (x4, y4),
        };
        s = s.wrapping_add(scalar_dot(x1, y1));
        Acc {
            v: u64x2_add(v0, v1),
            s,
        }
    }

    #[inline(always)]
    fn doubled(self) -> Acc {
        Acc {
            v: core::arch::wasm32::u64x2_shl(self.v, 1),
            s: self.s << 1,
        }
    }

    #[inline(always)]
    fn plus(self, s: u64) -> Acc {
        Acc {
            v: self.v,
            s: self.s.wrapping_add(s),
        }
    }

    #[inline(always)]
    fn total(self) -> u64 {
        use core::arch::wasm32::u64x2_extract_lane;
        self.s
            .wrapping_add(u64x2_extract_lane::<0>(self.v))
            .wrapping_add(u64x2_extract_lane::<1>(self.v))
    }
}

/// `R² mod n` by doubling 1 (2·27·L times) with a subtraction whenever the value reaches n.
fn r_squared(n: &[u32]) -> Vec<u32> {
    let limbs = n.len().saturating_sub(P);
    let mut x = vec![0u32; n.len()];
    if let Some(first) = x.get_mut(P) {
        *first = 1;
    }
    for _ in 0..2 * (W as usize) * limbs {
        let mut carry = 0u32;
        for limb in x.iter_mut() {
            let v = (*limb << 1) | carry;
            carry = v >> W;
            *limb = v & (MASK as u32);
        }
        // x < 2n < 2^(27·L): the doubling never carries out of the top limb.
        if !less_than(&x, n) {
            sub_in_place(&mut x, n);
        }
    }
    x
}

/// a < b, both normalised limb vectors of the same length.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// a -= b, for a ≥ b.
fn sub_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u32;
    for (x, y) in a.iter_mut().zip(b) {
        let v = x.wrapping_sub(*y).wrapping_sub(borrow);
        borrow = v >> 31;
        *x = v & (MASK as u32);
    }
}

/// Big-endian bytes to exactly `limbs` limbs after `P` zero limbs; None if the value does
/// not fit.
fn limbs_from_be(bytes: &[u8], limbs: usize) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(limbs + 1);
    let mut acc: u64 = 0;
    let mut have: u32 = 0;
    for &byte in bytes.iter().rev() {
        acc |= u64::from(byte) << have;
        have += 8;
        if have >= W {
            out.push((acc & MASK) as u32);
            acc >>= W;
            have -= W;
        }
    }
    if have > 0 {
        out.push(acc as u32);
    }
    while out.len() > limbs {
        if out.pop() != Some(0) {
            return None;
        }
    }
    out.resize(limbs, 0);
    let mut padded = vec![0u32; P];
    padded.extend_from_slice(&out);
    Some(padded)
}

/// Limbs to exactly `len` big-endian bytes; None if the value does not fit.
fn limbs_to_be(limbs: &[u32], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(len + 4);
    let mut acc: u64 = 0;
    let mut have: u32 = 0;
    for &limb in limbs {
        acc |= u64::from(limb) << have;
        have += W;
        while have >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            have -= 8;
        }
    }
    if have > 0 {
        out.push(acc as u8);
    }
    while out.len() > len {
        if out.pop() != Some(0) {
            return None;
        }
    }
    out.resize(len, 0);
    out.reverse();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Schoolbook reference on u128 for moduli below 2^64.
    fn pow_small(b: u128, e: u64, n: u128) -> u128 {
        let mut r = 1u128;
        for bit in (0..64).rev() {
            r = r * r % n;
            if (e >> bit) & 1 == 1 {
                r = r * b % n;
            }
        }
        r
    }

    #[test]
    fn matches_u128_arithmetic_on_small_moduli() {
        let moduli: [u64; 5] = [
            0xffff_ffff_ffff_ffc5,
            0x8000_0000_0000_001d,
            0x0000_0001_0000_0001,
            1_000_000_007,
            0x7,
        ];
        for n in moduli {
            for (b, e) in [
                (2u64, 65537u64),
                (n - 1, 3),
                (12345, 17),
                (0, 5),
                (1, 65537),
                (5, 1),
                (n - 2, (1 << 33) - 1),
            ] {
                let m = Modulus::new(&n.to_be_bytes(), e).unwrap();
                let b = b % n;
                let got = m.pow(&b.to_be_bytes()).unwrap();
                let want = pow_small(u128::from(b), e, u128::from(n)) as u64;
                let want = want.to_be_bytes();
                assert_eq!(got, want[8 - m.len_bytes()..], "n={n:x} b={b} e={e}");
            }
        }
    }

    #[test]
    fn rejects_even_and_oversized_moduli() {
        assert_eq!(
            Modulus::new(&[0x10, 0x00], 3).err(),
            Some(ModulusError::Even)
        );
        assert_eq!(Modulus::new(&[], 3).err(), Some(ModulusError::Even));
        assert_eq!(
            Modulus::new(&vec![0xff; MAX_BITS / 8 + 1], 3).err(),
            Some(ModulusError::TooLarge)
        );
        assert!(Modulus::new(&vec![0xff; MAX_BITS / 8], 65537).is_ok());
        assert_eq!(
            Modulus::new(&[0x11], 0).err(),
            Some(ModulusError::ZeroExponent)
        );
    }

    #[test]
    fn limb_conversion_round_trips() {
        let bytes: Vec<u8> = (0..256u32).map(|i| (i * 37 + 11) as u8).collect();
        let limbs = limbs_from_be(&bytes, 80).unwrap();
        assert_eq!(limbs_to_be(&limbs[P..], 256).unwrap(), bytes);
        assert!(limbs_from_be(&bytes, 70).is_none());
    }
}
