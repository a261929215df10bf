//! The dev IdP's Entra mode (`IdpConfig::entra`): every rule with the exact `AADSTS` code
//! an MCP sign-in façade meets at Entra ID v2.0.

use base64::Engine as _;
use devstack::entra::{EntraConfig, GRAPH_APP_ID};
use devstack::{b64url, http, Idp, IdpConfig};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TID: &str = "11111111-1111-1111-1111-111111111111";
const APP: &str = "22222222-2222-2222-2222-222222222222";
const CLIENT: &str = "33333333-3333-3333-3333-333333333333";
const SECRET: &str = "entra-dev-secret";
const CALLBACK: &str = "http://127.0.0.1:10000/auth/callback";
const CALLBACK_2: &str = "https://mcp.example.com/auth/callback";

fn entra_idp() -> Idp {
    Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            redirect_uris: vec![CALLBACK.into(), CALLBACK_2.into()],
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    })
}

fn api(name: &str) -> String {
    format!("api://{APP}/{name}")
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&devstack::b64url_decode(part).unwrap()).unwrap()
}

fn verify_rs256(idp: &Idp, token: &str) -> bool {
    let kid = decode_part(token, 0)["kid"].as_str().unwrap().to_string();
    let key = idp.key(&kid).unwrap();
    let vk = VerifyingKey::<Sha256>::new(key.rsa_public().unwrap());
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let sig = Signature::try_from(devstack::b64url_decode(sig).unwrap().as_slice()).unwrap();
    vk.verify(signed.as_bytes(), &sig).is_ok()
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn pkce(seed: &str) -> Pkce {
    let verifier = format!("{seed}-verifier-0123456789012345678901234567890123456789");
    let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// `GET /authorize` with these parameters (client id and response type filled in unless
/// given), not following the redirect.
fn authorize(idp: &Idp, params: &[(&str, &str)]) -> http::HttpResponse {
    let mut all: Vec<(&str, &str)> = Vec::new();
    if !params.iter().any(|(k, _)| *k == "client_id") {
        all.push(("client_id", CLIENT));
    }
    if !params.iter().any(|(k, _)| *k == "response_type") {
        all.push(("response_type", "code"));
    }
    all.extend_from_slice(params);
    http::get(&format!(
        "{}?{}",
        idp.authorize_url(),
        http::form_encode(&all)
    ))
    .unwrap()
}

/// The query parameters of a redirect to `redirect`.
fn redirected(resp: &http::HttpResponse, redirect: &str) -> Vec<(String, String)> {
    assert_eq!(resp.status, 302, "{}", resp.text());
    let loc = resp.header("location").unwrap();
    let (base, query) = loc.split_once('?').unwrap();
    assert_eq!(base, redirect);
    serde_urlencoded::from_str(query).unwrap()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The redirect carries `error` and an `error_description` starting with `AADSTS<code>:`,
/// the client's state, and no code.
fn assert_redirect_error(resp: &http::HttpResponse, error: &str, code: u32) {
    let p = redirected(resp, CALLBACK);
    assert_eq!(param(&p, "error"), Some(error), "{p:?}");
    let d = param(&p, "error_description").unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}:")), "{d}");
    assert_eq!(param(&p, "state"), Some("st-1"));
    assert_eq!(param(&p, "code"), None);
}

/// A code for `scope` (PKCE S256 with `p` when given).
fn code_for(idp: &Idp, scope: &str, p: Option<&Pkce>, redirect: &str) -> String {
    let mut params = vec![
        ("redirect_uri", redirect),
        ("scope", scope),
        ("state", "st-1"),
    ];
    if let Some(p) = p {
        params.push(("code_challenge", &p.challenge));
        params.push(("code_challenge_method", "S256"));
    }
    let resp = authorize(idp, &params);
    let q = redirected(&resp, redirect);
    assert_eq!(param(&q, "error"), None, "{q:?}");
    assert_eq!(param(&q, "state"), Some("st-1"));
    assert!(param(&q, "session_state").is_some());
    // Entra sends no `iss` in the authorization response.
    assert_eq!(param(&q, "iss"), None);
    param(&q, "code").unwrap().to_string()
}

/// `POST /token` with the client authenticated by `client_secret_post` plus `form`.
fn token(idp: &Idp, form: &[(&str, &str)]) -> http::HttpResponse {
    let mut all = vec![("client_id", CLIENT), ("client_secret", SECRET)];
    all.extend_from_slice(form);
    http::post_form(&idp.token_url(), &all, &[]).unwrap()
}

fn redeem(
    idp: &Idp,
    code: &str,
    scope: Option<&str>,
    verifier: Option<&str>,
) -> http::HttpResponse {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(idp, &form)
}

/// Status, `error`, and the `AADSTS` number from `error_codes` (checked against the
/// description's prefix).
fn aad(resp: &http::HttpResponse) -> (u16, String, u64) {
    let body = resp.json().unwrap_or_else(|_| panic!("{}", resp.text()));
    let code = body["error_codes"][0].as_u64().unwrap_or(0);
    let d = body["error_description"].as_str().unwrap_or("");
    assert!(d.starts_with(&format!("AADSTS{code}:")), "{d}");
    (
        resp.status,
        body["error"].as_str().unwrap_or("").to_string(),
        code,
    )
}

#[test]
fn entra_metadata_has_no_registration_and_no_pkce_methods() {
    let idp = entra_idp();
    let issuer = format!("https://login.microsoftonline.com/{TID}/v2.0");
    assert_eq!(idp.issuer(), issuer);
    // mint/claims_for follow the mode.
    assert_eq!(idp.audience(), APP);
    assert_eq!(idp.claims_for("u", "calculator.add")["aud"], APP);
    for url in [idp.discovery_url(), idp.as_metadata_url()] {
        let resp = http::get(&url).unwrap();
        assert_eq!(resp.status, 200);
        let m = resp.json().unwrap();
        assert_eq!(m["issuer"], issuer);
        assert_eq!(m["authorization_endpoint"], idp.authorize_url());
        assert_eq!(m["token_endpoint"], idp.token_url());
        assert_eq!(m["jwks_uri"], idp.jwks_url());
        for absent in [
            "registration_endpoint",
            "code_challenge_methods_supported",
            "grant_types_supported",
            "authorization_response_iss_parameter_supported",
        ] {
            assert!(m.get(absent).is_none(), "{absent} in {m}");
        }
        assert_eq!(
            m["scopes_supported"],
            json!(["openid", "profile", "email", "offline_access"])
        );
        assert!(m["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a != "none"));
    }
    assert_eq!(idp.discovery_fetch_count(), 2);
}

#[test]
fn entra_resource_parameter_is_refused_with_aadsts9010010() {
    let idp = entra_idp();
    let p = pkce("res");
    let base = |resource: &'static str| {
        vec![
            ("redirect_uri", CALLBACK),
            (
                "scope",
                "openid offline_access api://22222222-2222-2222-2222-222222222222/calculator.add",
            ),
            ("state", "st-1"),
            ("resource", resource),
        ]
    };
    // What MCP clients send: the MCP server's URL.
    let mut params = base("http://127.0.0.1:10000/mcp");
    params.push(("code_challenge", &p.challenge));
    params.push(("code_challenge_method", "S256"));
    assert_redirect_error(&authorize(&idp, &params), "invalid_target", 9010010);
    // Even with a bare scope (which alone would be AADSTS650053) the resource is judged first.
    let resp = authorize(
        &idp,
        &[
            ("redirect_uri", CALLBACK),
            ("scope", "calculator.add"),
            ("state", "st-1"),
            ("resource", "https://mcp.example.com/mcp"),
        ],
    );
    assert_redirect_error(&resp, "invalid_target", 9010010);
    // The API's own App ID URI with its scopes is accepted (Entra's rule: they must match).
    let resp = authorize(&idp, &base("api://22222222-2222-2222-2222-222222222222"));
    assert!(param(&redirected(&resp, CALLBACK), "code").is_some());

    // Token endpoint: the same.
    let code = code_for(
        &idp,
        &format!("openid {}", api("calculator.add")),
        Some(&p),
        CALLBACK,
    );
    let resp = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &p.verifier),
            ("scope", &api("calculator.add")),
            ("resource", "http://127.0.0.1:10000/mcp"),
        ],
    );
    assert_eq!(aad(&resp), (400, "invalid_target".into(), 9010010));
    assert!(resp.json().unwrap()["error_description"]
        .as_str()
        .unwrap()
        .contains(
        "The resource parameter provided in the request doesn't match with the requested scopes."
    ));
    // The refused request did not use the code up.
    let resp = redeem(&idp, &code, Some(&api("calculator.add")), Some(&p.verifier));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("resource", "https://mcp.example.com/mcp"),
        ],
    );
    assert_eq!(aad(&resp), (400, "invalid_target".into(), 9010010));
}

#[test]
fn entra_confidential_client_needs_its_secret() {
    let idp = entra_idp();
    let p = pkce("sec");
    let code = code_for(&idp, &api("calculator.add"), Some(&p), CALLBACK);
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", p.verifier.as_str()),
            (
                "scope",
                "api://22222222-2222-2222-2222-222222222222/calculator.add",
            ),
        ];
        f.extend_from_slice(extra);
        f
    };
    let url = idp.token_url();
    // No secret (a public-client request).
    let resp = http::post_form(&url, &form(&[("client_id", CLIENT)]), &[]).unwrap();
    assert_eq!(aad(&resp), (401, "invalid_client".into(), 7000218));
    // Basic with an empty secret.
    let resp = http::post_form(&url, &form(&[]), &[("Authorization", &basic(CLIENT, ""))]).unwrap();
    assert_eq!(aad(&resp), (401, "invalid_client".into(), 7000218));
    // Wrong secret, post and Basic.
    let resp = http::post_form(
        &url,
        &form(&[("client_id", CLIENT), ("client_secret", "wrong")]),
        &[],
    )
    .unwrap();
    assert_eq!(aad(&resp), (401, "invalid_client".into(), 7000215));
    let resp = http::post_form(
        &url,
        &form(&[]),
        &[("Authorization", &basic(CLIENT, "wrong"))],
    )
    .unwrap();
    assert_eq!(aad(&resp), (401, "invalid_client".into(), 7000215));
    // A client the tenant does not know (the dev IdP's usual demo clients do not exist here).
    let resp = http::post_form(
        &url,
        &form(&[
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ]),
        &[],
    )
    .unwrap();
    assert_eq!(aad(&resp), (400, "unauthorized_client".into(), 700016));
    // None of that used the code: Basic with the right secret redeems it.
    let resp = http::post_form(
        &url,
        &form(&[]),
        &[("Authorization", &basic(CLIENT, SECRET))],
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());
    // /authorize for an unknown client: an error page, no redirect.
    let resp = authorize(
        &idp,
        &[
            ("client_id", "demo-public"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
        ],
    );
    assert_eq!(resp.status, 400);
    assert!(resp.header("location").is_none());
    assert!(resp.text().contains("AADSTS700016"), "{}", resp.text());
}

#[test]
fn entra_redirect_uri_must_match_exactly_aadsts50011() {
    let idp = entra_idp();
    let scope = api("calculator.add");
    for bad in [
        "http://127.0.0.1:10001/auth/callback",
        "http://127.0.0.1:10000/auth/callback/",
        "http://127.0.0.1:10000/auth/Callback",
        "http://localhost:10000/auth/callback",
        "http://127.0.0.1:10000/auth/callback?x=1",
        "HTTP://127.0.0.1:10000/auth/callback",
        "https://evil.example/auth/callback",
    ] {
        let resp = authorize(
            &idp,
            &[("redirect_uri", bad), ("scope", &scope), ("state", "s")],
        );
        assert_eq!(resp.status, 400, "{bad}");
        assert!(resp.header("location").is_none(), "{bad} redirected");
        let page = resp.text();
        assert!(page.contains("AADSTS50011"), "{bad}: {page}");
        assert!(resp
            .header("content-type")
            .unwrap()
            .starts_with("text/html"));
    }
    // Missing redirect_uri: a page too.
    let resp = authorize(&idp, &[("scope", &scope)]);
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("AADSTS900144"));

    // Token endpoint: an unregistered redirect_uri → AADSTS50011; a registered one that is
    // not the authorization request's → AADSTS500112.
    let p = pkce("redir");
    let code = code_for(&idp, &scope, Some(&p), CALLBACK);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:10001/auth/callback"),
        ("code_verifier", p.verifier.as_str()),
        ("scope", scope.as_str()),
    ];
    assert_eq!(
        aad(&token(&idp, &form)),
        (400, "invalid_request".into(), 50011)
    );
    form[2] = ("redirect_uri", CALLBACK_2);
    assert_eq!(
        aad(&token(&idp, &form)),
        (400, "invalid_grant".into(), 500112)
    );
    form[2] = ("redirect_uri", CALLBACK);
    assert_eq!(token(&idp, &form).status, 200);
    // The second registered URI works on its own.
    let code = code_for(&idp, &scope, None, CALLBACK_2);
    let resp = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK_2),
            ("scope", &scope),
        ],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[test]
fn entra_scope_rules() {
    let idp = entra_idp();
    let at_authorize = |scope: &str| {
        authorize(
            &idp,
            &[
                ("redirect_uri", CALLBACK),
                ("scope", scope),
                ("state", "st-1"),
            ],
        )
    };
    // A bare API scope resolves to Microsoft Graph, which has no such scope.
    let resp = at_authorize("calculator.add");
    assert_redirect_error(&resp, "invalid_scope", 650053);
    let d = param(&redirected(&resp, CALLBACK), "error_description")
        .unwrap()
        .to_string();
    assert!(d.contains(GRAPH_APP_ID), "{d}");
    assert!(d.contains("'calculator.add'"), "{d}");
    assert_redirect_error(
        &at_authorize("openid offline_access calculator.add"),
        "invalid_scope",
        650053,
    );
    // A scope the API does not define.
    assert_redirect_error(
        &at_authorize(&api("calculator.divide")),
        "invalid_scope",
        650053,
    );
    // Another resource the tenant does not have.
    assert_redirect_error(
        &at_authorize("api://99999999-9999-9999-9999-999999999999/x"),
        "invalid_resource",
        500011,
    );
    // Two resources in one request.
    assert_redirect_error(
        &at_authorize(&format!("{} User.Read", api("calculator.add"))),
        "invalid_scope",
        28000,
    );
    assert_redirect_error(
        &at_authorize(&format!("{} calculator.subtract", api("calculator.add"))),
        "invalid_scope",
        28000,
    );
    // No scope at all.
    assert_redirect_error(
        &authorize(&idp, &[("redirect_uri", CALLBACK), ("state", "st-1")]),
        "invalid_request",
        900144,
    );
    // The accepted forms: api://<id>/<name>, <id>/<name>, .default, with OIDC scopes.
    for ok in [
        format!(
            "openid profile email offline_access {}",
            api("calculator.add")
        ),
        format!("{APP}/calculator.add"),
        api(".default"),
        format!("{} {}", api("calculator.add"), api("calculator.subtract")),
    ] {
        let q = redirected(&at_authorize(&ok), CALLBACK);
        assert!(param(&q, "code").is_some(), "{ok}: {q:?}");
    }

    // Token endpoint: scope is required for a code (AADSTS28003), and checked the same way.
    let code = code_for(
        &idp,
        &format!("openid {}", api("calculator.add")),
        None,
        CALLBACK,
    );
    assert_eq!(
        aad(&redeem(&idp, &code, None, None)),
        (400, "invalid_scope".into(), 28003)
    );
    assert_eq!(
        aad(&redeem(&idp, &code, Some("calculator.add"), None)),
        (400, "invalid_scope".into(), 650053)
    );
    assert_eq!(
        aad(&redeem(
            &idp,
            &code,
            Some(&format!("{} User.Read", api("calculator.add"))),
            None
        )),
        (400, "invalid_scope".into(), 28000)
    );
    // An API scope the user did not consent to at /authorize.
    assert_eq!(
        aad(&redeem(
            &idp,
            &code,
            Some(&api("calculator.subtract")),
            None
        )),
        (400, "invalid_grant".into(), 65001)
    );
    let resp = redeem(
        &idp,
        &code,
        Some(&format!("openid {}", api("calculator.add"))),
        None,
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json().unwrap();
    assert_eq!(body["scope"], api("calculator.add"));
    assert!(body["id_token"].is_string());
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    // .default grants every API scope.
    let code = code_for(&idp, &api(".default"), None, CALLBACK);
    let body = redeem(&idp, &code, Some(&api(".default")), None)
        .json()
        .unwrap();
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(
        decode_part(at, 1)["scp"],
        "calculator.add calculator.subtract mcp.tools"
    );

    // OIDC scopes only: a Microsoft Graph token, which the filter refuses (nonce header,
    // Graph audience).
    let code = code_for(&idp, "openid profile", None, CALLBACK);
    let body = redeem(&idp, &code, Some("openid profile"), None)
        .json()
        .unwrap();
    let at = body["access_token"].as_str().unwrap();
    assert!(decode_part(at, 0)["nonce"].is_string());
    let c = decode_part(at, 1);
    assert_eq!(c["aud"], GRAPH_APP_ID);
    assert_eq!(c["scp"], "openid profile User.Read");
    assert!(
        verify_rs256(&idp, at),
        "signed, though nobody but Graph could check a nonce token"
    );
}

#[test]
fn entra_codes_are_single_use_and_pkce_is_enforced_when_sent() {
    let idp = entra_idp();
    let scope = api("calculator.add");
    let p = pkce("single");
    let code = code_for(&idp, &scope, Some(&p), CALLBACK);
    // Wrong and missing verifier.
    let other = pkce("other");
    assert_eq!(
        aad(&redeem(&idp, &code, Some(&scope), Some(&other.verifier))),
        (400, "invalid_grant".into(), 501481)
    );
    assert_eq!(
        aad(&redeem(&idp, &code, Some(&scope), None)),
        (400, "invalid_grant".into(), 501481)
    );
    // The plain-method answer (verifier == challenge) fails too.
    assert_eq!(
        aad(&redeem(&idp, &code, Some(&scope), Some(&p.challenge))),
        (400, "invalid_grant".into(), 501481)
    );
    // Right verifier: redeemed once, then AADSTS54005.
    let resp = redeem(&idp, &code, Some(&scope), Some(&p.verifier));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = redeem(&idp, &code, Some(&scope), Some(&p.verifier));
    assert_eq!(aad(&resp), (400, "invalid_grant".into(), 54005));
    assert!(resp.text().contains("already redeemed"));
    // An unknown code.
    assert_eq!(
        aad(&redeem(&idp, "nope", Some(&scope), None)),
        (400, "invalid_grant".into(), 70000)
    );
    // PKCE is optional for this confidential client, and a code without it still works once.
    let code = code_for(&idp, &scope, None, CALLBACK);
    assert_eq!(redeem(&idp, &code, Some(&scope), None).status, 200);
    assert_eq!(aad(&redeem(&idp, &code, Some(&scope), None)).2, 54005);
    // plain or a missing method with a challenge: refused at /authorize.
    for method in [Some("plain"), None] {
        let mut params = vec![
            ("redirect_uri", CALLBACK),
            ("scope", scope.as_str()),
            ("state", "st-1"),
            ("code_challenge", p.challenge.as_str()),
        ];
        if let Some(m) = method {
            params.push(("code_challenge_method", m));
        }
        let q = redirected(&authorize(&idp, &params), CALLBACK);
        assert_eq!(param(&q, "error"), Some("invalid_request"), "{method:?}");
        assert_eq!(param(&q, "code"), None);
    }
}

#[test]
fn entra_refresh_tokens_rotate_and_the_old_one_is_refused() {
    let idp = entra_idp();
    let scope = format!("openid offline_access {}", api("calculator.add"));
    let p = pkce("refresh");
    let code = code_for(&idp, &scope, Some(&p), CALLBACK);
    let body = redeem(&idp, &code, Some(&scope), Some(&p.verifier))
        .json()
        .unwrap();
    let rt1 = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: &str, scope: Option<&str>| {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        token(&idp, &form)
    };
    let resp = refresh(&rt1, Some(&scope));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json().unwrap();
    let rt2 = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    let c = decode_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(c["scp"], "calculator.add");
    assert_eq!(c["aud"], APP);
    // The old one is refused.
    assert_eq!(
        aad(&refresh(&rt1, Some(&scope))),
        (400, "invalid_grant".into(), 50173)
    );
    // The new one works once, without scope too.
    let resp = refresh(&rt2, None);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let rt3 = resp.json().unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(aad(&refresh(&rt2, None)).2, 50173);
    // Scopes the user did not consent to.
    assert_eq!(
        aad(&refresh(&rt3, Some(&api("calculator.subtract")))),
        (400, "invalid_grant".into(), 65001)
    );
    // A refresh token nobody issued.
    assert_eq!(
        aad(&refresh("1.dev.forged", None)),
        (400, "invalid_grant".into(), 9002313)
    );
    // Needs the client's secret like every token request.
    let resp = http::post_form(
        &idp.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt3.as_str()),
            ("client_id", CLIENT),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(aad(&resp), (401, "invalid_client".into(), 7000218));
    assert_eq!(refresh(&rt3, None).status, 200);
}

#[test]
fn entra_access_tokens_have_the_v2_shape() {
    let idp = entra_idp();
    let scope = format!(
        "openid profile offline_access {} {}",
        api("calculator.add"),
        api("calculator.subtract")
    );
    let p = pkce("shape");
    let code = code_for(&idp, &scope, Some(&p), CALLBACK);
    let resp = redeem(&idp, &code, Some(&scope), Some(&p.verifier));
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let body = resp.json().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"],
        format!("{} {}", api("calculator.add"), api("calculator.subtract"))
    );
    let at = body["access_token"].as_str().unwrap();
    assert!(verify_rs256(&idp, at));
    let h = decode_part(at, 0);
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["alg"], "RS256");
    assert!(h.get("nonce").is_none());
    let c = decode_part(at, 1);
    assert_eq!(
        c["iss"],
        format!("https://login.microsoftonline.com/{TID}/v2.0")
    );
    assert_eq!(c["aud"], APP);
    assert_eq!(c["scp"], "calculator.add calculator.subtract");
    assert_eq!(c["tid"], TID);
    assert_eq!(c["azp"], CLIENT);
    assert_eq!(c["azpacr"], "1");
    assert_eq!(c["ver"], "2.0");
    assert!(c.get("scope").is_none() && c.get("roles").is_none());
    assert_eq!(c["oid"].as_str().unwrap().len(), 36);
    assert_ne!(c["sub"], "test-user", "pairwise sub");
    let exp = c["exp"].as_u64().unwrap();
    assert_eq!(exp - c["iat"].as_u64().unwrap(), 3600);
    // The id token: aud is the client.
    let id = decode_part(body["id_token"].as_str().unwrap(), 1);
    assert_eq!(id["aud"], CLIENT);
    assert_eq!(id["tid"], TID);
    assert_eq!(id["ver"], "2.0");

    // The App ID URI as audience, a configured issuer.
    let idp = Idp::start(IdpConfig {
        issuer: Some("https://issuer.example/v2.0".into()),
        entra: Some(EntraConfig {
            audience_is_uri: true,
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let code = code_for(&idp, &api("calculator.add"), None, CALLBACK);
    let at = redeem(&idp, &code, Some(&api("calculator.add")), None)
        .json()
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let c = decode_part(&at, 1);
    assert_eq!(c["aud"], format!("api://{APP}"));
    assert_eq!(c["iss"], "https://issuer.example/v2.0");
}

#[test]
fn entra_client_credentials_needs_dot_default() {
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            app_roles: vec!["calculator.add".into()],
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let cc = |scope: Option<&str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        token(&idp, &form)
    };
    assert_eq!(aad(&cc(None)), (400, "invalid_request".into(), 900144));
    assert_eq!(
        aad(&cc(Some(&api("calculator.add")))),
        (400, "invalid_scope".into(), 1002012)
    );
    let resp = cc(Some(&api(".default")));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json().unwrap();
    assert!(body.get("refresh_token").is_none());
    let c = decode_part(body["access_token"].as_str().unwrap(), 1);
    assert_eq!(c["roles"], json!(["calculator.add"]));
    assert!(c.get("scp").is_none());
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["aud"], APP);
    assert_eq!(c["azp"], CLIENT);
}

#[test]
fn entra_expired_code_and_refresh_token() {
    let idp = Idp::start(IdpConfig {
        entra: Some(EntraConfig {
            code_ttl_secs: 1,
            refresh_ttl_secs: 1,
            ..EntraConfig::default()
        }),
        ..IdpConfig::default()
    });
    let scope = format!("offline_access {}", api("calculator.add"));
    let code = code_for(&idp, &scope, None, CALLBACK);
    let fresh = code_for(&idp, &scope, None, CALLBACK);
    let rt = redeem(&idp, &fresh, Some(&scope), None).json().unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        aad(&redeem(&idp, &code, Some(&scope), None)),
        (400, "invalid_grant".into(), 70008)
    );
    let resp = token(
        &idp,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
    );
    assert_eq!(aad(&resp), (400, "invalid_grant".into(), 700082));
}

#[test]
fn default_mode_is_unchanged() {
    // Without `entra` the IdP keeps its usual metadata and clients.
    let idp = Idp::start_default();
    let m = http::get(&idp.discovery_url()).unwrap().json().unwrap();
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["issuer"], idp.base_url());
    let resp = http::post_form(
        &idp.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
            ("resource", "http://127.0.0.1:10000/mcp"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(resp.status, 200);
}
