//! The ledger of used single-use ids (façade codes, façade refresh tokens), as bytes: the
//! glue keeps it in a fixed ring of shared-data slots and writes a slot only with the
//! compare-and-swap token of the read it decided on, so recording is atomic and the
//! memory bounded. This part is pure: which slot an id goes to, and what a slot's bytes
//! become when an id is recorded ([`record`]), or whether they already hold it
//! ([`contains`]).
//!
//! - Two rings, one per kind ([`Ring::code`], [`Ring::refresh`]), each of a fixed number
//!   of slots. An id goes to the slot of its expiry's time bucket: `expiry / width` modulo
//!   the slot count. The width is the kind's lifetime divided by (slots − 2), so the ids
//!   alive at any moment (expiries within one lifetime from now) fall in fewer buckets than
//!   there are slots, and a slot is reused for a later bucket only after its ids have
//!   expired.
//! - A slot is a magic, then entries of a 16-byte id digest (SHA-256 of the id, truncated)
//!   and an expiry (u64, little endian, unix seconds). Recording drops the slot's expired
//!   entries first (so a slot whose bucket has passed empties itself, whatever widths or
//!   clocks wrote it), refuses an id already present ([`Record::Replay`]), and refuses to
//!   grow a slot past its ring's capacity ([`Record::Full`]: the caller fails closed).
//! - Bytes that are not a slot ([`Record::Unreadable`], and [`contains`] says yes): the
//!   caller fails closed; nothing else writes under these keys.

use sha2::{Digest, Sha256};

use super::settings::Ttls;

/// The first bytes of every slot (the format's version).
pub const MAGIC: &[u8] = b"mcpU1";
const DIGEST: usize = 16;
const ENTRY: usize = DIGEST + 8;

/// Slots of the code ring and ids one slot holds.
pub const CODE_SLOTS: u32 = 16;
pub const CODE_CAPACITY: usize = 512;
/// Slots of the refresh-token ring and ids one slot holds.
pub const REFRESH_SLOTS: u32 = 128;
pub const REFRESH_CAPACITY: usize = 2048;

/// Which ring an id belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsedKind {
    Code,
    Refresh,
}

/// One ring of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// `code` or `refresh`: part of the slot keys.
    pub name: &'static str,
    pub slots: u32,
    /// Seconds of expiry one bucket covers.
    pub width: u64,
    /// Most entries one slot holds.
    pub capacity: usize,
}

impl Ring {
    fn new(name: &'static str, slots: u32, ttl: u64, capacity: usize) -> Ring {
        let spread = u64::from(slots.saturating_sub(2)).max(1);
        Ring {
            name,
            slots,
            width: ttl.div_ceil(spread).max(1),
            capacity,
        }
    }

    /// The ring of façade codes for these lifetimes.
    pub fn code(ttl: &Ttls) -> Ring {
        Ring::new("code", CODE_SLOTS, ttl.code, CODE_CAPACITY)
    }

    /// The ring of façade refresh tokens for these lifetimes.
    pub fn refresh(ttl: &Ttls) -> Ring {
        Ring::new("refresh", REFRESH_SLOTS, ttl.refresh, REFRESH_CAPACITY)
    }

    /// The ring for a kind of id.
    pub fn of(kind: UsedKind, ttl: &Ttls) -> Ring {
        match kind {
            UsedKind::Code => Ring::code(ttl),
            UsedKind::Refresh => Ring::refresh(ttl),
        }
    }

    /// The slot an id expiring at `expires_at` goes to.
    pub fn slot(&self, expires_at: u64) -> u32 {
        let bucket = expires_at / self.width.max(1);
        u32::try_from(bucket % u64::from(self.slots.max(1))).unwrap_or(0)
    }

    /// The shared-data key of a slot: `<prefix><ring name>.<slot>`.
    pub fn key(&self, prefix: &str, slot: u32) -> String {
        format!("{prefix}{}.{slot}", self.name)
    }
}

/// What recording an id does to its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The slot's new bytes (expired entries dropped, the id appended).
    Added(Vec<u8>),
    /// The id is in the slot already: a replay.
    Replay,
    /// The slot holds `capacity` live ids.
    Full,
    /// The bytes are not a slot.
    Unreadable,
}

/// An empty slot.
pub fn empty() -> Vec<u8> {
    MAGIC.to_vec()
}

fn digest(id: &str) -> [u8; DIGEST] {
    let full = Sha256::digest(id.as_bytes());
    let mut out = [0u8; DIGEST];
    for (o, b) in out.iter_mut().zip(full.iter()) {
        *o = *b;
    }
    out
}

/// The slot's entries as (digest, expiry), or `None` if the bytes are not a slot.
fn entries(slot: &[u8]) -> Option<impl Iterator<Item = (&[u8], u64)>> {
    let body = slot.strip_prefix(MAGIC)?;
    if body.len() % ENTRY != 0 {
        return None;
    }
    Some(body.chunks_exact(ENTRY).map(|e| {
        let (d, x) = e.split_at(DIGEST);
        let mut n = [0u8; 8];
        for (o, b) in n.iter_mut().zip(x) {
            *o = *b;
        }
        (d, u64::from_le_bytes(n))
    }))
}

/// Does the slot hold `id` as still live at `now`? Unreadable bytes: yes (fail closed).
pub fn contains(slot: &[u8], id: &str, now: u64) -> bool {
    let d = digest(id);
    match entries(slot) {
        Some(mut it) => it.any(|(e, expiry)| expiry > now && e == d.as_slice()),
        None => true,
    }
}

/// Records `id` (expiring at `expires_at`) in a slot's bytes at time `now`.
pub fn record(slot: &[u8], id: &str, expires_at: u64, now: u64, capacity: usize) -> Record {
    let d = digest(id);
    let Some(it) = entries(slot) else {
        return Record::Unreadable;
    };
    let mut out = Vec::with_capacity(slot.len() + ENTRY);
    out.extend_from_slice(MAGIC);
    let mut live = 0usize;
    for (e, expiry) in it {
        if expiry <= now {
            continue;
        }
        if e == d.as_slice() {
            return Record::Replay;
        }
        out.extend_from_slice(e);
        out.extend_from_slice(&expiry.to_le_bytes());
        live += 1;
    }
    if live >= capacity {
        return Record::Full;
    }
    out.extend_from_slice(&d);
    out.extend_from_slice(&expires_at.to_le_bytes());
    Record::Added(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(r: Record) -> Vec<u8> {
        match r {
            Record::Added(b) => b,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn records_then_refuses_a_replay() {
        let s = added(record(&empty(), "code:a", 160, 100, 4));
        assert!(contains(&s, "code:a", 100));
        assert!(!contains(&s, "code:b", 100));
        assert_eq!(record(&s, "code:a", 160, 120, 4), Record::Replay);
        let s = added(record(&s, "code:b", 170, 120, 4));
        assert_eq!(record(&s, "code:b", 170, 150, 4), Record::Replay);
        assert_eq!(record(&s, "code:a", 160, 150, 4), Record::Replay);
        assert_eq!(s.len(), MAGIC.len() + 2 * ENTRY);
    }

    #[test]
    fn expired_entries_are_dropped_and_no_longer_count() {
        let s = added(record(&empty(), "code:a", 160, 100, 2));
        let s = added(record(&s, "code:b", 200, 100, 2));
        assert_eq!(record(&s, "code:c", 200, 100, 2), Record::Full);
        // At 160 the first has expired (an id lives while now < expiry): room again.
        assert!(!contains(&s, "code:a", 160));
        let s = added(record(&s, "code:c", 220, 160, 2));
        assert_eq!(s.len(), MAGIC.len() + 2 * ENTRY);
        assert!(contains(&s, "code:b", 160) && contains(&s, "code:c", 160));
        // A slot whose bucket has passed entirely empties itself.
        let s = added(record(&s, "code:d", 900, 800, 2));
        assert_eq!(s.len(), MAGIC.len() + ENTRY);
    }

    #[test]
    fn full_slot_fails_closed() {
        let mut s = empty();
        for i in 0..8 {
            s = added(record(&s, &format!("refresh:{i}"), 1000, 10, 8));
        }
        assert_eq!(record(&s, "refresh:new", 1000, 10, 8), Record::Full);
        // A replay is still named a replay when the slot is full.
        assert_eq!(record(&s, "refresh:3", 1000, 10, 8), Record::Replay);
    }

    #[test]
    fn foreign_bytes_fail_closed() {
        for bad in [
            b"".as_slice(),
            b"1700000000",
            b"mcpU1x",
            b"mcpU2\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ] {
            assert_eq!(record(bad, "code:a", 10, 1, 4), Record::Unreadable);
            assert!(contains(bad, "code:a", 1));
        }
    }

    #[test]
    fn live_ids_never_share_a_slot_with_another_live_bucket() {
        for ttl in [1, 7, 60, 600, 3600, 30 * 24 * 3600, 400 * 24 * 3600] {
            let t = Ttls {
                code: ttl.min(600),
                refresh: ttl,
                ..Ttls::default()
            };
            for ring in [Ring::code(&t), Ring::refresh(&t)] {
                let life = if ring.name == "code" {
                    t.code
                } else {
                    t.refresh
                };
                let now = 1_700_000_123u64;
                // Every expiry a live id can have, (now, now + life]: one bucket per slot.
                let first = (now + 1) / ring.width;
                let last = (now + life) / ring.width;
                assert!(
                    last - first < u64::from(ring.slots),
                    "{ring:?} ttl {life}: buckets {first}..={last}"
                );
                let mut seen = std::collections::HashMap::new();
                let mut e = now + 1;
                while e <= now + life {
                    let b = e / ring.width;
                    let prev = seen.insert(ring.slot(e), b);
                    assert!(prev.is_none() || prev == Some(b), "{ring:?} ttl {life}");
                    e += ring.width.min(life).max(1);
                }
            }
        }
    }

    #[test]
    fn keys_and_widths() {
        let t = Ttls::default();
        let c = Ring::code(&t);
        assert_eq!((c.slots, c.width), (CODE_SLOTS, 5));
        assert_eq!(c.key("p.", c.slot(12)), "p.code.2");
        let r = Ring::refresh(&t);
        assert_eq!(r.width, (30 * 24 * 3600u64).div_ceil(126));
        assert!(r.key("p.", 7).ends_with("refresh.7"));
        assert_eq!(Ring::of(UsedKind::Refresh, &t), r);
    }
}
