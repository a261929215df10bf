//! Issue 21, part 2: the filter's decision as Envoy filter state, read by the rest of Envoy.
//! The real Envoy 1.40 with the built module, the access log format shipped in
//! `envoy/recipes/entra.yaml` writing to a file, and after the filter the RBAC policy (one
//! subject denied by its filter state) and the local rate limit keyed on the subject that
//! docs/CONFIG.md shows.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod deploy_support;
mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use devstack::recorder::Recorder;
use devstack::{sign_jws, KeyKind, KeyRing, SigningKey};
use serde_json::{json, Value};
use support::http::{self, Response};
use support::{Envoy, EnvoyBuilder};

const ISS: &str = "https://idp.example.com/";
const AUD: &str = "api://mcp";

fn key() -> SigningKey {
    SigningKey::cached(KeyKind::Rsa2048, "fstate-key-1")
}

/// The access log format the Entra recipe ships (every recipe has the same one:
/// `tests/recipes.rs`).
fn recipe_format() -> String {
    let doc = deploy_support::yaml_doc(&deploy_support::read("envoy/recipes/entra.yaml"));
    let hcm =
        &doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    hcm["access_log"][0]["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        .as_str()
        .expect("the recipe's access log format")
        .to_string()
}

fn q(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// The HTTP filters docs/CONFIG.md shows ("Filter state for access logs, RBAC and rate
/// limits": RBAC denying subject `mallory`, a local rate limit of 2 requests a minute for
/// subject `rate-limited`), indented for the test bootstrap's filter list.
fn doc_filters() -> String {
    let text = deploy_support::read("docs/CONFIG.md");
    let section = text
        .split("## Filter state for access logs, RBAC and rate limits")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the filter state section of docs/CONFIG.md");
    let mut out = String::new();
    let mut found = 0;
    for block in section.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        if block.starts_with("- name: envoy.filters.http.") {
            found += 1;
            for line in block.lines() {
                out.push_str(&format!("          {line}\n"));
            }
        }
    }
    assert_eq!(found, 2, "the RBAC and the rate limit examples");
    out
}

/// The HCM's access log (a file) and, after the Wasm filter, the filters of [`doc_filters`].
fn edit(log: PathBuf, format: String) -> impl Fn(String) -> String {
    move |yaml: String| {
        let access_log = format!(
            r#"          stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {path}
              log_format:
                text_format_source:
                  inline_string: {format}
"#,
            path = q(&log.to_string_lossy()),
            format = q(&format),
        );
        let mut filters = doc_filters();
        filters.push_str("          - name: envoy.filters.http.router\n");
        let yaml = yaml.replacen("          stat_prefix: ingress\n", &access_log, 1);
        yaml.replacen("          - name: envoy.filters.http.router\n", &filters, 1)
    }
}

struct Stack {
    backend: Recorder,
    envoy: Envoy,
    log: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

fn start() -> Stack {
    start_publishing(Some(json!(["*"])))
}

/// The stack with `filter_state` set to `publish` (absent: `None`).
fn start_publishing(publish: Option<serde_json::Value>) -> Stack {
    let backend = Recorder::start();
    static STARTED: AtomicUsize = AtomicUsize::new(0);
    let log = std::env::temp_dir().join(format!(
        "mcp-edge-auth-access-{}-{}.log",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&log);
    let cfg = json!({
        "providers": {"idp": {
            "issuer": ISS,
            "audiences": [AUD],
            "local_jwks": {"inline_string": KeyRing::new(vec![key()]).jwks().to_string()},
            "algorithms": ["RS256"]
        }},
        "rules": [
            {"match": {"prefix": "/mcp"}, "requires": {"provider_name": "idp"},
             "mcp": {"tools": {"add": ["calculator.add"], "subtract": ["calculator.subtract"]}}}
        ]
    });
    let mut cfg = cfg;
    if let Some(p) = publish {
        cfg["filter_state"] = p;
    }
    let envoy = EnvoyBuilder::new(&cfg.to_string())
        .backend_port(backend.port())
        .map_yaml(edit(log.clone(), recipe_format()))
        .start()
        .unwrap();
    Stack {
        backend,
        envoy,
        log,
    }
}

fn token(sub: &str, scope: &str, exp_in: i64) -> String {
    let now = devstack::now() as i64;
    let claims = json!({"iss": ISS, "aud": AUD, "sub": sub, "azp": format!("{sub}-client"),
                        "scope": scope, "iat": now - 10, "exp": now + exp_in});
    let k = key();
    sign_jws(
        &k,
        "RS256",
        &json!({"alg": "RS256", "kid": k.kid, "typ": "JWT"}),
        &claims,
    )
}

fn call(tool: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": tool, "arguments": {"a": 2, "b": 3}}})
    .to_string()
    .into_bytes()
}

impl Stack {
    fn post(&self, token: &str, body: &[u8], marker: &str) -> Response {
        let auth = format!("Bearer {token}");
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("x-test-id", marker),
        ];
        http::request(self.envoy.port(), "POST", "/mcp", &headers, body)
    }

    fn get(&self, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        http::request(
            self.envoy.port(),
            "GET",
            "/mcp",
            &[("authorization", auth.as_str())],
            b"",
        )
    }

    fn reached_backend(&self, marker: &str) -> bool {
        self.backend
            .requests()
            .iter()
            .any(|r| r.header("x-test-id") == Some(marker))
    }

    /// The access log once it has `n` lines (Envoy flushes it within a second or so).
    fn access_log(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_string).collect();
            if lines.len() >= n || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The one line of `lines` that has every one of `parts`.
fn line_with<'a>(lines: &'a [String], parts: &[&str]) -> &'a str {
    let found: Vec<&String> = lines
        .iter()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .collect();
    assert_eq!(found.len(), 1, "{parts:?} in\n{}", lines.join("\n"));
    found[0]
}

#[test]
fn the_access_log_says_who_called_which_tool_and_why_a_call_was_denied() {
    let s = start();
    let alice = token("alice", "calculator.add", 3600);
    let r = s.post(&alice, &call("add"), "add");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(&alice, &call("subtract"), "subtract");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!s.reached_backend("subtract"));
    // An expired token: nothing of it is published (it was not verified), only the reason.
    let expired = token("eve", "calculator.add", -3600);
    let r = s.get(&expired);
    assert_eq!(r.status, 401);

    let lines = s.access_log(3);
    assert_eq!(lines.len(), 3, "{}", lines.join("\n"));
    let allowed = line_with(&lines, &["POST 200 "]);
    for part in [
        "decision=allowed ",
        "reason=- ",
        "subject=alice ",
        "client=alice-client ",
        "provider=idp ",
        "method=tools/call ",
        "tool=add ",
        "scopes=\"calculator.add\"",
    ] {
        assert!(allowed.contains(part), "{part} in {allowed}");
    }
    let denied = line_with(&lines, &["POST 403 "]);
    for part in [
        "decision=denied ",
        "reason=insufficient_scope ",
        "subject=alice ",
        "client=alice-client ",
        "method=tools/call ",
        "tool=subtract ",
    ] {
        assert!(denied.contains(part), "{part} in {denied}");
    }
    let unverified = line_with(&lines, &["GET 401 "]);
    for part in [
        "decision=denied ",
        "reason=expired ",
        "subject=- ",
        "client=- ",
        "tool=- ",
    ] {
        assert!(unverified.contains(part), "{part} in {unverified}");
    }
    // No token, nor any part of one, in the log.
    let text = lines.join("\n");
    for t in [&alice, &expired] {
        for part in t.split('.') {
            assert!(!text.contains(part), "a token part is in the access log");
        }
    }
    assert!(!text.contains("Bearer"));
}

#[test]
fn rbac_and_a_local_rate_limit_after_the_filter_act_on_the_published_subject() {
    let s = start();
    // RBAC denies mallory, whose token the filter accepts; alice passes.
    let mallory = token("mallory", "calculator.add", 3600);
    let r = s.post(&mallory, &call("add"), "mallory");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("RBAC"), "{}", r.text());
    assert!(!s.reached_backend("mallory"));
    let alice = token("alice", "calculator.add", 3600);
    let r = s.post(&alice, &call("add"), "alice");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.reached_backend("alice"));

    // The rate limit: 2 a minute for subject rate-limited, its third request gets 429;
    // another subject is not limited by it.
    let limited = token("rate-limited", "calculator.add", 3600);
    let statuses: Vec<u16> = (0..3).map(|_| s.get(&limited).status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    let others: Vec<u16> = (0..3).map(|_| s.get(&alice).status).collect();
    assert_eq!(others, [200, 200, 200]);

    let lines = s.access_log(8);
    let rbac = line_with(&lines, &["subject=mallory "]);
    assert!(
        rbac.contains("POST 403 rbac_access_denied_matched_policy[blocked-subject]"),
        "{rbac}"
    );
    assert!(rbac.contains("decision=allowed "), "{rbac}");
}

#[test]
fn only_the_values_filter_state_names_are_published() {
    let alice = token("alice", "calculator.add", 3600);
    // Absent: nothing is published (each value is a host call per request).
    let s = start_publishing(None);
    let r = s.post(&alice, &call("add"), "add");
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = s.access_log(1);
    let line = line_with(&lines, &["POST 200 "]);
    for part in ["decision=- ", "subject=- ", "client=- ", "tool=- "] {
        assert!(line.contains(part), "{part} in {line}");
    }
    drop(s);
    // A list: those values and no others.
    let s = start_publishing(Some(json!(["subject", "tool"])));
    let r = s.post(&alice, &call("add"), "add");
    assert_eq!(r.status, 200, "{}", r.text());
    let lines = s.access_log(1);
    let line = line_with(&lines, &["POST 200 "]);
    for part in [
        "subject=alice ",
        "tool=add",
        "decision=- ",
        "client=- ",
        "provider=- ",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}
