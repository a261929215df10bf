//! Where a decision gets the time.
//!
//! In the filter, reading the clock is a host call, about a microsecond of request time in
//! Envoy's V8 (`make bench` prices it). A decision may instead use a *coarse* time the filter
//! already holds — its last exact reading — but only where the answer is the same for every
//! moment the exact time could be; anywhere else it reads the exact time (`decide.rs`).

/// How far behind the exact time a coarse time may be, in seconds. The filter's coarse time
/// is renewed every tick (1 s, or 100 ms with remote keys) and after [`COARSE_MAX_USES`] uses,
/// so it is normally less than a second old; the rest is margin.
pub const COARSE_MAX_LAG: u64 = 5;

/// How many decisions may use one coarse reading before the exact time is read again.
pub const COARSE_MAX_USES: u32 = 256;

/// Seconds since the epoch.
pub trait Clock {
    /// The exact time.
    fn now(&self) -> u64;

    /// A time no later than the exact time and at most [`COARSE_MAX_LAG`] seconds earlier, if
    /// one is at hand without reading the clock.
    fn coarse(&self) -> Option<u64> {
        None
    }
}

/// A time read once by the caller (tests, the CLI, decisions made from a tick).
pub struct Fixed(pub u64);

impl Clock for Fixed {
    fn now(&self) -> u64 {
        self.0
    }
}
