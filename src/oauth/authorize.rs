//! `GET /authorize`: checks the client's authorization request and, if it can be trusted,
//! goes on to consent. The client id and redirect URI are checked first: while either is in
//! doubt, an error is a page shown here (redirecting to an unverified URI is how open
//! redirects happen). After that, errors go back to the client's redirect URI with `error`,
//! `state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207).

use super::consent;
use super::form;
use super::page;
use super::pending::{error_redirect, resource_matches, Pending};
use super::pkce;
use super::register::{client_hash, open_client};
use super::request::{Ctx, Request};
use super::response::Response;
use super::scopes;
use super::settings::ConsentMode;

/// Longest client `state` carried through (it is sealed into the upstream state).
pub const MAX_STATE: usize = 1024;

fn bad_request(message: &str) -> Response {
    page::error(400, "Sign-in request refused", message)
}

/// `GET /authorize`.
pub fn authorize(ctx: &mut Ctx<'_>, req: &Request<'_>) -> Response {
    let params = match form::parse(req.query().as_bytes()) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.describe()),
    };
    let Some(client_id) = params.get("client_id") else {
        return bad_request("client_id is missing.");
    };
    let Some(client) = open_client(ctx.keys, client_id) else {
        return bad_request("This client is not registered here (client_id is not valid). Register the client again.");
    };
    let settings = ctx.settings;
    let (redirect_uri, redirect_given) = match params.get("redirect_uri") {
        Some(r) => match settings.redirects.registered(&client.redirect_uris, r) {
            Ok(_) => (r.to_string(), true),
            Err(e) => return bad_request(e.describe()),
        },
        None => match client.redirect_uris.as_slice() {
            [only] => match settings.redirects.allows(only) {
                Ok(_) => (only.clone(), false),
                Err(e) => return bad_request(e.describe()),
            },
            _ => return bad_request("redirect_uri is required for this client."),
        },
    };
    // The redirect URI is trusted from here on.
    let state = params.get("state").filter(|s| s.len() <= MAX_STATE);
    let back = |error: &str, description: &str| {
        error_redirect(settings, 302, &redirect_uri, state, error, description)
    };
    if params.get("state").is_some_and(|s| s.len() > MAX_STATE) {
        return back("invalid_request", "state is too long");
    }
    if params.get("response_type") != Some("code") {
        return back(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let Some(challenge) = params.get("code_challenge") else {
        return back(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        );
    };
    if params.get("code_challenge_method") != Some("S256") {
        return back("invalid_request", "code_challenge_method must be S256");
    }
    if !pkce::valid_challenge(challenge) {
        return back(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 value",
        );
    }
    if let Some(resource) = params.get("resource") {
        if !resource_matches(resource, &settings.spec.resource) {
            return back(
                "invalid_target",
                "resource is not the resource this server protects",
            );
        }
    }
    let Some(mut requested) = scopes::parse(params.get("scope").unwrap_or("")) else {
        return back("invalid_scope", "scope is malformed");
    };
    let offered = &settings.spec.scopes_supported;
    if requested.is_empty() {
        requested = offered.clone();
    } else if !offered.is_empty() {
        if let Some(unknown) = requested
            .iter()
            .find(|s| !offered.contains(s) && !scopes::OIDC_SCOPES.contains(&s.as_str()))
        {
            return back("invalid_scope", &format!("scope {unknown} is not offered"));
        }
    }
    let pending = Pending {
        client: client_hash(client_id),
        name: client.name,
        redirect_uri: redirect_uri.clone(),
        redirect_given,
        state: state.map(str::to_string),
        challenge: challenge.to_string(),
        scopes: requested,
        csrf: String::new(),
        cookie_id: String::new(),
    };
    let remembered = settings.spec.consent == ConsentMode::Remember
        && consent::remembered(ctx, req, &pending.client);
    let result = if remembered {
        consent::approve(ctx, &pending, 302)
    } else {
        consent::show(ctx, pending)
    };
    result.unwrap_or_else(|_| back("server_error", "no randomness available"))
}

#[cfg(test)]
mod tests {
    use super::super::random::testing::Counter;
    use super::super::seal::{Keys, Kind, NEVER};
    use super::super::settings::testing;
    use super::super::settings::Settings;
    use super::*;

    pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn keys() -> Keys {
        Keys::new(&[[7u8; 32]]).unwrap()
    }

    fn client(keys: &Keys, uris: &[&str]) -> String {
        let c = super::super::register::Client {
            name: Some("Test <b>client</b>".into()),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            issued_at: 1,
        };
        keys.seal_json(Kind::ClientId, NEVER, &c, &mut Counter(9))
            .unwrap()
    }

    fn run_with(
        settings: &Settings,
        query: &str,
        cookies: &[&str],
        site: Option<&str>,
    ) -> Response {
        let k = keys();
        let mut r = Counter(3);
        let mut ctx = Ctx {
            settings,
            keys: &k,
            now: 1000,
            rng: &mut r,
        };
        let path = format!("/authorize?{query}");
        let req = Request {
            method: "GET",
            path: &path,
            cookies,
            sec_fetch_site: site,
            ..Request::default()
        };
        authorize(&mut ctx, &req)
    }

    fn run(query: &str) -> Response {
        run_with(&testing::settings(), query, &[], None)
    }

    fn good_query(extra: &str) -> String {
        let id = client(&keys(), &["http://127.0.0.1:33418/cb"]);
        format!(
            "client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&state=xyz&code_challenge_method=S256&{extra}"
        )
    }

    fn base(extra: &str) -> String {
        good_query(&format!(
            "response_type=code&code_challenge={CHALLENGE}&{extra}"
        ))
    }

    fn location(r: &Response) -> form::Params {
        let loc = r.get_header("location").unwrap();
        form::parse(loc.split_once('?').unwrap().1.as_bytes()).unwrap()
    }

    #[test]
    fn good_request_shows_consent() {
        let r = run(&base(
            "resource=https%3A%2F%2Fmcp.example.com%2Fmcp&scope=calculator.add",
        ));
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        let html = String::from_utf8(r.body.clone()).unwrap();
        assert!(html.contains("Test &lt;b&gt;client&lt;/b&gt;"));
        assert!(html.contains("127.0.0.1"));
        assert!(html.contains("calculator.add"));
        assert_eq!(r.get_header("x-frame-options"), Some("DENY"));
        assert!(r
            .get_header("set-cookie")
            .unwrap()
            .starts_with("__Host-mcp-csrf-"));
    }

    #[test]
    fn untrustworthy_redirect_is_a_page_never_a_redirect() {
        let k = keys();
        let id = client(&k, &["http://127.0.0.1:33418/cb"]);
        let foreign = client(&Keys::new(&[[8u8; 32]]).unwrap(), &["http://127.0.0.1/cb"]);
        let state_blob = k.seal(Kind::State, NEVER, b"{}", &mut Counter(1)).unwrap();
        let rest =
            format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256");
        for q in [
            rest.clone(),
            format!("client_id={foreign}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&{rest}"),
            format!("client_id={state_blob}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&{rest}"),
            format!("client_id={id}&redirect_uri=https%3A%2F%2Fevil.com%2Fcb&{rest}"),
            format!("client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fother&{rest}"),
            format!("client_id={id}&redirect_uri=http%3A%2F%2Flocalhost%40evil.com%2Fcb&{rest}"),
            format!("client_id={id}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb%23x&{rest}"),
            format!("client_id={id}&redirect_uri=+javascript%3Aalert(1)&{rest}"),
            format!("client_id={id}&client_id={id}&{rest}"),
        ] {
            let r = run(&q);
            assert_eq!(r.status, 400, "{q}");
            assert!(r.get_header("location").is_none(), "{q}");
        }
    }

    #[test]
    fn other_errors_go_back_with_state_and_iss() {
        for (extra, error) in [
            (format!("response_type=token&code_challenge={CHALLENGE}"), "unsupported_response_type"),
            ("response_type=code".to_string(), "invalid_request"),
            (format!("response_type=code&code_challenge={CHALLENGE}&resource=https%3A%2F%2Fother.example.com%2Fmcp"), "invalid_target"),
            (format!("response_type=code&code_challenge={CHALLENGE}&scope=admin"), "invalid_scope"),
            (format!("response_type=code&code_challenge={CHALLENGE}&scope=a%09b"), "invalid_scope"),
            ("response_type=code&code_challenge=short".to_string(), "invalid_request"),
        ] {
            let r = run(&good_query(&extra));
            assert_eq!(r.status, 302, "{extra}");
            let p = location(&r);
            assert!(r.get_header("location").unwrap().starts_with("http://127.0.0.1:5555/cb?"));
            assert_eq!(p.get("error"), Some(error), "{extra}");
            assert_eq!(p.get("state"), Some("xyz"));
            assert_eq!(p.get("iss"), Some("https://mcp.example.com"));
        }
    }

    #[test]
    fn plain_or_missing_method_refused() {
        let id = client(&keys(), &["http://127.0.0.1/cb"]);
        for method in ["&code_challenge_method=plain", ""] {
            let q = format!("client_id={id}&response_type=code&code_challenge={CHALLENGE}{method}");
            let r = run(&q);
            assert_eq!(r.status, 302);
            assert_eq!(location(&r).get("error"), Some("invalid_request"));
        }
    }

    #[test]
    fn missing_redirect_uri_only_with_one_registered() {
        let k = keys();
        let one = client(&k, &["http://127.0.0.1/cb"]);
        let two = client(&k, &["http://127.0.0.1/cb", "http://localhost/cb"]);
        let rest =
            format!("response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256");
        assert_eq!(run(&format!("client_id={one}&{rest}")).status, 200);
        assert_eq!(run(&format!("client_id={two}&{rest}")).status, 400);
    }

    #[test]
    fn resource_trailing_slash_tolerated() {
        assert!(resource_matches("https://a/mcp/", "https://a/mcp"));
        assert!(!resource_matches("https://a/mcp2", "https://a/mcp"));
        let r = run(&base("resource=https%3A%2F%2Fmcp.example.com%2Fmcp%2F"));
        assert_eq!(r.status, 200);
    }
}
