//! Shared helpers: run the built binary, write temp files, provider-shaped configs and
//! tokens minted with the devstack keys.
#![allow(dead_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use devstack::{mint, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};

pub const NOW: u64 = 1_800_000_000;
pub const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const API_ID: &str = "6e8f2f5c-1b4a-4c3e-9d2a-0f1e2d3c4b5a";

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// The line of `check` (e.g. "FAIL  issuer").
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout.lines().find(|l| l.starts_with(prefix))
    }

    /// The `fix:` line right after the FAIL line of `check`.
    pub fn fix_after(&self, check: &str) -> String {
        let mut lines = self.stdout.lines();
        let prefix = format!("FAIL  {check}");
        while let Some(l) = lines.next() {
            if l.starts_with(&prefix) {
                return lines.next().unwrap_or("").to_string();
            }
        }
        String::new()
    }
}

pub fn cli(args: &[&str]) -> Run {
    cli_stdin(args, None)
}

pub fn cli_stdin(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-edge-auth"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mcp-edge-auth");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().expect("wait");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Writes `contents` to a fresh temp file and returns its path.
pub fn temp_file(name: &str, contents: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("mcp-edge-auth-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(format!("{}-{name}", SEQ.fetch_add(1, Ordering::SeqCst)));
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

pub fn key() -> SigningKey {
    SigningKey::cached(KeyKind::Rsa2048, "key-1")
}

pub fn jwks() -> String {
    KeyRing::new(vec![key()]).jwks().to_string()
}

/// A config with one provider `p` (fields of `provider` merged over a local_jwks
/// provider), one `/mcp` rule (fields of `rule` merged in) and `/healthz` open.
pub fn config(provider: Value, rule: Value) -> String {
    let mut p = json!({
        "issuer": "https://idp.example.com/",
        "audiences": ["mcp"],
        "local_jwks": {"inline_string": jwks()},
        "algorithms": ["RS256"]
    });
    merge(&mut p, provider);
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("idp")
        .to_string();
    if let Some(o) = p.as_object_mut() {
        o.remove("name");
    }
    let mut r = json!({"match": {"prefix": "/mcp"}, "requires": {"provider_name": name}});
    merge(&mut r, rule);
    json!({
        "providers": { name: p },
        "rules": [r, {"match": {"path": "/healthz"}}],
        "protected_resource": {"resource": "https://mcp.example.com/mcp"}
    })
    .to_string()
}

pub fn merge(base: &mut Value, extra: Value) {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        for (k, v) in e {
            b.insert(k, v);
        }
    }
}

/// Signs `claims` with the config's key (header alg RS256, kid key-1, typ JWT).
pub fn token(claims: Value) -> String {
    mint(&key(), "RS256", claims)
}

/// Times valid at [`NOW`].
pub fn times() -> Value {
    json!({"iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3540})
}

pub fn with_times(mut claims: Value) -> Value {
    let t = times();
    if let (Some(c), Some(t)) = (claims.as_object_mut(), t.as_object()) {
        for (k, v) in t {
            c.entry(k.clone()).or_insert(v.clone());
        }
    }
    claims
}

/// `explain` with the config in a temp file, the token on the command line, --now NOW.
pub fn explain(config: &str, token: &str, extra: &[&str]) -> Run {
    let cfg = temp_file("config.json", config.as_bytes());
    let now = NOW.to_string();
    let mut args = vec!["explain", "--config", &cfg, "--token", token, "--now", &now];
    args.extend_from_slice(extra);
    let run = cli(&args);
    assert_no_token(&run, token);
    run
}

/// The output never contains the token or its signature segment.
pub fn assert_no_token(run: &Run, token: &str) {
    let all = run.all();
    assert!(!all.contains(token), "output contains the token:\n{all}");
    if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() >= 8) {
        assert!(!all.contains(sig), "output contains the signature:\n{all}");
    }
}

// Provider-shaped configurations.

pub fn entra_provider() -> Value {
    json!({
        "name": "entra",
        "issuer": format!("https://login.microsoftonline.com/{TID}/v2.0"),
        "audiences": [API_ID, format!("api://{API_ID}")],
        "scope_prefix": format!("api://{API_ID}/")
    })
}

pub fn entra_v2_claims() -> Value {
    with_times(json!({
        "aud": API_ID,
        "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
        "azp": "11111111-2222-3333-4444-555555555555",
        "name": "Ada Lovelace",
        "oid": "99999999-8888-7777-6666-555555555555",
        "scp": "Tools.Read",
        "sub": "pairwise-subject",
        "tid": TID,
        "ver": "2.0"
    }))
}
