//! Byte-slice helpers for what every request compares. In Wasm, `==` on slices calls a
//! `memcmp` that goes one byte at a time; these go eight.

/// `a == b`, eight bytes per step: what every cache hit compares (a whole token, an RSA
/// modulus).
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut x, mut y) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (p, q) in (&mut x).zip(&mut y) {
        let p = u64::from_le_bytes(<[u8; 8]>::try_from(p).unwrap_or_default());
        let q = u64::from_le_bytes(<[u8; 8]>::try_from(q).unwrap_or_default());
        diff |= p ^ q;
    }
    diff == 0 && x.remainder() == y.remainder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let base: Vec<u8> = (0..40u8).collect();
        for len in 0..40 {
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
