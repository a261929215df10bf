//! Requests paused while keys are fetched (cold start, unknown `kid`). They live in the VM
//! that received them; the root context wakes them when that VM sees a newer key set, or
//! answers them with their fallback when the wait runs out.

use std::cell::RefCell;
use std::rc::Rc;

use crate::decide::Outcome;
use crate::http::response::Response;

pub struct Waiter {
    pub context_id: u32,
    pub provider: usize,
    /// Key-set version this VM had when the request started waiting.
    pub since_version: u64,
    /// Milliseconds since the epoch.
    pub deadline: u64,
    /// The request headers, to decide again on wake-up.
    pub headers: crate::http::headers::Headers,
    /// The answer if no newer keys arrive in time.
    pub fallback: Response,
    pub fallback_outcome: Outcome,
}

pub type Waiters = Rc<RefCell<Vec<Waiter>>>;

/// What to do with a waiter now.
pub enum Wake {
    Decide(Waiter),
    GiveUp(Waiter),
}

/// Takes the waiters that can proceed: a newer key set for their provider, or time's up.
pub fn due(waiters: &Waiters, now: u64, version: impl Fn(usize) -> u64) -> Vec<Wake> {
    let mut list = waiters.borrow_mut();
    let mut out = Vec::new();
    let mut keep = Vec::with_capacity(list.len());
    for w in list.drain(..) {
        if version(w.provider) != w.since_version {
            out.push(Wake::Decide(w));
        } else if now >= w.deadline {
            out.push(Wake::GiveUp(w));
        } else {
            keep.push(w);
        }
    }
    *list = keep;
    out
}

pub fn remove(waiters: &Waiters, context_id: u32) {
    // Every finished request asks; nearly always nothing waits. `try_`: called from a drop.
    if let Ok(mut list) = waiters.try_borrow_mut() {
        if !list.is_empty() {
            list.retain(|w| w.context_id != context_id);
        }
    }
}
