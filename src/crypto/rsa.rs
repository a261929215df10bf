//! RSA signature verification (RFC 8017): RSASSA-PKCS1-v1_5 and RSASSA-PSS with SHA-2,
//! on a public key whose Montgomery constants are computed once, when the key set is parsed.
//!
//! Verify only: public key, public signature, public message, so no constant-time concern
//! beyond not being sloppy. PKCS#1 v1.5 compares the whole expected encoding (no parsing of
//! the DigestInfo, no leniency); PSS follows EMSA-PSS-VERIFY with the salt length fixed to
//! the hash length (RFC 7518 §3.5).

use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::modexp::{Modulus, ModulusError};

/// Smallest and largest public exponent accepted (the same bounds as the `rsa` crate:
/// e ≥ 2, e ≤ 2^33 − 1, and odd).
const MIN_E: u64 = 2;
const MAX_E: u64 = (1 << 33) - 1;

/// An RSA public key ready for verification.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// Modulus, big-endian, no leading zero byte.
    n: Vec<u8>,
    e: u64,
    bits: usize,
    modulus: Modulus,
    /// The key as DER `SubjectPublicKeyInfo` (for a host that checks signatures itself).
    spki: Vec<u8>,
}

/// The SHA-2 function of an RS*/PS* algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

/// The signature encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Pkcs1v15,
    /// Salt as long as the hash.
    Pss,
}

impl HashAlg {
    fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Hash of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            HashAlg::Sha256 => run::<Sha256>(parts),
            HashAlg::Sha384 => run::<Sha384>(parts),
            HashAlg::Sha512 => run::<Sha512>(parts),
        }
    }

    /// DER of `DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING }`
    /// up to the digest itself (RFC 8017 §9.2, note 1).
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            HashAlg::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x05, 0x00, 0x04, 0x20,
            ],
            HashAlg::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x02, 0x05, 0x00, 0x04, 0x30,
            ],
            HashAlg::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x03, 0x05, 0x00, 0x04, 0x40,
            ],
        }
    }
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsaKeyError {
    ModulusBits(usize),
    EvenModulus,
    Exponent,
}

impl std::fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RsaKeyError::ModulusBits(b) => write!(f, "modulus of {b} bits is not supported"),
            RsaKeyError::EvenModulus => f.write_str("modulus is even"),
            RsaKeyError::Exponent => {
                f.write_str("public exponent must be odd and between 3 and 2^33-1")
            }
        }
    }
}

impl RsaPublicKey {
    /// Builds a key from big-endian `n` and `e` (leading zeros allowed), accepting moduli of
    /// `min_bits..=max_bits` (`max_bits` at most 8192).
    pub fn new(
        n: &[u8],
        e: &[u8],
        min_bits: usize,
        max_bits: usize,
    ) -> Result<RsaPublicKey, RsaKeyError> {
        let n = strip_leading_zeros(n);
        let bits = n
            .first()
            .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
        if bits < min_bits || bits > max_bits || bits > crate::modexp::MAX_BITS {
            return Err(RsaKeyError::ModulusBits(bits));
        }
        let e = strip_leading_zeros(e);
        if e.len() > 8 {
            return Err(RsaKeyError::Exponent);
        }
        let e = e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        // e < n holds for every accepted modulus (n ≥ 2^(min_bits−1) > 2^33 when min_bits > 34);
        // check it anyway for small test limits.
        let e_below_n = bits > 64 || n.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) > e;
        if !(MIN_E..=MAX_E).contains(&e) || e % 2 == 0 || !e_below_n {
            return Err(RsaKeyError::Exponent);
        }
        let modulus = Modulus::new(n, e).map_err(|err| match err {
            ModulusError::Even => RsaKeyError::EvenModulus,
            ModulusError::TooLarge => RsaKeyError::ModulusBits(bits),
            ModulusError::ZeroExponent => RsaKeyError::Exponent,
        })?;
        Ok(RsaPublicKey {
            n: n.to_vec(),
            e,
            bits,
            modulus,
            spki: crate::der::rsa_spki_der(n, e),
        })
    }

    /// Modulus length in bytes: the only signature length accepted.
    pub fn size(&self) -> usize {
        self.n.len()
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Big-endian modulus without leading zeros.
    pub fn n(&self) -> &[u8] {
        &self.n
    }

    pub fn e(&self) -> u64 {
        self.e
    }

    /// The key as DER `SubjectPublicKeyInfo` (`src/crypto/der.rs`).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// RSAVP1: `s^e mod n` as `size()` bytes, for a signature of exactly `size()` bytes
    /// whose value is below n; None otherwise.
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.n.len() || signature >= self.n.as_slice() {
            return None;
        }
        self.modulus.pow(signature)
    }

    /// Verifies `signature` over `message` (hashed here with `hash`).
    pub fn verify(
        &self,
        padding: Padding,
        hash: HashAlg,
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Some(em) = self.public_op(signature) else {
            return false;
        };
        let m_hash = hash.digest(&[message]);
        match padding {
            Padding::Pkcs1v15 => pkcs1v15_matches(&em, hash, &m_hash),
            Padding::Pss => pss_matches(&em, self.bits - 1, hash, &m_hash),
        }
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &RsaPublicKey) -> bool {
        // Public values: plain equality (no timing concern).
        self.e == other.e && self.n == other.n
    }
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RSA-{} e={}", self.bits, self.e)
    }
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or(&[])
}

/// EMSA-PKCS1-v1_5: `EM == 00 01 FF…FF 00 || DigestInfo prefix || H`, byte for byte, with
/// at least 8 bytes of FF (RFC 8017 §9.2).
fn pkcs1v15_matches(em: &[u8], hash: HashAlg, m_hash: &[u8]) -> bool {
    let prefix = hash.digest_info_prefix();
    let t_len = prefix.len() + m_hash.len();
    let k = em.len();
    if k < t_len + 11 {
        return false;
    }
    let ps_len = k - t_len - 3;
    let expected = [0x00u8, 0x01]
        .iter()
        .chain(std::iter::repeat_n(&0xffu8, ps_len))
        .chain(std::iter::once(&0x00u8))
        .chain(prefix)
        .chain(m_hash);
    // Same length by construction; compare every byte without stopping early.
    let diff = em
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (got, want)| acc | (got ^ want));
    diff == 0
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) with MGF1 of the same hash and sLen = hLen.
/// `em_full` is the `k`-byte output of RSAVP1; `em_bits` = modBits − 1.
fn pss_matches(em_full: &[u8], em_bits: usize, hash: HashAlg, m_hash: &[u8]) -> bool {
    let h_len = hash.len();
    let s_len = h_len;
    let em_len = em_bits.div_ceil(8);
    // I2OSP(m, emLen): when emLen = k − 1 the dropped leading byte must be zero.
    let Some(drop) = em_full.len().checked_sub(em_len) else {
        return false;
    };
    let (lead, em) = match em_full.split_at_checked(drop) {
        Some(parts) => parts,
        None => return false,
    };
    if lead.iter().any(|b| *b != 0) {
        return false;
    }
    // Step 3.
    if em_len < h_len + s_len + 2 {
        return false;
    }
    // Steps 4–5: EM = maskedDB || H || 0xbc.
    let Some((&trailer, rest)) = em.split_last() else {
        return false;
    };
    if trailer != 0xbc {
        return false;
    }
    let Some((masked_db, h)) = rest.split_at_checked(em_len - h_len - 1) else {
        return false;
    };
    // Step 6: the top 8·emLen − emBits bits must be zero.
    let zero_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8 >> zero_bits;
    if masked_db.first().is_none_or(|b| b & !top_mask != 0) {
        return false;
    }
    // Steps 7–9: DB = maskedDB xor MGF1(H), top bits cleared.
    let mut db = masked_db.to_vec();
    mgf1_xor(hash, h, &mut db);
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    // Step 10: DB = 00…00 || 01 || salt.
    let ps_len = em_len - h_len - s_len - 2;
    let Some((ps, rest)) = db.split_at_checked(ps_len) else {
        return false;
    };
    let Some((&one, salt)) = rest.split_first() else {
        return false;
    };
    if ps.iter().any(|b| *b != 0) || one != 0x01 || salt.len() != s_len {
        return false;
    }
    // Steps 12–14: H' = Hash(00×8 || mHash || salt) must equal H.
    let h2 = hash.digest(&[&[0u8; 8], m_hash, salt]);
    h2.iter().zip(h).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0 && h2.len() == h.len()
}

/// `out ^= MGF1(seed, out.len())`.
fn mgf1_xor(hash: HashAlg, seed: &[u8], out: &mut [u8]) {
    let h_len = hash.len();
    for (counter, chunk) in out.chunks_mut(h_len).enumerate() {
        let c = (counter as u32).to_be_bytes();
        let mask = hash.digest(&[seed, &c]);
        for (o, m) in chunk.iter_mut().zip(mask) {
            *o ^= m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_checks_match_the_rsa_crate() {
        let mut n = vec![0xffu8; 256];
        n[255] = 0xf1;
        let e = [0x01, 0x00, 0x01];
        assert!(RsaPublicKey::new(&n, &e, 2048, 8192).is_ok());
        assert!(
            RsaPublicKey::new(&n[1..], &e, 2048, 8192).is_err(),
            "2040 bits"
        );
        let mut even = n.clone();
        even[255] = 0xf0;
        assert_eq!(
            RsaPublicKey::new(&even, &e, 2048, 8192).err(),
            Some(RsaKeyError::EvenModulus)
        );
        for bad_e in [&[][..], &[1], &[2], &[0x01, 0x00, 0x00], &[2, 0, 0, 0, 1]] {
            assert_eq!(
                RsaPublicKey::new(&n, bad_e, 2048, 8192).err(),
                Some(RsaKeyError::Exponent),
                "{bad_e:?}"
            );
        }
        assert!(RsaPublicKey::new(&n, &[1, 0xff, 0xff, 0xff, 0xff], 2048, 8192).is_ok());
        assert!(RsaPublicKey::new(&n, &[0, 0, 3], 2048, 8192).is_ok_and(|k| k.e() == 3));
    }

    #[test]
    fn wrong_length_and_out_of_range_signatures_are_refused() {
        let mut n = vec![0xffu8; 256];
        n[255] = 0xf1;
        let key = RsaPublicKey::new(&n, &[1, 0, 1], 2048, 8192).unwrap();
        assert!(key.public_op(&n).is_none(), "s = n");
        assert!(key.public_op(&[0xff; 256]).is_none(), "s > n");
        assert!(key.public_op(&[0x01; 255]).is_none(), "short");
        assert!(key.public_op(&[0x01; 257]).is_none(), "long");
        assert!(key.public_op(&[0x01; 256]).is_some());
        let one = {
            let mut v = vec![0u8; 256];
            v[255] = 1;
            v
        };
        assert_eq!(key.public_op(&one).unwrap(), one, "1^e = 1");
    }
}
