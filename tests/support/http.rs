//! A tiny raw HTTP/1.1 client over `std::net::TcpStream`.
//!
//! Tests send exactly the bytes they want (duplicate headers, odd casing, huge headers, no
//! `Host`), so nothing here normalizes or merges headers. One request per connection.
//!
//! What the client adds on its own, each only if the caller did not pass that header
//! (names compared case-insensitively):
//! - `Host: 127.0.0.1:<port>`
//! - `Connection: close`
//! - `Content-Length: <len>` when the body is non-empty or the method is POST/PUT/PATCH,
//!   unless the caller passed `Content-Length` or `Transfer-Encoding`.
//!
//! Use [`raw`] to send a request byte for byte with nothing added.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Connect, read and write timeout for every request.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed HTTP/1.1 response. Header names keep the casing the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header with this name (case-insensitive), in the order received.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON. Panics (with the body in the message) if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!(
                "response body is not JSON ({e}); status {}, body: {:?}",
                self.status,
                self.text()
            ),
        }
    }
}

/// Sends one request to `127.0.0.1:port` and reads the whole response. Panics on I/O
/// errors or a malformed response (these are test failures, with a message saying what).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    match try_request(port, method, path, headers, body) {
        Ok(r) => r,
        Err(e) => panic!("HTTP {method} {path} to 127.0.0.1:{port} failed: {e}"),
    }
}

/// `GET path` with no extra headers.
pub fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, &[], b"")
}

/// Like [`request`], returning I/O errors instead of panicking.
pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let bytes = build_request(port, method, path, headers, body);
    exchange(port, &bytes, method.eq_ignore_ascii_case("HEAD"))
}

/// Sends `bytes` exactly as given (the caller writes the request line, headers and body)
/// and reads one response. Panics on I/O errors.
pub fn raw(port: u16, bytes: &[u8]) -> Response {
    match try_raw(port, bytes) {
        Ok(r) => r,
        Err(e) => panic!("raw HTTP request to 127.0.0.1:{port} failed: {e}"),
    }
}

/// Like [`raw`], returning I/O errors instead of panicking.
pub fn try_raw(port: u16, bytes: &[u8]) -> io::Result<Response> {
    exchange(port, bytes, bytes.starts_with(b"HEAD "))
}

/// The request bytes [`request`] would send.
pub fn build_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    let wants_length = !body.is_empty()
        || ["POST", "PUT", "PATCH"]
            .iter()
            .any(|m| method.eq_ignore_ascii_case(m));
    if wants_length && !has("content-length") && !has("transfer-encoding") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn exchange(port: u16, bytes: &[u8], head_request: bool) -> io::Result<Response> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.set_nodelay(true)?;
    // A server may answer (and close) before reading a large body; a failed write is then
    // not an error as long as a response can still be read.
    let write_result = stream.write_all(bytes).and_then(|_| stream.flush());
    let mut reader = BufReader::new(stream);
    match read_response(&mut reader, head_request) {
        Ok(r) => Ok(r),
        Err(read_err) => match write_result {
            Err(write_err) => Err(io::Error::new(
                write_err.kind(),
                format!("writing the request: {write_err}; then reading: {read_err}"),
            )),
            Ok(()) => Err(read_err),
        },
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line, without the terminator.
fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before the response was complete",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad("non-UTF-8 bytes in the response head"))
}

/// Reads a response from `r`: status line, headers and body (Content-Length, chunked, or
/// until EOF). Interim 1xx responses (other than 101) are skipped.
pub fn read_response<R: BufRead>(r: &mut R, head_request: bool) -> io::Result<Response> {
    loop {
        let status_line = read_line(r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("not an HTTP/1.x status line: {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line: {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line: {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(resp);
        }
        let chunked = resp
            .header_all("transfer-encoding")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad Content-Length: {len:?}")))?;
            let mut body = vec![0u8; len];
            r.read_exact(&mut body)?;
            resp.body = body;
        } else {
            r.read_to_end(&mut resp.body)?;
        }
        return Ok(resp);
    }
}

fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size line: {line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(body.get_mut(start..).unwrap_or_default())?;
        if !read_line(r)?.is_empty() {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}
