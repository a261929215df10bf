//! Smoke tests of the test harness itself (`tests/support/`): the real Envoy starts with the
//! built module, requests reach a backend, bad setups are reported quickly and readably.
//!
//! Needs `make build` first (the module) and `make deps` (Envoy in `.venv`).

mod support;

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{http, EnvoyBuilder, StartError};

/// A rule without `requires`: every request passes the filter untouched.
const PASS_ALL: &str = r#"{"providers":{},"rules":[{"match":{"prefix":"/"}}]}"#;

/// A request as the backend received it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

impl Seen {
    fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }
}

/// A tiny HTTP/1.1 backend on 127.0.0.1: answers 200 `backend ok` (or echoes a request
/// body; `/chunked*` answers with a chunked body) and records every request.
struct Backend {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    #[allow(clippy::unwrap_used)] // test helper: a failure to bind fails the test
    fn start() -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                thread::spawn(move || serve(conn, &record));
            }
        });
        Backend { port, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn serve(conn: TcpStream, record: &Mutex<Vec<Seen>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut writer = write_half;
    // Several requests may arrive on one upstream connection.
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let len = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = head.split(' ').nth(1).unwrap_or_default().to_string();
        if let Ok(mut seen) = record.lock() {
            seen.push(Seen {
                head: head.clone(),
                body: body.clone(),
            });
        }
        let mut out = Vec::new();
        if path.starts_with("/chunked") {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
                  5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
            );
        } else {
            let reply: &[u8] = if body.is_empty() {
                b"backend ok"
            } else {
                &body
            };
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: yes\r\nContent-Length: {}\r\n\r\n",
                    reply.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(reply);
        }
        if writer.write_all(&out).and_then(|_| writer.flush()).is_err() {
            return;
        }
    }
}

#[test]
fn request_passes_through_envoy_to_the_backend() {
    let backend = Backend::start();
    let envoy = EnvoyBuilder::new(PASS_ALL)
        .backend_port(backend.port)
        .start()
        .unwrap();
    eprintln!(
        "Envoy started in {:?} (listener {}, admin {})",
        envoy.startup_time(),
        envoy.port(),
        envoy.admin_port()
    );

    let resp = http::request(
        envoy.port(),
        "GET",
        "/hello?x=1",
        &[("X-Test", "smoke")],
        b"",
    );
    assert_eq!(resp.status, 200, "{resp:?}\n{}", envoy.logs());
    assert_eq!(resp.text(), "backend ok");
    assert_eq!(resp.header("x-backend"), Some("yes"));
    assert_eq!(resp.header("SERVER"), Some("envoy"));

    let seen = backend.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].request_line(), "GET /hello?x=1 HTTP/1.1");
    assert!(seen[0].head.to_ascii_lowercase().contains("x-test: smoke"));

    assert_eq!(envoy.stat("http.ingress.downstream_rq_2xx"), Some(1));
    // The filter's own counters show up with Envoy's `wasmcustom.` prefix.
    let custom = envoy.stats("wasmcustom.");
    assert!(
        custom
            .keys()
            .any(|k| k.starts_with("wasmcustom.mcp_edge_auth.")),
        "no wasmcustom.mcp_edge_auth.* counter after a request: {custom:?}"
    );
    assert!(envoy.logs().contains("wasm"));
    assert!(envoy.url("/x").ends_with(&format!(":{}/x", envoy.port())));
}

#[test]
fn request_body_and_chunked_response_pass_through() {
    let backend = Backend::start();
    let envoy = EnvoyBuilder::new(PASS_ALL)
        .backend_port(backend.port)
        .concurrency(1)
        .start()
        .unwrap();

    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let resp = http::request(
        envoy.port(),
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        body,
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, body);
    assert_eq!(backend.seen()[0].body, body);

    let resp = http::get(envoy.port(), "/chunked");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "hello world");
}

#[test]
fn envoy_normalizes_paths_before_the_filter() {
    let backend = Backend::start();
    let envoy = EnvoyBuilder::new(PASS_ALL)
        .backend_port(backend.port)
        .start()
        .unwrap();
    let resp = http::get(envoy.port(), "//a//b/../c");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(backend.seen()[0].request_line(), "GET /a/c HTTP/1.1");
}

#[test]
fn extra_clusters_are_configured() {
    let envoy = EnvoyBuilder::new(PASS_ALL)
        .extra_cluster("idp", 9)
        .extra_cluster("other", 10)
        .start()
        .unwrap();
    let clusters = envoy.admin_get("/clusters").text();
    assert!(clusters.contains("idp::127.0.0.1:9"), "{clusters}");
    assert!(clusters.contains("other::127.0.0.1:10"), "{clusters}");
    assert!(envoy
        .config_yaml()
        .contains("allow_on_headers_stop_iteration: true"));
    // No backend: Envoy answers 503 itself.
    assert_eq!(http::get(envoy.port(), "/").status, 503);
}

#[test]
fn drop_kills_and_reaps_envoy() {
    let envoy = EnvoyBuilder::new(PASS_ALL).start().unwrap();
    let pid = envoy.pid();
    let dir = envoy.dir().to_path_buf();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(envoy);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!dir.exists(), "temp dir {} not removed", dir.display());
}

#[test]
fn start_reports_a_missing_module_without_running_envoy() {
    let err = EnvoyBuilder::new(PASS_ALL)
        .wasm_path("/nonexistent/mcp_edge_auth.wasm")
        .start()
        .err()
        .unwrap();
    assert!(matches!(err, StartError::ModuleMissing(_)), "{err}");
    assert!(err.to_string().contains("make build"), "{err}");
}

#[test]
fn envoy_refuses_a_missing_module_quickly() {
    let t = Instant::now();
    let log = EnvoyBuilder::new(PASS_ALL)
        .wasm_path("/nonexistent/mcp_edge_auth.wasm")
        .start_expect_rejected();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(log.contains("/nonexistent/mcp_edge_auth.wasm"), "{log}");
}

#[test]
fn envoy_refuses_broken_yaml_quickly() {
    let t = Instant::now();
    let log = EnvoyBuilder::new(PASS_ALL)
        .map_yaml(|y| y + "\n  broken: [unclosed\n")
        .start_expect_rejected();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(log.contains("yaml"), "{log}");
}

#[test]
fn envoy_refuses_a_plugin_whose_configuration_fails() {
    // on_configure returns false: with FAIL_CLOSED on a static listener Envoy 1.40 exits.
    let t = Instant::now();
    let log = EnvoyBuilder::new(r#"{"providers":{},"rules":5}"#).start_expect_rejected();
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert!(
        log.contains("Unable to create Wasm plugin mcp_edge_auth"),
        "{log}"
    );
}

#[test]
fn client_sends_headers_verbatim() {
    let backend = Backend::start();
    let resp = http::request(
        backend.port,
        "GET",
        "/raw",
        &[
            ("authorization", "Bearer a"),
            ("AUTHORIZATION", "Bearer b"),
            ("X-Big", &"x".repeat(16 * 1024)),
        ],
        b"",
    );
    assert_eq!(resp.status, 200);
    let head = backend.seen()[0].head.clone();
    let auth_lines: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .collect();
    assert_eq!(
        auth_lines,
        ["authorization: Bearer a", "AUTHORIZATION: Bearer b"]
    );
    assert!(head.contains(&format!("Host: 127.0.0.1:{}\r\n", backend.port)));
    assert!(head.contains("Connection: close\r\n"));

    let raw = http::raw(
        backend.port,
        b"POST /r HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
    );
    assert_eq!(raw.body, b"abc");
    assert_eq!(backend.seen()[1].head.lines().nth(1), Some("host: h"));
}

#[test]
fn client_parses_chunked_and_interim_responses() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\n\
        HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n\
        4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nTrailer: x\r\n\r\n";
    let resp = http::read_response(&mut Cursor::new(&wire[..]), false).unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(resp.header_all("SET-COOKIE"), ["a=1", "b=2"]);
    assert_eq!(resp.json()["a"], 1);

    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello-extra";
    let resp = http::read_response(&mut Cursor::new(&wire[..]), false).unwrap();
    assert_eq!(resp.body, b"hello");

    let wire = b"HTTP/1.1 200 OK\r\n\r\nuntil eof";
    let resp = http::read_response(&mut Cursor::new(&wire[..]), false).unwrap();
    assert_eq!(resp.text(), "until eof");

    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    let resp = http::read_response(&mut Cursor::new(&wire[..]), true).unwrap();
    assert!(resp.body.is_empty());
}

#[test]
#[should_panic(expected = "expected Envoy to refuse the configuration")]
fn start_expect_rejected_fails_when_envoy_accepts() {
    EnvoyBuilder::new(PASS_ALL).start_expect_rejected();
}
