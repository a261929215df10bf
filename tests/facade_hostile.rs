//! Issue 19, hostile cases of the sign-in façade through the real Envoy with the façade
//! module (the core's unit tests cover each; these check that the filter carries them out):
//! consent mode `remember`, expired `state` and façade code, a callback in another browser,
//! PKCE `plain`/missing at `/authorize`, lookalike and unregistered redirect URIs at
//! `/register` and `/authorize` (never a redirect there), consent Deny, consent CSRF, one
//! façade code redeemed concurrently (exactly one success: the used-id record is a
//! compare-and-swap), and no secret in the filter's lines of Envoy's trace log.
//!
//! Every refusal is checked for its status, its exact error or page text, and the absence
//! of a `Location` header.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use devstack::mcp_demo::McpClient;
use serde_json::{json, Value};
use support::facade::*;
use support::http::{self, Response};

/// A refusal that must not send the browser anywhere.
fn no_redirect(r: &Response, what: &str) {
    assert_eq!(r.header("location"), None, "{what}: {}", r.status);
}

/// An HTML error page with this status and text.
fn page(r: &Response, status: u16, text: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{what}"
    );
    assert!(r.text().contains(text), "{what}: {}", r.text());
    no_redirect(r, what);
}

/// A JSON OAuth error with this status, `error` and `error_description`.
/// The `error_description` of a used or revoked façade refresh token.
const REFRESH_REFUSED: &str = "the refresh token was already used, or a replay revoked the refresh tokens of this sign-in; sign in again";

fn oauth_error(r: &Response, status: u16, error: &str, description: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let v = r.json();
    assert_eq!(v["error"], error, "{what}: {v}");
    assert_eq!(v["error_description"], description, "{what}: {v}");
    no_redirect(r, what);
}

#[test]
fn consent_remember_skips_the_page_only_for_the_same_client_on_same_site_navigations() {
    let s = start(Options {
        consent: "remember",
        ..Options::default()
    });
    let client = s.register();
    let path = s.authorize_path(&client, CLIENT_REDIRECT, VERIFIER);

    // First sign-in: the page, then approval sets the remembered-approval cookie.
    let first = s.consent_page(&client, VERIFIER);
    assert!(first.text().contains("Allow access?"));
    let approved = s.consent(&first, "approve");
    assert_eq!(approved.status, 303, "{}", approved.text());
    let approval = cookies(&approved)
        .split("; ")
        .find(|c| c.starts_with("mcp-ok-"))
        .expect("the approval cookie")
        .to_string();

    // Same browser, same client, same-origin navigation: straight to the IdP.
    let again = s.get(
        &path,
        &[("cookie", &approval), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(again.status, 302, "{}", again.text());
    let to_idp = again.header("location").unwrap();
    assert!(to_idp.starts_with(&s.idp.authorize_url()), "{to_idp}");
    assert!(
        cookies(&again).contains("mcp-bind-"),
        "the skipped page still binds the browser"
    );
    // …and that sign-in completes.
    let back = s.via_idp(to_idp);
    let (_, cb) = split_url(&back);
    let done = s.get(&cb, &[("cookie", &cookies(&again))]);
    assert_eq!(done.status, 302, "{}", done.text());
    assert!(done
        .header("location")
        .unwrap()
        .starts_with(&format!("{CLIENT_REDIRECT}?code=")));

    // Cross-site (a page elsewhere bouncing the user through), or no Sec-Fetch-Site: the page.
    for site in [Some("cross-site"), None] {
        let mut h = vec![("cookie", approval.as_str())];
        if let Some(v) = site {
            h.push(("sec-fetch-site", v));
        }
        let r = s.get(&path, &h);
        assert_eq!(r.status, 200, "{site:?}: {}", r.text());
        assert!(r.text().contains("Allow access?"), "{site:?}");
        no_redirect(&r, "cross-site");
    }

    // Another client, same browser and cookie: the page.
    let other = s.register();
    let r = s.get(
        &s.authorize_path(&other, CLIENT_REDIRECT, VERIFIER),
        &[("cookie", &approval), ("sec-fetch-site", "same-origin")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Allow access?"));
    no_redirect(&r, "another client");
}

/// Waits until the wall clock is early in a second (the façade's lifetimes are whole
/// seconds), so that a 2 s lifetime leaves at least one second.
fn early_in_a_second() {
    loop {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        if ms < 300 {
            return;
        }
        std::thread::sleep(Duration::from_millis(u64::from(1000 - ms) + 5));
    }
}

#[test]
fn expired_state_at_the_callback_and_expired_code_at_token_are_refused() {
    let s = start(Options {
        state_ttl: Some("2s"),
        code_ttl: Some("2s"),
        ..Options::default()
    });

    // The IdP answers after the state's lifetime.
    let client = s.register();
    early_in_a_second();
    let page_r = s.consent_page(&client, VERIFIER);
    let approved = s.consent(&page_r, "approve");
    assert_eq!(approved.status, 303, "{}", approved.text());
    let back = s.via_idp(approved.header("location").unwrap());
    std::thread::sleep(Duration::from_millis(3100));
    let (_, cb) = split_url(&back);
    let r = s.get(&cb, &[("cookie", &cookies(&approved))]);
    page(
        &r,
        400,
        "The sign-in took too long. Start it again from the application.",
        "expired state",
    );

    // The façade code redeemed after its lifetime.
    early_in_a_second();
    let (client, code) = s.code(VERIFIER);
    std::thread::sleep(Duration::from_millis(3100));
    let r = s.token(&client, &code, VERIFIER);
    oauth_error(
        &r,
        400,
        "invalid_grant",
        "the code has expired",
        "expired code",
    );
    assert_eq!(s.idp.tokens_issued(), 0);
}

#[test]
fn a_callback_in_another_browser_is_a_403_page() {
    let s = start(Options::default());
    let client = s.register();
    let page_r = s.consent_page(&client, VERIFIER);
    let approved = s.consent(&page_r, "approve");
    assert_eq!(approved.status, 303);
    let back = s.via_idp(approved.header("location").unwrap());
    let (_, cb) = split_url(&back);

    // Another browser's own approved sign-in: its binding cookie has another name.
    let other_page = s.consent_page(&client, VERIFIER);
    let other = s.consent(&other_page, "approve");
    assert_eq!(other.status, 303);
    let mine = cookies(&approved);
    let (name, value) = mine.split_once('=').unwrap();
    assert!(name.starts_with("mcp-bind-"), "{mine}");
    let forged = format!("{name}={}", value.chars().rev().collect::<String>());

    let text = "This sign-in was started in another browser. Finish it in the browser where you approved it.";
    for (jar, what) in [
        (String::new(), "no cookie"),
        (cookies(&other), "another browser's binding cookie"),
        (forged, "the right name, another value"),
    ] {
        let h: Vec<(&str, &str)> = if jar.is_empty() {
            vec![]
        } else {
            vec![("cookie", jar.as_str())]
        };
        let r = s.get(&cb, &h);
        page(&r, 403, text, what);
    }
    // The browser that approved it still can.
    let r = s.get(&cb, &[("cookie", &mine)]);
    assert_eq!(r.status, 302, "{}", r.text());
    assert!(r
        .header("location")
        .unwrap()
        .starts_with(&format!("{CLIENT_REDIRECT}?code=")));
}

#[test]
fn pkce_plain_or_missing_at_authorize_goes_back_to_the_registered_client_with_an_error() {
    let s = start(Options::default());
    let client = s.register();
    let ch = challenge(VERIFIER);
    for (method, chal, description) in [
        (
            Some("plain"),
            Some(VERIFIER),
            "code_challenge_method must be S256",
        ),
        (
            Some("plain"),
            Some(ch.as_str()),
            "code_challenge_method must be S256",
        ),
        (
            None,
            Some(ch.as_str()),
            "code_challenge_method must be S256",
        ),
        (
            Some("S256"),
            None,
            "code_challenge is required (PKCE with S256)",
        ),
        (None, None, "code_challenge is required (PKCE with S256)"),
    ] {
        let path = s.authorize_with(&[
            ("client_id", Some(&client)),
            ("redirect_uri", Some(CLIENT_REDIRECT)),
            ("response_type", Some("code")),
            ("state", Some("client-state")),
            ("code_challenge", chal),
            ("code_challenge_method", method),
        ]);
        let r = s.get(&path, &[]);
        let what = format!("{method:?} {chal:?}");
        // The client and its redirect URI are verified by now: the error goes back there
        // (RFC 6749 §4.1.2.1), never to the IdP and never a consent page.
        assert_eq!(r.status, 302, "{what}: {}", r.text());
        let loc = r.header("location").unwrap();
        assert!(
            loc.starts_with(&format!("{CLIENT_REDIRECT}?")),
            "{what}: {loc}"
        );
        assert_eq!(param(loc, "error").as_deref(), Some("invalid_request"));
        assert_eq!(
            param(loc, "error_description").as_deref(),
            Some(description)
        );
        assert_eq!(param(loc, "state").as_deref(), Some("client-state"));
        assert_eq!(param(loc, "iss").as_deref(), Some(s.base.as_str()));
        assert_eq!(param(loc, "code"), None);
    }
    assert_eq!(s.idp.tokens_issued(), 0);
}

#[test]
fn lookalike_and_unregistered_redirect_uris_are_refused_and_never_redirected_to() {
    let s = start(Options::default());
    let own_callback = format!("{}/auth/callback", s.base);
    let own_authorize = format!("{}/authorize", s.base);
    let cases: Vec<(&str, &str)> = vec![
        (
            "http://localhost@evil.example/cb",
            "redirect URI must not contain userinfo",
        ),
        ("JAVASCRIPT:alert(1)", "redirect URI scheme is not allowed"),
        ("JavaScript:alert(1)", "redirect URI scheme is not allowed"),
        (
            " javascript:alert(1)",
            "redirect URI contains whitespace, control or non-ASCII characters",
        ),
        (
            "javascript:alert(1) ",
            "redirect URI contains whitespace, control or non-ASCII characters",
        ),
        (
            "\tjavascript:alert(1)\n",
            "redirect URI contains whitespace, control or non-ASCII characters",
        ),
        ("data:text/html,hi", "redirect URI scheme is not allowed"),
        (
            "DATA:text/html;base64,PHNjcmlwdD4=",
            "redirect URI scheme is not allowed",
        ),
        ("file:///etc/passwd", "redirect URI scheme is not allowed"),
        (
            "http://localhost:7777/x/../cb",
            "redirect URI must not contain dot segments",
        ),
        (
            "http://localhost:7777/x/%2E%2E/cb",
            "redirect URI must not contain dot segments",
        ),
        (
            "http://localhost:7777/cb#frag",
            "redirect URI must not contain a fragment",
        ),
        (
            "https://app.example.com:8443/cb",
            "redirect URI is not in the allow-list",
        ),
        (
            "https://evil.example/cb",
            "redirect URI is not in the allow-list",
        ),
        (
            "http://evil.example/cb",
            "plain http redirect URIs must use a loopback host",
        ),
        (
            own_callback.as_str(),
            "redirect URI points at this authorization server",
        ),
        (
            own_authorize.as_str(),
            "redirect URI points at this authorization server",
        ),
    ];

    // At /register: 400 invalid_redirect_uri naming the rule.
    for (uri, rule) in &cases {
        let r = s.register_uris(&[uri]);
        oauth_error(
            &r,
            400,
            "invalid_redirect_uri",
            &format!("redirect_uris[0]: {rule}"),
            uri,
        );
    }

    // At /authorize, for a client that registered CLIENT_REDIRECT and the https one: a
    // page, never a redirect.
    let r = s.register_uris(&[CLIENT_REDIRECT, "https://app.example.com/cb"]);
    assert_eq!(r.status, 201, "{}", r.text());
    let client = r.json()["client_id"].as_str().unwrap().to_string();
    let mut at_authorize = cases.clone();
    at_authorize.extend([
        (
            "http://localhost:7777/other",
            "redirect_uri is not registered for this client",
        ),
        (
            "http://localhost:7777/cb?x=1",
            "redirect_uri is not registered for this client",
        ),
        (
            "https://app.example.com/cb/",
            "redirect URI is not in the allow-list",
        ),
    ]);
    for (uri, rule) in &at_authorize {
        let r = s.get(&s.authorize_path(&client, uri, VERIFIER), &[]);
        page(&r, 400, rule, uri);
        assert!(r.text().contains("Sign-in request refused"), "{uri}");
    }
    // Allowed by the allow-list but registered by another client only.
    let other = s.register();
    let r = s.get(
        &s.authorize_path(&other, "https://app.example.com/cb", VERIFIER),
        &[],
    );
    page(
        &r,
        400,
        "redirect_uri is not registered for this client",
        "another client's URI",
    );
    // The registered ones work: a consent page (loopback on another port too, RFC 8252).
    for ok in [
        CLIENT_REDIRECT,
        "http://localhost:9999/cb",
        "https://app.example.com/cb",
    ] {
        let r = s.get(&s.authorize_path(&client, ok, VERIFIER), &[]);
        assert_eq!(r.status, 200, "{ok}: {}", r.text());
    }
}

#[test]
fn consent_deny_goes_back_to_the_registered_client_with_access_denied() {
    let s = start(Options::default());
    let client = s.register();
    let page_r = s.consent_page(&client, VERIFIER);
    let r = s.consent(&page_r, "deny");
    assert_eq!(r.status, 303, "{}", r.text());
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with(&format!("{CLIENT_REDIRECT}?")), "{loc}");
    assert_eq!(param(loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        param(loc, "error_description").as_deref(),
        Some("the user denied the request")
    );
    assert_eq!(param(loc, "state").as_deref(), Some("client-state"));
    assert_eq!(param(loc, "iss").as_deref(), Some(s.base.as_str()));
    assert_eq!(param(loc, "code"), None);
    // The CSRF cookie is cleared; no binding cookie (nothing goes to the IdP).
    assert!(r
        .header_all("set-cookie")
        .iter()
        .any(|c| c.starts_with("mcp-csrf-") && c.contains("Max-Age=0")));
    assert!(!cookies(&r).contains("mcp-bind-"));
}

#[test]
fn consent_without_the_csrf_cookie_or_with_a_mismatched_token_is_403() {
    let s = start(Options::default());
    let client = s.register();
    let p = s.consent_page(&client, VERIFIER);
    let html = p.text();
    let request = hidden(&html, "request");
    let csrf = hidden(&html, "csrf");
    let jar = cookies(&p);
    let (cookie_name, cookie_value) = jar.split_once('=').unwrap();
    assert!(cookie_name.starts_with("mcp-csrf-"), "{jar}");
    let other_token = "A".repeat(csrf.len());
    let text = "The consent check failed (missing or mismatched form token). Start the sign-in again from the application.";
    for (form_csrf, cookie, what) in [
        (csrf.clone(), String::new(), "no CSRF cookie"),
        (other_token.clone(), jar.clone(), "form token mismatched"),
        (
            csrf.clone(),
            format!("{cookie_name}={other_token}"),
            "cookie token mismatched",
        ),
        (
            other_token.clone(),
            format!("{cookie_name}={other_token}"),
            "cookie and form agree, not the sealed request",
        ),
        (String::new(), jar.clone(), "no form token"),
        (
            csrf.clone(),
            format!("mcp-csrf-someoneelse={cookie_value}"),
            "the value under another rendering's name",
        ),
    ] {
        let body = form(&[
            ("request", &request),
            ("csrf", &form_csrf),
            ("action", "approve"),
        ]);
        let mut h = vec![("origin", s.base.as_str())];
        if !cookie.is_empty() {
            h.push(("cookie", cookie.as_str()));
        }
        let r = s.post_form("/consent", &body, &h);
        page(&r, 403, text, what);
    }
    // From another site's form: refused before anything else.
    let body = form(&[
        ("request", &request),
        ("csrf", &csrf),
        ("action", "approve"),
    ]);
    let r = s.post_form(
        "/consent",
        &body,
        &[("origin", "https://evil.example"), ("cookie", &jar)],
    );
    page(
        &r,
        403,
        "This form was sent from another site.",
        "foreign Origin",
    );
    // The genuine form still works.
    let r = s.consent(&p, "approve");
    assert_eq!(r.status, 303, "{}", r.text());
}

/// One façade code posted to `/token` by several clients at once, several rounds, on four
/// workers: exactly one 200 per code; every other answer is the façade's own replay refusal
/// (never the IdP's), so the compare-and-swap record, not the IdP, stopped them.
#[test]
fn one_code_redeemed_concurrently_succeeds_exactly_once() {
    let s = start(Options {
        concurrency: 4,
        ..Options::default()
    });
    const ROUNDS: usize = 6;
    const RACERS: usize = 6;
    for round in 0..ROUNDS {
        let (client, code) = s.code(VERIFIER);
        let body = Arc::new(s.token_body(&client, &code, VERIFIER));
        let barrier = Arc::new(Barrier::new(RACERS));
        let port = s.port();
        let handles: Vec<_> = (0..RACERS)
            .map(|_| {
                let body = Arc::clone(&body);
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    http::request(
                        port,
                        "POST",
                        "/token",
                        &[("content-type", "application/x-www-form-urlencoded")],
                        body.as_bytes(),
                    )
                })
            })
            .collect();
        let answers: Vec<Response> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let ok = answers.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            ok,
            1,
            "round {round}: {:?}",
            answers
                .iter()
                .map(|r| (r.status, r.text()))
                .collect::<Vec<_>>()
        );
        for r in answers.iter().filter(|r| r.status != 200) {
            oauth_error(
                r,
                400,
                "invalid_grant",
                "the code was already used",
                "a racing redemption",
            );
        }
    }
    assert_eq!(s.idp.tokens_issued(), ROUNDS as u64);
    assert_eq!(s.envoy.filter_stat("facade.upstream_error"), 0);
    assert_eq!(s.envoy.filter_stat("facade.used_unrecorded"), 0);
}

/// The payload of a sealed façade blob (the test knows the key).
fn open(kind: mcp_edge_auth::oauth::seal::Kind, blob: &str) -> Value {
    let keys = mcp_edge_auth::oauth::seal::Keys::from_base64(&[SEAL_KEY]).unwrap();
    let (_, payload) = keys.open_any_time(kind, blob).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// A whole sign-in against the dev IdP in Entra mode (register, authorize, consent, IdP,
/// callback, token, refresh, a tool call) with Envoy at `trace` and the Wasm component at
/// `trace`: no secret in any line the filter logs. Envoy's own trace lines are reported
/// (printed), not asserted: Envoy logs its own configuration at debug (the harness gives
/// the sealing key and client secret as inline `key_values`, so they are there) and, at
/// trace, request and response headers (`:path` with the IdP's code, `location` with the
/// façade code, `authorization` with the access token): Envoy's logging, not the filter's.
#[test]
fn trace_logs_hold_no_secret_in_the_filters_lines() {
    use mcp_edge_auth::oauth::seal::Kind;
    let s = start(Options {
        entra: true,
        log_level: "trace",
        ..Options::default()
    });
    let sign_in = s.sign_in(VERIFIER);
    let upstream_code = param(&sign_in.to_callback, "code").unwrap();
    let grant = open(Kind::Code, &sign_in.code);
    let facade_verifier = grant["v"].as_str().unwrap().to_string();
    assert_eq!(grant["u"], upstream_code.as_str());

    let t = s.token(&sign_in.client_id, &sign_in.code, VERIFIER);
    assert_eq!(t.status, 200, "{}", t.text());
    let t = t.json();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh1 = t["refresh_token"].as_str().unwrap().to_string();
    let upstream_refresh1 = open(Kind::RefreshToken, &refresh1)["u"]
        .as_str()
        .unwrap()
        .to_string();

    let r = s.refresh(&sign_in.client_id, &refresh1);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    let access2 = r["access_token"].as_str().unwrap().to_string();
    let refresh2 = r["refresh_token"].as_str().unwrap().to_string();
    let upstream_refresh2 = open(Kind::RefreshToken, &refresh2)["u"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(upstream_refresh1, upstream_refresh2);
    let replay = s.refresh(&sign_in.client_id, &refresh1);
    oauth_error(
        &replay,
        400,
        "invalid_grant",
        REFRESH_REFUSED,
        "refresh replay",
    );
    // The replay revoked the family (RFC 9700 §4.14.2): the newest token, never used, is
    // refused too, with a log line and a counter.
    let revoked = s.refresh(&sign_in.client_id, &refresh2);
    oauth_error(
        &revoked,
        400,
        "invalid_grant",
        REFRESH_REFUSED,
        "refresh after the family was revoked",
    );
    assert!(
        s.envoy
            .logs()
            .contains("every refresh token of its sign-in is revoked"),
        "{}",
        s.envoy.logs()
    );
    assert!(
        s.envoy
            .filter_stat_at_least("facade.refresh_family_revoked", 1)
            >= 1
    );

    let mut c = McpClient::new(&format!("{}/mcp", s.base))
        .with_header("authorization", &format!("Bearer {access2}"));
    c.initialize().unwrap();
    assert_eq!(
        c.call_tool_text("add", json!({"a": 2, "b": 3})).unwrap(),
        "5"
    );

    let raw_key = base64::engine::general_purpose::STANDARD
        .decode(SEAL_KEY)
        .unwrap();
    let hex_key: String = raw_key.iter().map(|b| format!("{b:02x}")).collect();
    let url_key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw_key);
    let raw_key_text = String::from_utf8_lossy(&raw_key).into_owned();
    let mut secrets: Vec<(&str, String)> = vec![
        ("sealing key (base64)", SEAL_KEY.to_string()),
        ("sealing key (base64url)", url_key),
        ("sealing key (hex)", hex_key),
        ("client secret", s.secret.clone()),
        ("façade code", sign_in.code.clone()),
        ("upstream code", upstream_code.clone()),
        ("client code_verifier", VERIFIER.to_string()),
        ("façade code_verifier", facade_verifier.clone()),
        ("façade refresh token 1", refresh1.clone()),
        ("façade refresh token 2", refresh2.clone()),
        ("upstream refresh token 1", upstream_refresh1.clone()),
        ("upstream refresh token 2", upstream_refresh2.clone()),
    ];
    for (name, tok) in [("access token 1", &access), ("access token 2", &access2)] {
        secrets.push((name, tok.clone()));
        // The claims and the signature segments (the header is the same for every token).
        for part in tok.split('.').skip(1) {
            secrets.push((name, part.to_string()));
        }
    }
    // Parts of long values, in case a line truncates them.
    let mut pieces = Vec::new();
    for (name, v) in &secrets {
        if v.len() >= 48 {
            pieces.push((*name, v[..32].to_string()));
            pieces.push((*name, v[v.len() - 32..].to_string()));
        }
    }
    secrets.extend(pieces);

    // Let the last lines reach the log file.
    std::thread::sleep(Duration::from_millis(300));
    let logs = s.envoy.logs();
    let filter_lines: Vec<&str> = logs.lines().filter(|l| l.contains("wasm log")).collect();
    assert!(
        filter_lines.iter().any(|l| l.contains("façade token")),
        "the filter's façade lines are in the log"
    );
    for l in &filter_lines {
        assert!(
            !raw_key_text.is_empty() && !l.contains(&raw_key_text),
            "the raw sealing key in a filter line"
        );
        for (name, v) in &secrets {
            assert!(!l.contains(v.as_str()), "{name} in a filter log line: {l}");
        }
    }

    // What Envoy's own lines (not the filter's) carry at trace: reported, not asserted.
    let mut envoy_own: Vec<&str> = Vec::new();
    for (name, v) in &secrets {
        if logs
            .lines()
            .filter(|l| !l.contains("wasm log"))
            .any(|l| l.contains(v.as_str()))
            && !envoy_own.contains(name)
        {
            envoy_own.push(name);
        }
    }
    eprintln!(
        "Envoy's own trace lines (not the filter's) contain: {}",
        if envoy_own.is_empty() {
            "none of the secrets".to_string()
        } else {
            envoy_own.join(", ")
        }
    );
}

/// Another 32-byte sealing key (base64 of "other-key-of-32-bytes-for-tests!").
const OTHER_KEY: &str = "b3RoZXIta2V5LW9mLTMyLWJ5dGVzLWZvci10ZXN0cyE=";

/// Bytes for the nonce of a blob the test seals itself.
struct Fixed(u8);

impl mcp_edge_auth::oauth::random::Random for Fixed {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), mcp_edge_auth::oauth::random::NoRandomness> {
        for b in buf.iter_mut() {
            self.0 = self.0.wrapping_mul(31).wrapping_add(7);
            *b = self.0;
        }
        Ok(())
    }
}

/// `blob`'s payload sealed again, same kind and expiry, under a key the façade does not have.
fn foreign(kind: mcp_edge_auth::oauth::seal::Kind, blob: &str) -> String {
    use mcp_edge_auth::oauth::seal::Keys;
    let (expiry, payload) = Keys::from_base64(&[SEAL_KEY])
        .unwrap()
        .open_any_time(kind, blob)
        .unwrap();
    Keys::from_base64(&[OTHER_KEY])
        .unwrap()
        .seal(kind, expiry, &payload, &mut Fixed(1))
        .unwrap()
}

/// `blob` with one character of its ciphertext changed.
fn tampered(blob: &str) -> String {
    let mut b = blob.as_bytes().to_vec();
    let i = b.len() / 2;
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).unwrap()
}

/// Every sealed value the façade hands out (client id, upstream `state`, code, refresh
/// token), tampered with or sealed under another key, is refused with the right status and
/// never redirected; so is a `resource` that is not this server's. Nothing reaches the IdP's
/// token endpoint but the one genuine redemption and refresh.
#[test]
fn tampered_or_foreign_key_sealed_values_and_a_wrong_resource_are_refused() {
    use mcp_edge_auth::oauth::seal::Kind;
    // Entra mode: the IdP hands out refresh tokens.
    let s = start(Options {
        entra: true,
        ..Options::default()
    });
    let sign_in = s.sign_in(VERIFIER);
    let client = sign_in.client_id.clone();
    let state = param(&sign_in.to_callback, "state").unwrap();
    let upstream_code = param(&sign_in.to_callback, "code").unwrap();
    let cookie = cookies(&sign_in.approved);

    for (how, bad) in [
        ("foreign-key", foreign(Kind::ClientId, &client)),
        ("tampered", tampered(&client)),
    ] {
        let what = format!("{how} client_id");
        let r = s.get(&s.authorize_path(&bad, CLIENT_REDIRECT, VERIFIER), &[]);
        page(&r, 400, "client_id is not valid", &what);
        let r = s.token(&bad, &sign_in.code, VERIFIER);
        oauth_error(
            &r,
            401,
            "invalid_client",
            "client_id is not valid; register the client again",
            &what,
        );
    }
    for (how, bad) in [
        ("foreign-key", foreign(Kind::State, &state)),
        ("tampered", tampered(&state)),
    ] {
        let what = format!("{how} state");
        let cb = format!(
            "/auth/callback?{}",
            form(&[("code", &upstream_code), ("state", &bad)])
        );
        let r = s.get(&cb, &[("cookie", &cookie)]);
        page(&r, 400, "The sign-in state is not valid.", &what);
    }
    for (how, bad) in [
        ("foreign-key", foreign(Kind::Code, &sign_in.code)),
        ("tampered", tampered(&sign_in.code)),
    ] {
        let what = format!("{how} code");
        let r = s.token(&client, &bad, VERIFIER);
        oauth_error(&r, 400, "invalid_grant", "the code is not valid", &what);
    }
    assert_eq!(s.idp.tokens_issued(), 0);

    // resource: at /authorize the error goes back to the registered redirect (it is
    // trusted), at /token it is a JSON error.
    let other = "https://other.example/mcp";
    let path = s
        .authorize_path(&client, CLIENT_REDIRECT, VERIFIER)
        .replace(&enc(&format!("{}/mcp", s.base)), &enc(other));
    assert!(path.contains(&enc(other)), "{path}");
    let r = s.get(&path, &[]);
    assert_eq!(r.status, 302, "{}", r.text());
    let back = r.header("location").unwrap();
    assert!(back.starts_with(&format!("{CLIENT_REDIRECT}?")), "{back}");
    assert_eq!(param(back, "error").as_deref(), Some("invalid_target"));
    assert_eq!(param(back, "state").as_deref(), Some("client-state"));
    let body = s
        .token_body(&client, &sign_in.code, VERIFIER)
        .replace(&enc(&format!("{}/mcp", s.base)), &enc(other));
    let r = s.post_form("/token", &body, &[]);
    oauth_error(
        &r,
        400,
        "invalid_target",
        "resource is not the resource this server protects",
        "resource at /token",
    );
    assert_eq!(s.idp.tokens_issued(), 0);

    // The genuine code still works (nothing above used it up), then its refresh token.
    let t = s.token(&client, &sign_in.code, VERIFIER);
    assert_eq!(t.status, 200, "{}", t.text());
    let refresh = t.json()["refresh_token"].as_str().unwrap().to_string();
    for (how, bad) in [
        ("foreign-key", foreign(Kind::RefreshToken, &refresh)),
        ("tampered", tampered(&refresh)),
    ] {
        let what = format!("{how} refresh token");
        let r = s.refresh(&client, &bad);
        oauth_error(
            &r,
            400,
            "invalid_grant",
            "the refresh token is not valid",
            &what,
        );
    }
    assert_eq!(s.idp.tokens_issued(), 1);
    let r = s.refresh(&client, &refresh);
    assert_eq!(r.status, 200, "{}", r.text());
}
