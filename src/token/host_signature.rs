//! RS* and ES256 signatures checked by the host: Envoy's `verify_signature` foreign
//! function, which runs BoringSSL's `EVP_DigestVerify` on a DER `SubjectPublicKeyInfo`
//! (source/extensions/common/wasm/foreign.cc). In Envoy's V8 the module's own code takes
//! about 50 µs per RS256 verify, the host about 18: what a cold token and a forged one cost
//! (bench/RESULTS.md, "RS256 through the host").
//!
//! Pure parts only: the arguments message, the result message, and a self-check a host must
//! pass before it is trusted. The call itself is `filter/host.rs`. PS* stays in the module:
//! the foreign function takes no padding, and BoringSSL's default for an RSA key is
//! PKCS#1 v1.5. EdDSA too: the function always names a hash, which Ed25519 does not take.

use crate::crypto::der;
use crate::crypto::p256::P256Key;
use crate::crypto::rsa::{HashAlg, RsaPublicKey};

/// A host that checks signatures: RSASSA-PKCS1-v1_5 for an RSA key, ECDSA for a P-256 key.
pub trait HostVerifier {
    /// `Some(valid)`: the host's verdict on `signature` (the RSA signature, or a DER
    /// `Ecdsa-Sig-Value`) over `message` hashed with `hash`, by the key `spki` (DER
    /// `SubjectPublicKeyInfo`); `None`: the host could not check (the module's own code
    /// decides).
    fn verify(&self, hash: HashAlg, spki: &[u8], message: &[u8], signature: &[u8]) -> Option<bool>;
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
    /// It refused a valid signature (of the algorithm named).
    RefusedValid(&'static str),
    /// It accepted a signature with one bit flipped, or over another message.
    AcceptedInvalid(&'static str),
}

impl std::fmt::Display for SelfCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SelfCheck::Unavailable => f.write_str("the host has no usable verify_signature"),
            SelfCheck::RefusedValid(alg) => write!(f, "the host refused a valid {alg} signature"),
            SelfCheck::AcceptedInvalid(alg) => {
                write!(f, "the host accepted an invalid {alg} signature")
            }
        }
    }
}

/// One algorithm's self-check: its key, a valid signature and the same with one bit flipped.
struct Probe<'a> {
    alg: &'static str,
    spki: &'a [u8],
    valid: Vec<u8>,
    flipped: Vec<u8>,
}

/// Asks `host` to check a known RS256 signature (2048-bit key, e = 65537) and a known ES256
/// one, each also with one bit flipped and over another message: a host is used only if it
/// accepts both valid ones and refuses every other.
pub fn self_check(host: &dyn HostVerifier) -> Result<(), SelfCheck> {
    let rsa =
        RsaPublicKey::new(&PROBE_N, &[1, 0, 1], 2048, 2048).map_err(|_| SelfCheck::Unavailable)?;
    let ec = p256::ecdsa::VerifyingKey::from_sec1_bytes(&PROBE_EC_POINT)
        .map(P256Key::new)
        .map_err(|_| SelfCheck::Unavailable)?;
    let (r, s) = PROBE_EC_SIGNATURE.split_at(32);
    let mut ec_flipped = PROBE_EC_SIGNATURE;
    if let Some(b) = ec_flipped.get_mut(40) {
        *b ^= 1; // in s
    }
    let (fr, fs) = ec_flipped.split_at(32);
    let mut rsa_flipped = PROBE_SIGNATURE;
    if let Some(b) = rsa_flipped.last_mut() {
        *b ^= 1;
    }
    let cases = [
        Probe {
            alg: "RS256",
            spki: rsa.spki_der(),
            valid: PROBE_SIGNATURE.to_vec(),
            flipped: rsa_flipped.to_vec(),
        },
        Probe {
            alg: "ES256",
            spki: ec.spki_der(),
            valid: der::ecdsa_signature_der(r, s),
            flipped: der::ecdsa_signature_der(fr, fs),
        },
    ];
    for p in &cases {
        let verdict = |message: &[u8], signature: &[u8]| {
            host.verify(HashAlg::Sha256, p.spki, message, signature)
                .ok_or(SelfCheck::Unavailable)
        };
        if !verdict(PROBE_MESSAGE, &p.valid)? {
            return Err(SelfCheck::RefusedValid(p.alg));
        }
        if verdict(PROBE_MESSAGE, &p.flipped)? || verdict(b"another message", &p.valid)? {
            return Err(SelfCheck::AcceptedInvalid(p.alg));
        }
    }
    Ok(())
}

/// The self-check's message; its RS256 signature by the key whose modulus is `PROBE_N`
/// (`openssl genrsa 2048`, `openssl dgst -sha256 -sign`) and its ES256 signature (`r || s`)
/// by the P-256 key `PROBE_EC_POINT` (`openssl ecparam -name prime256v1 -genkey`, the same
/// `dgst`, DER unwrapped). The private keys were not kept.
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

const PROBE_EC_POINT: [u8; 65] = [
    0x04, 0xfa, 0x7d, 0x69, 0x62, 0x0d, 0x9b, 0x3d, 0xf6, 0x03, 0x57, 0x63, 0x05, 0x61, 0x1e, 0x77,
    0x3b, 0xe8, 0x32, 0xa9, 0xb5, 0x2c, 0xbe, 0x3d, 0xd8, 0x6b, 0x9a, 0xd5, 0x94, 0x1f, 0x25, 0x8d,
    0x06, 0xfa, 0xed, 0xa1, 0xcf, 0xd1, 0xfe, 0x0e, 0x94, 0x8b, 0x9e, 0x44, 0x7a, 0x82, 0xd5, 0xfc,
    0x0c, 0x0f, 0x9d, 0x16, 0x29, 0x20, 0x15, 0xd3, 0x27, 0xfb, 0xb1, 0xf0, 0xcb, 0x78, 0x8a, 0xc5,
    0x64,
];
const PROBE_EC_SIGNATURE: [u8; 64] = [
    0xb1, 0x5c, 0x84, 0x32, 0x21, 0x4c, 0x5b, 0x77, 0x24, 0x99, 0x0d, 0x9f, 0xaf, 0x2d, 0x2c, 0xb8,
    0x70, 0x9b, 0xe0, 0xf4, 0x14, 0x2e, 0x5f, 0xe6, 0xa8, 0xe3, 0x4b, 0x15, 0xc4, 0xb7, 0x82, 0xe5,
    0x70, 0xfb, 0xa6, 0xac, 0x20, 0xe0, 0x1c, 0x68, 0x3a, 0xfc, 0xf6, 0xc7, 0x8e, 0xdc, 0x80, 0x73,
    0xbe, 0xe1, 0xd1, 0x74, 0xe0, 0x35, 0x5b, 0x6e, 0xa9, 0xf0, 0xc8, 0x8b, 0x70, 0x4a, 0x29, 0x83,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::rsa::Padding;

    fn rsa() -> RsaPublicKey {
        RsaPublicKey::new(&PROBE_N, &[1, 0, 1], 2048, 2048).unwrap()
    }

    fn ec() -> P256Key {
        P256Key::new(p256::ecdsa::VerifyingKey::from_sec1_bytes(&PROBE_EC_POINT).unwrap())
    }

    /// `r || s` back from a DER `Ecdsa-Sig-Value` (short lengths only, as P-256's are).
    fn raw(der: &[u8]) -> Vec<u8> {
        assert_eq!(der[0], 0x30);
        assert_eq!(usize::from(der[1]), der.len() - 2);
        let mut out = Vec::new();
        let mut at = 2;
        for _ in 0..2 {
            assert_eq!(der[at], 0x02);
            let len = usize::from(der[at + 1]);
            let digits = &der[at + 2..at + 2 + len];
            let digits = if digits.len() == 33 {
                &digits[1..]
            } else {
                digits
            };
            out.extend(std::iter::repeat_n(0, 32 - digits.len()));
            out.extend_from_slice(digits);
            at += 2 + len;
        }
        assert_eq!(at, der.len());
        out
    }

    /// Checks with the module's own code (the key found by its DER), counting calls.
    struct Own(std::cell::Cell<usize>);

    impl HostVerifier for Own {
        fn verify(
            &self,
            hash: HashAlg,
            spki: &[u8],
            message: &[u8],
            signature: &[u8],
        ) -> Option<bool> {
            self.0.set(self.0.get() + 1);
            // What the host gets must decode to what was asked.
            let args = encode_arguments(hash, spki, signature, message);
            assert_eq!(args.get(..8), Some(&b"\x0a\x06sha256"[..]));
            let (rsa, ec) = (rsa(), ec());
            if spki == rsa.spki_der() {
                Some(rsa.verify(Padding::Pkcs1v15, hash, message, signature))
            } else if spki == ec.spki_der() {
                Some(crate::crypto::p256::verify(&ec, message, &raw(signature)))
            } else {
                None
            }
        }
    }

    #[test]
    fn the_vectors_are_valid_and_the_self_check_passes_an_honest_host() {
        let own = Own(std::cell::Cell::new(0));
        assert_eq!(self_check(&own), Ok(()));
        assert_eq!(own.0.get(), 6);
    }

    #[test]
    fn the_self_check_refuses_broken_hosts() {
        struct Fixed(Option<bool>);
        impl HostVerifier for Fixed {
            fn verify(&self, _: HashAlg, _: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
                self.0
            }
        }
        assert_eq!(self_check(&Fixed(None)), Err(SelfCheck::Unavailable));
        assert_eq!(
            self_check(&Fixed(Some(false))),
            Err(SelfCheck::RefusedValid("RS256"))
        );
        assert_eq!(
            self_check(&Fixed(Some(true))),
            Err(SelfCheck::AcceptedInvalid("RS256"))
        );
        // A host that gets RSA right and accepts any ECDSA signature.
        struct RsaOnly(Own);
        impl HostVerifier for RsaOnly {
            fn verify(&self, h: HashAlg, spki: &[u8], m: &[u8], sig: &[u8]) -> Option<bool> {
                if spki == ec().spki_der() {
                    return Some(true);
                }
                self.0.verify(h, spki, m, sig)
            }
        }
        let host = RsaOnly(Own(std::cell::Cell::new(0)));
        assert_eq!(self_check(&host), Err(SelfCheck::AcceptedInvalid("ES256")));
        assert_eq!(
            SelfCheck::AcceptedInvalid("ES256").to_string(),
            "the host accepted an invalid ES256 signature"
        );
    }

    #[test]
    fn the_key_encodings_are_openssls() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        // `openssl rsa -pubout -outform DER` of the RS256 key, around its modulus.
        let rsa = rsa();
        let der = rsa.spki_der();
        assert_eq!(der.len(), 294);
        assert_eq!(
            hex(&der[..33]),
            "30820122300d06092a864886f70d01010105000382010f003082010a0282010100"
        );
        assert_eq!(&der[33..289], &PROBE_N[..]);
        assert_eq!(hex(&der[289..]), "0203010001");
        // `openssl ec -pubout -outform DER` of the ES256 key, before its point.
        let ec = ec();
        let der = ec.spki_der();
        assert_eq!(
            hex(&der[..26]),
            "3059301306072a8648ce3d020106082a8648ce3d030107034200"
        );
        assert_eq!(&der[26..], &PROBE_EC_POINT[..]);
        // The signature as `openssl dgst -sha256 -sign` wrote it.
        let (r, s) = PROBE_EC_SIGNATURE.split_at(32);
        assert_eq!(
            hex(&der::ecdsa_signature_der(r, s)),
            "3045022100b15c8432214c5b7724990d9faf2d2cb8709be0f4142e5fe6a8e34b15c4b782e5\
             022070fba6ac20e01c683afcf6c78edc8073bee1d174e0355b6ea9f0c88b704a2983"
        );
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
        let eleven = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(decode_result(&eleven), None);
    }
}
