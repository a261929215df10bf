//! The adversarial token matrix (issue "Hardening"): every case is named, sent through the
//! real Envoy with the built module, and must get its documented status and reason while the
//! backend never sees it. `docs/ADVERSARIAL.md` is this table; the test fails if they differ
//! (regenerate with `UPDATE_DOCS=1 cargo test --test adversarial`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use devstack::mint::sign_hmac_raw;
use devstack::recorder::Recorder;
use devstack::{b64url, sign_bytes, sign_jws, sign_raw, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http;
use support::EnvoyBuilder;

const ISS: &str = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0";
const AUD: &str = "api://mcp";

/// How a case is sent.
enum Send {
    Token(String),
    Headers(Vec<(&'static str, String)>),
    Raw(String),
    PathAndToken(&'static str, String),
}

struct Case {
    name: &'static str,
    send: Send,
    status: u16,
    /// Metric reason (`denied.<reason>`), or "allowed".
    reason: &'static str,
    why: &'static str,
}

fn now() -> u64 {
    devstack::now()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "s", "exp": now() + 600, "iat": now() - 5, "nbf": now() - 5})
}

fn with(f: impl Fn(&mut Value)) -> Value {
    let mut c = claims();
    f(&mut c);
    c
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_string).collect()
}

fn cases(
    rsa: &SigningKey,
    rsa2: &SigningKey,
    ec: &SigningKey,
    weak: &SigningKey,
    attacker: &SigningKey,
) -> Vec<Case> {
    let jws = |key: &SigningKey, alg: &str, header: Value, claims: &Value| {
        sign_jws(key, alg, &header, claims)
    };
    let rs = |claims: &Value| jws(rsa, "RS256", json!({"alg":"RS256","kid":"rsa-1"}), claims);
    let hdr = |header: Value| jws(rsa, "RS256", header, &claims());
    let c = claims().to_string();
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            b64url(format!("{{\"alg\":\"{alg}\"}}").as_bytes()),
            b64url(c.as_bytes())
        )
    };
    let hmac = |alg: &str, secret: &[u8]| {
        sign_hmac_raw(
            secret,
            alg,
            format!("{{\"alg\":\"{alg}\",\"kid\":\"rsa-1\"}}").as_bytes(),
            c.as_bytes(),
        )
    };
    let rsa_jwk = KeyRing::new(vec![rsa.clone()]).jwks()["keys"][0].to_string();
    let rsa_n = devstack::b64url_decode(
        KeyRing::new(vec![rsa.clone()]).jwks()["keys"][0]["n"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let good = rs(&claims());
    let p = parts(&good);
    let es = jws(ec, "ES256", json!({"alg":"ES256","kid":"ec-1"}), &claims());
    let ep = parts(&es);
    let es_raw = devstack::b64url_decode(&ep[2]).unwrap();
    let es_sig = p256::ecdsa::Signature::from_slice(&es_raw).unwrap();
    let es_der = b64url(es_sig.to_der().as_bytes());
    let high_s = {
        let (r, s) = es_sig.split_scalars();
        let neg = -*s.as_ref();
        let sig = p256::ecdsa::Signature::from_scalars(r.to_bytes(), neg.to_bytes()).unwrap();
        b64url(&sig.to_bytes())
    };
    let ps_under_rs = {
        let input = format!(
            "{}.{}",
            b64url(br#"{"alg":"RS256","kid":"rsa-1"}"#),
            b64url(c.as_bytes())
        );
        format!(
            "{input}.{}",
            b64url(&sign_bytes(rsa, "PS256", input.as_bytes()))
        )
    };
    let rs_under_ps = {
        let input = format!(
            "{}.{}",
            b64url(br#"{"alg":"PS256","kid":"rsa-1"}"#),
            b64url(c.as_bytes())
        );
        format!(
            "{input}.{}",
            b64url(&sign_bytes(rsa, "RS256", input.as_bytes()))
        )
    };
    let attacker_jwk = KeyRing::new(vec![attacker.clone()]).jwks()["keys"][0].clone();
    let tampered = format!(
        "{}.{}.{}",
        p[0],
        b64url(with(|c| c["sub"] = json!("admin")).to_string().as_bytes()),
        p[2]
    );
    let std_b64 = {
        // Force characters outside the URL alphabet.
        let sig = p[2].replace('-', "+").replace('_', "/");
        let sig = if sig == p[2] {
            format!("{}+", &sig[..sig.len() - 1])
        } else {
            sig
        };
        format!("{}.{}.{}", p[0], p[1], sig)
    };
    let raw_claims = |text: &str| {
        sign_raw(
            rsa,
            "RS256",
            br#"{"alg":"RS256","kid":"rsa-1"}"#,
            text.as_bytes(),
        )
    };
    let t = now();
    let v1 = rs(&with(|c| {
        c["iss"] = json!("https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/")
    }));

    let tok = |name, token: String, status, reason, why| Case {
        name,
        send: Send::Token(token),
        status,
        reason,
        why,
    };
    vec![
        tok("valid RS256 (control)", good.clone(), 200, "allowed", "the control case"),
        tok("alg none", unsigned("none"), 401, "algorithm", "unsigned tokens are never accepted"),
        tok("alg NONE", unsigned("NONE"), 401, "algorithm", "any letter case"),
        tok("alg nOnE", unsigned("nOnE"), 401, "algorithm", "any letter case"),
        tok("HS256 keyed with the RSA modulus", hmac("HS256", &rsa_n), 401, "algorithm", "HMAC is never verified with JWKS material"),
        tok("HS256 keyed with the JWK JSON", hmac("HS256", rsa_jwk.as_bytes()), 401, "algorithm", "key confusion"),
        tok("HS384", hmac("HS384", b"secret"), 401, "algorithm", "symmetric"),
        tok("HS512", hmac("HS512", b"secret"), 401, "algorithm", "symmetric"),
        tok("RS256 header, EC key's kid", hdr(json!({"alg":"RS256","kid":"ec-1"})), 401, "algorithm", "kty must fit alg"),
        tok("ES256 header, RSA key's kid", jws(ec, "ES256", json!({"alg":"ES256","kid":"rsa-1"}), &claims()), 401, "algorithm", "kty must fit alg"),
        tok("PS256 signature under RS256 header", ps_under_rs, 401, "bad_signature", "padding is part of alg"),
        tok("RS256 signature under PS256 header", rs_under_ps, 401, "bad_signature", "padding is part of alg"),
        tok("kid absent, two RSA keys fit", hdr(json!({"alg":"RS256"})), 401, "unknown_kid", "ambiguous key choice"),
        tok("kid path traversal", hdr(json!({"alg":"RS256","kid":"../../../etc/passwd"})), 401, "unknown_kid", "kid is only compared"),
        tok("kid SQL metacharacters", hdr(json!({"alg":"RS256","kid":"' OR '1'='1' --"})), 401, "unknown_kid", "kid is only compared"),
        tok("kid JSON metacharacters", hdr(json!({"alg":"RS256","kid":"\"}],\"keys\":[{"})), 401, "unknown_kid", "kid is only compared"),
        tok("kid of 4 KB", hdr(json!({"alg":"RS256","kid":"k".repeat(4096)})), 401, "unknown_kid", "kid is only compared, and echoed truncated"),
        tok("kid of 10 KB", hdr(json!({"alg":"RS256","kid":"k".repeat(10 * 1024)})), 401, "too_large", "over max_token_bytes: refused before parsing"),
        tok("jku to an attacker key", jws(attacker, "RS256", json!({"alg":"RS256","kid":"attacker","jku":"https://evil.example/jwks"}), &claims()), 401, "unknown_kid", "jku is ignored, never fetched"),
        tok("x5u to an attacker cert", jws(attacker, "RS256", json!({"alg":"RS256","kid":"rsa-1","x5u":"https://evil.example/cert"}), &claims()), 401, "bad_signature", "x5u is ignored"),
        tok("embedded jwk of the signer", jws(attacker, "RS256", json!({"alg":"RS256","kid":"rsa-1","jwk":attacker_jwk}), &claims()), 401, "bad_signature", "an embedded key is never trusted"),
        tok("x5c chain of the signer", jws(attacker, "RS256", json!({"alg":"RS256","kid":"rsa-1","x5c":["MIIB"]}), &claims()), 401, "bad_signature", "x5c is ignored"),
        tok("crit with an unknown extension", hdr(json!({"alg":"RS256","kid":"rsa-1","crit":["x-ext"],"x-ext":1})), 401, "malformed", "RFC 7515 4.1.11"),
        tok("tampered payload, original signature", tampered, 401, "bad_signature", "signature covers the payload"),
        tok("signature truncated", format!("{}.{}.{}", p[0], p[1], &p[2][..p[2].len() - 10]), 401, "bad_signature", "length must equal the modulus"),
        tok("signature empty", format!("{}.{}.", p[0], p[1]), 401, "malformed", "a JWS needs a signature"),
        tok("signature with base64 padding", format!("{}.{}.{}==", p[0], p[1], &p[2]), 401, "malformed", "base64url without padding only"),
        tok("signature in standard base64", std_b64, 401, "malformed", "URL alphabet only"),
        tok("four segments (extra dot)", format!("{good}.x"), 401, "malformed", "exactly three parts"),
        tok("two segments", format!("{}.{}", p[0], p[1]), 401, "malformed", "exactly three parts"),
        tok("JWE (five segments)", format!("{}.a.b.c.d", p[0]), 401, "malformed", "encrypted tokens are refused"),
        tok("payload not JSON", raw_claims("not json"), 401, "malformed", "claims must be a JSON object"),
        tok("payload a JSON array", raw_claims("[1,2]"), 401, "malformed", "claims must be a JSON object"),
        tok("duplicate exp members", raw_claims(&format!(r#"{{"iss":"{ISS}","aud":"{AUD}","exp":{},"exp":{}}}"#, t + 600, t + 99_999_999)), 401, "malformed", "duplicate members are refused"),
        tok("exp as a string", rs(&with(|c| c["exp"] = json!((t + 600).to_string()))), 401, "malformed", "NumericDate must be a number"),
        tok("exp as a float in the future", rs(&with(|c| c["exp"] = json!((t + 600) as f64 + 0.5))), 200, "allowed", "RFC 7519 allows non-integer NumericDate"),
        tok("exp huge", rs(&with(|c| c["exp"] = json!(1e300))), 200, "allowed", "far-future exp is valid (no max lifetime configured)"),
        tok("exp negative", rs(&with(|c| c["exp"] = json!(-1))), 401, "expired", "in the past"),
        tok("exp missing", rs(&with(|c| { c.as_object_mut().unwrap().remove("exp"); })), 401, "malformed", "exp is required"),
        tok("nbf far future", rs(&with(|c| c["nbf"] = json!(t + 86_400))), 401, "not_yet_valid", "nbf honoured"),
        tok("iat in the future beyond skew", rs(&with(|c| c["iat"] = json!(t + 3600))), 401, "not_yet_valid", "iat honoured"),
        tok("aud empty array", rs(&with(|c| c["aud"] = json!([]))), 401, "audience", "must contain a configured audience"),
        tok("aud wrong type", rs(&with(|c| c["aud"] = json!(42))), 401, "malformed", "aud is a string or array of strings"),
        tok("aud with trailing slash", rs(&with(|c| c["aud"] = json!(format!("{AUD}/")))), 401, "audience", "exact comparison"),
        tok("aud in other case", rs(&with(|c| c["aud"] = json!(AUD.to_uppercase()))), 401, "audience", "exact comparison"),
        tok("iss with trailing slash", rs(&with(|c| c["iss"] = json!(format!("{ISS}/")))), 401, "issuer", "exact comparison"),
        tok("iss in other case", rs(&with(|c| c["iss"] = json!(ISS.to_uppercase()))), 401, "issuer", "exact comparison"),
        tok("Entra v1 iss when only v2 is configured", v1, 401, "issuer", "v1 and v2 issuers differ"),
        tok("ES256 valid (control)", es.clone(), 200, "allowed", "the control case"),
        tok("ES256 signature in DER", format!("{}.{}.{}", ep[0], ep[1], es_der), 401, "bad_signature", "JWS uses raw r||s"),
        tok("ES256 high-S signature", format!("{}.{}.{}", ep[0], ep[1], high_s), 200, "allowed", "accepted: the same key signed it (ECDSA malleability changes no claim)"),
        tok("RSA key below 2048 bits", jws(weak, "RS256", json!({"alg":"RS256","kid":"weak-1024"}), &claims()), 401, "unknown_kid", "the 1024-bit key is skipped when the JWKS is loaded"),
        tok("token over the size cap", rs(&with(|c| c["pad"] = json!("x".repeat(9000)))), 401, "too_large", "max_token_bytes"),
        tok("second valid key (control)", jws(rsa2, "RS256", json!({"alg":"RS256","kid":"rsa-2"}), &claims()), 200, "allowed", "kid selects the key"),
        Case { name: "lower-case bearer", send: Send::Headers(vec![("authorization", format!("bearer {good}"))]), status: 200, reason: "allowed", why: "scheme is case-insensitive" },
        Case { name: "mixed-case BeArEr", send: Send::Headers(vec![("authorization", format!("BeArEr {good}"))]), status: 200, reason: "allowed", why: "scheme is case-insensitive" },
        Case { name: "two Authorization headers", send: Send::Raw(format!("GET /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {good}\r\nAuthorization: Bearer {good}\r\nx-test-id: two-headers\r\nConnection: close\r\n\r\n")), status: 400, reason: "invalid_request", why: "ambiguous credentials" },
        Case { name: "token in a cookie only", send: Send::Headers(vec![("cookie", format!("access_token={good}"))]), status: 401, reason: "missing", why: "only the Authorization header is read" },
        Case { name: "token in the query only", send: Send::PathAndToken("/mcp?access_token=", good.clone()), status: 400, reason: "invalid_request", why: "query tokens are refused" },
        Case { name: "Basic credentials", send: Send::Headers(vec![("authorization", "Basic dXNlcjpwYXNz".into())]), status: 401, reason: "missing", why: "not a bearer token" },
        Case { name: "Bearer with nothing after it", send: Send::Headers(vec![("authorization", "Bearer ".into())]), status: 401, reason: "malformed", why: "empty token" },
        Case { name: "whitespace inside the token", send: Send::Headers(vec![("authorization", format!("Bearer {} {}", &good[..20], &good[20..]))]), status: 401, reason: "malformed", why: "b64token characters only" },
    ]
}

fn table(cases: &[Case]) -> String {
    let mut s = String::from(
        "# Adversarial token matrix\n\nGenerated from `tests/adversarial.rs`, which sends every case through the real Envoy with the\n\
         built module and checks the status, the metric reason and that the backend never saw a refused\n\
         request. Configuration: one provider (`RS256`, `PS256`, `ES256`), issuer = Entra v2 form,\n\
         JWKS with two RSA-2048 keys, one P-256 key and one RSA-1024 key (skipped).\n\n\
         | # | case | status | reason | why |\n|---:|---|---:|---|---|\n",
    );
    for (i, c) in cases.iter().enumerate() {
        s.push_str(&format!(
            "| {} | {} | {} | `{}` | {} |\n",
            i + 1,
            c.name,
            c.status,
            c.reason,
            c.why
        ));
    }
    s
}

#[test]
fn adversarial_token_matrix() {
    let rsa = SigningKey::cached(KeyKind::Rsa2048, "rsa-1");
    let rsa2 = SigningKey::cached(KeyKind::Rsa2048, "rsa-2");
    let ec = SigningKey::cached(KeyKind::EcP256, "ec-1");
    let weak = SigningKey::cached(KeyKind::Rsa1024, "weak-1024");
    let attacker = SigningKey::cached(KeyKind::Rsa2048, "attacker");
    let cfg = json!({
        "providers": {"p": {
            "issuer": ISS, "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![rsa.clone(), rsa2.clone(), ec.clone(), weak.clone()]).jwks().to_string()},
            "algorithms": ["RS256", "PS256", "ES256"]
        }},
        "rules": [{"match": {"prefix": "/mcp"}, "requires": {"provider_name": "p"}}]
    });
    let backend = Recorder::start();
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .start()
        .unwrap();
    let cases = cases(&rsa, &rsa2, &ec, &weak, &attacker);
    assert!(cases.len() >= 40, "{} cases", cases.len());

    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ADVERSARIAL.md");
    let expected = table(&cases);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&doc, &expected).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&doc).unwrap_or_default(),
        expected,
        "docs/ADVERSARIAL.md is stale: UPDATE_DOCS=1"
    );

    let mut failures = Vec::new();
    for c in &cases {
        let metric = if c.reason == "allowed" {
            "allowed".to_string()
        } else {
            format!("denied.{}", c.reason)
        };
        let before = envoy.filter_stat(&metric);
        let seen_before = backend.count();
        let r = match &c.send {
            Send::Token(t) => {
                let auth = format!("Bearer {t}");
                http::request(
                    envoy.port(),
                    "GET",
                    "/mcp",
                    &[("authorization", &auth)],
                    b"",
                )
            }
            Send::Headers(h) => {
                let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
                http::request(envoy.port(), "GET", "/mcp", &h, b"")
            }
            Send::Raw(raw) => http::raw(envoy.port(), raw.as_bytes()),
            Send::PathAndToken(p, t) => {
                http::request(envoy.port(), "GET", &format!("{p}{t}"), &[], b"")
            }
        };
        let reached = backend.count() - seen_before;
        let after = envoy.filter_stat_at_least(&metric, before + 1);
        let ok = r.status == c.status
            && after == before + 1
            && (reached == usize::from(c.status == 200));
        if !ok {
            failures.push(format!(
                "{}: status {} (want {}), {metric} {before}->{after}, backend saw {reached}; body {}",
                c.name, r.status, c.status, r.text().chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let logs = envoy.logs();
    if let Send::Token(good) = &cases[0].send {
        assert!(!logs.contains(good.as_str()), "a token was logged");
    }
}
