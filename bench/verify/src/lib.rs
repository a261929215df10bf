//! Per-verify microbenchmark inside Envoy's V8 (`make bench-verify`).
//!
//! Configured with
//! `{"verify_bench": {"alg": "RS256", "iterations": 2000, "backend": "fast", "jwks": "…", "token": "…"}}`
//! the root context's `on_configure` parses the key set with the filter's own code
//! (`jwks::KeySet::parse`, which also does the per-key precomputation), then checks the
//! token's signature `iterations` times with `signature::verify` (backend `fast`), with the
//! `rsa` 0.10 crate the filter used before for RS*/PS* (backend `rsa10`), with the p256
//! crate's verifier it used before for ES256 (backend `p256`), with a new key each time (ES256,
//! backend `newkey`: the key's one-time tables plus one verify), with `ring` 0.17 (backend
//! `ring`, only in a module built with the cargo feature `ring`: `make bench-verify`), with
//! Envoy's `verify_signature` foreign function as the filter uses it with `host_crypto`
//! (RS* and ES256, backend `host`: the call, BoringSSL's key parse and check), or only
//! the RSA public operation (backend `pow`) or only the SHA-256 of the signing input (backend
//! `sha256`) of an RS256 check, timed with the host clock, and logs one line at warn level:
//! `verify RS256 [fast]: 2000 iterations, 97.1 µs per verify (best batch 95.0 µs)`.
//! Before timing, every backend must accept the token and refuse it with one bit of its
//! signature flipped.
//! The HTTP side is an empty pass-through; nothing here is meant to serve traffic.

use std::time::SystemTime;

mod decide_bench;
#[cfg(feature = "ring")]
mod ring_backend;
mod rsa10_reference;

use mcp_edge_auth::crypto::rsa::HashAlg;
use mcp_edge_auth::keys::alg::Alg;
use mcp_edge_auth::keys::jwks::KeySet;
use mcp_edge_auth::token::host_signature::{self, HostVerifier};
use mcp_edge_auth::token::signature;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use rsa10_reference::rsa10_verify;

#[derive(Default)]
pub struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(config) = self.get_plugin_configuration() else {
            return true;
        };
        let line = match run(&config, || self.get_current_time()) {
            Ok(line) => line,
            Err(e) => format!("verify bench: {e}"),
        };
        let _ = proxy_wasm::hostcalls::log(LogLevel::Warn, &line);
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Pass))
    }
}

pub struct Pass;

impl Context for Pass {}

impl HttpContext for Pass {}

/// One benchmark run described by `config`; returns the log line.
pub fn run(config: &[u8], now: impl Fn() -> SystemTime) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(config).map_err(|e| e.to_string())?;
    if let Some(c) = v.get("verify_check") {
        return check(c);
    }
    if let Some(c) = v.get("decide_bench") {
        return decide_bench::run(c, now);
    }
    if v.get("b64_check").is_some() {
        return Ok(b64_check());
    }
    let b = v.get("verify_bench").ok_or("no \"verify_bench\" object")?;
    let text = |k: &str| {
        b.get(k)
            .and_then(|x| x.as_str())
            .ok_or(format!("missing {k}"))
    };
    let alg_name = text("alg")?;
    let alg = Alg::parse(alg_name).map_err(|e| e.to_string())?;
    let iterations = b.get("iterations").and_then(|x| x.as_u64()).unwrap_or(1000) as usize;
    let backend = b.get("backend").and_then(|x| x.as_str()).unwrap_or("fast");
    let jwks = text("jwks")?;
    let token = text("token")?;

    let (input, sig_b64) = token.rsplit_once('.').ok_or("token has no signature")?;
    let sig =
        mcp_edge_auth::crypto::b64::decode_segment(sig_b64).ok_or("signature is not base64url")?;
    let input = input.as_bytes();

    if !refuses_flipped_signature(backend, alg, jwks, input, &sig)? {
        return Err(format!(
            "{alg_name} [{backend}]: a signature with one bit flipped verifies"
        ));
    }

    let mut check: Box<dyn FnMut() -> bool> = match backend {
        "fast" => {
            let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
            let key = set
                .keys
                .into_iter()
                .find(|k| alg.fits(&k.key))
                .ok_or("no key for the algorithm")?
                .key;
            Box::new(move || signature::verify(alg, &key, input, &sig))
        }
        // RS*, ES256: the filter's check with Envoy's `verify_signature` (BoringSSL) as the host
        // verifier, as with `host_crypto` "auto" (src/token/host_signature.rs).
        "host" => {
            // A host without the function would leave every check to the module's code.
            host_signature::self_check(&EnvoyHost).map_err(|e| format!("backend host: {e}"))?;
            let key = first_key(alg, jwks)?;
            Box::new(move || signature::verify_with(alg, &key, input, &sig, Some(&EnvoyHost)))
        }
        // The two parts of an RS256 check alone: the RSA public operation (`pow`) and the
        // SHA-256 of the signing input (`sha256`), to see how `fast`'s time splits.
        "pow" | "sha256" => {
            let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
            let key = set
                .keys
                .into_iter()
                .find_map(|k| match k.key {
                    mcp_edge_auth::keys::jwks::PublicKey::Rsa(k) => Some(k),
                    _ => None,
                })
                .ok_or("no RSA key")?;
            if backend == "pow" {
                Box::new(move || std::hint::black_box(key.public_op(&sig)).is_some())
            } else {
                Box::new(move || {
                    use sha2::Digest;
                    std::hint::black_box(sha2::Sha256::digest(std::hint::black_box(input)));
                    true
                })
            }
        }
        "rsa10" => {
            let key = rsa10_key(jwks)?;
            Box::new(move || rsa10_verify(alg, &key, input, &sig))
        }
        "p256" => {
            let key = p256_key(jwks)?;
            Box::new(move || p256_verify(&key, input, &sig))
        }
        // ES256 on a key seen for the first time: a new key each step, so each step builds
        // the key's tables (src/crypto/p256_table.rs) before it verifies; less `fast`, the
        // one-time cost per key.
        "newkey" => {
            let key = p256_key(jwks)?;
            Box::new(move || signature::verify(alg, &new_p256(key), input, &sig))
        }
        #[cfg(feature = "ring")]
        "ring" => {
            let key = ring_backend::ring_key(alg, jwks)?;
            Box::new(move || ring_backend::ring_verify(alg, &key, input, &sig))
        }
        #[cfg(not(feature = "ring"))]
        "ring" => {
            return Err("backend ring: this module was built without the feature ring".into())
        }
        other => return Err(format!("unknown backend {other}")),
    };
    if !check() {
        return Err(format!("{alg_name} [{backend}]: the token does not verify"));
    }

    let (total, mean, best) = time_batches(iterations, &now, check)
        .map_err(|e| format!("{alg_name} [{backend}]: {e} (a verification failed)"))?;
    Ok(format!(
        "verify {alg_name} [{backend}]: {total} iterations, {mean:.1} µs per verify (best batch {best:.1} µs)"
    ))
}

/// Whether `backend` refuses `sig` with its last byte's low bit flipped (checked once
/// before timing, so a backend that accepts anything cannot show up as fast).
/// The key set's P-256 key, parsed by the filter's own JWKS code.
fn p256_key(jwks: &str) -> Result<p256::ecdsa::VerifyingKey, String> {
    KeySet::parse(jwks.as_bytes())
        .map_err(|e| e.to_string())?
        .keys
        .into_iter()
        .find_map(|k| match k.key {
            mcp_edge_auth::keys::jwks::PublicKey::P256(p) => Some(*p.verifying_key()),
            _ => None,
        })
        .ok_or_else(|| "no P-256 key".to_string())
}

fn refuses_flipped_signature(
    backend: &str,
    alg: Alg,
    jwks: &str,
    input: &[u8],
    sig: &[u8],
) -> Result<bool, String> {
    let mut bad = sig.to_vec();
    if let Some(last) = bad.last_mut() {
        *last ^= 1;
    }
    let accepted = match backend {
        "fast" => {
            let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
            set.keys
                .iter()
                .filter(|k| alg.fits(&k.key))
                .any(|k| signature::verify(alg, &k.key, input, &bad))
        }
        "rsa10" => rsa10_verify(alg, &rsa10_key(jwks)?, input, &bad),
        "host" => {
            signature::verify_with(alg, &first_key(alg, jwks)?, input, &bad, Some(&EnvoyHost))
        }
        "newkey" => signature::verify(alg, &new_p256(p256_key(jwks)?), input, &bad),
        "p256" => {
            let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
            set.keys.iter().any(|k| match &k.key {
                mcp_edge_auth::keys::jwks::PublicKey::P256(p) => {
                    p256_verify(p.verifying_key(), input, &bad)
                }
                _ => false,
            })
        }
        #[cfg(feature = "ring")]
        "ring" => ring_backend::ring_verify(alg, &ring_backend::ring_key(alg, jwks)?, input, &bad),
        // Parts of a check, not checks: nothing to refuse.
        "pow" | "sha256" => false,
        other => return Err(format!("unknown backend {other}")),
    };
    Ok(!accepted)
}

/// The first key of `jwks` that fits `alg`.
fn first_key(alg: Alg, jwks: &str) -> Result<mcp_edge_auth::keys::jwks::PublicKey, String> {
    let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
    set.keys
        .into_iter()
        .find(|k| alg.fits(&k.key))
        .map(|k| k.key)
        .ok_or_else(|| "no key for the algorithm".to_string())
}

/// Envoy's `verify_signature` foreign function through the SDK (the filter's own call is
/// `src/filter/host.rs`'s `HostRsa`, which this crate does not link). Any error: no verdict.
struct EnvoyHost;

impl HostVerifier for EnvoyHost {
    fn verify(&self, hash: HashAlg, spki: &[u8], message: &[u8], signature: &[u8]) -> Option<bool> {
        let args = host_signature::encode_arguments(hash, spki, signature, message);
        match proxy_wasm::hostcalls::call_foreign_function("verify_signature", Some(&args)) {
            Ok(answer) => host_signature::decode_result(answer.as_deref().unwrap_or_default()),
            Err(_) => None,
        }
    }
}

/// The filter's key for `key`, its tables not built yet.
fn new_p256(key: p256::ecdsa::VerifyingKey) -> mcp_edge_auth::keys::jwks::PublicKey {
    mcp_edge_auth::keys::jwks::PublicKey::P256(std::sync::Arc::new(key.into()))
}

/// ES256 as the p256 crate checks it (what `signature::verify` did before src/crypto/p256.rs).
fn p256_verify(key: &p256::ecdsa::VerifyingKey, input: &[u8], sig: &[u8]) -> bool {
    use p256::ecdsa::signature::DigestVerifier;
    use sha2::Digest;
    p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| {
        key.verify_digest(sha2::Sha256::new_with_prefix(input), &s)
            .is_ok()
    })
}

/// Runs `step` a tenth of `iterations` times to warm up (tier-up to V8's optimising
/// compiler), then `iterations` times in five timed batches. Returns the count run and the
/// mean and best batch in µs per step; every step must return true.
pub fn time_batches(
    iterations: usize,
    now: &impl Fn() -> SystemTime,
    mut step: impl FnMut() -> bool,
) -> Result<(usize, f64, f64), String> {
    for _ in 0..iterations.div_ceil(10) {
        step();
    }
    let batches = 5;
    let per_batch = iterations.div_ceil(batches).max(1);
    let mut times = Vec::with_capacity(batches);
    let mut ok = true;
    for _ in 0..batches {
        let start = now();
        for _ in 0..per_batch {
            ok &= step();
        }
        let elapsed = now().duration_since(start).map_err(|e| e.to_string())?;
        times.push(elapsed.as_secs_f64() * 1e6 / per_batch as f64);
    }
    if !ok {
        return Err("a step failed".into());
    }
    let mean = times.iter().sum::<f64>() / batches as f64;
    let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
    Ok((per_batch * batches, mean, best))
}

/// `{"b64_check": {}}`: the Wasm build of `extract::is_b64token` (SIMD128 blocks of 16
/// bytes, a scalar tail) against the RFC 6750 character set, for every byte value at every
/// position of a 44-byte token (two blocks and a tail); logs
/// `b64 check: N cases, M mismatches`. `tests/wasm_simd.rs` runs it in Envoy's V8.
fn b64_check() -> String {
    let reference = |b: u8| matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
    let good: Vec<u8> = (0..44).map(|i| b"aZ09-._~+/=Qm"[i % 13]).collect();
    let (mut cases, mut mismatches) = (0usize, Vec::new());
    if !mcp_edge_auth::http::extract::is_b64token(&good) {
        mismatches.push("the all-valid token".to_string());
    }
    for at in 0..good.len() {
        for b in 0..=255u8 {
            let mut t = good.clone();
            t[at] = b;
            cases += 1;
            if mcp_edge_auth::http::extract::is_b64token(&t) != reference(b) {
                mismatches.push(format!("byte {b:#04x} at {at}"));
            }
        }
    }
    format!(
        "b64 check: {cases} cases, {} mismatches {:?}; {}",
        mismatches.len(),
        mismatches.iter().take(5).collect::<Vec<_>>(),
        bytes_check()
    )
}

/// The Wasm build of `bytes::same_bytes` (SIMD128 blocks) and `bytes::is_ascii` against
/// `==` and `<[u8]>::is_ascii`: every length up to 80 (five blocks and tails), one byte
/// changed at every position (one bit, or to 0x80 / 0xff).
fn bytes_check() -> String {
    use mcp_edge_auth::util::bytes::{is_ascii, same_bytes};
    let (mut cases, mut mismatches) = (0usize, Vec::new());
    for len in 0..=80usize {
        let a: Vec<u8> = (0..len).map(|i| b'A' + (i % 50) as u8).collect();
        cases += 2;
        if !same_bytes(&a, &a) || !is_ascii(&a) {
            mismatches.push(format!("len {len} unchanged"));
        }
        if len > 0 && same_bytes(&a, &a[..len - 1]) {
            mismatches.push(format!("len {len} against one shorter"));
        }
        for at in 0..len {
            for flip in [0x01u8, 0x40, 0x80] {
                let mut b = a.clone();
                b[at] ^= flip;
                cases += 2;
                if same_bytes(&a, &b) != (a == b) {
                    mismatches.push(format!("same_bytes len {len} at {at} ^ {flip:#04x}"));
                }
                if is_ascii(&b) != b.is_ascii() {
                    mismatches.push(format!("is_ascii len {len} at {at} ^ {flip:#04x}"));
                }
            }
        }
    }
    format!(
        "bytes check: {cases} cases, {} mismatches {:?}",
        mismatches.len(),
        mismatches.iter().take(5).collect::<Vec<_>>()
    )
}

/// A verifier of (signing input, signature) with its key built in.
type Verifier = dyn Fn(&[u8], &[u8]) -> bool;

/// `{"verify_check": {"alg", "jwks", "tokens": [...]}}`: the wasm build of the fast path (with
/// SIMD128) against the crate it replaced in the same VM (`rsa` 0.10 for RS*/PS*, the p256
/// crate for ES256) and, in a module built with the feature `ring`, against ring too, on every
/// token and on corrupted copies (bit flips, s = 0, s = 1, all-ones, truncated); logs
/// `verify check RS256 (rsa10, ring): N cases, A accepted by all, M mismatches`.
fn check(c: &serde_json::Value) -> Result<String, String> {
    let text = |k: &str| {
        c.get(k)
            .and_then(|x| x.as_str())
            .ok_or(format!("missing {k}"))
    };
    let alg_name = text("alg")?;
    let alg = Alg::parse(alg_name).map_err(|e| e.to_string())?;
    let jwks = text("jwks")?;
    let set = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
    let fast = set
        .keys
        .into_iter()
        .find(|k| alg.fits(&k.key))
        .ok_or("no key for the algorithm")?
        .key;
    let (reference_name, reference): (&str, Box<Verifier>) = if alg == Alg::Es256 {
        let key = p256_key(jwks)?;
        ("p256", Box::new(move |m, s| p256_verify(&key, m, s)))
    } else {
        let key = rsa10_key(jwks)?;
        ("rsa10", Box::new(move |m, s| rsa10_verify(alg, &key, m, s)))
    };
    #[cfg(feature = "ring")]
    let (others, ring_key) = (", ring", ring_backend::ring_key(alg, jwks)?);
    #[cfg(not(feature = "ring"))]
    let others = "";
    let tokens = c
        .get("tokens")
        .and_then(|t| t.as_array())
        .ok_or("missing tokens")?;
    let (mut cases, mut accepted, mut mismatches) = (0usize, 0usize, Vec::new());
    let mut seed: u32 = 0x9e37_79b9;
    for t in tokens {
        let t = t.as_str().ok_or("token is not a string")?;
        let (input, sig_b64) = t.rsplit_once('.').ok_or("token has no signature")?;
        let sig = mcp_edge_auth::crypto::b64::decode_segment(sig_b64).ok_or("bad signature")?;
        let k = sig.len();
        let mut variants = vec![sig.clone(), vec![0; k], vec![0xff; k], sig[1..].to_vec()];
        let mut one = vec![0; k];
        one[k - 1] = 1;
        variants.push(one);
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let bit = seed as usize % (k * 8);
            let mut f = sig.clone();
            f[bit / 8] ^= 1 << (bit % 8);
            variants.push(f);
        }
        for s in &variants {
            let a = signature::verify(alg, &fast, input.as_bytes(), s);
            let b = reference(input.as_bytes(), s);
            #[cfg(feature = "ring")]
            let c = ring_backend::ring_verify(alg, &ring_key, input.as_bytes(), s);
            #[cfg(not(feature = "ring"))]
            let c = a;
            cases += 1;
            accepted += usize::from(a && b && c);
            if a != b || a != c {
                let ring = if others.is_empty() {
                    String::new()
                } else {
                    format!(" ring {c}")
                };
                mismatches.push(format!("fast {a} {reference_name} {b}{ring}"));
            }
        }
    }
    Ok(format!(
        "verify check {alg_name} ({reference_name}{others}): {cases} cases, {accepted} accepted by all, {} mismatches {:?}",
        mismatches.len(),
        mismatches.iter().take(3).collect::<Vec<_>>()
    ))
}

fn rsa10_key(jwks: &str) -> Result<rsa10::PublicKey, String> {
    let v: serde_json::Value = serde_json::from_str(jwks).map_err(|e| e.to_string())?;
    let k = v
        .get("keys")
        .and_then(|k| k.as_array())
        .and_then(|keys| {
            keys.iter()
                .find(|k| k.get("kty").and_then(|t| t.as_str()) == Some("RSA"))
        })
        .ok_or("no RSA key")?;
    let member = |name: &str| {
        k.get(name)
            .and_then(|x| x.as_str())
            .and_then(mcp_edge_auth::crypto::b64::decode_member)
            .ok_or(format!("bad {name}"))
    };
    let n = rsa10::BoxedUint::from_be_slice_vartime(&member("n")?);
    let e = rsa10::BoxedUint::from_be_slice_vartime(&member("e")?);
    rsa10::PublicKey::new_with_size_limits(n, e, 2048..=8192).map_err(|e| e.to_string())
}

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}
