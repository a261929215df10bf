//! The HTML pages the façade shows a person (consent, and errors that must not be
//! redirected), with the headers that keep them out of frames, caches and referrers. No
//! `form-action` rule: it would block the consent form's redirect chain to custom-scheme
//! and https client callbacks.

use super::response::Response;

/// CSP for every page: nothing loads, inline style only, never framed.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#222}code{word-break:break-all}button{font-size:1em;padding:.5em 1.5em;margin-right:1em}";

/// HTML-escapes text for element content and double-quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Adds the page headers to a response. `Referrer-Policy: same-origin`, not `no-referrer`:
/// under `no-referrer` a browser sends `Origin: null` with the consent form's POST (Fetch,
/// "serializing a request origin"), which the consent step's Origin check refuses — Chromium
/// did (tests/facade_clients.rs). `same-origin` still sends nothing to other sites.
pub fn protect(r: Response) -> Response {
    r.header("x-frame-options", "DENY")
        .header("content-security-policy", CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "same-origin")
        .header("cache-control", "no-store")
}

/// A full page; `title` is text (escaped here), `body_html` is already HTML.
pub fn page(status: u16, title: &str, body_html: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>{body_html}</body></html>"
    );
    let mut r = protect(Response::new(status)).header("content-type", "text/html; charset=utf-8");
    r.body = html.into_bytes();
    r
}

/// An error page with one paragraph of text.
pub fn error(status: u16, title: &str, message: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_protects() {
        assert_eq!(
            escape("<a href=\"x\" onclick='y'>&\u{7}"),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;\u{FFFD}"
        );
        let r = error(400, "Bad <request>", "<script>alert(1)</script>");
        let body = String::from_utf8(r.body.clone()).unwrap();
        assert!(!body.contains("<script>"));
        assert!(body.contains("Bad &lt;request&gt;"));
        assert_eq!(r.get_header("x-frame-options"), Some("DENY"));
        let csp = r.get_header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("form-action"));
        assert_eq!(r.get_header("cache-control"), Some("no-store"));
        assert_eq!(r.get_header("referrer-policy"), Some("same-origin"));
    }
}
