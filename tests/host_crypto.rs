//! `host_crypto`: RS256/RS384/RS512 and ES256 signatures checked by Envoy's own BoringSSL
//! (the `verify_signature` foreign function, src/token/host_signature.rs) instead of the
//! module's own code. The same tokens go through an Envoy with it (`"auto"`, the default) and
//! one without (`"off"`): every answer must be the same, the first must have asked the host
//! for every RS* and ES256 signature of the right length and the second never.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use devstack::recorder::Recorder;
use devstack::{b64url, b64url_decode, sign_raw, KeyKind, KeyRing, SigningKey};
use serde_json::json;
use support::http;
use support::{Envoy, EnvoyBuilder};

const ISS: &str = "https://idp.test/host-crypto";
const AUD: &str = "api://mcp-host-crypto";

fn keys() -> (SigningKey, SigningKey, SigningKey) {
    (
        SigningKey::cached(KeyKind::Rsa2048, "rsa-1"),
        SigningKey::cached(KeyKind::Rsa2048, "rsa-2"),
        SigningKey::cached(KeyKind::EcP256, "ec-1"),
    )
}

fn config(host_crypto: &str) -> String {
    let (a, b, ec) = keys();
    json!({
        "host_crypto": host_crypto,
        "providers": {"dev": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![a, b, ec]).jwks().to_string()},
            "algorithms": ["RS256", "RS384", "RS512", "PS256", "ES256"]
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "dev"}}]
    })
    .to_string()
}

/// A signed token whose signature `edit` may change; `n` tells each token apart (no cache hit).
fn token(
    key: &SigningKey,
    alg: &str,
    header_alg: &str,
    n: usize,
    edit: impl Fn(&mut Vec<u8>),
) -> String {
    let now = devstack::now();
    let header = json!({"alg": header_alg, "kid": key.kid, "typ": "JWT"});
    let claims = json!({"iss": ISS, "aud": AUD, "sub": format!("user-{n}"), "exp": now + 600, "iat": now - 5});
    let t = sign_raw(
        key,
        alg,
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
    );
    let (input, sig) = t.rsplit_once('.').unwrap();
    let mut sig = b64url_decode(sig).unwrap();
    edit(&mut sig);
    format!("{input}.{}", b64url(&sig))
}

/// The modulus of `key`, big-endian (from its public JWK).
fn modulus(key: &SigningKey) -> Vec<u8> {
    b64url_decode(key.public_jwk()["n"].as_str().unwrap()).unwrap()
}

/// The order of P-256's group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// a − b for 32-byte big-endian a ≥ b.
fn sub(a: &[u8; 32], b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    out
}

/// (what, token, expected status, whether the host is asked when it is on).
fn cases() -> Vec<(String, String, u16, bool)> {
    let (a, b, ec) = keys();
    let n = modulus(&a);
    let mut out = Vec::new();
    let mut i = 0;
    let mut next = || {
        i += 1;
        i
    };
    for alg in ["RS256", "RS384", "RS512"] {
        out.push((
            format!("{alg} valid"),
            token(&a, alg, alg, next(), |_| {}),
            200,
            true,
        ));
        for at in [0usize, 100, 255] {
            let t = token(&a, alg, alg, next(), |s| s[at] ^= 0x01);
            out.push((format!("{alg} bit flipped at byte {at}"), t, 401, true));
        }
        // Signed by rsa-2, presented as rsa-1's.
        let forged = {
            let t = token(&b, alg, alg, next(), |_| {});
            let (input, sig) = t.rsplit_once('.').unwrap();
            let (_, payload) = input.split_once('.').unwrap();
            let header = json!({"alg": alg, "kid": "rsa-1", "typ": "JWT"});
            format!("{}.{payload}.{sig}", b64url(header.to_string().as_bytes()))
        };
        out.push((format!("{alg} signed by another key"), forged, 401, true));
        let n2 = n.clone();
        out.push((
            format!("{alg} signature = n"),
            token(&a, alg, alg, next(), move |s| *s = n2.clone()),
            401,
            true,
        ));
        out.push((
            format!("{alg} signature all zero"),
            token(&a, alg, alg, next(), |s| s.fill(0)),
            401,
            true,
        ));
        out.push((
            format!("{alg} signature = 1"),
            token(&a, alg, alg, next(), |s| {
                s.fill(0);
                *s.last_mut().unwrap() = 1;
            }),
            401,
            true,
        ));
        // Wrong lengths never reach the host.
        out.push((
            format!("{alg} one byte short"),
            token(&a, alg, alg, next(), |s| {
                s.pop();
            }),
            401,
            false,
        ));
        out.push((
            format!("{alg} leading zero byte"),
            token(&a, alg, alg, next(), |s| s.insert(0, 0)),
            401,
            false,
        ));
    }
    // A signature made with one hash presented under another.
    out.push((
        "RS256 signature, RS384 header".into(),
        token(&a, "RS256", "RS384", next(), |_| {}),
        401,
        true,
    ));
    out.push((
        "RS512 signature, RS256 header".into(),
        token(&a, "RS512", "RS256", next(), |_| {}),
        401,
        true,
    ));
    // PS256 stays in the module either way.
    out.push((
        "PS256 valid".into(),
        token(&a, "PS256", "PS256", next(), |_| {}),
        200,
        false,
    ));
    out.push((
        "PS256 bit flipped".into(),
        token(&a, "PS256", "PS256", next(), |s| s[7] ^= 0x80),
        401,
        false,
    ));
    // ES256: raw r || s in the token, DER for the host.
    out.push((
        "ES256 valid".into(),
        token(&ec, "ES256", "ES256", next(), |_| {}),
        200,
        true,
    ));
    for at in [0usize, 31, 32, 63] {
        out.push((
            format!("ES256 bit flipped at byte {at}"),
            token(&ec, "ES256", "ES256", next(), move |s| s[at] ^= 0x04),
            401,
            true,
        ));
    }
    // s and n − s both verify (ECDSA has no low-s rule; neither side adds one).
    out.push((
        "ES256 with n - s".into(),
        token(&ec, "ES256", "ES256", next(), |s| {
            let neg = sub(&P256_N, &s[32..]);
            s[32..].copy_from_slice(&neg);
        }),
        200,
        true,
    ));
    out.push((
        "ES256 r = 0".into(),
        token(&ec, "ES256", "ES256", next(), |s| s[..32].fill(0)),
        401,
        true,
    ));
    out.push((
        "ES256 s = 0".into(),
        token(&ec, "ES256", "ES256", next(), |s| s[32..].fill(0)),
        401,
        true,
    ));
    out.push((
        "ES256 r = n".into(),
        token(&ec, "ES256", "ES256", next(), |s| {
            s[..32].copy_from_slice(&P256_N)
        }),
        401,
        true,
    ));
    out.push((
        "ES256 s = n".into(),
        token(&ec, "ES256", "ES256", next(), |s| {
            s[32..].copy_from_slice(&P256_N)
        }),
        401,
        true,
    ));
    out.push((
        "ES256 r, s = 0xff..".into(),
        token(&ec, "ES256", "ES256", next(), |s| s.fill(0xff)),
        401,
        true,
    ));
    out.push((
        "ES256 one byte short".into(),
        token(&ec, "ES256", "ES256", next(), |s| {
            s.pop();
        }),
        401,
        false,
    ));
    // A DER signature (what some libraries emit) is refused by its length, in both.
    out.push((
        "ES256 as DER".into(),
        token(&ec, "ES256", "ES256", next(), |s| {
            let (r, t) = s.split_at(32);
            let mut der = vec![0x30, 0x46, 0x02, 0x21, 0x00];
            der.extend_from_slice(r);
            der.extend_from_slice(&[0x02, 0x21, 0x00]);
            der.extend_from_slice(t);
            *s = der;
        }),
        401,
        false,
    ));
    // Many distinct valid RS256 tokens: all pass through the host.
    for _ in 0..20 {
        out.push((
            "RS256 valid (batch)".into(),
            token(&a, "RS256", "RS256", next(), |_| {}),
            200,
            true,
        ));
    }
    out
}

fn start(host_crypto: &str, backend: &Recorder) -> Envoy {
    EnvoyBuilder::new(&config(host_crypto))
        .backend_port(backend.port())
        .start()
        .unwrap()
}

#[test]
fn the_hosts_boringssl_and_the_modules_own_code_give_the_same_answers() {
    let backend = Recorder::start();
    let host = start("auto", &backend);
    let module = start("off", &backend);
    assert!(
        host.wait_for_log(
            "checked by the host's verify_signature",
            Duration::from_secs(10)
        ),
        "the self-check did not pass in Envoy 1.40:\n{}",
        host.logs()
    );
    assert!(
        module.wait_for_log(
            "checked in the module (host_crypto is \"off\")",
            Duration::from_secs(10)
        ),
        "{}",
        module.logs()
    );

    let cases = cases();
    let mut asked = 0;
    for (what, token, want, via_host) in &cases {
        let auth = format!("Bearer {token}");
        for (name, envoy) in [("auto", &host), ("off", &module)] {
            let r = http::request(
                envoy.port(),
                "GET",
                "/mcp",
                &[("authorization", &auth)],
                b"",
            );
            assert_eq!(r.status, *want, "{what}: host_crypto {name}");
        }
        asked += u64::from(*via_host);
    }
    let denied = cases.iter().filter(|c| c.2 == 401).count() as u64;
    assert!(asked >= 40, "{asked}");
    assert_eq!(
        host.filter_stat_at_least("denied.bad_signature", denied),
        denied
    );
    assert_eq!(
        module.filter_stat_at_least("denied.bad_signature", denied),
        denied
    );
    // Every RS* and ES256 signature of the right length went to the host, and only those.
    assert_eq!(
        host.filter_stat_at_least("host_signature.checked", asked),
        asked
    );
    assert_eq!(host.filter_stat("host_signature.error"), 0);
    assert_eq!(module.filter_stat("host_signature.checked"), 0);
}
