//! End-to-end flows through [`super::handle`]: register → authorize → consent → callback →
//! token → refresh, with the hostile variants at each step.

use std::cell::RefCell;
use std::collections::HashMap;

use super::used::{self, Record, Ring};

use serde_json::{json, Value};

use super::random::testing::Counter;
use super::seal::{Keys, Kind, NEVER};
use super::settings::{testing, ClientAuth, ConsentMode, Settings, Spec};
use super::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const KEY: [u8; 32] = [0x42; 32];

struct H {
    settings: Settings,
    keys: Keys,
    rng: Counter,
    now: u64,
    /// The used-grant ledger's slots by key, recorded as the glue does (filter/facade.rs).
    used: RefCell<HashMap<String, Vec<u8>>>,
    /// Every response body and header value seen, to search for leaked secrets.
    seen: Vec<String>,
}

#[derive(Default, Clone)]
struct Req<'a> {
    method: &'a str,
    path: String,
    body: Vec<u8>,
    cookies: Vec<String>,
    origin: Option<&'a str>,
    site: Option<&'a str>,
    content_type: Option<&'a str>,
}

impl H {
    fn new(spec: Spec) -> H {
        H {
            settings: Settings::new(spec).unwrap(),
            keys: Keys::new(&[KEY]).unwrap(),
            rng: Counter(11),
            now: 10_000,
            used: RefCell::new(HashMap::new()),
            seen: Vec::new(),
        }
    }

    fn call(&mut self, r: Req<'_>) -> Outcome {
        let cookies: Vec<&str> = r.cookies.iter().map(String::as_str).collect();
        let req = Request {
            method: r.method,
            path: &r.path,
            cookies: &cookies,
            origin: r.origin,
            sec_fetch_site: r.site,
            content_type: r.content_type,
            authorization: None,
            body: &r.body,
        };
        let endpoint = route(&self.settings, &r.path).expect("a façade path");
        let mut ctx = Ctx {
            settings: &self.settings,
            keys: &self.keys,
            now: self.now,
            rng: &mut self.rng,
        };
        let now = self.now;
        let ttl = self.settings.spec.ttl;
        let slot_of = |u: &Used| {
            let ring = Ring::of(u.kind, &ttl);
            (ring, ring.key("used.", ring.slot(&u.id, u.expires_at)))
        };
        let out = {
            let slots = self.used.borrow();
            handle(&mut ctx, endpoint, &req, &|u| {
                let (_, key) = slot_of(u);
                slots
                    .get(&key)
                    .is_some_and(|s| used::refused(s, &u.id, u.generation, now))
            })
        };
        // What the glue does before the upstream call: record the use, or refuse.
        let out = match out {
            Outcome::Upstream(call) => {
                let u = &call.mark_used;
                let (ring, key) = slot_of(u);
                let mut slots = self.used.borrow_mut();
                let slot = slots.entry(key).or_insert_with(used::empty);
                match used::record(&ring, slot, &u.id, u.generation, u.expires_at, now) {
                    Record::Added(b) => {
                        *slot = b;
                        Outcome::Upstream(call)
                    }
                    Record::Replay(revoking) => {
                        if let Some(b) = revoking {
                            *slot = b;
                        }
                        Outcome::Respond(super::token::replayed(u))
                    }
                    Record::Full | Record::Unreadable => {
                        Outcome::Respond(super::token::unrecorded())
                    }
                }
            }
            other => other,
        };
        if let Outcome::Respond(resp) = &out {
            self.record(resp);
        }
        out
    }

    fn record(&mut self, resp: &Response) {
        self.seen
            .push(String::from_utf8_lossy(&resp.body).into_owned());
        for (_, v) in &resp.headers {
            self.seen.push(v.clone());
        }
    }

    fn respond(&mut self, r: Req<'_>) -> Response {
        match self.call(r) {
            Outcome::Respond(resp) => resp,
            Outcome::Upstream(call) => panic!("unexpected upstream call {call:?}"),
        }
    }

    fn upstream(&mut self, r: Req<'_>) -> UpstreamCall {
        match self.call(r) {
            Outcome::Upstream(call) => call,
            Outcome::Respond(resp) => panic!(
                "expected an upstream call, got {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.body)
            ),
        }
    }

    fn finish(&mut self, call: UpstreamCall, status: u16, body: &Value) -> Response {
        let mut ctx = Ctx {
            settings: &self.settings,
            keys: &self.keys,
            now: self.now,
            rng: &mut self.rng,
        };
        let resp = call
            .then
            .finish(&mut ctx, status, &serde_json::to_vec(body).unwrap());
        self.record(&resp);
        resp
    }

    fn register(&mut self, uris: &[&str]) -> String {
        let body = json!({"client_name": "Inspector", "redirect_uris": uris}).to_string();
        let r = self.respond(Req {
            method: "POST",
            path: "/register".into(),
            body: body.into_bytes(),
            ..Req::default()
        });
        assert_eq!(r.status, 201);
        json_of(&r)["client_id"].as_str().unwrap().to_string()
    }

    fn authorize(&mut self, client_id: &str, cookies: Vec<String>, site: Option<&str>) -> Response {
        let q = form::encode_pairs(&[
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:5555/cb"),
            ("response_type", "code"),
            ("state", "client-state"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("resource", "https://mcp.example.com/mcp"),
            ("scope", "calculator.add openid"),
        ]);
        self.respond(Req {
            method: "GET",
            path: format!("/authorize?{q}"),
            cookies,
            site,
            ..Req::default()
        })
    }

    fn consent(&mut self, form: &str, cookies: Vec<String>) -> Response {
        let origin = self.settings.origin.clone();
        let origin: &str = &origin;
        self.respond(Req {
            method: "POST",
            path: "/consent".into(),
            body: form.as_bytes().to_vec(),
            cookies,
            origin: Some(origin),
            content_type: Some("application/x-www-form-urlencoded"),
            ..Req::default()
        })
    }

    fn callback(&mut self, query: &str, cookies: Vec<String>) -> Response {
        self.respond(Req {
            method: "GET",
            path: format!("/auth/callback?{query}"),
            cookies,
            ..Req::default()
        })
    }

    fn token_req(&self, pairs: &[(&str, &str)]) -> Req<'static> {
        Req {
            method: "POST",
            path: "/token".into(),
            body: form::encode_pairs(pairs).into_bytes(),
            content_type: Some("application/x-www-form-urlencoded"),
            ..Req::default()
        }
    }
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// `name=value` of each Set-Cookie, as a browser would send them back (deletions dropped).
fn cookies_of(r: &Response) -> Vec<String> {
    r.header_values("set-cookie")
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect()
}

fn query_of(location: &str) -> form::Params {
    form::parse(location.split_once('?').unwrap().1.as_bytes()).unwrap()
}

/// Register, authorize, approve: (client id, consent-approve response, csrf/request form).
fn through_consent(h: &mut H) -> (String, Response) {
    let client_id = h.register(&["http://127.0.0.1:33418/cb"]);
    let page = h.authorize(&client_id, vec![], None);
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body.clone()).unwrap();
    let form = form::encode_pairs(&[
        ("request", &hidden(&html, "request")),
        ("csrf", &hidden(&html, "csrf")),
        ("action", "approve"),
    ]);
    let approved = h.consent(&form, cookies_of(&page));
    (client_id, approved)
}

/// …then the IdP's redirect to the callback: (client id, the client's code).
fn through_callback(h: &mut H) -> (String, String) {
    let (client_id, approved) = through_consent(h);
    let up = query_of(approved.get_header("location").unwrap());
    let q = form::encode_pairs(&[
        ("code", "UPSTREAM-CODE"),
        ("state", up.get("state").unwrap()),
    ]);
    let back = h.callback(&q, cookies_of(&approved));
    assert_eq!(back.status, 302, "{}", String::from_utf8_lossy(&back.body));
    let loc = back.get_header("location").unwrap();
    assert!(loc.starts_with("http://127.0.0.1:5555/cb?"));
    let p = query_of(loc);
    assert_eq!(p.get("state"), Some("client-state"));
    assert_eq!(p.get("iss"), Some("https://mcp.example.com"));
    (client_id, p.get("code").unwrap().to_string())
}

fn code_exchange<'a>(client_id: &'a str, code: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", "http://127.0.0.1:5555/cb"),
        ("code_verifier", VERIFIER),
        ("resource", "https://mcp.example.com/mcp"),
    ]
}

#[test]
fn full_flow_with_refresh_rotation() {
    let mut h = H::new(testing::spec());
    let (client_id, approved) = through_consent(&mut h);
    assert_eq!(approved.status, 303);
    let loc = approved.get_header("location").unwrap();
    assert!(loc.starts_with("https://login.microsoftonline.com/tid/oauth2/v2.0/authorize?"));
    let up = query_of(loc);
    assert_eq!(up.get("client_id"), Some("upstream-client"));
    assert_eq!(
        up.get("redirect_uri"),
        Some("https://mcp.example.com/auth/callback")
    );
    assert_eq!(
        up.get("scope"),
        Some("api://app/calculator.add openid offline_access")
    );
    assert_eq!(up.get("code_challenge_method"), Some("S256"));
    assert_eq!(up.get("prompt"), Some("select_account"));
    assert_eq!(up.get("resource"), None);
    assert_ne!(
        up.get("code_challenge"),
        Some(CHALLENGE),
        "own PKCE pair upstream"
    );
    let upstream_challenge = up.get("code_challenge").unwrap().to_string();
    let bind = approved
        .header_values("set-cookie")
        .find(|c| c.contains("mcp-bind-"))
        .unwrap();
    assert!(bind.starts_with("__Host-mcp-bind-"));
    assert!(bind.contains("Secure") && bind.contains("HttpOnly") && bind.contains("SameSite=Lax"));

    let q = form::encode_pairs(&[
        ("code", "UPSTREAM-CODE"),
        ("state", up.get("state").unwrap()),
    ]);
    let back = h.callback(&q, cookies_of(&approved));
    assert_eq!(back.status, 302);
    let code = query_of(back.get_header("location").unwrap())
        .get("code")
        .unwrap()
        .to_string();

    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    assert_eq!(
        call.url,
        "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
    );
    let body = form::parse(&call.body).unwrap();
    assert_eq!(body.get("grant_type"), Some("authorization_code"));
    assert_eq!(body.get("code"), Some("UPSTREAM-CODE"));
    assert_eq!(
        body.get("redirect_uri"),
        Some("https://mcp.example.com/auth/callback")
    );
    assert_eq!(body.get("client_id"), Some("upstream-client"));
    assert_eq!(body.get("client_secret"), Some("TOP-SECRET-VALUE"));
    assert_eq!(
        body.get("scope"),
        Some("api://app/calculator.add openid offline_access")
    );
    assert_eq!(body.get("resource"), None);
    assert_eq!(
        pkce::s256(body.get("code_verifier").unwrap()),
        upstream_challenge
    );
    assert!(call.mark_used.id.starts_with("code:"));
    assert_eq!(call.mark_used.expires_at, h.now + 60);
    assert!(!format!("{call:?}").contains("TOP-SECRET-VALUE"));
    assert!(!format!("{call:?}").contains("UPSTREAM-CODE"));

    let resp = h.finish(
        call,
        200,
        &json!({"access_token": "AT1", "token_type": "Bearer", "expires_in": 3599,
                "scope": "api://app/calculator.add openid", "refresh_token": "UP-RT-1", "id_token": "IDT"}),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.get_header("cache-control"), Some("no-store"));
    let v = json_of(&resp);
    assert_eq!(v["access_token"], "AT1");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["scope"], "calculator.add openid");
    assert!(v.get("id_token").is_none());
    let rt1 = v["refresh_token"].as_str().unwrap().to_string();
    assert!(!rt1.contains("UP-RT-1"));

    // The code again: refused.
    let r = h.respond(h.token_req(&code_exchange(&client_id, &code)));
    assert_eq!(
        (r.status, json_of(&r)["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Refresh: upstream call with the wrapped token, new sealed one back.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt1.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let call = h.upstream(h.token_req(&refresh));
    let body = form::parse(&call.body).unwrap();
    assert_eq!(body.get("refresh_token"), Some("UP-RT-1"));
    assert_eq!(
        body.get("scope"),
        Some("api://app/calculator.add openid offline_access")
    );
    let resp = h.finish(
        call,
        200,
        &json!({"access_token": "AT2", "token_type": "Bearer", "refresh_token": "UP-RT-2"}),
    );
    let rt2 = json_of(&resp)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(rt1, rt2);
    // The new one, by another client: refused.
    let other = h.register(&["http://127.0.0.1/cb"]);
    let r = h.respond(h.token_req(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt2),
        ("client_id", &other),
    ]));
    assert_eq!(json_of(&r)["error"], "invalid_grant");
    // Upstream without rotation: the previous upstream token is kept, a new façade token issued.
    let call = h.upstream(h.token_req(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt2),
        ("client_id", &client_id),
    ]));
    let resp = h.finish(
        call,
        200,
        &json!({"access_token": "AT3", "token_type": "Bearer"}),
    );
    let rt3 = json_of(&resp)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let call = h.upstream(h.token_req(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt3),
        ("client_id", &client_id),
    ]));
    assert_eq!(
        form::parse(&call.body).unwrap().get("refresh_token"),
        Some("UP-RT-2")
    );
    let resp = h.finish(
        call,
        200,
        &json!({"access_token": "AT4", "token_type": "Bearer"}),
    );
    let rt4 = json_of(&resp)["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The old refresh token again: refused, and with it the whole family (RFC 9700
    // §4.14.2): the newest token, unused so far, is refused too.
    let r = h.respond(h.token_req(&refresh));
    assert_eq!(json_of(&r)["error"], "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("already used"));
    let r = h.respond(h.token_req(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt4),
        ("client_id", &client_id),
    ]));
    assert_eq!(json_of(&r)["error"], "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("sign in again"));

    // Debug of what the glue may log.
    let flow_state = up.get("state").unwrap();
    let (flow, _) = h
        .keys
        .open_json::<super::consent::Flow>(Kind::State, flow_state, h.now)
        .unwrap();
    let d = format!("{flow:?} {:?}", h.settings);
    assert!(!d.contains(&flow.verifier) && !d.contains(&flow.binding));
    assert!(!d.contains("TOP-SECRET-VALUE"));
    for s in &h.seen {
        assert!(!s.contains("TOP-SECRET-VALUE"), "secret leaked: {s}");
        assert!(!s.contains("UP-RT"), "upstream refresh token leaked: {s}");
    }
}

#[test]
fn token_endpoint_hostile_cases() {
    let mut h = H::new(testing::spec());
    let (client_id, code) = through_callback(&mut h);
    let other = h.register(&["http://127.0.0.1:33418/cb"]);
    let wrong_verifier = "x".repeat(43);
    let foreign_code = Keys::new(&[[1u8; 32]])
        .unwrap()
        .seal(Kind::Code, NEVER, b"{}", &mut Counter(1))
        .unwrap();
    let rt_kind = h
        .keys
        .seal(Kind::RefreshToken, NEVER, b"{}", &mut Counter(1))
        .unwrap();
    let mut tampered = code.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("code_verifier", &wrong_verifier)],
            400,
            "invalid_grant",
        ),
        (vec![("code_verifier", CHALLENGE)], 400, "invalid_grant"),
        (vec![("code_verifier", "")], 400, "invalid_request"),
        (vec![("client_id", &other)], 400, "invalid_grant"),
        (vec![("client_id", "garbage")], 401, "invalid_client"),
        (
            vec![("redirect_uri", "http://127.0.0.1:5556/cb")],
            400,
            "invalid_grant",
        ),
        (vec![("redirect_uri", "")], 400, "invalid_grant"),
        (
            vec![("resource", "https://other.example.com/mcp")],
            400,
            "invalid_target",
        ),
        (vec![("code", &foreign_code)], 400, "invalid_grant"),
        (vec![("code", &rt_kind)], 400, "invalid_grant"),
        (vec![("code", &tampered)], 400, "invalid_grant"),
        (vec![("code", &client_id)], 400, "invalid_grant"),
        (
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
        ),
        (vec![("grant_type", "")], 400, "invalid_request"),
    ];
    for (changes, status, error) in cases {
        let mut pairs = code_exchange(&client_id, &code);
        for (n, v) in &changes {
            if let Some(p) = pairs.iter_mut().find(|(pn, _)| pn == n) {
                p.1 = v;
            }
        }
        let r = h.respond(h.token_req(&pairs));
        assert_eq!(
            (r.status, json_of(&r)["error"].as_str().unwrap()),
            (status, error),
            "{changes:?}"
        );
    }
    // A repeated parameter.
    let mut pairs = code_exchange(&client_id, &code);
    pairs.push(("code_verifier", VERIFIER));
    let r = h.respond(h.token_req(&pairs));
    assert_eq!(json_of(&r)["error"], "invalid_request");
    // Not a form.
    let mut req = h.token_req(&code_exchange(&client_id, &code));
    req.content_type = Some("application/json");
    assert_eq!(h.respond(req).status, 400);
    // Expired code.
    h.now += 61;
    let r = h.respond(h.token_req(&code_exchange(&client_id, &code)));
    assert_eq!(json_of(&r)["error"], "invalid_grant");
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    h.now -= 61;
    // Still good after all that (nothing above consumed it).
    h.upstream(h.token_req(&code_exchange(&client_id, &code)));
}

#[test]
fn upstream_errors_are_mapped_without_secrets() {
    let mut h = H::new(testing::spec());
    let (client_id, code) = through_callback(&mut h);
    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    let r = h.finish(
        call,
        401,
        &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is TOP-SECRET-VALUE"}),
    );
    assert_eq!(r.status, 502);
    let v = json_of(&r);
    assert_eq!(v["error"], "server_error");
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("AADSTS7000215"));
    assert!(!String::from_utf8_lossy(&r.body).contains("TOP-SECRET-VALUE"));

    let (client_id, code) = through_callback(&mut h);
    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    let r = h.finish(
        call,
        400,
        &json!({"error": "invalid_grant", "error_description": "AADSTS70008: expired"}),
    );
    assert_eq!(
        (r.status, json_of(&r)["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (client_id, code) = through_callback(&mut h);
    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    let mut ctx = Ctx {
        settings: &h.settings,
        keys: &h.keys,
        now: h.now,
        rng: &mut h.rng,
    };
    let r = call.then.finish(&mut ctx, 0, b"");
    assert_eq!(r.status, 502);
    let (client_id, code) = through_callback(&mut h);
    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    let r = h.finish(call, 200, &json!({"token_type": "Bearer"}));
    assert_eq!(r.status, 502);
}

#[test]
fn consent_post_hostile_cases() {
    let mut h = H::new(testing::spec());
    let client_id = h.register(&["http://127.0.0.1:33418/cb"]);
    let page = h.authorize(&client_id, vec![], None);
    let html = String::from_utf8(page.body.clone()).unwrap();
    let request = hidden(&html, "request");
    let csrf = hidden(&html, "csrf");
    let cookies = cookies_of(&page);
    let approve = form::encode_pairs(&[
        ("request", &request),
        ("csrf", &csrf),
        ("action", "approve"),
    ]);
    // No CSRF cookie.
    assert_eq!(h.consent(&approve, vec![]).status, 403);
    // Cookie from another rendering.
    let other_page = h.authorize(&client_id, vec![], None);
    assert_eq!(h.consent(&approve, cookies_of(&other_page)).status, 403);
    // Wrong form token with the right cookie.
    let wrong = form::encode_pairs(&[
        ("request", &request),
        ("csrf", "nope"),
        ("action", "approve"),
    ]);
    assert_eq!(h.consent(&wrong, cookies.clone()).status, 403);
    // The cookie's value planted in the form of another request does not help either.
    let other_html = String::from_utf8(other_page.body.clone()).unwrap();
    let mixed = form::encode_pairs(&[
        ("request", &hidden(&other_html, "request")),
        ("csrf", &csrf),
        ("action", "approve"),
    ]);
    assert_eq!(h.consent(&mixed, cookies.clone()).status, 403);
    // Another site's form.
    let mut req = Req {
        method: "POST",
        path: "/consent".into(),
        body: approve.clone().into_bytes(),
        cookies: cookies.clone(),
        origin: Some("https://evil.example"),
        ..Req::default()
    };
    assert_eq!(h.respond(req.clone()).status, 403);
    // A forged request blob.
    let forged = form::encode_pairs(&[
        ("request", &client_id),
        ("csrf", &csrf),
        ("action", "approve"),
    ]);
    assert_eq!(h.consent(&forged, cookies.clone()).status, 400);
    // Expired.
    h.now += 601;
    assert_eq!(h.consent(&approve, cookies.clone()).status, 400);
    h.now -= 601;
    // No action.
    let none = form::encode_pairs(&[("request", &request), ("csrf", &csrf)]);
    assert_eq!(h.consent(&none, cookies.clone()).status, 400);
    // Deny: back to the client with access_denied.
    let deny = form::encode_pairs(&[("request", &request), ("csrf", &csrf), ("action", "deny")]);
    let r = h.consent(&deny, cookies.clone());
    assert_eq!(r.status, 303);
    let p = query_of(r.get_header("location").unwrap());
    assert_eq!(p.get("error"), Some("access_denied"));
    assert_eq!(p.get("state"), Some("client-state"));
    assert_eq!(p.get("iss"), Some("https://mcp.example.com"));
    // Without Origin (some browsers omit it) the CSRF check alone decides.
    req.origin = None;
    assert_eq!(h.respond(req).status, 303);
}

#[test]
fn callback_hostile_cases() {
    let mut h = H::new(testing::spec());
    let (_, approved) = through_consent(&mut h);
    let state = query_of(approved.get_header("location").unwrap())
        .get("state")
        .unwrap()
        .to_string();
    let q = form::encode_pairs(&[("code", "UPSTREAM-CODE"), ("state", &state)]);
    // Another browser (no binding cookie), or a wrong one.
    assert_eq!(h.callback(&q, vec![]).status, 403);
    let wrong: Vec<String> = cookies_of(&approved)
        .iter()
        .map(|c| format!("{}x", c))
        .collect();
    assert_eq!(h.callback(&q, wrong).status, 403);
    // A binding cookie of another flow.
    let (_, other) = through_consent(&mut h);
    assert_eq!(h.callback(&q, cookies_of(&other)).status, 403);
    // Expired state.
    h.now += 601;
    let r = h.callback(&q, cookies_of(&approved));
    assert_eq!(r.status, 400);
    assert!(r.get_header("location").is_none());
    h.now -= 601;
    // Tampered state, a client id as state, no state.
    let last = if state.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &state[..state.len() - 1]);
    for s in [tampered.as_str(), "", "x"] {
        let q = form::encode_pairs(&[("code", "c"), ("state", s)]);
        assert_eq!(h.callback(&q, cookies_of(&approved)).status, 400, "{s}");
    }
    let code_kind = h
        .keys
        .seal(Kind::Code, NEVER, b"{}", &mut Counter(2))
        .unwrap();
    let q2 = form::encode_pairs(&[("code", "c"), ("state", &code_kind)]);
    assert_eq!(h.callback(&q2, cookies_of(&approved)).status, 400);
    // Upstream error: back to the client, with AADSTS named.
    let qe = form::encode_pairs(&[
        ("error", "invalid_request"),
        (
            "error_description",
            "AADSTS9010010: The resource parameter ...",
        ),
        ("state", &state),
    ]);
    let r = h.callback(&qe, cookies_of(&approved));
    assert_eq!(r.status, 302);
    let p = query_of(r.get_header("location").unwrap());
    assert_eq!(p.get("error"), Some("server_error"));
    assert!(p
        .get("error_description")
        .unwrap()
        .contains("AADSTS9010010"));
    assert_eq!(p.get("state"), Some("client-state"));
    // Good one.
    assert_eq!(h.callback(&q, cookies_of(&approved)).status, 302);
}

#[test]
fn remember_mode_skips_only_same_site_navigations() {
    let mut spec = testing::spec();
    spec.consent = ConsentMode::Remember;
    let mut h = H::new(spec);
    let (client_id, approved) = through_consent(&mut h);
    let remembered: Vec<String> = cookies_of(&approved)
        .into_iter()
        .filter(|c| c.contains("mcp-ok-"))
        .collect();
    assert_eq!(remembered.len(), 1);
    let r = h.authorize(&client_id, remembered.clone(), Some("none"));
    assert_eq!(r.status, 302);
    assert!(r
        .get_header("location")
        .unwrap()
        .starts_with("https://login.microsoftonline.com/"));
    for site in [Some("cross-site"), None] {
        assert_eq!(
            h.authorize(&client_id, remembered.clone(), site).status,
            200,
            "{site:?}"
        );
    }
    // Approval of one client does not cover another.
    let other = h.register(&["http://127.0.0.1:33418/cb"]);
    assert_eq!(
        h.authorize(&other, remembered, Some("same-origin")).status,
        200
    );
    // Mode `always` ignores the cookie.
    let mut h2 = H::new(testing::spec());
    let (client_id, approved) = through_consent(&mut h2);
    assert_eq!(
        h2.authorize(&client_id, cookies_of(&approved), Some("none"))
            .status,
        200
    );
}

#[test]
fn basic_auth_and_resource_upstream_when_configured() {
    let mut spec = testing::spec();
    spec.upstream.client_auth = ClientAuth::Basic;
    spec.upstream.send_resource = true;
    spec.upstream.scope_prefix = None;
    let mut h = H::new(spec);
    let (_, approved) = through_consent(&mut h);
    let up = query_of(approved.get_header("location").unwrap());
    assert_eq!(up.get("resource"), Some("https://mcp.example.com/mcp"));
    assert_eq!(
        up.get("scope"),
        Some("calculator.add openid offline_access")
    );
    let (client_id, code) = through_callback(&mut h);
    let call = h.upstream(h.token_req(&code_exchange(&client_id, &code)));
    let body = form::parse(&call.body).unwrap();
    assert_eq!(body.get("client_secret"), None);
    assert_eq!(body.get("client_id"), None);
    assert_eq!(body.get("resource"), Some("https://mcp.example.com/mcp"));
    let auth = call
        .headers
        .iter()
        .find(|(n, _)| *n == "authorization")
        .unwrap();
    assert!(auth.1.starts_with("Basic "));
}

#[test]
fn routing_and_methods() {
    let s = testing::settings();
    assert_eq!(
        route(&s, "/.well-known/oauth-authorization-server"),
        Some(Endpoint::Metadata)
    );
    assert_eq!(route(&s, "/authorize?x=1"), Some(Endpoint::Authorize));
    assert_eq!(route(&s, "/auth/callback?code=1"), Some(Endpoint::Callback));
    assert_eq!(route(&s, "/token"), Some(Endpoint::Token));
    assert_eq!(route(&s, "/mcp"), None);
    assert_eq!(route(&s, "/token/x"), None);
    assert!(needs_body(Endpoint::Token) && !needs_body(Endpoint::Authorize));
    let mut h = H::new(testing::spec());
    let r = h.respond(Req {
        method: "GET",
        path: "/token".into(),
        ..Req::default()
    });
    assert_eq!(r.status, 405);
    let r = h.respond(Req {
        method: "OPTIONS",
        path: "/register".into(),
        ..Req::default()
    });
    assert_eq!(r.status, 204);
    let r = h.respond(Req {
        method: "GET",
        path: "/.well-known/openid-configuration".into(),
        ..Req::default()
    });
    assert_eq!(json_of(&r)["issuer"], "https://mcp.example.com");
}

#[test]
fn http_issuer_uses_plain_cookie_names() {
    let mut spec = testing::spec();
    spec.issuer = "http://localhost:10000".into();
    let mut h = H::new(spec);
    let (_, approved) = through_consent(&mut h);
    let bind = approved
        .header_values("set-cookie")
        .find(|c| c.contains("mcp-bind-"))
        .unwrap();
    assert!(bind.starts_with("mcp-bind-"));
    assert!(!bind.contains("Secure"));
    let up = query_of(approved.get_header("location").unwrap());
    assert_eq!(
        up.get("redirect_uri"),
        Some("http://localhost:10000/auth/callback")
    );
}
