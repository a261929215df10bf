//! A tiny blocking HTTP/1.1 client (plain `http://` only) for tests and the
//! `devstack mint` command. One request per connection (`Connection: close`).

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// Default connect/read/write timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in arrival order, names lower-cased, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// Body after de-chunking.
    pub body: Vec<u8>,
}

impl HttpResponse {
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

    /// Body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }

    /// JSON-RPC messages in the body: parsed from SSE `data:` lines when the
    /// response is `text/event-stream`, else the body itself as one JSON value.
    /// Empty `data:` events (SSE priming) are skipped.
    pub fn json_messages(&self) -> Vec<Value> {
        let is_sse = self
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if is_sse {
            parse_sse_data(&self.text())
        } else {
            self.json().map(|v| vec![v]).unwrap_or_default()
        }
    }
}

/// Collects the `data:` payloads of each SSE event and parses the non-empty ones
/// as JSON (events whose data is not JSON are skipped).
pub fn parse_sse_data(stream: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut data = String::new();
    let mut flush = |data: &mut String| {
        if !data.trim().is_empty() {
            if let Ok(v) = serde_json::from_str(data) {
                out.push(v);
            }
        }
        data.clear();
    };
    for line in stream.lines() {
        if line.is_empty() {
            flush(&mut data);
        } else if let Some(rest) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        }
    }
    flush(&mut data);
    out
}

struct Url {
    host: String,
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> io::Result<Url> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unsupported URL {url:?}"),
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(bad());
    }
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let host = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(Url {
        host,
        authority: authority.to_string(),
        path,
    })
}

/// Sends one request. `headers` are sent as given (a `host` entry replaces the
/// default Host); `Content-Length` and `Connection: close` are added.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    request_with_timeout(method, url, headers, body, DEFAULT_TIMEOUT)
}

/// [`request`] with an explicit timeout for connect, each read and each write.
pub fn request_with_timeout(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<HttpResponse> {
    let u = parse_url(url)?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&u.host)?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut head = format!("{method} {} HTTP/1.1\r\n", u.path);
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {}\r\n", u.authority));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_len = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !has_len && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    stream.write_all(&msg)?;
    stream.flush()?;

    read_response(BufReader::new(stream), method == "HEAD")
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line<R: BufRead>(r: &mut R) -> io::Result<String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)?;
    if buf.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed mid-line",
        ));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn read_response<R: BufRead>(mut r: R, head_only: bool) -> io::Result<HttpResponse> {
    let mut status_line = read_line(&mut r)?;
    let mut status = parse_status(&status_line)?;
    let mut headers = read_headers(&mut r)?;
    // Skip interim 1xx responses.
    while (100..200).contains(&status) && status != 101 {
        status_line = read_line(&mut r)?;
        status = parse_status(&status_line)?;
        headers = read_headers(&mut r)?;
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if head_only || status == 204 || status == 304 {
        // no body
    } else if get("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        loop {
            let line = read_line(&mut r)?;
            let size_str = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size_str, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers until an empty line; the connection may also just close.
                while let Ok(l) = read_line(&mut r) {
                    if l.is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(&mut r)?;
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| invalid("bad content-length"))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut it = line.split_whitespace();
    match (it.next(), it.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") => {
            code.parse().map_err(|_| invalid("bad status code"))
        }
        _ => Err(invalid("bad status line")),
    }
}

fn read_headers<R: BufRead>(r: &mut R) -> io::Result<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
}

/// `GET url`.
pub fn get(url: &str) -> io::Result<HttpResponse> {
    request("GET", url, &[], b"")
}

/// `GET url` with extra headers.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    request("GET", url, headers, b"")
}

/// `POST url` with a JSON body (`Content-Type: application/json`) plus `headers`.
pub fn post_json(url: &str, body: &Value, headers: &[(&str, &str)]) -> io::Result<HttpResponse> {
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    request("POST", url, &h, body.to_string().as_bytes())
}

/// `POST url` with an `application/x-www-form-urlencoded` body built from `form`
/// (keys may repeat) plus `headers`.
pub fn post_form(
    url: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let body = form_encode(form);
    let mut h: Vec<(&str, &str)> = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    request("POST", url, &h, body.as_bytes())
}

/// `application/x-www-form-urlencoded` serialization of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let u = parse_url("http://127.0.0.1:9000/a/b?x=1").unwrap();
        assert_eq!(u.host, "127.0.0.1:9000");
        assert_eq!(u.authority, "127.0.0.1:9000");
        assert_eq!(u.path, "/a/b?x=1");
        let u = parse_url("http://localhost").unwrap();
        assert_eq!(u.host, "localhost:80");
        assert_eq!(u.path, "/");
        let u = parse_url("http://h:1?q").unwrap();
        assert_eq!(u.path, "/?q");
        assert!(parse_url("https://x").is_err());
    }

    #[test]
    fn chunked_and_sse() {
        let mut raw =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        for chunk in ["data: \n\n", "id: 1\ndata: {\"a\":", "1}\n\n"] {
            raw.extend_from_slice(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes());
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let resp = read_response(&raw[..], false).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json_messages(), vec![serde_json::json!({"a": 1})]);
    }

    #[test]
    fn content_length_and_interim() {
        let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 2\r\n\r\nhi";
        let resp = read_response(&raw[..], false).unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.header_all("X-A"), ["1", "2"]);
        assert_eq!(resp.text(), "hi");
    }
}
