//! `make run` itself (scripts/run-demo.sh) on other ports, followed the way a browser would:
//! the URL it prints → the demo client → the sign-in façade's consent page (Approve) → the dev
//! IdP in Entra mode → the façade's callback → the demo client's callback, whose page must
//! show the result of the MCP `tools/call` it made through Envoy. The plain JWT listener of
//! the same demo is checked too (its 401 and metadata). Then the script is stopped and must
//! stop everything it started. Needs `make build` (the script runs with SKIP_BUILD=1).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::envoy::{free_port, repo_root};
use support::facade::{enc, hidden, split_url};
use support::http::{self, Response};

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    ports: HashMap<&'static str, u16>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Demo {
    fn start() -> Demo {
        let names = [
            "DEMO_IDP_PORT",
            "DEMO_ENTRA_IDP_PORT",
            "DEMO_MCP_PORT",
            "DEMO_CLIENT_PORT",
            "DEMO_LISTEN_PORT",
            "DEMO_FACADE_PORT",
            "DEMO_ADMIN_PORT",
        ];
        let ports: HashMap<&'static str, u16> = names.iter().map(|n| (*n, free_port())).collect();
        let dir = std::env::temp_dir().join(format!("mcp-edge-auth-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("bash");
        cmd.arg("scripts/run-demo.sh")
            .current_dir(repo_root())
            .env("SKIP_BUILD", "1")
            .env("DEMO_RUN_DIR", &dir)
            .env_remove("FACADE_SEAL_KEY")
            .env_remove("FACADE_CLIENT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a failed test can still stop all of it.
            .process_group(0);
        for (n, p) in &ports {
            cmd.env(n, p.to_string());
        }
        let mut child = cmd.spawn().expect("bash scripts/run-demo.sh");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Demo {
            child,
            lines: rx,
            seen: Vec::new(),
            ports,
            _dir: TempDir(dir),
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports[name]
    }

    /// Reads the script's output until a line contains `needle`; returns that line.
    fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "run-demo.sh never printed {needle:?}; its output:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    fn output(&mut self) -> String {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        self.seen.join("\n")
    }

    /// SIGTERM to the script (its trap stops what it started); true when it exited in time.
    fn stop(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // The whole process group, whatever the script left.
            let pgid = format!("-{}", self.child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &pgid]).status();
            let _ = self.child.wait();
        }
    }
}

/// A browser's cookie jar, per port (every cookie here is for 127.0.0.1).
#[derive(Default)]
struct Browser {
    jar: HashMap<u16, Vec<(String, String)>>,
    visited: Vec<String>,
}

impl Browser {
    fn remember(&mut self, port: u16, r: &Response) {
        let jar = self.jar.entry(port).or_default();
        for c in r.header_all("set-cookie") {
            let pair = c.split(';').next().unwrap_or("");
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            jar.retain(|(n, _)| n != name.trim());
            if !c.contains("Max-Age=0") {
                jar.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }

    fn cookie_header(&self, port: u16) -> String {
        self.jar
            .get(&port)
            .map(|j| {
                j.iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn send(&mut self, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let (port, path) = split_url(url);
        self.visited
            .push(format!("{method} {}", url.split('?').next().unwrap()));
        let cookie = self.cookie_header(port);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("cookie", &cookie));
        }
        all.push(("sec-fetch-site", "same-origin"));
        let r = http::request(port, method, &path, &all, body);
        self.remember(port, &r);
        r
    }

    /// GET `url`, following redirects; the first non-redirect answer and its URL.
    fn navigate(&mut self, url: &str) -> (String, Response) {
        let mut url = url.to_string();
        for _ in 0..10 {
            let r = self.send("GET", &url, &[], b"");
            if !(300..400).contains(&r.status) {
                return (url, r);
            }
            url = r
                .header("location")
                .unwrap_or_else(|| panic!("redirect without Location from {url}"))
                .to_string();
        }
        panic!("too many redirects: {:?}", self.visited)
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn make_run_prints_a_url_that_ends_in_a_signed_in_mcp_call() {
    let mut demo = Demo::start();
    let client = demo.port("DEMO_CLIENT_PORT");
    let facade = demo.port("DEMO_FACADE_PORT");
    let url = format!("http://127.0.0.1:{client}/");
    let line = demo.wait_for_line("in a browser", Duration::from_secs(240));
    assert!(line.contains(&format!("open {url} in a browser")), "{line}");

    // The plain JWT listener still answers as before.
    let plain = demo.port("DEMO_LISTEN_PORT");
    let r = http::request(
        plain,
        "POST",
        "/mcp",
        &[("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    let prm = http::get(plain, "/.well-known/oauth-protected-resource");
    assert_eq!(prm.status, 200);
    assert_eq!(
        prm.json()["authorization_servers"][0],
        format!("http://127.0.0.1:{}", demo.port("DEMO_IDP_PORT"))
    );

    // The browser: the demo client sends it to the façade's consent page.
    let mut b = Browser::default();
    let (at, page) = b.navigate(&url);
    assert!(
        at.starts_with(&format!("http://127.0.0.1:{facade}/authorize?")),
        "{at}: {} {}",
        page.status,
        page.text()
    );
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("approve"), "{html}");

    // Approve: the façade → the dev IdP (Entra mode) → the façade's callback → the demo
    // client's callback, which shows the tool's result.
    let body = format!(
        "request={}&csrf={}&action=approve",
        enc(&hidden(&html, "request")),
        enc(&hidden(&html, "csrf"))
    );
    let origin = format!("http://127.0.0.1:{facade}");
    let approved = b.send(
        "POST",
        &format!("{origin}/consent"),
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("origin", &origin),
        ],
        body.as_bytes(),
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    let to_idp = approved.header("location").unwrap().to_string();
    assert!(
        to_idp.starts_with(&format!(
            "http://127.0.0.1:{}/authorize?",
            demo.port("DEMO_ENTRA_IDP_PORT")
        )),
        "{to_idp}"
    );
    let (done_at, done) = b.navigate(&to_idp);
    let text = done.text();
    assert!(
        done_at.starts_with(&format!("http://127.0.0.1:{client}/callback?")),
        "{done_at}: {text}\nvisited: {:?}",
        b.visited
    );
    assert!(
        b.visited
            .contains(&format!("GET http://127.0.0.1:{facade}/auth/callback")),
        "{:?}",
        b.visited
    );
    assert_eq!(done.status, 200, "{text}\n{}", demo.output());
    assert!(text.contains("<dd id=\"add-result\">5</dd>"), "{text}");
    assert!(
        text.contains("<dd id=\"tools\">add, headers, subtract, whoami</dd>"),
        "{text}"
    );
    // whoami: the subject the filter forwarded (the dev IdP's pairwise `sub`).
    assert!(!text.contains("no x-mcp-subject"), "{text}");

    // The façade answered /token; no token shows on the console.
    demo.wait_for_line("access façade POST /token 200", Duration::from_secs(15));
    let out = demo.output();
    // (A JWT's header starts with `eyJ`, the base64url of `{"`.)
    assert!(!out.contains("eyJ"), "{out}");

    // Ctrl-C (SIGTERM here) stops everything.
    assert!(demo.stop(), "run-demo.sh did not exit");
    for (name, port) in &demo.ports {
        assert!(!port_open(*port), "{name} :{port} still open after stop");
    }
}
