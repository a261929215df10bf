//! Fixed-base tables for `p256.rs`: the scalar multiplications of a verification with four
//! times fewer doublings.
//!
//! A 256-bit scalar u is cut into `PIECES` pieces of `PIECE_BITS` bits,
//! `u = Σ u_j·2^(PIECE_BITS·j)`, so that `u·P = Σ u_j·P_j` with `P_j = 2^(PIECE_BITS·j)·P`.
//! With a table of odd multiples of every `P_j` at hand, `u1·G + u2·Q` is one pass of
//! `PIECE_BITS` doublings (instead of 256) over the width-w NAF digits of all the pieces of
//! both scalars, each nonzero digit an addition of a table point: about as many additions as
//! with whole scalars, a quarter of the doublings.
//!
//! [`Tables`] holds, for each piece j, the odd multiples `P_j, 3P_j, …, (2^(w−1) − 1)P_j` in
//! affine form (every addition in the pass is a mixed one): `PIECES · 2^(w−2)` points of 64
//! bytes. Building it takes `PIECE_BITS·(PIECES − 1)` doublings to reach the `P_j`, then per
//! piece one doubling and `2^(w−2) − 1` additions, and one field inversion for all the points
//! (`p256_point::batch_to_affine`). The tables of G are built once per VM ([`g_tables`]); a
//! key's once per key (`p256::P256Key`). Natively about 0.33 ms for G's (w = 8) and 0.19 ms
//! for a key's (w = 7); bench/RESULTS.md has the figures in V8.

use std::sync::OnceLock;

use crate::p256_point::{batch_to_affine, odd_multiples, Affine, Jacobian};

/// How many pieces a scalar is cut into (1, 2 or 4: whole 64-bit limbs per piece).
pub(crate) const PIECES: usize = 4;
/// Bits per piece.
pub(crate) const PIECE_BITS: usize = 256 / PIECES;
/// NAF digits per piece: a `PIECE_BITS`-bit number has a NAF of at most one digit more.
pub(crate) const DIGITS: usize = PIECE_BITS + 1;
/// 64-bit limbs per piece.
const LIMBS: usize = 4 / PIECES;

/// NAF width for G: `PIECES` tables of 2^(w−2) = 64 affine points, 16 KiB per VM.
pub(crate) const G_WINDOW: u32 = 8;

/// The odd multiples of `2^(PIECE_BITS·j)·P` for every piece j, affine.
#[derive(Debug)]
pub(crate) struct Tables {
    /// Piece j's table at `[j·per_piece, (j + 1)·per_piece)`.
    points: Vec<Affine>,
    per_piece: usize,
}

impl Tables {
    /// The tables of `p` for NAF width `w` (3 ≤ w ≤ 8); `None` were a point ever at infinity
    /// (never for a point of order n: every multiple here is below n).
    pub(crate) fn new(p: &Affine, w: u32) -> Option<Tables> {
        if !(3..=8).contains(&w) {
            return None;
        }
        let per_piece = 1usize << (w - 2);
        let mut jacobian = Vec::with_capacity(PIECES * per_piece);
        let mut base = Jacobian::from_affine(p);
        for j in 0..PIECES {
            if j > 0 {
                for _ in 0..PIECE_BITS {
                    base = base.double();
                }
            }
            odd_multiples(&base, w, &mut jacobian);
        }
        Some(Tables {
            points: batch_to_affine(&jacobian)?,
            per_piece,
        })
    }

    /// `|d|·P_j` for an odd NAF digit `d` of piece `j` (`None` out of range).
    pub(crate) fn get(&self, piece: usize, digit: i8) -> Option<&Affine> {
        let i = usize::from(digit.unsigned_abs() / 2);
        if i >= self.per_piece {
            return None;
        }
        self.points.get(piece * self.per_piece + i)
    }
}

/// G's tables, made at the first ES256 verification of a VM.
pub(crate) fn g_tables() -> Option<&'static Tables> {
    static TABLES: OnceLock<Option<Tables>> = OnceLock::new();
    TABLES
        .get_or_init(|| Tables::new(&Affine::generator()?, G_WINDOW))
        .as_ref()
}

/// The width-`w` NAF of each piece of a 256-bit big-endian scalar, least significant digit
/// first: odd digits in (−2^(w−1), 2^(w−1)) or 0, at most one nonzero in any `w` consecutive.
pub(crate) fn split_naf(scalar: &[u8; 32], w: u32) -> [[i8; DIGITS]; PIECES] {
    // Little-endian 64-bit limbs.
    let mut limbs = [0u64; 4];
    for (limb, chunk) in limbs.iter_mut().zip(scalar.rchunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        *limb = u64::from_be_bytes(b);
    }
    let mut out = [[0i8; DIGITS]; PIECES];
    for (digits, piece) in out.iter_mut().zip(limbs.chunks_exact(LIMBS)) {
        // One spare limb for the carries of negative digits.
        let mut k = [0u64; 5];
        for (t, l) in k.iter_mut().zip(piece) {
            *t = *l;
        }
        naf_into(k, w, digits);
    }
    out
}

/// The width-`w` NAF of `k` (little-endian limbs) into `out`, least significant first
/// (`out` must be long enough: one digit more than the bits of `k`).
fn naf_into(mut k: [u64; 5], w: u32, out: &mut [i8]) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::p256_point::tests::mul_plain;
    use crate::p256_point::ORDER;

    fn shift_left_one(k: &mut [u64; 5]) {
        let mut carry = 0;
        for limb in k.iter_mut() {
            let top = *limb >> 63;
            *limb = (*limb << 1) | carry;
            carry = top;
        }
    }

    fn one_at(byte: usize, value: u8) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[byte] = value;
        b
    }

    #[test]
    fn naf_pieces_add_up_to_the_scalar() {
        let mut n_minus_1 = ORDER;
        n_minus_1[31] -= 1;
        // Pieces that are zero, all ones, a lone top or bottom bit.
        let mut inputs = vec![[0xffu8; 32], ORDER, n_minus_1, [0u8; 32], one_at(31, 1)];
        inputs.extend([
            one_at(0, 0x80),
            one_at(24, 1),
            one_at(23, 0x80),
            one_at(8, 0xff),
        ]);
        let mut zero_middle = [0xffu8; 32];
        zero_middle[8..24].fill(0);
        inputs.push(zero_middle);
        let mut x = 0x1234_5678_9abc_def1u64;
        for _ in 0..50 {
            let mut b = [0u8; 32];
            for chunk in b.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_be_bytes());
            }
            inputs.push(b);
        }
        for w in 3..=8u32 {
            for bytes in &inputs {
                let pieces = split_naf(bytes, w);
                // Rebuild the value from the digits, most significant first: acc = 2·acc + d,
                // piece by piece from the top one, PIECE_BITS shifts between pieces.
                let mut acc = [0u64; 5];
                for digits in pieces.iter().rev() {
                    for _ in 0..PIECE_BITS {
                        shift_left_one(&mut acc);
                    }
                    let mut piece = [0u64; 5];
                    for d in digits.iter().rev() {
                        shift_left_one(&mut piece);
                        sub_digit(&mut piece, -i64::from(*d));
                    }
                    // Each piece's NAF is its value (no carry into the next piece).
                    assert!(piece.iter().skip(LIMBS).all(|l| *l == 0) || LIMBS == 4);
                    let mut carry = 0u128;
                    for (a, p) in acc.iter_mut().zip(piece) {
                        let s = u128::from(*a) + u128::from(p) + carry;
                        *a = s as u64;
                        carry = s >> 64;
                    }
                }
                let mut expect = [0u64; 5];
                for (limb, chunk) in expect.iter_mut().zip(bytes.rchunks_exact(8)) {
                    *limb = u64::from_be_bytes(chunk.try_into().unwrap());
                }
                assert_eq!(acc, expect, "w={w} {bytes:02x?}");
                for digits in &pieces {
                    for win in digits.windows(w as usize) {
                        assert!(win.iter().filter(|d| **d != 0).count() <= 1);
                    }
                    for d in digits.iter().filter(|d| **d != 0) {
                        assert!(
                            d.rem_euclid(2) == 1 && i32::from(d.unsigned_abs()) < (1 << (w - 1))
                        );
                    }
                }
            }
        }
    }

    impl Tables {
        fn len(&self) -> usize {
            self.points.len()
        }
    }

    /// Every entry of `tables` is `m·2^(PIECE_BITS·j)·P` computed by plain double-and-add.
    pub(crate) fn check_tables(tables: &Tables, p: &Affine, w: u32) {
        let per_piece = 1usize << (w - 2);
        assert_eq!(tables.len(), PIECES * per_piece);
        let p = Jacobian::from_affine(p);
        for j in 0..PIECES {
            // 2^(PIECE_BITS·j) by doublings.
            let mut base = p;
            for _ in 0..PIECE_BITS * j {
                base = base.double();
            }
            for (i, m) in (1..(1u8 << (w - 1))).step_by(2).enumerate() {
                let want = mul_plain(&base, &[m]).to_affine().unwrap();
                let digit = m as i8;
                assert_eq!(tables.get(j, digit), Some(&want), "piece {j} multiple {m}");
                assert_eq!(
                    tables.get(j, -digit),
                    Some(&want),
                    "piece {j} multiple −{m}"
                );
                assert_eq!(i, usize::from(m / 2));
            }
            // Digits past the window are refused, not read from the next piece's table.
            let past = (1i16 << (w - 1)) + 1;
            if past <= 127 {
                assert_eq!(tables.get(j, past as i8), None);
            }
        }
        assert_eq!(tables.get(PIECES, 1), None);
    }

    #[test]
    fn the_generator_tables_hold_odd_multiples_of_shifted_g() {
        let g = Affine::generator().unwrap();
        let tables = g_tables().unwrap();
        check_tables(tables, &g, G_WINDOW);
        // The p256 crate agrees on 63·2^(PIECE_BITS·(PIECES − 1))·G.
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let mut k = p256::Scalar::from(63u64);
        for _ in 0..PIECE_BITS * (PIECES - 1) {
            k = k.double();
        }
        let theirs = (p256::ProjectivePoint::GENERATOR * k)
            .to_affine()
            .to_encoded_point(false);
        let ours = tables.get(PIECES - 1, 63).unwrap();
        assert_eq!(ours.x.to_bytes(), <[u8; 32]>::from(*theirs.x().unwrap()));
        assert_eq!(ours.y.to_bytes(), <[u8; 32]>::from(*theirs.y().unwrap()));
        for w in [3, 5, 7] {
            check_tables(&Tables::new(&g, w).unwrap(), &g, w);
        }
        assert!(Tables::new(&g, 2).is_none() && Tables::new(&g, 9).is_none());
    }
}
