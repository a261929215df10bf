//! `application/x-www-form-urlencoded` bodies and URL query strings, strictly (RFC 6749
//! §3.1: a parameter sent twice is an error; one sent without a value counts as omitted),
//! and the encoding the façade uses for the queries and forms it writes itself.

use std::borrow::Cow;

/// At most this many parameters are looked at (bounds the duplicate check).
pub const MAX_PARAMS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    /// A parameter appears more than once (its name, sanitized).
    Duplicate(String),
    /// A `%` not followed by two hex digits, or a pair with an empty name.
    BadEncoding,
    /// Decoded bytes are not UTF-8.
    NotUtf8,
    TooMany,
}

impl FormError {
    /// A description safe to put in an error body.
    pub fn describe(&self) -> String {
        match self {
            FormError::Duplicate(n) => format!("parameter {n} is repeated"),
            FormError::BadEncoding => "malformed form encoding".into(),
            FormError::NotUtf8 => "parameters must be UTF-8".into(),
            FormError::TooMany => format!("more than {MAX_PARAMS} parameters"),
        }
    }
}

/// Decoded parameters, in order, without empty values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for Params {
    // Values are codes, verifiers, tokens: only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Parses a form body or a query string (without the `?`).
pub fn parse(input: &[u8]) -> Result<Params, FormError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    // Names met so far, with or without a value.
    let mut names: Vec<String> = Vec::new();
    let mut seen = 0usize;
    for part in input.split(|b| *b == b'&') {
        if part.is_empty() {
            continue;
        }
        seen += 1;
        if seen > MAX_PARAMS {
            return Err(FormError::TooMany);
        }
        let (name, value) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (
                part.get(..i).unwrap_or(&[]),
                part.get(i + 1..).unwrap_or(&[]),
            ),
            None => (part, &[][..]),
        };
        let name = decode(name)?;
        if name.is_empty() {
            return Err(FormError::BadEncoding);
        }
        let value = decode(value)?;
        if names.contains(&name) {
            return Err(FormError::Duplicate(safe_name(&name)));
        }
        names.push(name.clone());
        // RFC 6749 §3.1: a parameter without a value is treated as omitted (but still
        // counts as sent for the duplicate check above).
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    Ok(Params { pairs })
}

fn safe_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding with `+` as space.
fn decode(raw: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = it.next().copied().and_then(hex);
                let lo = it.next().copied().and_then(hex);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(FormError::BadEncoding),
                }
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(value: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if value.bytes().all(unreserved) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 15));
        }
    }
    Cow::Owned(out)
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

/// `a=1&b=2`, each name and value encoded.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (n, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(n));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// `url` with `pairs` added to its query (`?` or `&`). A fragment is never expected here
/// (redirect URIs with one are refused), but would be cut off rather than corrupted.
pub fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let base = url.split('#').next().unwrap_or(url);
    let query = encode_pairs(pairs);
    if query.is_empty() {
        return base.to_string();
    }
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{base}{sep}{query}")
}

/// Splits a request `:path` into path and query (without `?`; empty when absent).
pub fn split_path(path: &str) -> (&str, &str) {
    match path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    }
}

/// Fuzz entry: any bytes either parse or give an error; never a panic.
pub fn fuzz_parse(input: &[u8]) -> Result<Params, FormError> {
    let params = parse(input)?;
    // Whatever parsed re-encodes and parses back to the same thing.
    let pairs: Vec<(&str, &str)> = params
        .pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let again = parse(encode_pairs(&pairs).as_bytes())?;
    if again != params {
        return Err(FormError::BadEncoding);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = parse(b"grant_type=authorization_code&code=a%2Bb+c&x=%E2%9C%93").unwrap();
        assert_eq!(p.get("grant_type"), Some("authorization_code"));
        assert_eq!(p.get("code"), Some("a+b c"));
        assert_eq!(p.get("x"), Some("\u{2713}"));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn duplicates_refused_even_with_empty_or_encoded_names() {
        assert_eq!(
            parse(b"code=a&code=b"),
            Err(FormError::Duplicate("code".into()))
        );
        assert_eq!(
            parse(b"code=a&co%64e=b"),
            Err(FormError::Duplicate("code".into()))
        );
        assert_eq!(
            parse(b"state=&state=x"),
            Err(FormError::Duplicate("state".into()))
        );
        assert_eq!(
            parse(b"state=x&state="),
            Err(FormError::Duplicate("state".into()))
        );
    }

    #[test]
    fn empty_values_are_omitted_and_empty_parts_skipped() {
        let p = parse(b"&&a=&b&c=1&").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("1"));
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn malformed() {
        assert_eq!(parse(b"a=%"), Err(FormError::BadEncoding));
        assert_eq!(parse(b"a=%4"), Err(FormError::BadEncoding));
        assert_eq!(parse(b"a=%zz"), Err(FormError::BadEncoding));
        assert_eq!(parse(b"=x"), Err(FormError::BadEncoding));
        assert_eq!(parse(b"a=%ff"), Err(FormError::NotUtf8));
        assert_eq!(parse(b"a=\xff"), Err(FormError::NotUtf8));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=1")).collect();
        assert_eq!(parse(many.join("&").as_bytes()), Err(FormError::TooMany));
        assert!(FormError::Duplicate("<x>".into())
            .describe()
            .contains("<x>"));
        assert_eq!(
            parse(b"%3Cscript%3E=1&%3Cscript%3E=2"),
            Err(FormError::Duplicate("script".into()))
        );
    }

    #[test]
    fn encoding_round_trips() {
        assert_eq!(encode("abc-._~"), "abc-._~");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        let q = encode_pairs(&[("redirect_uri", "http://127.0.0.1:33/cb?x=1"), ("s", " ")]);
        let p = parse(q.as_bytes()).unwrap();
        assert_eq!(p.get("redirect_uri"), Some("http://127.0.0.1:33/cb?x=1"));
        assert_eq!(p.get("s"), Some(" "));
        assert!(fuzz_parse(b"a=1&b=%20x+y").is_ok());
        assert!(fuzz_parse(b"a=%").is_err());
    }

    #[test]
    fn append_and_split() {
        assert_eq!(
            append_query("https://a/cb", &[("code", "x")]),
            "https://a/cb?code=x"
        );
        assert_eq!(
            append_query("https://a/cb?k=v", &[("code", "x")]),
            "https://a/cb?k=v&code=x"
        );
        assert_eq!(
            append_query("https://a/cb?", &[("c", "1")]),
            "https://a/cb?c=1"
        );
        assert_eq!(append_query("https://a/cb", &[]), "https://a/cb");
        assert_eq!(split_path("/authorize?a=1"), ("/authorize", "a=1"));
        assert_eq!(split_path("/token"), ("/token", ""));
        assert_eq!(
            format!("{:?}", parse(b"code=SECRET").unwrap()),
            "[\"code\"]"
        );
    }
}
