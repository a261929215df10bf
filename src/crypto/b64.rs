//! base64url decoders: strict for tokens (RFC 7515 §2: no padding, URL alphabet only),
//! tolerant of padding for JWK members (some IdPs pad them).

use base64::alphabet::{STANDARD, URL_SAFE};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

const STRICT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

const STANDARD_PADDED: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes one JWS segment. Padding, `+`, `/`, whitespace and non-canonical trailing
/// bits are all errors.
pub fn decode_segment(s: &str) -> Option<Vec<u8>> {
    STRICT.decode(s).ok()
}

/// Decodes a JWK member such as `n`, `x`; padding is tolerated.
pub fn decode_member(s: &str) -> Option<Vec<u8>> {
    LENIENT.decode(s).ok()
}

/// Decodes standard-alphabet base64 (`+`, `/`; padding optional), as in the MCP
/// `=?base64?…?=` header value form.
pub fn decode_standard(s: &str) -> Option<Vec<u8>> {
    STANDARD_PADDED.decode(s).ok()
}

/// Encodes without padding (used by tests and tools).
pub fn encode(bytes: &[u8]) -> String {
    STRICT.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_refuses_padding_and_std_alphabet() {
        assert_eq!(decode_segment("YQ"), Some(b"a".to_vec()));
        assert_eq!(decode_segment("YQ=="), None);
        assert_eq!(decode_segment("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_segment("+/8"), None);
        assert_eq!(decode_segment("Y Q"), None);
        // "YR" has non-zero trailing bits: not canonical.
        assert_eq!(decode_segment("YR"), None);
    }

    #[test]
    fn standard_alphabet_with_or_without_padding() {
        assert_eq!(decode_standard("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_standard("+/8"), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_standard("-_8"), None);
    }

    #[test]
    fn lenient_accepts_padding() {
        assert_eq!(decode_member("YQ=="), Some(b"a".to_vec()));
        assert_eq!(decode_member("YQ"), Some(b"a".to_vec()));
    }
}
