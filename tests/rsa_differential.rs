//! Differential tests of the filter's RSA verification (`src/crypto/rsa.rs`, `src/crypto/modexp.rs`,
//! reached through `signature::verify`) against the `rsa` 0.10 crate, the verifier it
//! replaced: identical accept/reject on valid and corrupted RS*/PS* signatures over many keys.
//!
//! `rsa_differential_quick` (always on) uses 6 keys; `rsa_differential_full` (`#[ignore]`,
//! `make rsa-diff`, release mode) uses RSA_DIFF_KEYS keys (default 300). Keys are generated
//! once with `rsa` 0.9 and cached in target/rsa-diff-keys/. Signatures are made with `rsa` 0.9;
//! corrupted encodings are signed with the raw private-key operation so that RSAVP1 yields
//! exactly the crafted EM.

// Test code: helpers fail the test by panicking.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::sync::Mutex;

use mcp_edge_auth::crypto::rsa::RsaPublicKey;
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::keys::jwks::PublicKey;
use mcp_edge_auth::token::signature::verify;
use rand::{rngs::StdRng, Rng, RngCore, SeedableRng};
use rsa09::traits::{PrivateKeyParts, PublicKeyParts};
use rsa09::{BigUint, RsaPrivateKey};

/// Every RSA algorithm the filter knows (RS*/PS*), from its own list.
fn rsa_algs() -> Vec<Alg> {
    Alg::ALL.into_iter().filter(|a| a.is_rsa()).collect()
}

#[path = "../bench/verify/src/rsa10_reference.rs"]
mod rsa10_reference;
use rsa10_reference::rsa10_verify as reference;

fn sign(
    alg: Alg,
    key: &RsaPrivateKey,
    message: &[u8],
    salt: Option<usize>,
    rng: &mut StdRng,
) -> Vec<u8> {
    use rsa09::sha2::{Digest, Sha256, Sha384, Sha512};
    use rsa09::{Pkcs1v15Sign, Pss};
    let r = match alg {
        Alg::Rs256 => key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message)),
        Alg::Rs384 => key.sign(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(message)),
        Alg::Rs512 => key.sign(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(message)),
        Alg::Ps256 => key.sign_with_rng(
            rng,
            Pss::new_with_salt::<Sha256>(salt.unwrap_or(32)),
            &Sha256::digest(message),
        ),
        Alg::Ps384 => key.sign_with_rng(
            rng,
            Pss::new_with_salt::<Sha384>(salt.unwrap_or(48)),
            &Sha384::digest(message),
        ),
        Alg::Ps512 => key.sign_with_rng(
            rng,
            Pss::new_with_salt::<Sha512>(salt.unwrap_or(64)),
            &Sha512::digest(message),
        ),
        _ => unreachable!(),
    };
    r.unwrap()
}

fn be(x: &BigUint, len: usize) -> Vec<u8> {
    let b = x.to_bytes_be();
    let mut out = vec![0u8; len.saturating_sub(b.len())];
    out.extend_from_slice(&b);
    out
}

/// The signature whose RSAVP1 is exactly `em` (which must be below n).
fn raw_sign(key: &RsaPrivateKey, em: &[u8], rng: &mut StdRng) -> Vec<u8> {
    let s =
        rsa09::hazmat::rsa_decrypt_and_check(key, Some(rng), &BigUint::from_bytes_be(em)).unwrap();
    be(&s, key.size())
}

/// RSAVP1 of a signature (to obtain a valid EM to corrupt).
fn raw_open(key: &RsaPrivateKey, sig: &[u8]) -> Vec<u8> {
    let m = BigUint::from_bytes_be(sig).modpow(key.e(), key.n());
    be(&m, key.size())
}

fn pkcs1_prefix(alg: Alg) -> Vec<u8> {
    let (tag, len) = match alg {
        Alg::Rs256 | Alg::Ps256 => (1u8, 32u8),
        Alg::Rs384 | Alg::Ps384 => (2, 48),
        _ => (3, 64),
    };
    vec![
        0x30,
        17 + len,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        tag,
        0x05,
        0x00,
        0x04,
        len,
    ]
}

fn digest(alg: Alg, m: &[u8]) -> Vec<u8> {
    use rsa09::sha2::{Digest, Sha256, Sha384, Sha512};
    match alg {
        Alg::Rs256 | Alg::Ps256 => Sha256::digest(m).to_vec(),
        Alg::Rs384 | Alg::Ps384 => Sha384::digest(m).to_vec(),
        _ => Sha512::digest(m).to_vec(),
    }
}

/// PKCS#1 v1.5 encodings that are wrong in one way each (k bytes).
fn bad_pkcs1_ems(alg: Alg, k: usize, msg: &[u8], rng: &mut StdRng) -> Vec<(&'static str, Vec<u8>)> {
    let h = digest(alg, msg);
    let prefix = pkcs1_prefix(alg);
    let build = |first: u8, bt: u8, ps_len: usize, sep: u8, prefix: &[u8], tail: &[u8]| {
        let mut em = vec![first, bt];
        em.extend(std::iter::repeat_n(0xff, ps_len));
        em.push(sep);
        em.extend_from_slice(prefix);
        em.extend_from_slice(&h);
        em.extend_from_slice(tail);
        em.resize(k, 0);
        em
    };
    let t = prefix.len() + h.len();
    let ps = k - t - 3;
    let mut out = vec![
        ("correct", build(0, 1, ps, 0, &prefix, &[])),
        ("block type 2", build(0, 2, ps, 0, &prefix, &[])),
        ("separator 01", build(0, 1, ps, 1, &prefix, &[])),
        (
            "garbage after hash",
            build(0, 1, 8, 0, &prefix, &vec![0xab; ps - 8]),
        ),
        ("NULL omitted", {
            let mut p = prefix.clone();
            p.remove(16);
            p.remove(15);
            p[1] -= 2;
            p[3] -= 2;
            build(0, 1, ps + 2, 0, &p, &[])
        }),
        ("other hash OID", {
            let mut p = prefix.clone();
            p[14] = if p[14] == 1 { 2 } else { 1 };
            build(0, 1, ps, 0, &p, &[])
        }),
    ];
    let mut fe = build(0, 1, ps, 0, &prefix, &[]);
    fe[2 + rng.gen_range(0..ps)] = 0xfe;
    out.push(("FE in PS", fe));
    let mut flip = build(0, 1, ps, 0, &prefix, &[]);
    let bit = rng.gen_range(8..k * 8); // keep the top byte 0 so EM < n
    flip[bit / 8] ^= 1 << (bit % 8);
    out.push(("EM bit flip", flip));
    out
}

struct Tally {
    cases: usize,
    accepted: usize,
    mismatches: Vec<String>,
}

impl Tally {
    fn check(
        &mut self,
        what: &str,
        alg: Alg,
        fast: &PublicKey,
        refk: &rsa10::PublicKey,
        msg: &[u8],
        sig: &[u8],
    ) {
        let a = verify(alg, fast, msg, sig);
        let b = reference(alg, refk, msg, sig);
        self.cases += 1;
        if b {
            self.accepted += 1;
        }
        if a != b {
            self.mismatches
                .push(format!("{what} {alg}: fast {a}, rsa 0.10 {b}"));
        }
    }
}

fn run_key(key: &RsaPrivateKey, messages: usize, seed: u64, tally: &mut Tally) {
    let mut rng = StdRng::seed_from_u64(seed);
    let n = key.n().to_bytes_be();
    let e = key.e().to_bytes_be();
    let k = key.size();
    let fast = PublicKey::Rsa(std::sync::Arc::new(
        RsaPublicKey::new(&n, &e, 2048, 8192).unwrap(),
    ));
    let refk = rsa10::PublicKey::new_with_size_limits(
        rsa10::BoxedUint::from_be_slice_vartime(&n),
        rsa10::BoxedUint::from_be_slice_vartime(&e),
        2048..=8192,
    )
    .unwrap();
    for _ in 0..messages {
        let mut msg = vec![0u8; rng.gen_range(0..200)];
        rng.fill_bytes(&mut msg);
        for alg in rsa_algs() {
            let sig = sign(alg, key, &msg, None, &mut rng);
            tally.check("valid", alg, &fast, &refk, &msg, &sig);
            let algs = rsa_algs();
            let other = algs[rng.gen_range(0..algs.len())];
            tally.check("other alg", other, &fast, &refk, &msg, &sig);
            let mut m2 = msg.clone();
            m2.push(1);
            tally.check("other message", alg, &fast, &refk, &m2, &sig);
            let mut flipped = sig.clone();
            let bit = rng.gen_range(0..k * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            tally.check("bit flip", alg, &fast, &refk, &msg, &flipped);
            tally.check("truncated", alg, &fast, &refk, &msg, &sig[1..]);
            let mut long = vec![0u8];
            long.extend_from_slice(&sig);
            tally.check("leading zero", alg, &fast, &refk, &msg, &long);
        }
    }
    // Special values of s, for every algorithm.
    let nn = key.n().clone();
    let one = BigUint::from(1u8);
    let mut specials: Vec<(&str, Vec<u8>)> = vec![
        ("s=0", vec![0u8; k]),
        ("s=1", be(&one, k)),
        ("s=n-1", be(&(&nn - &one), k)),
        ("s=n", be(&nn, k)),
        ("s=n+1", be(&(&nn + &one), k)),
        ("s=2^8k-1", vec![0xff; k]),
        ("empty", vec![]),
    ];
    let mut r = vec![0u8; k];
    rng.fill_bytes(&mut r);
    specials.push(("random s", r));
    let msg = b"header.payload".to_vec();
    for alg in rsa_algs() {
        for (what, s) in &specials {
            tally.check(what, alg, &fast, &refk, &msg, s);
        }
    }
    // Wrong padding, signed raw.
    for alg in [Alg::Rs256, Alg::Rs384, Alg::Rs512] {
        for (what, em) in bad_pkcs1_ems(alg, k, &msg, &mut rng) {
            let s = raw_sign(key, &em, &mut rng);
            tally.check(what, alg, &fast, &refk, &msg, &s);
        }
    }
    for alg in [Alg::Ps256, Alg::Ps384, Alg::Ps512] {
        for salt in [0usize, 20, 33] {
            let s = sign(alg, key, &msg, Some(salt), &mut rng);
            tally.check("PSS other salt length", alg, &fast, &refk, &msg, &s);
        }
        let good = raw_open(key, &sign(alg, key, &msg, None, &mut rng));
        let lead = k - (key.n().bits() - 1).div_ceil(8); // 1 when emLen = k − 1
        for what in [
            "PSS EM bit flip",
            "PSS trailer",
            "PSS top bit",
            "PSS EM bit flip 2",
        ] {
            let mut em = good.clone();
            match what {
                "PSS trailer" => em[k - 1] = 0xbd,
                "PSS top bit" => {
                    // The first bit at or above emBits = modBits − 1: in the first EM byte,
                    // or in the dropped leading byte when emLen = k − 1.
                    let top = (key.n().bits() - 1) % 8;
                    em[0] |= 1 << top;
                }
                _ => {
                    let bit = rng.gen_range(0..(k - lead - 1) * 8);
                    em[k - 1 - bit / 8] ^= 1 << (bit % 8);
                }
            }
            if BigUint::from_bytes_be(&em) >= nn {
                continue;
            }
            let s = raw_sign(key, &em, &mut rng);
            tally.check(what, alg, &fast, &refk, &msg, &s);
        }
    }
}

/// (bits, e) of the i-th cached key.
fn shape(i: usize) -> (usize, u64) {
    match i % 10 {
        0..=4 => (2048, 65537),
        5 => (2049 + (i / 10) % 15, 65537), // emLen = k − 1 when bits ≡ 1 mod 8
        6 => (3072, 65537),
        7 => (4096, 65537),
        8 => (2048, [3, 17, (1 << 32) + 15][(i / 10) % 3]),
        _ => (2050 + (i / 10) % 200, 65537),
    }
}

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/rsa-diff-keys")
}

/// Key i: from the cache, or generated (deterministically seeded) and cached.
fn key(i: usize) -> RsaPrivateKey {
    let (bits, e) = shape(i);
    let path = cache_dir().join(format!("{i}-{bits}-{e}.txt"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let parts: Vec<BigUint> = text
            .split_whitespace()
            .map(|h| BigUint::parse_bytes(h.as_bytes(), 16).unwrap())
            .collect();
        if parts.len() == 5 {
            let key = RsaPrivateKey::from_components(
                parts[0].clone(),
                parts[1].clone(),
                parts[2].clone(),
                vec![parts[3].clone(), parts[4].clone()],
            )
            .unwrap();
            return key;
        }
    }
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + i as u64);
    let key = RsaPrivateKey::new_with_exp(&mut rng, bits, &BigUint::from(e)).unwrap();
    assert_eq!(key.n().bits(), bits);
    let p = key.primes();
    let text = [key.n(), key.e(), key.d(), &p[0], &p[1]]
        .iter()
        .map(|x| x.to_str_radix(16))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::create_dir_all(cache_dir()).unwrap();
    std::fs::write(&path, text).unwrap();
    key
}

fn run(keys: &[usize], messages: usize) -> Tally {
    let tally = Mutex::new(Tally {
        cases: 0,
        accepted: 0,
        mismatches: vec![],
    });
    let next = Mutex::new(0usize);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    *n += 1;
                    *n - 1
                };
                let Some(&idx) = keys.get(i) else { break };
                let k = key(idx);
                let mut local = Tally {
                    cases: 0,
                    accepted: 0,
                    mismatches: vec![],
                };
                run_key(&k, messages, idx as u64, &mut local);
                let mut t = tally.lock().unwrap();
                t.cases += local.cases;
                t.accepted += local.accepted;
                t.mismatches.extend(
                    local
                        .mismatches
                        .into_iter()
                        .map(|m| format!("key {idx}: {m}")),
                );
            });
        }
    });
    tally.into_inner().unwrap()
}

fn report(name: &str, keys: usize, t: &Tally) {
    println!(
        "{name}: {keys} keys, {} cases, {} accepted by both, {} rejected by both, {} mismatches",
        t.cases,
        t.accepted,
        t.cases - t.accepted - t.mismatches.len(),
        t.mismatches.len()
    );
    assert!(
        t.mismatches.is_empty(),
        "{:#?}",
        &t.mismatches[..t.mismatches.len().min(20)]
    );
}

#[test]
fn rsa_differential_quick() {
    // Keys 0 (2048), 5 (2049: emLen = k − 1), 6 (3072), 8 (e = 3), 9 (2050), 1 (2048).
    let keys = [0, 5, 6, 8, 9, 1];
    let t = run(&keys, 2);
    report("rsa_differential_quick", keys.len(), &t);
    assert!(t.cases >= 500, "{} cases", t.cases);
    assert!(t.accepted >= keys.len() * 2 * 6);
}

#[test]
#[ignore = "long: make rsa-diff (release mode)"]
fn rsa_differential_full() {
    let count: usize = std::env::var("RSA_DIFF_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let messages: usize = std::env::var("RSA_DIFF_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let keys: Vec<usize> = (0..count).collect();
    let t = run(&keys, messages);
    report("rsa_differential_full", count, &t);
    assert!(t.cases >= 10_000 || count < 100, "{} cases", t.cases);
}

#[test]
fn key_acceptance_matches_the_reference() {
    let k = key(0);
    let n = k.n().to_bytes_be();
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("good", n.clone(), vec![1, 0, 1]),
        ("even n", even, vec![1, 0, 1]),
        ("e = 1", n.clone(), vec![1]),
        ("e even", n.clone(), vec![1, 0, 0]),
        ("e = 2^33+1", n.clone(), vec![2, 0, 0, 0, 1]),
        ("e = 2^33-1", n.clone(), vec![1, 0xff, 0xff, 0xff, 0xff]),
        ("1024-bit n", n[..128].to_vec(), vec![1, 0, 1]),
    ];
    for (what, n, e) in cases {
        let ours = RsaPublicKey::new(&n, &e, 2048, 8192).is_ok();
        let theirs = rsa10::PublicKey::new_with_size_limits(
            rsa10::BoxedUint::from_be_slice_vartime(&n),
            rsa10::BoxedUint::from_be_slice_vartime(&e),
            2048..=8192,
        )
        .is_ok();
        assert_eq!(ours, theirs, "{what}");
    }
}

/// Seeds for the `rsa` fuzz target (fuzz/fuzz_targets/rsa.rs): one valid signature per key
/// and algorithm, in its input format. `cargo test --test rsa_differential -- --ignored
/// write_rsa_fuzz_seeds`.
#[test]
#[ignore = "writes fuzz/corpus/rsa"]
fn write_rsa_fuzz_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/rsa");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    for (slot, idx) in [0usize, 5, 8].into_iter().enumerate() {
        let k = key(idx);
        for (a, alg) in rsa_algs().into_iter().enumerate() {
            let msg = format!("eyJhbGciOiJ{alg}In0.eyJzdWIiOiJ1c2VyLXtpfSJ9");
            let sig = sign(alg, &k, msg.as_bytes(), None, &mut rng);
            let mut input = vec![(slot + 3 * a) as u8, 0];
            input.extend_from_slice(&sig);
            input.extend_from_slice(msg.as_bytes());
            std::fs::write(dir.join(format!("valid-{slot}-{alg}")), input).unwrap();
        }
    }
}
