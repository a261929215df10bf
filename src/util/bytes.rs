//! Byte-slice helpers for what every request compares or checks. In Wasm, `==` on slices
//! calls a `memcmp` that goes one byte at a time, and `str::from_utf8` four; these go eight.

/// `a == b`, sixteen bytes per step in the Wasm build (SIMD), eight elsewhere, and no early
/// exit: what every cache hit compares (a whole token).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(16), b.chunks_exact(16));
    let blocks = blocks_equal(&mut x, &mut y);
    let (mut x, mut y) = (x.remainder().chunks_exact(8), y.remainder().chunks_exact(8));
    let mut diff = 0u64;
    for (p, q) in (&mut x).zip(&mut y) {
        diff |= word(p) ^ word(q);
    }
    blocks & (diff == 0) & (x.remainder() == y.remainder())
}

fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(<[u8; 8]>::try_from(bytes).unwrap_or_default())
}

/// Whether every 16-byte block of `x` equals the one beside it in `y`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn blocks_equal(
    x: &mut std::slice::ChunksExact<'_, u8>,
    y: &mut std::slice::ChunksExact<'_, u8>,
) -> bool {
    use core::arch::wasm32::{u64x2_splat, v128_any_true, v128_load, v128_or, v128_xor};
    let mut diff = u64x2_splat(0);
    for (p, q) in x.zip(y) {
        // SAFETY: `chunks_exact(16)` gives 16 readable bytes; v128.load needs no alignment.
        let (p, q) = unsafe { (v128_load(p.as_ptr().cast()), v128_load(q.as_ptr().cast())) };
        diff = v128_or(diff, v128_xor(p, q));
    }
    !v128_any_true(diff)
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn blocks_equal(
    x: &mut std::slice::ChunksExact<'_, u8>,
    y: &mut std::slice::ChunksExact<'_, u8>,
) -> bool {
    let mut diff = 0u64;
    for (p, q) in x.zip(y) {
        for (p, q) in p.chunks_exact(8).zip(q.chunks_exact(8)) {
            diff |= word(p) ^ word(q);
        }
    }
    diff == 0
}

/// `a.eq_ignore_ascii_case(b)`, for header names: Envoy hands them over in lower case, so
/// an exact match ([`same_bytes`]) settles nearly every compare, and only a name that
/// differs is compared again ignoring case (one byte per step, usually stopping at the first).
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (same_bytes(a, b) || a.eq_ignore_ascii_case(b))
}

/// Every byte below 0x80: eight bytes per step and no early exit (headers are nearly
/// always ASCII).
pub fn is_ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let mut high = 0u64;
    for w in &mut words {
        high |= word(w);
    }
    for &b in words.remainder() {
        high |= u64::from(b);
    }
    high & 0x8080_8080_8080_8080 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_ascii_finds_a_high_byte_anywhere() {
        assert!(is_ascii(b""));
        for len in 1..40 {
            let base = vec![b'a'; len];
            assert!(is_ascii(&base), "len {len}");
            for i in 0..len {
                let mut b = base.clone();
                b[i] = 0x80;
                assert!(!is_ascii(&b), "len {len}, byte {i}");
                b[i] = 0xff;
                assert!(!is_ascii(&b), "len {len}, byte {i}");
            }
        }
        assert!(is_ascii(&(0..0x80u8).collect::<Vec<_>>()));
    }

    #[test]
    fn same_name_ignores_ascii_case_only() {
        assert!(same_name(b"authorization", b"authorization"));
        assert!(same_name(b"authorization", b"Authorization"));
        assert!(same_name(b":AUTHORITY", b":authority"));
        assert!(!same_name(b"authorization", b"authorizatio"));
        assert!(!same_name(b"x-a", b"x-b"));
        // Not a bit trick: `@` and `` ` `` differ only in the bit case folding flips.
        assert!(!same_name(b"a@", b"a`"));
        assert!(!same_name(b"a[", b"a{"));
        assert!(same_name(b"", b""));
    }

    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..80u8).collect();
        for len in 0..79 {
            let a = &base[..len];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &base[..len + 1]));
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x80;
                assert!(!same_bytes(a, &b), "len {len}, byte {i}");
            }
        }
    }
}
