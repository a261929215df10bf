//! Randomness comes from the caller: the façade never reaches for an OS source itself, so
//! every function stays pure and tests can replay exact bytes. The Wasm glue implements
//! [`Random`] with `getrandom` (WASI `random_get`).

/// The caller's random source could not deliver (the answer is then a 500, never a weak
/// value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRandomness;

/// A source of cryptographically secure random bytes.
pub trait Random {
    /// Fills `buf` entirely, or fails.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), NoRandomness>;
}

/// `N` fresh random bytes.
pub fn bytes<const N: usize>(rng: &mut dyn Random) -> Result<[u8; N], NoRandomness> {
    let mut out = [0u8; N];
    rng.fill(&mut out)?;
    Ok(out)
}

/// 16 random bytes as 22 base64url characters: ids, CSRF tokens, binding values.
pub fn token(rng: &mut dyn Random) -> Result<String, NoRandomness> {
    use base64::Engine;
    let b: [u8; 16] = bytes(rng)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A deterministic counter-based source (tests only: predictable on purpose).
    #[derive(Debug, Default)]
    pub struct Counter(pub u64);

    impl Random for Counter {
        fn fill(&mut self, buf: &mut [u8]) -> Result<(), NoRandomness> {
            for b in buf.iter_mut() {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (self.0 >> 33) as u8;
            }
            Ok(())
        }
    }

    /// A source that always fails.
    #[derive(Debug)]
    pub struct Broken;

    impl Random for Broken {
        fn fill(&mut self, _: &mut [u8]) -> Result<(), NoRandomness> {
            Err(NoRandomness)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn tokens_are_22_chars_and_differ() {
        let mut r = Counter(1);
        let a = token(&mut r).unwrap();
        let b = token(&mut r).unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert_eq!(token(&mut Broken), Err(NoRandomness));
    }
}
