//! End-to-end check of the `devstack` binary: `all` starts the servers and
//! `mint` / `token` talk to the running IdP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use devstack::http;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn url_after(line: &str, prefix: &str) -> String {
    let rest = line.strip_prefix(prefix).unwrap().trim_start();
    rest.split_whitespace().next().unwrap().to_string()
}

#[test]
fn all_mint_and_token() {
    let bin = env!("CARGO_BIN_EXE_devstack");
    let mut child = Command::new(bin)
        .args([
            "all",
            "--idp-port",
            "0",
            "--mcp-port",
            "0",
            "--recorder-port",
            "0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut lines = BufReader::new(stdout).lines();
    let idp_line = lines.next().unwrap().unwrap();
    let mcp_line = lines.next().unwrap().unwrap();
    let rec_line = lines.next().unwrap().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let idp = url_after(&idp_line, "idp");
    let mcp = url_after(&mcp_line, "mcp");
    let rec = url_after(&rec_line, "recorder");
    assert!(idp.starts_with("http://127.0.0.1:"), "{idp_line}");
    assert!(mcp.ends_with("/mcp"), "{mcp_line}");

    let out = Command::new(bin)
        .args([
            "mint",
            "--idp",
            &idp,
            "--claims",
            r#"{"sub":"cli-user"}"#,
            "--alg",
            "ES256",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&devstack::b64url_decode(token.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    assert_eq!(claims["sub"], "cli-user");
    assert_eq!(claims["iss"], idp);

    let out = Command::new(bin)
        .args(["token", "--idp", &idp, "--scope", "mcp:tools"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split('.')
            .count(),
        3
    );

    let mut client = devstack::McpClient::new(&mcp);
    client.initialize().unwrap();
    assert_eq!(
        client
            .call_tool_text("add", serde_json::json!({"a": 1, "b": 2}))
            .unwrap(),
        "3"
    );
    assert_eq!(http::get(&format!("{rec}/x")).unwrap().status, 200);

    let bad = Command::new(bin).args(["nope"]).output().unwrap();
    assert!(!bad.status.success());
    drop(child);
}

#[test]
fn idp_entra_mode() {
    let bin = env!("CARGO_BIN_EXE_devstack");
    let mut child = Command::new(bin)
        .args([
            "idp",
            "--port",
            "0",
            "--entra",
            "--entra-redirect",
            "http://127.0.0.1:10000/auth/callback,https://mcp.example.com/auth/callback",
            "--entra-secret",
            "s3cret-from-cli",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _child = Killed(child);
    let line = BufReader::new(stdout).lines().next().unwrap().unwrap();
    assert!(line.contains("entra: tenant="), "{line}");
    assert!(
        line.contains(
            "redirect=http://127.0.0.1:10000/auth/callback,https://mcp.example.com/auth/callback"
        ),
        "{line}"
    );
    assert!(!line.contains("s3cret-from-cli"), "{line}");
    assert!(
        line.contains("issuer=https://login.microsoftonline.com/"),
        "{line}"
    );
    let idp = url_after(&line, "idp");
    let meta = http::get(&format!("{idp}/.well-known/openid-configuration"))
        .unwrap()
        .json()
        .unwrap();
    assert!(meta.get("registration_endpoint").is_none());
    assert!(meta.get("code_challenge_methods_supported").is_none());
    // The secret given on the command line is the one the token endpoint wants.
    let resp = http::post_form(
        &format!("{idp}/token"),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", devstack::entra::DEFAULT_CLIENT_ID),
            ("client_secret", "s3cret-from-cli"),
            (
                "scope",
                "api://22222222-2222-2222-2222-222222222222/.default",
            ),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(resp.status, 200, "{}", resp.text());

    // Entra options without --entra are refused.
    let out = Command::new(bin)
        .args(["idp", "--port", "0", "--entra-secret", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --entra"));
}
