//! Where the token comes from: exactly one `Authorization: Bearer <token>` header.
//!
//! Tokens in the query string are refused outright (RFC 6750 §2.3 is a MAY, the MCP spec
//! says clients MUST NOT, and such URLs end up in logs). Several `Authorization` headers
//! are ambiguous and refused rather than guessed at.

use std::fmt;

/// A request whose credentials are malformed at the HTTP level (→ 400/401).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtractError {
    /// More than one `Authorization` header.
    SeveralAuthorizationHeaders(usize),
    /// `access_token` in the query string.
    TokenInQuery,
    /// `Authorization: Bearer` with nothing after it.
    EmptyToken,
    /// Whitespace or other characters inside the token.
    MalformedHeader,
    /// The token is longer than `max_token_bytes`.
    TooLarge { len: usize, limit: usize },
}

impl ExtractError {
    /// RFC 6750 §3.1: malformed requests are `invalid_request` (400); a token we cannot
    /// use is `invalid_token` (401).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            ExtractError::SeveralAuthorizationHeaders(_) | ExtractError::TokenInQuery
        )
    }
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractError::SeveralAuthorizationHeaders(n) => {
                write!(f, "{n} Authorization headers; send exactly one")
            }
            ExtractError::TokenInQuery => write!(
                f,
                "access tokens in the query string are not accepted; send an Authorization: Bearer header"
            ),
            ExtractError::EmptyToken => write!(f, "the Bearer token is empty"),
            ExtractError::MalformedHeader => {
                write!(f, "the Authorization header is not \"Bearer <token>\"")
            }
            ExtractError::TooLarge { len, limit } => {
                write!(f, "the token is {len} bytes, over the {limit}-byte limit")
            }
        }
    }
}

impl std::error::Error for ExtractError {}

/// A request's `Authorization` header values as extraction needs them: the first, and
/// how many there were (more than one is refused, so the others are never read). No
/// vector: it is filled on every request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub first: Option<&'a str>,
    pub count: usize,
}

impl<'a> Authorization<'a> {
    pub fn from_values(values: &[&'a str]) -> Authorization<'a> {
        Authorization {
            first: values.first().copied(),
            count: values.len(),
        }
    }

    /// Counts one more value (`first` stays the first).
    pub fn push(&mut self, value: &'a str) {
        if self.first.is_none() {
            self.first = Some(value);
        }
        self.count += 1;
    }
}

/// Finds the bearer token, all but its character check ([`check_token_chars`]; both:
/// [`bearer_token`]). `authorization` stands for every `Authorization` header value of the
/// request; `path` is the full `:path` (with query). `Ok(None)`: no bearer token.
pub fn bearer_credential<'a>(
    authorization: Authorization<'a>,
    path: &str,
    max_token_bytes: usize,
) -> Result<Option<&'a str>, ExtractError> {
    if query_has_token(path) {
        return Err(ExtractError::TokenInQuery);
    }
    let value = match authorization {
        Authorization { count: 0, .. } | Authorization { first: None, .. } => return Ok(None),
        Authorization {
            count: 1,
            first: Some(one),
        } => one,
        Authorization { count, .. } => {
            return Err(ExtractError::SeveralAuthorizationHeaders(count))
        }
    };
    // Envoy folds repeated Authorization headers into one value joined by commas; a comma
    // never occurs in a single credential of any scheme we accept. It is looked for only
    // where the token's own character check (`check_token_chars`) cannot see it.
    let several = || ExtractError::SeveralAuthorizationHeaders(value.split(',').count());
    let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match trimmed.split_once([' ', '\t']) {
        Some((s, r)) => (s, r),
        None => (trimmed, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        if value.contains(',') {
            return Err(several());
        }
        // Another scheme (Basic, DPoP, …) is not a bearer token: treated as missing.
        return Ok(None);
    }
    let token = rest.trim_matches(|c| c == ' ' || c == '\t');
    if token.is_empty() {
        return Err(ExtractError::EmptyToken);
    }
    if token.len() > max_token_bytes {
        if token.contains(',') {
            return Err(several());
        }
        return Err(ExtractError::TooLarge {
            len: token.len(),
            limit: max_token_bytes,
        });
    }
    Ok(Some(token))
}

/// [`bearer_credential`], then [`check_token_chars`]: the whole extraction.
pub fn bearer_token<'a>(
    authorization: &[&'a str],
    path: &str,
    max_token_bytes: usize,
) -> Result<Option<&'a str>, ExtractError> {
    let token = bearer_credential(
        Authorization::from_values(authorization),
        path,
        max_token_bytes,
    )?;
    if let Some(t) = token {
        check_token_chars(t)?;
    }
    Ok(token)
}

/// The character check [`bearer_credential`] leaves out: every byte of `token` a b64token
/// character. A token the verified-token cache holds passed it before it was verified, so a
/// decision runs it only on a cache miss (it reads every byte: the dearest part of
/// extraction for a token of a kilobyte or more).
pub fn check_token_chars(token: &str) -> Result<(), ExtractError> {
    if is_b64token(token.as_bytes()) {
        return Ok(());
    }
    // Envoy folds repeated Authorization headers into one value joined by commas.
    if token.contains(',') {
        return Err(ExtractError::SeveralAuthorizationHeaders(
            token.split(',').count(),
        ));
    }
    Err(ExtractError::MalformedHeader)
}

/// Whether `b` is an RFC 6750 b64token character: ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" / "=". (The grammar allows "=" only at the end; JWTs never carry it, and a
/// token that misplaces it fails its signature check, so it is accepted anywhere here.)
/// Branch-free, so that the loop below compiles to SIMD compares.
#[inline(always)]
fn b64token_char(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter
        | digit
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
        | (b == b'=')
}

/// Every byte a b64token character. A token is checked on every request, cached or not,
/// and is often over a kilobyte: 16 bytes per step (SIMD128 compares in the Wasm build).
pub fn is_b64token(token: &[u8]) -> bool {
    let mut blocks = token.chunks_exact(16);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 16]>::try_from(block) else {
            return false;
        };
        if !b64token_block(block) {
            return false;
        }
    }
    blocks.remainder().iter().all(|&b| b64token_char(b))
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
#[inline(always)]
fn b64token_block(block: &[u8; 16]) -> bool {
    block.iter().fold(true, |ok, &b| ok & b64token_char(b))
}

/// The same test on 16 lanes: ranges `-./0-9`, `A-Z`, `a-z` and the four single
/// characters `+ = _ ~`.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn b64token_block(block: &[u8; 16]) -> bool {
    use core::arch::wasm32::{
        u8x16_all_true, u8x16_eq, u8x16_ge, u8x16_le, u8x16_splat, v128_and, v128_load, v128_or,
    };
    // SAFETY: `block` refers to 16 readable bytes; v128.load has no alignment requirement.
    let v = unsafe { v128_load(block.as_ptr().cast()) };
    let range =
        |lo: u8, hi: u8| v128_and(u8x16_ge(v, u8x16_splat(lo)), u8x16_le(v, u8x16_splat(hi)));
    let is = |c: u8| u8x16_eq(v, u8x16_splat(c));
    let ok = v128_or(
        v128_or(range(b'-', b'9'), range(b'A', b'Z')),
        v128_or(
            v128_or(range(b'a', b'z'), is(b'+')),
            v128_or(v128_or(is(b'='), is(b'_')), is(b'~')),
        ),
    );
    u8x16_all_true(ok)
}

/// Whether the query string carries an `access_token` parameter (percent-decoded name).
fn query_has_token(path: &str) -> bool {
    let Some((_, query)) = path.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or("");
    query.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        percent_decode_lower(name) == "access_token"
    })
}

fn percent_decode_lower(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 8192;

    #[test]
    fn b64token_blocks_find_a_bad_byte_anywhere() {
        for len in 0..48 {
            let good: Vec<u8> = (0..len).map(|i| b"aZ09-._~+/="[i % 11]).collect();
            assert!(is_b64token(&good), "len {len}");
            for at in 0..len {
                for bad in [b' ', b',', b'"', 0x80, 0xff, b'@', b'[', b'`', b'{', 0] {
                    let mut t = good.clone();
                    t[at] = bad;
                    assert!(!is_b64token(&t), "len {len}, {bad:#04x} at {at}");
                }
            }
        }
    }

    #[test]
    fn commas_mean_several_headers_wherever_they_are() {
        for v in [
            "Bearer a,b",
            "Bearer a, Bearer b",
            "Basic x, Bearer y",
            "Bearer a,b c",
            " Bearer a ,b ",
        ] {
            assert_eq!(
                bearer_token(&[v], "/", MAX),
                Err(ExtractError::SeveralAuthorizationHeaders(
                    v.split(',').count()
                )),
                "{v:?}"
            );
        }
        let long = format!("Bearer {},b", "a".repeat(MAX));
        assert_eq!(
            bearer_token(&[&long], "/", MAX),
            Err(ExtractError::SeveralAuthorizationHeaders(2))
        );
        assert_eq!(bearer_token(&["Basic x"], "/", MAX), Ok(None));
    }

    #[test]
    fn b64token_table_is_the_rfc_6750_set() {
        for b in 0..=255u8 {
            let want = matches!(b, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=');
            assert_eq!(is_b64token(&[b]), want, "byte {b:#04x}");
            let token = [b'a', b, b'z'];
            assert_eq!(
                bearer_token(
                    &[&format!("Bearer {}", String::from_utf8_lossy(&token))],
                    "/",
                    MAX
                )
                .is_ok(),
                want,
                "byte {b:#04x} inside a token"
            );
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for h in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER  abc.def.ghi ",
        ] {
            assert_eq!(
                bearer_token(&[h], "/mcp", MAX),
                Ok(Some("abc.def.ghi")),
                "{h}"
            );
        }
    }

    #[test]
    fn no_header_or_other_scheme_is_missing() {
        assert_eq!(bearer_token(&[], "/mcp", MAX), Ok(None));
        assert_eq!(bearer_token(&["Basic dXNlcjpwYXNz"], "/mcp", MAX), Ok(None));
        assert_eq!(bearer_token(&["Bearerabc"], "/mcp", MAX), Ok(None));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            bearer_token(&["Bearer a", "Bearer b"], "/mcp", MAX),
            Err(ExtractError::SeveralAuthorizationHeaders(2))
        );
        assert_eq!(
            bearer_token(&["Bearer a,Bearer b"], "/mcp", MAX),
            Err(ExtractError::SeveralAuthorizationHeaders(2))
        );
        assert_eq!(
            bearer_token(&["Bearer a"], "/mcp?x=1&access_token=abc", MAX),
            Err(ExtractError::TokenInQuery)
        );
        assert_eq!(
            bearer_token(&[], "/mcp?access%5Ftoken=abc", MAX),
            Err(ExtractError::TokenInQuery)
        );
        assert_eq!(
            bearer_token(&[], "/mcp?ACCESS_TOKEN", MAX),
            Err(ExtractError::TokenInQuery)
        );
        assert_eq!(bearer_token(&[], "/mcp?my_access_token=1", MAX), Ok(None));
        assert_eq!(
            bearer_token(&["Bearer "], "/mcp", MAX),
            Err(ExtractError::EmptyToken)
        );
        assert_eq!(
            bearer_token(&["Bearer a b"], "/mcp", MAX),
            Err(ExtractError::MalformedHeader)
        );
        assert_eq!(
            bearer_token(&["Bearer a\"b"], "/mcp", MAX),
            Err(ExtractError::MalformedHeader)
        );
        let big = format!("Bearer {}", "a".repeat(MAX + 1));
        assert_eq!(
            bearer_token(&[big.as_str()], "/mcp", MAX),
            Err(ExtractError::TooLarge {
                len: MAX + 1,
                limit: MAX
            })
        );
        assert!(ExtractError::TokenInQuery.is_invalid_request());
        assert!(!ExtractError::EmptyToken.is_invalid_request());
    }
}
