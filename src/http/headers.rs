//! A request's headers as the host hands them over: one serialized buffer, read in place.
//! (Plain Rust: `filter/host.rs` makes the host call and passes the buffer here.)
//!
//! The SDK's `get_http_request_headers` copies every name and value into its own `String`
//! (and we copied the values once more to make them valid UTF-8): three allocations per
//! header on every request. Here the host's buffer is kept whole and the pairs are spans
//! into it, so reading the headers costs the host call and one small vector.
//!
//! Layout (proxy-wasm ABI): `u32` pair count, then per pair `u32` name length and `u32` value
//! length, then per pair the name, a NUL, the value, a NUL. All integers little-endian.

/// The request headers: names as Envoy gives them (lowercase in HTTP/2 and after Envoy's
/// codec), values decoded lossily when they are not UTF-8 (never a panic).
#[derive(Clone, Debug, Default)]
pub struct Headers {
    text: String,
    /// Per pair: name start, name end, value start, value end (byte offsets into `text`).
    spans: Vec<[usize; 4]>,
}

impl Headers {
    /// Reads the serialized map; a buffer that does not follow the layout gives no headers
    /// (a request with no `:path` or token is refused downstream, never let through).
    pub fn parse(buf: Vec<u8>) -> Headers {
        let Some(spans) = spans(&buf) else {
            return Headers::default();
        };
        if crate::util::bytes::is_ascii(&buf) {
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8. (Nearly every
            // request: `from_utf8` would check the same bytes four at a time in Wasm.)
            let text = unsafe { String::from_utf8_unchecked(buf) };
            return Headers { text, spans };
        }
        match String::from_utf8(buf) {
            Ok(text) => Headers { text, spans },
            Err(e) => Headers::lossy(e.as_bytes(), &spans),
        }
    }

    /// Rebuilds the buffer with invalid UTF-8 replaced (U+FFFD changes lengths, so the
    /// spans are computed again). Rare: Envoy's codecs refuse most such headers.
    fn lossy(buf: &[u8], spans: &[[usize; 4]]) -> Headers {
        let mut out = Headers::default();
        for &[ks, ke, vs, ve] in spans {
            let (Some(k), Some(v)) = (buf.get(ks..ke), buf.get(vs..ve)) else {
                return Headers::default();
            };
            out.push(&String::from_utf8_lossy(k), &String::from_utf8_lossy(v));
        }
        out
    }

    /// Builds a header list by hand (tests, tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        let mut out = Headers::default();
        for (k, v) in pairs {
            out.push(k, v);
        }
        out
    }

    fn push(&mut self, name: &str, value: &str) {
        let ks = self.text.len();
        self.text.push_str(name);
        let ke = self.text.len();
        self.text.push('\0');
        let vs = self.text.len();
        self.text.push_str(value);
        let ve = self.text.len();
        self.text.push('\0');
        self.spans.push([ks, ke, vs, ve]);
    }

    /// Every (name, value) pair in the order the host gave them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .filter_map(|&[ks, ke, vs, ve]| Some((self.text.get(ks..ke)?, self.text.get(vs..ve)?)))
    }

    /// The first value of `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        let &[_, _, vs, ve] = self.spans.iter().find(|s| self.named(s, name))?;
        self.text.get(vs..ve)
    }

    /// Every value of `name` (ASCII case-insensitive).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.spans
            .iter()
            .filter(move |s| self.named(s, name))
            .filter_map(move |&[_, _, vs, ve]| self.text.get(vs..ve))
    }

    /// Whether the pair at `span` is called `name`: names only, lengths first, so most
    /// pairs cost one compare and only a match's value is sliced.
    fn named(&self, &[ks, ke, _, _]: &[usize; 4], name: &str) -> bool {
        ke.wrapping_sub(ks) == name.len()
            && self
                .text
                .as_bytes()
                .get(ks..ke)
                .is_some_and(|k| crate::util::bytes::same_name(k, name.as_bytes()))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

/// The spans of every pair, or `None` if the buffer does not follow the layout exactly.
fn spans(buf: &[u8]) -> Option<Vec<[usize; 4]>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(buf, 0)?;
    // Each pair takes at least 8 bytes of sizes and 2 NULs: a count the buffer cannot
    // hold is refused before anything is allocated for it.
    if count > buf.len() / 10 {
        return None;
    }
    let mut spans = Vec::with_capacity(count);
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    for i in 0..count {
        let sizes = 4 + i * 8;
        let (klen, vlen) = (read_u32(buf, sizes)?, read_u32(buf, sizes + 4)?);
        let ke = data.checked_add(klen)?;
        let vs = ke.checked_add(1)?;
        let ve = vs.checked_add(vlen)?;
        if buf.get(ke) != Some(&0) || buf.get(ve) != Some(&0) {
            return None;
        }
        spans.push([data, ke, vs, ve]);
        data = ve.checked_add(1)?;
    }
    (data == buf.len()).then_some(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(*k);
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_pairs_in_place_and_looks_up_case_insensitively() {
        let h = Headers::parse(serialize(&[
            (b":path", b"/mcp"),
            (b"authorization", b"Bearer a"),
            (b"Authorization", b"Bearer b"),
            (b"empty", b""),
        ]));
        assert_eq!(h.len(), 4);
        assert_eq!(h.get(":PATH"), Some("/mcp"));
        assert_eq!(
            h.all("authorization").collect::<Vec<_>>(),
            ["Bearer a", "Bearer b"]
        );
        assert_eq!(h.get("empty"), Some(""));
        assert!(!h.contains("origin"));
        let pairs: Vec<_> = h.iter().collect();
        assert_eq!(pairs.first(), Some(&(":path", "/mcp")));
    }

    #[test]
    fn invalid_utf8_values_are_replaced_not_fatal() {
        let h = Headers::parse(serialize(&[(b"x-a", b"caf\xe9"), (b":path", b"/mcp")]));
        assert_eq!(h.get("x-a"), Some("caf\u{fffd}"));
        assert_eq!(h.get(":path"), Some("/mcp"));
    }

    #[test]
    fn malformed_buffers_give_no_headers() {
        let good = serialize(&[(b"a", b"b"), (b"c", b"d")]);
        assert_eq!(Headers::parse(good.clone()).len(), 2);
        assert!(Headers::parse(Vec::new()).is_empty());
        for cut in 1..good.len() {
            let mut short = good.clone();
            short.truncate(cut);
            assert!(Headers::parse(short).is_empty(), "truncated at {cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(Headers::parse(long).is_empty(), "trailing byte");
        let mut no_nul = good.clone();
        if let Some(b) = no_nul.get_mut(4 + 16 + 1) {
            *b = b'x';
        }
        assert!(Headers::parse(no_nul).is_empty(), "missing NUL");
        let mut huge = good;
        huge.splice(0..4, u32::MAX.to_le_bytes());
        assert!(Headers::parse(huge).is_empty(), "count too large");
        let mut sizes = serialize(&[(b"a", b"b")]);
        sizes.splice(4..8, u32::MAX.to_le_bytes());
        assert!(Headers::parse(sizes).is_empty(), "name size too large");
    }

    #[test]
    fn built_headers_read_back() {
        let h = Headers::from_pairs([(":method", "GET"), ("origin", "https://a.example")]);
        assert_eq!(h.get(":method"), Some("GET"));
        assert_eq!(h.get("Origin"), Some("https://a.example"));
    }
}
