//! Upstream IdP errors turned into errors for the client: the RFC 6749 code the client
//! should act on, and a description that names the IdP's diagnostic codes (Entra `AADSTS…`)
//! with what they usually mean. The IdP's free text is not copied through.

/// Up to three distinct `AADSTS<digits>` codes found in `text`.
pub fn aadsts_codes(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("AADSTS") {
        let after = rest.get(i + 6..).unwrap_or("");
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            if let Some(code) = rest.get(i..i + 6 + digits) {
                if !out.contains(&code) {
                    out.push(code);
                }
            }
        }
        if out.len() == 3 {
            break;
        }
        rest = after;
    }
    out
}

/// What an Entra code usually means for this façade.
pub fn hint(code: &str) -> Option<&'static str> {
    Some(match code.strip_prefix("AADSTS")? {
        "9010010" | "901002" => {
            "the IdP refuses the resource parameter: set send_resource to false"
        }
        "28003" => "no scope in the token request",
        "28000" => "scopes for more than one resource were requested",
        "650053" | "70011" => "a scope is not defined on the API (check scope_prefix)",
        "7000215" | "7000218" | "7000222" => {
            "the façade's client secret is wrong, missing or expired"
        }
        "700016" => "the façade's client id is not known in this tenant",
        "50011" | "500113" => "the façade's callback URL is not a redirect URI of the app",
        "65001" => "the user or an administrator has not consented to the app",
        "70008" | "700082" => "the code or refresh token has expired; sign in again",
        "50173" => "the refresh token was revoked (password change or admin action); sign in again",
        "501481" => "the PKCE verifier does not match the challenge of the IdP sign-in",
        "900144" => "the façade's request to the IdP lacks a required parameter",
        "500011" => "the API the scopes name is not in this tenant (check scope_prefix)",
        "54005" => "the code was already redeemed",
        "9002326" | "9002327" => {
            "the app's redirect URI is registered for the wrong platform (use Web)"
        }
        "50076" | "50079" => "multi-factor authentication is required; sign in again",
        _ => return None,
    })
}

/// `"upstream <error>: AADSTS7000215 (hint)"`.
pub fn describe(error: &str, description: Option<&str>) -> String {
    let error: String = error
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    let mut out = format!("the identity provider answered {error}");
    for code in aadsts_codes(description.unwrap_or("")) {
        out.push_str(", ");
        out.push_str(code);
        if let Some(h) = hint(code) {
            out.push_str(" (");
            out.push_str(h);
            out.push(')');
        }
    }
    out
}

/// The token-endpoint error for the client (RFC 6749 §5.2), or `None` when the failure is
/// the façade's own (its credentials, its request): the client can do nothing about it.
pub fn token_error(error: &str) -> Option<&'static str> {
    match error {
        "invalid_grant" => Some("invalid_grant"),
        "invalid_scope" => Some("invalid_scope"),
        "invalid_request" => Some("invalid_request"),
        "invalid_target" => Some("invalid_target"),
        _ => None,
    }
}

/// The authorization-response error for the client (RFC 6749 §4.1.2.1).
pub fn authorize_error(error: &str) -> &'static str {
    match error {
        "access_denied" => "access_denied",
        "invalid_scope" => "invalid_scope",
        "temporarily_unavailable" => "temporarily_unavailable",
        "login_required" | "interaction_required" | "consent_required" => "access_denied",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_hints() {
        let d = "AADSTS7000215: Invalid client secret provided. Trace ID: x AADSTS7000215 AADSTS1 AADSTS";
        assert_eq!(aadsts_codes(d), vec!["AADSTS7000215", "AADSTS1"]);
        let s = describe("invalid_client", Some(d));
        assert!(s.contains("invalid_client"));
        assert!(s.contains("AADSTS7000215 (the façade's client secret"));
        assert!(!s.contains("Trace ID"));
        assert_eq!(
            describe("a\"<b>", None),
            "the identity provider answered ab"
        );
        assert_eq!(aadsts_codes("AADSTS1 AADSTS2 AADSTS3 AADSTS4").len(), 3);
        // The codes the dev IdP's Entra mode answers with (devstack/src/entra.rs) are named.
        for code in [
            "AADSTS9010010",
            "AADSTS28003",
            "AADSTS28000",
            "AADSTS650053",
            "AADSTS7000218",
            "AADSTS7000215",
            "AADSTS50011",
            "AADSTS54005",
            "AADSTS70008",
            "AADSTS700082",
            "AADSTS50173",
            "AADSTS501481",
            "AADSTS900144",
            "AADSTS500011",
            "AADSTS65001",
        ] {
            assert!(hint(code).is_some(), "{code}");
        }
        assert_eq!(token_error("invalid_grant"), Some("invalid_grant"));
        assert_eq!(token_error("invalid_client"), None);
        assert_eq!(authorize_error("consent_required"), "access_denied");
        assert_eq!(authorize_error("weird"), "server_error");
    }
}
