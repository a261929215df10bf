//! RFC 7591 dynamic client registration, for public clients only. Nothing is stored: the
//! returned `client_id` is the registration itself (name, redirect URIs, issue time) sealed
//! under the façade's key, so any replica can read it back at `/authorize` and `/token`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::request::Ctx;
use super::response::Response;
use super::seal::fields::{self, put};
use super::seal::{Keys, Kind, Sealed, NEVER};

/// Largest registration body read.
pub const MAX_BODY: usize = 16 * 1024;
/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 8;
/// Longest client name kept (characters).
pub const MAX_NAME: usize = 100;

/// A registration as sealed in the client id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub issued_at: u64,
}

/// Sealed as `{"n", "r", "i"}` (`n` absent without a name).
impl Sealed for Client {
    fn to_json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(n) = &self.name {
            put(&mut m, "n", n.as_str());
        }
        put(&mut m, "r", self.redirect_uris.as_slice());
        put(&mut m, "i", self.issued_at);
        m
    }

    fn from_json(m: &Map<String, Value>) -> Option<Client> {
        Some(Client {
            name: fields::opt_string(m, "n")?,
            redirect_uris: fields::strings(m, "r")?,
            issued_at: fields::number(m, "i")?,
        })
    }
}

/// Opens a client id; `None` for anything that is not one of ours.
pub fn open_client(keys: &Keys, client_id: &str) -> Option<Client> {
    keys.open_json::<Client>(Kind::ClientId, client_id, 0)
        .ok()
        .map(|(c, _)| c)
        .filter(|c| !c.redirect_uris.is_empty())
}

/// A short, fixed-size stand-in for a client id inside other sealed blobs.
pub fn client_hash(client_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(client_id.as_bytes()))
}

fn invalid(error: &str, description: &str) -> Response {
    Response::oauth_error(400, error, description).header("access-control-allow-origin", "*")
}

fn metadata_error(description: &str) -> Response {
    invalid("invalid_client_metadata", description)
}

/// The client's name cleaned for display: control characters dropped, trimmed, bounded.
fn clean_name(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty()).then(|| cleaned.to_string())
}

fn string_list<'v>(
    v: &'v Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<&'v str>>, Response> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str())
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| metadata_error(&format!("{field} must be an array of strings"))),
        Some(_) => Err(metadata_error(&format!(
            "{field} must be an array of strings"
        ))),
    }
}

/// `POST /register`: 201 with the client information, or 400.
pub fn register(ctx: &mut Ctx<'_>, body: &[u8]) -> Response {
    match try_register(ctx, body) {
        Ok(r) | Err(r) => r,
    }
}

fn try_register(ctx: &mut Ctx<'_>, body: &[u8]) -> Result<Response, Response> {
    if body.len() > MAX_BODY {
        return Err(metadata_error("registration request is too large"));
    }
    // Anything but an object fails here.
    let v: Map<String, Value> = super::seal::object(body)
        .ok_or_else(|| metadata_error("registration request must be a JSON object"))?;
    match v.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(_) => {
            return Err(metadata_error(
                "only public clients are supported: token_endpoint_auth_method must be none",
            ))
        }
    }
    let grant_types = string_list(&v, "grant_types")?
        .unwrap_or_else(|| vec!["authorization_code", "refresh_token"]);
    if !grant_types.contains(&"authorization_code")
        || grant_types
            .iter()
            .any(|g| *g != "authorization_code" && *g != "refresh_token")
    {
        return Err(metadata_error(
            "grant_types must be authorization_code, optionally with refresh_token",
        ));
    }
    let response_types = string_list(&v, "response_types")?.unwrap_or_else(|| vec!["code"]);
    if response_types.iter().any(|t| *t != "code") || response_types.is_empty() {
        return Err(metadata_error("response_types must be [\"code\"]"));
    }
    let name = match v.get("client_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => clean_name(n),
        Some(_) => return Err(metadata_error("client_name must be a string")),
    };
    let uris = match string_list(&v, "redirect_uris") {
        Ok(Some(u)) if !u.is_empty() => u,
        Ok(_) => {
            return Err(invalid(
                "invalid_redirect_uri",
                "redirect_uris is required and must not be empty",
            ))
        }
        Err(_) => {
            return Err(invalid(
                "invalid_redirect_uri",
                "redirect_uris must be an array of strings",
            ))
        }
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return Err(invalid(
            "invalid_redirect_uri",
            &format!("at most {MAX_REDIRECT_URIS} redirect_uris"),
        ));
    }
    for (i, uri) in uris.iter().enumerate() {
        if let Err(e) = ctx.settings.redirects.allows(uri) {
            return Err(invalid(
                "invalid_redirect_uri",
                &format!("redirect_uris[{i}]: {}", e.describe()),
            ));
        }
    }
    let client = Client {
        name,
        redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
        issued_at: ctx.now,
    };
    let client_id = ctx
        .keys
        .seal_json(Kind::ClientId, NEVER, &client, ctx.rng)
        .map_err(|_| Response::oauth_error(500, "server_error", "no randomness available"))?;
    let mut out = json!({
        "client_id": client_id,
        "client_id_issued_at": client.issued_at,
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    if let (Some(n), Some(map)) = (&client.name, out.as_object_mut()) {
        map.insert("client_name".into(), json!(n));
    }
    Ok(Response::new(201)
        .header("access-control-allow-origin", "*")
        .no_store()
        .json(&out))
}

/// Fuzz entry: a registration body through the whole check (fixed settings and keys).
pub fn fuzz_register(ctx: &mut Ctx<'_>, input: &[u8]) -> u16 {
    register(ctx, input).status
}

#[cfg(test)]
mod tests {
    use super::super::random::testing::{Broken, Counter};
    use super::super::settings::testing;
    use super::*;

    pub(crate) fn keys() -> Keys {
        Keys::new(&[[7u8; 32]]).unwrap()
    }

    fn run(body: &str) -> (u16, Value) {
        let s = testing::settings();
        let k = keys();
        let mut r = Counter(1);
        let mut ctx = Ctx {
            settings: &s,
            keys: &k,
            now: 1000,
            rng: &mut r,
        };
        let resp = register(&mut ctx, body.as_bytes());
        (resp.status, serde_json::from_slice(&resp.body).unwrap())
    }

    #[test]
    fn registers_a_public_client() {
        let (status, v) = run(
            r#"{"client_name":"Claude \u0007Code","redirect_uris":["http://127.0.0.1:33418/callback"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none","scope":"x"}"#,
        );
        assert_eq!(status, 201);
        assert_eq!(v["client_name"], "Claude Code");
        assert_eq!(v["token_endpoint_auth_method"], "none");
        assert!(v.get("client_secret").is_none());
        let id = v["client_id"].as_str().unwrap();
        let c = open_client(&keys(), id).unwrap();
        assert_eq!(c.redirect_uris, vec!["http://127.0.0.1:33418/callback"]);
        assert_eq!(c.issued_at, 1000);
        assert_eq!(c.name.as_deref(), Some("Claude Code"));
        // A client id is not a code, and another key cannot open it.
        assert!(keys().open(Kind::Code, id, 0).is_err());
        assert!(open_client(&Keys::new(&[[8u8; 32]]).unwrap(), id).is_none());
    }

    #[test]
    fn refuses_bad_metadata() {
        for (body, error) in [
            ("[]", "invalid_client_metadata"),
            ("not json", "invalid_client_metadata"),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["client_credentials"]}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["refresh_token"]}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb"],"response_types":["token"]}"#,
                "invalid_client_metadata",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb"],"client_name":5}"#,
                "invalid_client_metadata",
            ),
            (r#"{}"#, "invalid_redirect_uri"),
            (r#"{"redirect_uris":[]}"#, "invalid_redirect_uri"),
            (
                r#"{"redirect_uris":"http://127.0.0.1/cb"}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["javascript:alert(1)"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/cb","http://localhost@evil.com/"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["https://evil.com/cb"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["https://mcp.example.com/auth/callback"]}"#,
                "invalid_redirect_uri",
            ),
            (
                r#"{"redirect_uris":["http://127.0.0.1/a/../b"]}"#,
                "invalid_redirect_uri",
            ),
        ] {
            let (status, v) = run(body);
            assert_eq!(status, 400, "{body}");
            assert_eq!(v["error"], error, "{body}");
        }
        let many: Vec<String> = (0..9)
            .map(|i| format!("\"http://127.0.0.1/{i}\""))
            .collect();
        let (status, _) = run(&format!("{{\"redirect_uris\":[{}]}}", many.join(",")));
        assert_eq!(status, 400);
        let (status, _) = run(&format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_BODY)));
        assert_eq!(status, 400);
    }

    #[test]
    fn no_randomness_is_a_500() {
        let s = testing::settings();
        let k = keys();
        let mut ctx = Ctx {
            settings: &s,
            keys: &k,
            now: 1,
            rng: &mut Broken,
        };
        let r = register(&mut ctx, br#"{"redirect_uris":["http://127.0.0.1/cb"]}"#);
        assert_eq!(r.status, 500);
        assert_eq!(fuzz_register(&mut ctx, b"\xff"), 400);
    }
}
