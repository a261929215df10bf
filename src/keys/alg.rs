//! The JWS algorithms (RFC 7518) this filter accepts (which key fits each: `jwks.rs`).
//!
//! `none` and the HMAC family are not representable here on purpose: a JWKS holds public
//! keys, and an HMAC "verified" with public key bytes is the classic key-confusion forgery.

use std::fmt;

use crate::util::text::printable;

/// Smallest RSA modulus accepted (RFC 7518 §3.3 requires at least 2048 bits).
pub const MIN_RSA_BITS: usize = 2048;

/// A JWS `alg` value the filter can verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    EdDsa,
}

/// Why an `alg` header value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlgError {
    /// `none` in any letter case.
    None,
    /// HS256/384/512: symmetric, never valid against a JWKS.
    Hmac(String),
    /// Anything else we do not implement.
    Unknown(String),
}

impl fmt::Display for AlgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AlgError::None => write!(f, "unsigned tokens (alg \"none\") are not accepted"),
            AlgError::Hmac(a) => write!(f, "symmetric algorithm {a} is not accepted"),
            AlgError::Unknown(a) => write!(f, "unsupported algorithm {a}"),
        }
    }
}

impl Alg {
    pub const ALL: [Alg; 8] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::EdDsa,
    ];

    /// Parses a header or config `alg` value. Exact, case-sensitive (RFC 7515 §4.1.1).
    pub fn parse(name: &str) -> Result<Alg, AlgError> {
        if name.eq_ignore_ascii_case("none") {
            return Err(AlgError::None);
        }
        for alg in Alg::ALL {
            if alg.name() == name {
                return Ok(alg);
            }
        }
        if name.len() >= 2 && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("hs")) {
            return Err(AlgError::Hmac(printable(name)));
        }
        Err(AlgError::Unknown(printable(name)))
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    /// RS*/PS* (verified by `rsa_verify.rs`).
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
        )
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_none_and_hmac_in_any_case() {
        assert_eq!(Alg::parse("none"), Err(AlgError::None));
        assert_eq!(Alg::parse("NoNe"), Err(AlgError::None));
        assert!(matches!(Alg::parse("HS256"), Err(AlgError::Hmac(_))));
        assert!(matches!(Alg::parse("hs512"), Err(AlgError::Hmac(_))));
        assert!(matches!(Alg::parse("rs256"), Err(AlgError::Unknown(_))));
        assert!(matches!(Alg::parse("ES384"), Err(AlgError::Unknown(_))));
        assert_eq!(Alg::parse("PS384"), Ok(Alg::Ps384));
        assert_eq!(Alg::parse("EdDSA"), Ok(Alg::EdDsa));
    }

    #[test]
    fn every_alg_round_trips_its_name() {
        for alg in Alg::ALL {
            assert_eq!(Alg::parse(alg.name()), Ok(alg));
        }
    }
}
