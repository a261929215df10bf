//! A stand-in for the protected backend: records every request and answers
//! `200 {"ok":true,"path":...}`.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::server::ServerThread;

/// One request as the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// e.g. `"POST"`.
    pub method: String,
    /// Path plus query, e.g. `"/mcp?x=1"`.
    pub path: String,
    /// All headers, names lower-cased, duplicates kept (grouped by name).
    pub headers: Vec<(String, String)>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `true` if header `name` is present.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// Body as (lossy) UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON.
    pub fn body_json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }
}

#[derive(Clone)]
struct Canned {
    status: u16,
    body: Option<String>,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<RecordedRequest>>,
    canned: Mutex<Option<Canned>>,
}

/// The recording backend. Dropping it stops the server.
pub struct Recorder {
    shared: Arc<Shared>,
    server: ServerThread,
}

async fn record(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    let recorded = RecordedRequest {
        method: method.as_str().to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    lock(&shared.requests).push(recorded);
    let canned = lock(&shared.canned).clone();
    match canned {
        None => axum::Json(json!({"ok": true, "path": path})).into_response(),
        Some(c) => {
            let status = StatusCode::from_u16(c.status).unwrap_or(StatusCode::OK);
            let body = c
                .body
                .unwrap_or_else(|| json!({"ok": true, "path": path}).to_string());
            (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response()
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    /// Starts on an OS-chosen port. Panics if it cannot bind.
    pub fn start() -> Recorder {
        match Recorder::start_on(0) {
            Ok(r) => r,
            #[allow(clippy::panic)]
            Err(e) => panic!("recorder: cannot start: {e}"),
        }
    }

    /// Starts on `127.0.0.1:port` (0 = OS-chosen).
    pub fn start_on(port: u16) -> io::Result<Recorder> {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let server = ServerThread::spawn("recorder", port, move || {
            axum::Router::new().fallback(record).with_state(s)
        })?;
        Ok(Recorder { shared, server })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Everything received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The most recent request.
    pub fn last(&self) -> Option<RecordedRequest> {
        lock(&self.shared.requests).last().cloned()
    }

    /// Forgets all recorded requests.
    pub fn clear(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Number of requests received.
    pub fn count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until at least `n` requests were received; `false` on timeout.
    pub fn wait_for_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Answers every later request with `status` and `body` (JSON content type;
    /// `None` keeps the default `{"ok":true,"path":...}` body).
    pub fn set_response(&self, status: u16, body: Option<&str>) {
        *lock(&self.shared.canned) = Some(Canned {
            status,
            body: body.map(str::to_string),
        });
    }

    /// Back to the default 200 answer.
    pub fn reset_response(&self) {
        *lock(&self.shared.canned) = None;
    }

    /// Blocks forever serving requests (for the binary).
    pub fn wait(self) {
        let Recorder { server, shared } = self;
        let _keep = shared;
        server.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http;

    #[test]
    fn records_requests_with_duplicate_headers_and_body() {
        let rec = Recorder::start();
        assert_eq!(rec.count(), 0);
        let url = format!("{}/mcp/tools?x=1&y=2", rec.base_url());
        let resp = http::request(
            "POST",
            &url,
            &[
                ("Content-Type", "application/json"),
                ("X-Dup", "one"),
                ("X-Dup", "two"),
                ("X-MCP-Subject", "alice"),
            ],
            br#"{"hello":"world"}"#,
        )
        .unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert_eq!(
            resp.json().unwrap(),
            json!({"ok": true, "path": "/mcp/tools?x=1&y=2"})
        );

        assert_eq!(rec.count(), 1);
        let r = rec.last().unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/mcp/tools?x=1&y=2");
        assert_eq!(r.header_all("x-dup"), ["one", "two"]);
        assert_eq!(r.header("X-Mcp-Subject"), Some("alice"));
        assert!(!r.has_header("authorization"));
        assert_eq!(r.body_json().unwrap(), json!({"hello": "world"}));

        http::get(&format!("{}/", rec.base_url())).unwrap();
        assert!(rec.wait_for_count(2, Duration::from_secs(1)));
        assert_eq!(rec.requests()[1].method, "GET");
        rec.clear();
        assert_eq!(rec.count(), 0);
    }

    #[test]
    fn canned_responses() {
        let rec = Recorder::start();
        rec.set_response(503, Some(r#"{"down":true}"#));
        let resp = http::get(&format!("{}/x", rec.base_url())).unwrap();
        assert_eq!(resp.status, 503);
        assert_eq!(resp.json().unwrap(), json!({"down": true}));
        rec.reset_response();
        let resp = http::get(&format!("{}/x", rec.base_url())).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(rec.count(), 2);
    }

    #[test]
    fn drop_stops_the_server() {
        let rec = Recorder::start();
        let port = rec.port();
        drop(rec);
        assert!(http::get(&format!("http://127.0.0.1:{port}/")).is_err());
    }
}
