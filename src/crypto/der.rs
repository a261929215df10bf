//! The DER forms Envoy's `verify_signature` foreign function takes (BoringSSL's
//! `EVP_parse_public_key` and `ECDSA_verify`): an RSA or a P-256 public key as
//! `SubjectPublicKeyInfo` (RFC 5280 §4.1, RFC 8017 A.1.1, RFC 5480 §2), built once per key
//! when the key set is parsed, and an ECDSA signature as `Ecdsa-Sig-Value` (RFC 3279 §2.2.3).

/// `rsaEncryption` (1.2.840.113549.1.1.1) with its NULL parameters, as an AlgorithmIdentifier.
const RSA_ALGORITHM: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// `id-ecPublicKey` (1.2.840.10045.2.1) on `prime256v1` (1.2.840.10045.3.1.7).
const P256_ALGORITHM: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// DER of `SEQUENCE { id-ecPublicKey prime256v1, BIT STRING { 04 || x || y } }`.
pub fn p256_spki_der(x: &[u8; 32], y: &[u8; 32]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(66);
    bits.extend_from_slice(&[0, 4]); // no unused bits; an uncompressed point
    bits.extend_from_slice(x);
    bits.extend_from_slice(y);
    let mut body = P256_ALGORITHM.to_vec();
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// A JWS ECDSA signature (`r || s`, each 32 bytes big-endian) as DER
/// `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_signature_der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(r.len() + s.len() + 6);
    integer(&mut content, r);
    integer(&mut content, s);
    tlv(0x30, &content)
}

/// DER of `SEQUENCE { rsaEncryption, BIT STRING { SEQUENCE { INTEGER n, INTEGER e } } }`.
/// `n` is big-endian (leading zeros are dropped).
pub fn rsa_spki_der(n: &[u8], e: u64) -> Vec<u8> {
    let e_bytes = e.to_be_bytes();
    let mut key = Vec::with_capacity(n.len() + 24);
    integer(&mut key, n);
    integer(&mut key, &e_bytes);
    let rsa_public_key = tlv(0x30, &key);
    let mut bits = Vec::with_capacity(rsa_public_key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(&rsa_public_key);
    let mut body = RSA_ALGORITHM.to_vec();
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// A non-negative INTEGER: minimal, with a zero byte first when the top bit is set.
fn integer(out: &mut Vec<u8>, be: &[u8]) {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let digits = be.get(start..).unwrap_or(&[]);
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| *b >= 0x80) {
        content.push(0); // zero itself, or a positive value with its top bit set
    }
    content.extend_from_slice(digits);
    out.extend(tlv(0x02, &content));
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let digits = bytes.get(start..).unwrap_or(&[]);
        out.push(0x80 | digits.len() as u8);
        out.extend_from_slice(digits);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // The 2048-bit RSA key and the P-256 key against OpenSSL's encodings:
    // src/token/host_signature.rs's tests.
    #[test]
    fn short_forms_and_small_integers() {
        // n = 0x7f (no zero byte), e = 3; n = 0x80 (zero byte first).
        assert_eq!(
            rsa_spki_der(&[0x7f], 3),
            [
                &RSA_ALGORITHM[..],
                &[0x03, 0x09, 0x00, 0x30, 0x06, 0x02, 0x01, 0x7f, 0x02, 0x01, 0x03]
            ]
            .iter()
            .fold(vec![0x30, 0x1a], |mut v, p| {
                v.extend_from_slice(p);
                v
            })
        );
        let der = rsa_spki_der(&[0x80], 65537);
        assert!(der.ends_with(&[0x02, 0x02, 0x00, 0x80, 0x02, 0x03, 0x01, 0x00, 0x01]));
    }

    #[test]
    fn ecdsa_signatures_are_minimal_integers() {
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r[31] = 1;
        s[0] = 0x80; // top bit set: a zero byte first
        let der = ecdsa_signature_der(&r, &s);
        assert_eq!(der.get(..5), Some(&[0x30, 0x26, 0x02, 0x01, 0x01][..]));
        assert_eq!(der.get(5..8), Some(&[0x02, 0x21, 0x00][..]));
        assert_eq!(der.len(), 2 + 3 + 35);
        // Zero stays a one-byte INTEGER (BoringSSL then refuses r = 0 as ECDSA does).
        assert_eq!(
            ecdsa_signature_der(&[0; 32], &r),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]
        );
    }
}
