//! RS* signatures checked by the host: Envoy's `verify_signature` foreign function, which
//! runs BoringSSL's `EVP_DigestVerify` on a DER `SubjectPublicKeyInfo`
//! (source/extensions/common/wasm/foreign.cc). In Envoy's V8 the module's own RSA code takes
//! about 45 µs per RS256 verify, BoringSSL natively about 17: what a cold token and a forged
//! one cost (bench/RESULTS.md, "RS256 through the host").
//!
//! Pure parts only: the arguments message, the result message, and a self-check a host must
//! pass before it is trusted. The call itself is `filter/host.rs`. Only PKCS#1 v1.5 goes
//! this way: the foreign function takes no padding, so PS* stays in the module.

use crate::crypto::rsa::{HashAlg, RsaPublicKey};

/// A host that checks RSASSA-PKCS1-v1_5 signatures.
pub trait HostVerifier {
    /// `Some(valid)`: the host's verdict on `signature` over `message`; `None`: the host
    /// could not check (the module's own code decides).
    fn verify_pkcs1(
        &self,
        hash: HashAlg,
        key: &RsaPublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Option<bool>;
}

/// The hash name the foreign function takes.
pub fn hash_name(hash: HashAlg) -> &'static str {
    match hash {
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
        HashAlg::Sha512 => "sha512",
    }
}

/// `VerifySignatureArguments` (proto3): `hash_function` = 1, `public_key` (DER) = 2,
/// `signature` = 3, `text` = 4.
pub fn encode_arguments(hash: HashAlg, key_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let name = hash_name(hash).as_bytes();
    let mut out =
        Vec::with_capacity(name.len() + key_der.len() + signature.len() + text.len() + 16);
    for (field, value) in [(1u8, name), (2, key_der), (3, signature), (4, text)] {
        out.push((field << 3) | 2); // length-delimited
        varint(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// `VerifySignatureResult` (proto3): `result` = 1 (bool), `error` = 2 (string). proto3 leaves
/// out a false `result`, so an empty message is a refusal. `None` if the bytes are not such
/// a message.
pub fn decode_result(bytes: &[u8]) -> Option<bool> {
    let mut at = 0;
    let mut result = false;
    while at < bytes.len() {
        let key = read_varint(bytes, &mut at)?;
        match (key >> 3, key & 7) {
            (1, 0) => result = read_varint(bytes, &mut at)? != 0,
            (_, 0) => {
                read_varint(bytes, &mut at)?;
            }
            (_, 2) => {
                let len = usize::try_from(read_varint(bytes, &mut at)?).ok()?;
                at = at.checked_add(len).filter(|end| *end <= bytes.len())?;
            }
            _ => return None,
        }
    }
    Some(result)
}

/// What the self-check found wrong with a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfCheck {
    /// The host could not check (no such foreign function, or it refused the arguments).
    Unavailable,
    /// It refused a valid signature.
    RefusedValid,
    /// It accepted a signature with one bit flipped, or over another message.
    AcceptedInvalid,
}

impl std::fmt::Display for SelfCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SelfCheck::Unavailable => "the host has no usable verify_signature",
            SelfCheck::RefusedValid => "the host refused a valid RS256 signature",
            SelfCheck::AcceptedInvalid => "the host accepted an invalid RS256 signature",
        })
    }
}

/// Asks `host` to check a known RS256 signature (2048-bit key, e = 65537), the same with one
/// bit flipped, and the valid one over another message: a host is used only if it accepts
/// the first and refuses the others.
pub fn self_check(host: &dyn HostVerifier) -> Result<(), SelfCheck> {
    let key =
        RsaPublicKey::new(&PROBE_N, &[1, 0, 1], 2048, 2048).map_err(|_| SelfCheck::Unavailable)?;
    let verdict = |message: &[u8], signature: &[u8]| {
        host.verify_pkcs1(HashAlg::Sha256, &key, message, signature)
            .ok_or(SelfCheck::Unavailable)
    };
    if !verdict(PROBE_MESSAGE, &PROBE_SIGNATURE)? {
        return Err(SelfCheck::RefusedValid);
    }
    let mut flipped = PROBE_SIGNATURE;
    if let Some(b) = flipped.last_mut() {
        *b ^= 1;
    }
    if verdict(PROBE_MESSAGE, &flipped)? || verdict(b"another message", &PROBE_SIGNATURE)? {
        return Err(SelfCheck::AcceptedInvalid);
    }
    Ok(())
}

/// The self-check's message, and its RS256 signature by the key whose modulus is
/// `PROBE_N` (made with `openssl genrsa 2048` and `openssl dgst -sha256 -sign`; the private
/// key was not kept).
const PROBE_MESSAGE: &[u8] = b"mcp-edge-auth host signature self-check";
const PROBE_N: [u8; 256] = [
    0x9f, 0xb1, 0x16, 0xf8, 0xf0, 0x4e, 0x99, 0x78, 0x3b, 0x3d, 0x02, 0xe0, 0x08, 0xf8, 0x59, 0x31,
    0xbc, 0xf0, 0x9c, 0x83, 0x84, 0x94, 0x8b, 0xbf, 0xaf, 0x11, 0xd3, 0x4f, 0xad, 0x89, 0xa2, 0x44,
    0xd5, 0xff, 0x48, 0xe3, 0xc8, 0x2b, 0x54, 0xc7, 0x4d, 0xed, 0x1b, 0xad, 0xf8, 0x08, 0x51, 0x92,
    0x71, 0x2b, 0x31, 0x64, 0xa1, 0xac, 0x3e, 0xe8, 0x7b, 0x34, 0x88, 0x7d, 0x45, 0xa9, 0xd7, 0xb8,
    0x29, 0x2c, 0x70, 0xeb, 0x09, 0x06, 0x2f, 0xb3, 0x49, 0x41, 0x81, 0x54, 0x6d, 0x99, 0xc1, 0x8d,
    0x4e, 0x74, 0x05, 0xf3, 0x47, 0x76, 0xdc, 0x4f, 0xc1, 0xd4, 0x49, 0xb6, 0x65, 0xcc, 0xa9, 0x9b,
    0x3b, 0x88, 0x21, 0xe5, 0x5c, 0xa4, 0x5d, 0x5a, 0x1d, 0x0e, 0xf5, 0x42, 0xed, 0x78, 0xe8, 0x4b,
    0xf6, 0x44, 0x0c, 0x73, 0x49, 0x9b, 0x8f, 0x0d, 0xbc, 0xc9, 0xad, 0x41, 0xfe, 0x13, 0xb6, 0x8d,
    0xe3, 0x14, 0xca, 0x32, 0x96, 0xd7, 0xdd, 0x82, 0xc9, 0x94, 0xec, 0x70, 0x75, 0x39, 0x68, 0x7a,
    0x65, 0x60, 0x82, 0x01, 0xe0, 0x31, 0xda, 0x53, 0x46, 0x03, 0xe9, 0x3a, 0x6a, 0x7e, 0x3a, 0xd7,
    0x77, 0x17, 0xf7, 0x2f, 0x9c, 0x63, 0xf3, 0x37, 0xc4, 0xd6, 0x74, 0xd8, 0x13, 0x74, 0xfd, 0x89,
    0x96, 0x55, 0x60, 0x26, 0xa8, 0xc1, 0xa6, 0x8e, 0xad, 0xe6, 0xab, 0x29, 0x93, 0x56, 0xf0, 0x3b,
    0x28, 0x0f, 0x64, 0xcd, 0xdb, 0xd4, 0xd1, 0x42, 0x87, 0x18, 0xb2, 0x92, 0x48, 0x6a, 0x63, 0x83,
    0xf5, 0xe1, 0xa1, 0x9c, 0xaf, 0x40, 0xe4, 0x50, 0x5d, 0xe1, 0x6c, 0x09, 0x61, 0xc9, 0xc7, 0xbe,
    0xbf, 0x4a, 0xab, 0x87, 0x2e, 0x92, 0x7c, 0x51, 0x3e, 0x9a, 0xbd, 0x3d, 0x9f, 0x8d, 0xa5, 0x2d,
    0xed, 0x4d, 0xd7, 0xf2, 0xcd, 0x79, 0x72, 0x8d, 0x8c, 0xfe, 0xe0, 0xa0, 0x66, 0x1a, 0xaf, 0xf9,
];
const PROBE_SIGNATURE: [u8; 256] = [
    0x20, 0x91, 0xa6, 0xf8, 0xcb, 0x9c, 0xdc, 0x8e, 0x76, 0x64, 0x0b, 0xf9, 0x18, 0xa9, 0x38, 0x57,
    0xf6, 0xce, 0xe1, 0xd3, 0xfa, 0x6d, 0x1c, 0xfe, 0xd8, 0x31, 0xb0, 0x24, 0xb8, 0x18, 0xaf, 0xb7,
    0x4e, 0xca, 0xf6, 0x00, 0xf7, 0xe0, 0x3d, 0xa8, 0xf2, 0xca, 0x44, 0x61, 0xeb, 0xee, 0x88, 0xde,
    0x27, 0x76, 0x0f, 0xc4, 0xa8, 0x52, 0xd3, 0xe1, 0xf7, 0x9d, 0x6a, 0x1d, 0x7c, 0x61, 0x83, 0xa2,
    0x12, 0x12, 0xa8, 0x99, 0x4a, 0x82, 0xeb, 0x0e, 0xea, 0x4d, 0x0b, 0x64, 0x20, 0xf2, 0xad, 0xe6,
    0xff, 0x8a, 0x98, 0x5b, 0xd0, 0x53, 0x09, 0x88, 0xf2, 0x85, 0x9c, 0xfb, 0x1e, 0xc8, 0x31, 0x60,
    0xe3, 0xa7, 0x45, 0x0f, 0x3d, 0xbf, 0x29, 0x61, 0x03, 0x31, 0x93, 0xaa, 0x3a, 0xc5, 0xd5, 0x1d,
    0xb3, 0xc6, 0xbc, 0x9f, 0x25, 0x83, 0x24, 0xf9, 0x9a, 0x4b, 0x8c, 0x42, 0x1a, 0x4a, 0xa2, 0xe6,
    0xd8, 0xf0, 0xf5, 0x76, 0x64, 0x8c, 0x2c, 0x32, 0xd0, 0x8c, 0x9b, 0x6b, 0x27, 0x14, 0x33, 0x8b,
    0x4c, 0xe5, 0xd4, 0x13, 0x7c, 0xd4, 0xd4, 0xf7, 0x69, 0xdc, 0x5a, 0xa3, 0x99, 0x2f, 0x25, 0x29,
    0xf0, 0x4a, 0xa5, 0xc6, 0x95, 0x5e, 0xf6, 0x30, 0xed, 0x40, 0x2c, 0x93, 0xf4, 0x6d, 0xa0, 0x35,
    0xf0, 0xa9, 0xc2, 0x09, 0x8d, 0x48, 0x66, 0x40, 0xae, 0x5c, 0xde, 0x39, 0x8a, 0x5b, 0x32, 0xe8,
    0xe6, 0xfe, 0x9e, 0x18, 0xac, 0x7c, 0xc6, 0xe4, 0xd0, 0x87, 0xae, 0xa9, 0xe5, 0xeb, 0x09, 0x4a,
    0x4e, 0xc5, 0x57, 0xd3, 0xe3, 0x27, 0xfa, 0x68, 0x81, 0x6f, 0x8e, 0x81, 0x57, 0x4c, 0x3b, 0xe8,
    0xec, 0xba, 0xa7, 0x7b, 0x77, 0x00, 0x3c, 0x10, 0x39, 0xcc, 0xb3, 0xaa, 0xd8, 0xc7, 0x25, 0x4c,
    0x30, 0x57, 0x1d, 0x23, 0x8a, 0xfc, 0xb9, 0x45, 0x5a, 0x00, 0xb1, 0xb2, 0x77, 0xd9, 0x7a, 0x73,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks with the module's own RSA code, counting calls.
    struct Own(std::cell::Cell<usize>);

    impl HostVerifier for Own {
        fn verify_pkcs1(
            &self,
            hash: HashAlg,
            key: &RsaPublicKey,
            message: &[u8],
            signature: &[u8],
        ) -> Option<bool> {
            self.0.set(self.0.get() + 1);
            // What the host gets must decode to what was asked.
            let args = encode_arguments(hash, key.spki_der(), signature, message);
            assert_eq!(args.get(..8), Some(&b"\x0a\x06sha256"[..]));
            Some(key.verify(
                crate::crypto::rsa::Padding::Pkcs1v15,
                hash,
                message,
                signature,
            ))
        }
    }

    #[test]
    fn the_vector_is_valid_and_the_self_check_passes_an_honest_host() {
        let own = Own(std::cell::Cell::new(0));
        assert_eq!(self_check(&own), Ok(()));
        assert_eq!(own.0.get(), 3);
    }

    #[test]
    fn the_self_check_refuses_broken_hosts() {
        struct Fixed(Option<bool>);
        impl HostVerifier for Fixed {
            fn verify_pkcs1(
                &self,
                _: HashAlg,
                _: &RsaPublicKey,
                _: &[u8],
                _: &[u8],
            ) -> Option<bool> {
                self.0
            }
        }
        assert_eq!(self_check(&Fixed(None)), Err(SelfCheck::Unavailable));
        assert_eq!(
            self_check(&Fixed(Some(false))),
            Err(SelfCheck::RefusedValid)
        );
        assert_eq!(
            self_check(&Fixed(Some(true))),
            Err(SelfCheck::AcceptedInvalid)
        );
    }

    #[test]
    fn the_key_encoding_is_openssls() {
        // `openssl rsa -pubout -outform DER` of the self-check key, around its modulus.
        let head = "30820122300d06092a864886f70d01010105000382010f003082010a0282010100";
        let tail = "0203010001";
        let key = RsaPublicKey::new(&PROBE_N, &[1, 0, 1], 2048, 2048).unwrap();
        let der = key.spki_der();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(der.len(), 294);
        assert_eq!(hex(&der[..33]), head);
        assert_eq!(&der[33..289], &PROBE_N[..]);
        assert_eq!(hex(&der[289..]), tail);
    }

    #[test]
    fn arguments_are_proto3_with_long_lengths() {
        let text = vec![b'x'; 300];
        let args = encode_arguments(HashAlg::Sha384, &[1, 2], &[3], &text);
        let mut want = b"\x0a\x06sha384\x12\x02\x01\x02\x1a\x01\x03\x22\xac\x02".to_vec();
        want.extend_from_slice(&text);
        assert_eq!(args, want);
    }

    #[test]
    fn results_decode_strictly() {
        assert_eq!(decode_result(b"\x08\x01"), Some(true));
        assert_eq!(decode_result(b""), Some(false));
        assert_eq!(decode_result(b"\x12\x04oops"), Some(false));
        assert_eq!(decode_result(b"\x08\x00\x12\x02no"), Some(false));
        assert_eq!(decode_result(b"\x12\x02ok\x08\x01"), Some(true));
        // Truncated or malformed: not a verdict.
        assert_eq!(decode_result(b"\x08"), None);
        assert_eq!(decode_result(b"\x12\x05oops"), None);
        assert_eq!(decode_result(b"\x0d\x00\x00\x00\x00"), None);
        assert_eq!(
            decode_result(&[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]),
            None
        );
    }
}
