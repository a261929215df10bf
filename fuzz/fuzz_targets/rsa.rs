//! RSA signature verification against the `rsa` 0.10 crate (the reference): for three fixed
//! public keys (2048 bits; 2049 bits, where the PSS encoding is one byte shorter than the
//! modulus; 2048 bits with e = 3), fuzzed algorithm, signature and message must get the same
//! accept/reject from `signature::verify` as from `rsa` 0.10, and RSAVP1 (`s^e mod n`) must
//! give the same bytes. Input: [key·alg selector][length selector][signature…][message…].
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_edge_auth::keys::jwks::PublicKey;
use mcp_edge_auth::crypto::rsa::RsaPublicKey;
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::token::signature::verify;
use std::sync::OnceLock;

/// (n, e) in hex.
const KEYS: [(&str, &str); 3] = [
    (
        "c2de69941ed3f69460d92c19110fc7fcd55424ab09b85a0d157ef62f09bc0233d191fc5690800d16f932f82c5063480ec038a1c55496d5aa9aa2aaddb41efc74ccb2d56892fb5cf072bc741c948770163391bc6aaaf745c15a961b6c6f6e2712335d6c633c78b1c267cf872b8d472b4f07ac479d68c744e4bc43c043a3263b495bd4707f33187f65a5cc60fca3390d8524ad74c5cc0e7a637fe1e25d025141bb297f117139d9f9f4b0650b3ec68c170725b3176ed510e3c794b07af5326b190d42b07465eb7bd5c38ac6f00eb30e2a69ffd5b50968c48f2dd8213d31b46e0eb8f73f105f2ca1ef602aaaddd4255dcccfc5ba9ec74415442c035381745c00cc53",
        "10001",
    ),
    (
        "186787d0df3a62a8f781d47473aa39618e72f856bfad70fc979ca8cac0ec50ec289965b58426909640436d839501952e71f0053a445d865356b744a27d36a30d3e3a6d6f60080f606d50eac6a57739a99e17c8a29017653299f51af95204a4a9bf7ffca1332e9ec6749fdde7cfcf06f0779f58706a3dcbba1a766fc6c0dc7e9d6aae04d95c344d515274fdd6984234cd11aea0ec7934adcc911833e4845eda8f4b39842935e1754a54657c004d8e856f42eb35c837886617c4e4747a5dd8e70008f2697b3f9b4f455baaa6ae20181375668d845b975a1e4dd03614d88f1a784b0872de6187a26902af7bdf58c840bbc50e6a4373ca8b2ed0e5a5e2aa9776b829b",
        "10001",
    ),
    (
        "c5c3f21f234e31ca5a8311c6bc5c9f1b6808b7abef48dd23110c4e11a320a7a9275a868a45bf611a26e8708c8bfb313c1f35f1d27124078f41360acabf7833f062eeec75b11954e09455a7e0bdb70300e5ba9ee519109a8898225096b5a66e0f09b8fa735d0cc6813ef285ab08df114291af162f3bf2a97885aea63aaf3b9c3c50244dc80c36ef41642fead4cab4f2ffa05ca5ca6692eac538023da4dcbf6a4d7bdba06423ff9bbef49d3ef373f70c95a70ad0f66d125ec8c07f737ddc4bc1e816c186697245f2b32d1546e0c8ae930542c37b434eddfd5d0bfd5e49bfd457f3a2b96a36d1214febecdaaa158b37ddcb05a419d5d7ab7410714c090565e19c21",
        "3",
    ),
];

const ALGS: [Alg; 6] = [Alg::Rs256, Alg::Rs384, Alg::Rs512, Alg::Ps256, Alg::Ps384, Alg::Ps512];

fn hex(s: &str) -> Vec<u8> {
    let s = if s.len() % 2 == 1 { format!("0{s}") } else { s.to_string() };
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn keys() -> &'static Vec<(PublicKey, rsa10::PublicKey)> {
    static K: OnceLock<Vec<(PublicKey, rsa10::PublicKey)>> = OnceLock::new();
    K.get_or_init(|| {
        KEYS.iter()
            .map(|(n, e)| {
                let (n, e) = (hex(n), hex(e));
                let ours = PublicKey::Rsa(std::sync::Arc::new(
                    RsaPublicKey::new(&n, &e, 2048, 8192).unwrap(),
                ));
                let theirs = rsa10::PublicKey::new_with_size_limits(
                    rsa10::BoxedUint::from_be_slice_vartime(&n),
                    rsa10::BoxedUint::from_be_slice_vartime(&e),
                    2048..=8192,
                )
                .unwrap();
                (ours, theirs)
            })
            .collect()
    })
}

fn reference(alg: Alg, key: &rsa10::PublicKey, message: &[u8], signature: &[u8]) -> bool {
    use rsa10::sha2::{Digest, Sha256, Sha384, Sha512};
    use rsa10::traits::PublicKeyParts;
    use rsa10::{Pkcs1v15Sign, Pss};
    if signature.len() != key.size() {
        return false;
    }
    match alg {
        Alg::Rs256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message), signature),
        Alg::Rs384 => key.verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message), signature),
        Alg::Rs512 => key.verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message), signature),
        Alg::Ps256 => key.verify(Pss::<Sha256>::new_with_salt(32), &Sha256::digest(message), signature),
        Alg::Ps384 => key.verify(Pss::<Sha384>::new_with_salt(48), &Sha384::digest(message), signature),
        Alg::Ps512 => key.verify(Pss::<Sha512>::new_with_salt(64), &Sha512::digest(message), signature),
        _ => return false,
    }
    .is_ok()
}

fuzz_target!(|data: &[u8]| {
    let (Some(&sel), Some(&len_sel)) = (data.first(), data.get(1)) else {
        return;
    };
    let (ours, theirs) = &keys()[usize::from(sel) % 3];
    let alg = ALGS[usize::from(sel / 3) % 6];
    let PublicKey::Rsa(fast) = ours else { return };
    let k = fast.size();
    let sig_len = match len_sel {
        0..=249 => k,
        250..=252 => k - usize::from(253 - len_sel),
        253 => k + 1,
        254 => 0,
        255 => k + 2,
    };
    let rest = &data[2..];
    let mut sig = rest[..sig_len.min(rest.len())].to_vec();
    sig.resize(sig_len, 0);
    let message = &rest[sig_len.min(rest.len())..];

    let a = verify(alg, ours, message, &sig);
    let b = reference(alg, theirs, message, &sig);
    assert_eq!(a, b, "{alg}: fast {a}, rsa 0.10 {b}");

    // RSAVP1 itself, for any s below n.
    use rsa10::traits::PublicKeyParts;
    let below_n = sig.len() == k && sig.as_slice() < fast.n();
    if below_n {
        let s = rsa10::BoxedUint::from_be_slice(&sig, theirs.n_bits_precision()).unwrap();
        let m = rsa10::hazmat::rsa_encrypt(theirs, &s).unwrap();
        let want = m.to_be_bytes();
        let want = &want[want.len() - k..];
        assert_eq!(fast.public_op(&sig).as_deref(), Some(want));
    } else {
        assert!(fast.public_op(&sig).is_none());
    }
});
