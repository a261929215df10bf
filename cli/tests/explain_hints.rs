//! `explain` through the real binary: one provider-shaped token per hint, the failing
//! check, its fix, the verdict and the exit code; the token never appears in the output.

// Test code: panicking on a broken fixture is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use serde_json::json;
use support::*;

#[test]
fn valid_entra_v2_token_passes_every_check() {
    let cfg = config(entra_provider(), json!({}));
    let t = token(entra_v2_claims());
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    for check in [
        "rule",
        "token",
        "keys",
        "structure",
        "algorithm",
        "header",
        "not-graph",
        "times",
        "issuer",
        "audience",
        "key",
        "signature",
        "scopes",
    ] {
        assert!(
            r.line(&format!("PASS  {check}")).is_some(),
            "{check}:\n{}",
            r.stdout
        );
    }
    assert!(r.line("SKIP  typ").is_some());
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("verdict: ALLOWED: a valid token for provider \"entra\""),
        "{}",
        r.stdout
    );
    // Claims are shown (they are not secret); the token is not (checked by explain()).
    assert!(r
        .stdout
        .contains("\"oid\":\"99999999-8888-7777-6666-555555555555\""));
}

#[test]
fn entra_v1_token_against_v2_issuer() {
    let cfg = config(entra_provider(), json!({}));
    let mut c = entra_v2_claims();
    c["iss"] = json!(format!("https://sts.windows.net/{TID}/"));
    c["aud"] = json!(format!("api://{API_ID}"));
    c["ver"] = json!("1.0");
    c["appid"] = json!("11111111-2222-3333-4444-555555555555");
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let fail = r.line("FAIL  issuer").unwrap_or_default();
    assert!(fail.contains("sts.windows.net"), "{fail}");
    let fix = r.fix_after("issuer");
    assert!(fix.contains("Entra ID v1.0 token"), "{fix}");
    assert!(fix.contains("\"accessTokenAcceptedVersion\": 2"), "{fix}");
    assert!(
        fix.contains(&format!("https://sts.windows.net/{TID}/")),
        "{fix}"
    );
    assert!(r.line("PASS  times").is_some());
    assert!(
        r.line("SKIP  audience   not reached").is_some(),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("verdict: DENIED 401 (issuer)"),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("WWW-Authenticate: Bearer error=\"invalid_token\""));
}

#[test]
fn graph_token_is_for_another_api() {
    let cfg = config(entra_provider(), json!({}));
    for aud in [
        "00000003-0000-0000-c000-000000000000",
        "https://graph.microsoft.com",
    ] {
        let mut c = entra_v2_claims();
        c["aud"] = json!(aud);
        c["scp"] = json!("User.Read openid profile");
        let t = token(c);
        let r = explain(&cfg, &t, &[]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.line("FAIL  not-graph").is_some(), "{}", r.stdout);
        let fix = r.fix_after("not-graph");
        assert!(fix.contains("Microsoft Graph"), "{fix}");
        assert!(fix.contains(&format!("api://{API_ID}/<scope>")), "{fix}");
        assert!(
            r.stdout.contains("verdict: DENIED 401 (audience)"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn audience_guid_vs_app_id_uri() {
    let mut p = entra_provider();
    p["audiences"] = json!([format!("api://{API_ID}")]);
    let cfg = config(p, json!({}));
    let t = token(entra_v2_claims());
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.line("FAIL  audience").is_some(), "{}", r.stdout);
    let fix = r.fix_after("audience");
    assert!(fix.contains("list both"), "{fix}");
    assert!(
        fix.contains(&format!("[\"{API_ID}\", \"api://{API_ID}\"]")),
        "{fix}"
    );

    // The other way round: a v1 token (aud api://…) with only the GUID configured.
    let mut p = entra_provider();
    p["audiences"] = json!([API_ID]);
    p["issuers"] = json!([format!("https://sts.windows.net/{TID}/")]);
    let cfg = config(p, json!({}));
    let mut c = entra_v2_claims();
    c["iss"] = json!(format!("https://sts.windows.net/{TID}/"));
    c["aud"] = json!(format!("api://{API_ID}"));
    c["ver"] = json!("1.0");
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1);
    assert!(r.line("PASS  issuer").is_some(), "{}", r.stdout);
    assert!(
        r.fix_after("audience").contains("list both forms"),
        "{}",
        r.stdout
    );
}

#[test]
fn app_only_token_has_roles_not_scp() {
    let cfg = config(entra_provider(), json!({"required_scopes": ["Tools.Call"]}));
    let mut c = entra_v2_claims();
    c.as_object_mut().unwrap().remove("scp");
    c["roles"] = json!(["Tools.Call"]);
    c["idtyp"] = json!("app");
    let t = token(c.clone());
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let fail = r.line("FAIL  scopes").unwrap_or_default();
    assert!(
        fail.contains(&format!("api://{API_ID}/Tools.Call")),
        "{fail}"
    );
    let fix = r.fix_after("scopes");
    assert!(
        fix.contains("add \"roles\" to providers.entra.scope_claims"),
        "{fix}"
    );
    assert!(r
        .stdout
        .contains("verdict: DENIED 403 (insufficient_scope)"));

    // With roles among the scope claims the same token passes.
    let mut p = entra_provider();
    p["scope_claims"] = json!(["scp", "roles"]);
    let cfg = config(p, json!({"required_scopes": ["Tools.Call"]}));
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn expired_and_not_yet_valid_report_the_clock_difference() {
    let cfg = config(entra_provider(), json!({}));
    let mut c = entra_v2_claims();
    c["exp"] = json!(NOW - 3600);
    c["iat"] = json!(NOW - 7200);
    c["nbf"] = json!(NOW - 7200);
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1);
    assert!(
        r.line("FAIL  times")
            .unwrap_or_default()
            .contains("expired 3600s ago"),
        "{}",
        r.stdout
    );
    let fix = r.fix_after("times");
    assert!(fix.contains("about 3600s ahead"), "{fix}");
    assert!(r.stdout.contains("verdict: DENIED 401 (expired)"));

    let mut c = entra_v2_claims();
    c["nbf"] = json!(NOW + 600);
    c["iat"] = json!(NOW);
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1);
    assert!(r.line("FAIL  times").is_some(), "{}", r.stdout);
    let fix = r.fix_after("times");
    assert!(fix.contains("about 600s ahead"), "{fix}");
    assert!(fix.contains("clock_skew_seconds"), "{fix}");
    assert!(r.stdout.contains("verdict: DENIED 401 (not_yet_valid)"));
}

#[test]
fn unknown_kid_suggests_rotation_or_wrong_tenant() {
    let cfg = config(entra_provider(), json!({}));
    let other = devstack::SigningKey::cached(devstack::KeyKind::Rsa2048, "rotated-2");
    let t = devstack::mint(&other, "RS256", entra_v2_claims());
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.line("FAIL  key")
            .unwrap_or_default()
            .contains("rotated-2"),
        "{}",
        r.stdout
    );
    let fix = r.fix_after("key");
    assert!(fix.contains("[\"key-1\"]"), "{fix}");
    assert!(fix.contains("local_jwks"), "{fix}");
    assert!(fix.contains("another issuer or tenant"), "{fix}");
    assert!(r.stdout.contains("verdict: DENIED 401 (unknown_kid)"));
    assert!(r.stdout.contains("refetches the key set once"));
}

#[test]
fn auth0_issuer_trailing_slash() {
    let cfg = config(
        json!({"name": "auth0", "issuer": "https://tenant.eu.auth0.com",
               "audiences": ["https://mcp.example.com"],
               "scope_claims": ["scope", "permissions"]}),
        json!({}),
    );
    let t = token(with_times(json!({
        "iss": "https://tenant.eu.auth0.com/",
        "sub": "auth0|abc",
        "aud": ["https://mcp.example.com", "https://tenant.eu.auth0.com/userinfo"],
        "azp": "client", "scope": "openid mcp:tools", "permissions": ["mcp:tools"]
    })));
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let fix = r.fix_after("issuer");
    assert!(fix.contains("trailing slash"), "{fix}");
    assert!(fix.contains("\"https://tenant.eu.auth0.com/\""), "{fix}");
    assert!(fix.contains("Auth0 issuers end with"), "{fix}");
}

#[test]
fn okta_scp_array_needs_scp_in_scope_claims() {
    let okta = json!({"name": "okta", "issuer": "https://org.okta.com/oauth2/default",
                      "audiences": ["api://default"], "scope_claims": ["scope"]});
    let cfg = config(okta.clone(), json!({"required_scopes": ["mcp.read"]}));
    let t = token(with_times(json!({
        "ver": 1, "iss": "https://org.okta.com/oauth2/default", "aud": "api://default",
        "cid": "0oa1", "uid": "00u1", "sub": "ada@example.com", "scp": ["mcp.read", "openid"]
    })));
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.line("FAIL  scopes").is_some(), "{}", r.stdout);
    let fix = r.fix_after("scopes");
    assert!(fix.contains("JSON array (Okta)"), "{fix}");
    assert!(
        fix.contains("add \"scp\" to providers.okta.scope_claims"),
        "{fix}"
    );

    let mut fixed = okta;
    fixed["scope_claims"] = json!(["scp"]);
    let cfg = config(fixed, json!({"required_scopes": ["mcp.read"]}));
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r
        .line("PASS  scopes")
        .unwrap_or_default()
        .contains("granted: mcp.read openid"));
}

#[test]
fn keycloak_without_audience_mapper() {
    let kc = json!({"name": "keycloak", "issuer": "https://kc.example.com/realms/mcp",
                    "audiences": ["mcp-server"]});
    let cfg = config(kc, json!({}));
    for aud in [Some(json!("account")), None] {
        let mut c = with_times(json!({
            "iss": "https://kc.example.com/realms/mcp", "sub": "f:1", "typ": "Bearer",
            "azp": "mcp-client", "preferred_username": "ada", "scope": "openid profile",
            "realm_access": {"roles": ["default-roles-mcp"]}
        }));
        if let Some(a) = aud {
            c["aud"] = a;
        }
        let t = token(c);
        let r = explain(&cfg, &t, &[]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.line("FAIL  audience").is_some(), "{}", r.stdout);
        let fix = r.fix_after("audience");
        assert!(fix.contains("Audience mapper"), "{fix}");
        assert!(fix.contains("\"mcp-server\""), "{fix}");
    }
}

#[test]
fn mcp_body_scopes_per_tool() {
    let rule =
        json!({"mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]}}});
    let cfg = config(entra_provider(), rule);
    let mut c = entra_v2_claims();
    c["scp"] = json!("calculator.add");
    let t = token(c);
    let call = |tool: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": {"a": 1, "b": 2}}})
        .to_string()
    };
    let add = temp_file("add.json", call("add").as_bytes());
    let r = explain(&cfg, &t, &["--body", &add]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.line("PASS  mcp-body")
            .unwrap_or_default()
            .contains("tools/call \"add\""),
        "{}",
        r.stdout
    );

    let r = cli_stdin(
        &[
            "explain",
            "--config",
            &temp_file("c.json", cfg.as_bytes()),
            "--token",
            &t,
            "--now",
            &NOW.to_string(),
            "--body",
            "-",
        ],
        Some(&call("subtract")),
    );
    assert_no_token(&r, &t);
    assert_eq!(r.code, 1, "{}", r.all());
    let fail = r.line("FAIL  mcp-body").unwrap_or_default();
    assert!(
        fail.contains(&format!("lacks scope api://{API_ID}/calculator.subtract")),
        "{fail}"
    );
    assert!(r
        .stdout
        .contains("verdict: DENIED 403 (insufficient_scope)"));

    let rm = temp_file("rm.json", call("rm_rf").as_bytes());
    let r = explain(&cfg, &t, &["--body", &rm]);
    assert_eq!(r.code, 1);
    assert!(r
        .line("FAIL  mcp-body")
        .unwrap_or_default()
        .contains("tool rm_rf is not allowed"));
    assert!(r.fix_after("mcp-body").contains("unlisted"), "{}", r.stdout);

    // Without --body the header phase passes and the body check is pending.
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 0);
    assert!(r
        .line("SKIP  mcp-body")
        .unwrap_or_default()
        .contains("--body"));
}

#[test]
fn token_from_stdin_with_bearer_prefix_and_usage_errors() {
    let cfg = temp_file("cfg.json", config(entra_provider(), json!({})).as_bytes());
    let t = token(entra_v2_claims());
    let r = cli_stdin(
        &[
            "explain",
            "--config",
            &cfg,
            "--token",
            "-",
            "--now",
            &NOW.to_string(),
        ],
        Some(&format!("Bearer {t}\n")),
    );
    assert_no_token(&r, &t);
    assert_eq!(r.code, 0, "{}", r.all());

    // Usage and configuration errors exit 2.
    let r = cli(&["explain", "--config", &cfg]);
    assert_eq!(r.code, 2);
    let broken = temp_file("broken.json", b"{\"providers\": {}}");
    let r = cli(&["explain", "--config", &broken, "--token", &t]);
    assert_eq!(r.code, 2);
    assert_no_token(&r, &t);
    assert!(
        r.stderr.contains("invalid plugin configuration"),
        "{}",
        r.stderr
    );
    let r = cli(&["explain", "--config", &cfg, "--token", &t, "--bogus", "1"]);
    assert_eq!(r.code, 2);
    assert_no_token(&r, &t);
}

#[test]
fn malformed_and_tampered_tokens_are_never_echoed() {
    let cfg = config(entra_provider(), json!({}));
    let good = token(entra_v2_claims());
    // Tampered signature, a garbage JWS, an opaque token, a token with a space.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[2] = format!("{}AAAA", &parts[2][4..]);
    let tampered = parts.join(".");
    let r = explain(&cfg, &tampered, &[]);
    assert_eq!(r.code, 1);
    assert!(r.line("FAIL  signature").is_some(), "{}", r.stdout);
    for bad in [
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2lnbmF0dXJl",
        "opaque-token-value-12345",
    ] {
        let r = explain(&cfg, bad, &[]);
        assert_eq!(r.code, 1, "{}", r.all());
        assert!(r.line("FAIL  structure").is_some(), "{}", r.stdout);
    }
    let r = explain(&cfg, "abc def.ghi", &[]);
    assert_eq!(r.code, 1);
    assert!(r.line("FAIL  token").is_some(), "{}", r.stdout);
}

#[test]
fn hostile_claim_values_are_escaped() {
    let cfg = config(entra_provider(), json!({}));
    let mut c = entra_v2_claims();
    c["aud"] = json!(["\u{1b}[2Jx\u{7}", API_ID]);
    c["scp"] = json!("Tools.Read \u{1b}[31mred");
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.all().contains('\u{1b}') && !r.all().contains('\u{7}'),
        "{}",
        r.all()
    );
    c = entra_v2_claims();
    c["aud"] = json!("\u{1b}]0;title\u{7}");
    let t = token(c);
    let r = explain(&cfg, &t, &[]);
    assert_eq!(r.code, 1);
    assert!(r.line("FAIL  audience").is_some(), "{}", r.stdout);
    assert!(
        !r.all().contains('\u{1b}') && !r.all().contains('\u{7}'),
        "{}",
        r.all()
    );
}
