//! An RSA public key as DER `SubjectPublicKeyInfo` (RFC 5280 §4.1, RFC 8017 A.1.1): the form
//! Envoy's `verify_signature` foreign function takes (BoringSSL's `EVP_parse_public_key`).
//! Built once per key, when the key set is parsed.

/// `rsaEncryption` (1.2.840.113549.1.1.1) with its NULL parameters, as an AlgorithmIdentifier.
const RSA_ALGORITHM: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

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

    // The 2048-bit case against OpenSSL's encoding: src/token/host_signature.rs's tests.
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
}
