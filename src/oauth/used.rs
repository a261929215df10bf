//! The ledger of used single-use grants (façade codes, façade refresh tokens), as bytes:
//! the glue keeps it in a fixed ring of shared-data slots and writes a slot only with the
//! compare-and-swap token of the read it decided on, so recording is atomic and the
//! memory bounded. This part is pure: which slot an id goes to, and what a slot's bytes
//! become when a use is recorded ([`record`]), or whether they refuse it ([`refused`]).
//!
//! - An entry is an id's digest (SHA-256, truncated to 16 bytes), a generation (u32) and
//!   an expiry (u64 unix seconds), little endian. A use of generation `g` is refused when
//!   the slot holds the id with a generation ≥ `g`; recording sets the entry's generation
//!   to `g` (appending it if absent). Recording drops the slot's expired entries first and
//!   refuses to grow a slot past its ring's capacity ([`Record::Full`]: the caller fails
//!   closed).
//! - Codes ([`Ring::code`]): the id is the code's, generation 0, so a second use is a
//!   replay. A code's id goes to the slot of its expiry's time bucket (`expiry / width`
//!   modulo the slot count; width = lifetime / (slots − 2)), so the codes alive at any
//!   moment fall in fewer buckets than there are slots and a slot is reused for a later
//!   bucket only after its ids have expired.
//! - Refresh tokens ([`Ring::refresh`]): the id is the token's family (one per sign-in; each
//!   refresh hands out the next generation of the same family), so the ledger holds one
//!   entry per signed-in client, not one per use, and a slot is chosen by the family's
//!   digest. A replayed refresh token (a generation already used) revokes its family
//!   (RFC 9700 §4.14.2): [`Record::Replay`] carries the slot's bytes with the family's
//!   generation at `u32::MAX` until every token of it has expired, so the newest token,
//!   whoever holds it, is refused too and the user signs in again.
//! - Bytes that are not a slot ([`Record::Unreadable`], and [`refused`] says yes): the
//!   caller fails closed; nothing else writes under these keys.

use sha2::{Digest, Sha256};

use super::settings::Ttls;

/// The first bytes of every slot (the format's version).
pub const MAGIC: &[u8] = b"mcpU2";
const DIGEST: usize = 16;
const ENTRY: usize = DIGEST + 4 + 8;
/// The generation of a revoked refresh-token family.
pub const REVOKED: u32 = u32::MAX;

/// Slots of the code ring and ids one slot holds.
pub const CODE_SLOTS: u32 = 16;
pub const CODE_CAPACITY: usize = 512;
/// Slots of the refresh-token ring and families one slot holds.
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
    pub kind: UsedKind,
    pub slots: u32,
    /// Seconds of expiry one bucket covers (codes).
    pub width: u64,
    /// Most entries one slot holds.
    pub capacity: usize,
    /// The lifetime of one grant of this kind (seconds).
    pub lifetime: u64,
}

impl Ring {
    fn new(kind: UsedKind, slots: u32, ttl: u64, capacity: usize) -> Ring {
        let spread = u64::from(slots.saturating_sub(2)).max(1);
        Ring {
            name: match kind {
                UsedKind::Code => "code",
                UsedKind::Refresh => "refresh",
            },
            kind,
            slots,
            width: ttl.div_ceil(spread).max(1),
            capacity,
            lifetime: ttl,
        }
    }

    /// The ring of façade codes for these lifetimes.
    pub fn code(ttl: &Ttls) -> Ring {
        Ring::new(UsedKind::Code, CODE_SLOTS, ttl.code, CODE_CAPACITY)
    }

    /// The ring of façade refresh-token families for these lifetimes.
    pub fn refresh(ttl: &Ttls) -> Ring {
        Ring::new(
            UsedKind::Refresh,
            REFRESH_SLOTS,
            ttl.refresh,
            REFRESH_CAPACITY,
        )
    }

    /// The ring for a kind of id.
    pub fn of(kind: UsedKind, ttl: &Ttls) -> Ring {
        match kind {
            UsedKind::Code => Ring::code(ttl),
            UsedKind::Refresh => Ring::refresh(ttl),
        }
    }

    /// The slot of `id` (a code expiring at `expires_at`, or a refresh-token family).
    pub fn slot(&self, id: &str, expires_at: u64) -> u32 {
        let slots = u64::from(self.slots.max(1));
        let n = match self.kind {
            UsedKind::Code => expires_at / self.width.max(1),
            UsedKind::Refresh => {
                let d = digest(id);
                let mut b = [0u8; 8];
                for (o, x) in b.iter_mut().zip(d.iter()) {
                    *o = *x;
                }
                u64::from_le_bytes(b)
            }
        };
        u32::try_from(n % slots).unwrap_or(0)
    }

    /// The shared-data key of a slot: `<prefix><ring name>.<slot>`.
    pub fn key(&self, prefix: &str, slot: u32) -> String {
        format!("{prefix}{}.{slot}", self.name)
    }
}

/// What recording a use does to its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The slot's new bytes (expired entries dropped, the use recorded).
    Added(Vec<u8>),
    /// The id was used at this generation or a later one already: a replay. For a
    /// refresh-token family not yet revoked, the slot's bytes that revoke it.
    Replay(Option<Vec<u8>>),
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

fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut n = [0u8; N];
    for (o, b) in n.iter_mut().zip(bytes) {
        *o = *b;
    }
    n
}

/// The slot's entries as (digest, generation, expiry), or `None` if the bytes are not a slot.
fn entries(slot: &[u8]) -> Option<impl Iterator<Item = (&[u8], u32, u64)>> {
    let body = slot.strip_prefix(MAGIC)?;
    if body.len() % ENTRY != 0 {
        return None;
    }
    Some(body.chunks_exact(ENTRY).map(|e| {
        let (d, rest) = e.split_at(DIGEST);
        let (g, x) = rest.split_at(4);
        (d, u32::from_le_bytes(le(g)), u64::from_le_bytes(le(x)))
    }))
}

fn push(out: &mut Vec<u8>, d: &[u8], generation: u32, expiry: u64) {
    out.extend_from_slice(d);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&expiry.to_le_bytes());
}

/// Does the slot refuse a use of `id` at `generation` at `now` (used at that generation or
/// a later one, or revoked)? Unreadable bytes: yes (fail closed).
pub fn refused(slot: &[u8], id: &str, generation: u32, now: u64) -> bool {
    let d = digest(id);
    match entries(slot) {
        Some(mut it) => {
            it.any(|(e, g, expiry)| expiry > now && e == d.as_slice() && g >= generation)
        }
        None => true,
    }
}

/// Records a use of `id` at `generation` (the grant expiring at `expires_at`) in a slot's
/// bytes of `ring` at time `now`.
pub fn record(
    ring: &Ring,
    slot: &[u8],
    id: &str,
    generation: u32,
    expires_at: u64,
    now: u64,
) -> Record {
    let d = digest(id);
    let Some(it) = entries(slot) else {
        return Record::Unreadable;
    };
    let mut out = Vec::with_capacity(slot.len() + ENTRY);
    out.extend_from_slice(MAGIC);
    let mut live = 0usize;
    let mut found = false;
    let mut replay = false;
    for (e, g, expiry) in it {
        if expiry <= now {
            continue;
        }
        live += 1;
        if e != d.as_slice() {
            push(&mut out, e, g, expiry);
        } else if g >= generation {
            // A replay. A refresh-token family is revoked until all its tokens have expired
            // (each was issued before now, for at most the ring's lifetime).
            replay = true;
            if ring.kind == UsedKind::Refresh && g != REVOKED {
                found = true;
                let until = expiry.max(now.saturating_add(ring.lifetime));
                push(&mut out, e, REVOKED, until);
            } else {
                push(&mut out, e, g, expiry);
            }
        } else {
            found = true;
            push(&mut out, e, generation, expiry.max(expires_at));
        }
    }
    if replay {
        return Record::Replay(found.then_some(out));
    }
    if !found {
        if live >= ring.capacity {
            return Record::Full;
        }
        push(&mut out, &d, generation, expires_at);
    }
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

    /// A ring of `kind` whose slots hold `capacity` ids, grants living 600 s.
    fn ring(kind: UsedKind, capacity: usize) -> Ring {
        Ring {
            capacity,
            ..Ring::new(kind, 16, 600, capacity)
        }
    }

    fn code(slot: &[u8], id: &str, expires: u64, now: u64, cap: usize) -> Record {
        record(&ring(UsedKind::Code, cap), slot, id, 0, expires, now)
    }

    #[test]
    fn records_then_refuses_a_replay() {
        let s = added(code(&empty(), "code:a", 160, 100, 4));
        assert!(refused(&s, "code:a", 0, 100));
        assert!(!refused(&s, "code:b", 0, 100));
        assert_eq!(code(&s, "code:a", 160, 120, 4), Record::Replay(None));
        let s = added(code(&s, "code:b", 170, 120, 4));
        assert_eq!(code(&s, "code:b", 170, 150, 4), Record::Replay(None));
        assert_eq!(code(&s, "code:a", 160, 150, 4), Record::Replay(None));
        assert_eq!(s.len(), MAGIC.len() + 2 * ENTRY);
    }

    #[test]
    fn expired_entries_are_dropped_and_no_longer_count() {
        let s = added(code(&empty(), "code:a", 160, 100, 2));
        let s = added(code(&s, "code:b", 200, 100, 2));
        assert_eq!(code(&s, "code:c", 200, 100, 2), Record::Full);
        // At 160 the first has expired (an id lives while now < expiry): room again.
        assert!(!refused(&s, "code:a", 0, 160));
        let s = added(code(&s, "code:c", 220, 160, 2));
        assert_eq!(s.len(), MAGIC.len() + 2 * ENTRY);
        assert!(refused(&s, "code:b", 0, 160) && refused(&s, "code:c", 0, 160));
        // A slot whose bucket has passed entirely empties itself.
        let s = added(code(&s, "code:d", 900, 800, 2));
        assert_eq!(s.len(), MAGIC.len() + ENTRY);
    }

    #[test]
    fn full_slot_fails_closed() {
        let mut s = empty();
        for i in 0..8 {
            s = added(code(&s, &format!("code:{i}"), 1000, 10, 8));
        }
        assert_eq!(code(&s, "code:new", 1000, 10, 8), Record::Full);
        // A replay is still named a replay when the slot is full.
        assert_eq!(code(&s, "code:3", 1000, 10, 8), Record::Replay(None));
    }

    #[test]
    fn a_refresh_family_takes_one_entry_whatever_its_number_of_uses() {
        let r = ring(UsedKind::Refresh, 2);
        let mut s = empty();
        // Generations 0, 1, 2, … of one family: each use moves the entry on.
        for g in 0..50u32 {
            let now = 100 + u64::from(g) * 10;
            assert!(!refused(&s, "refresh:f", g, now));
            s = added(record(&r, &s, "refresh:f", g, now + 600, now));
            assert_eq!(s.len(), MAGIC.len() + ENTRY, "generation {g}");
            assert!(refused(&s, "refresh:f", g, now));
            assert!(!refused(&s, "refresh:f", g + 1, now));
        }
        // Another family fits beside it; a third does not (capacity 2).
        let s = added(record(&r, &s, "refresh:other", 0, 2000, 700));
        assert_eq!(record(&r, &s, "refresh:third", 0, 2000, 700), Record::Full);
    }

    #[test]
    fn a_replayed_refresh_token_revokes_its_family() {
        let r = ring(UsedKind::Refresh, 4);
        let s = added(record(&r, &empty(), "refresh:f", 0, 700, 100));
        let s = added(record(&r, &s, "refresh:f", 1, 800, 200));
        // Generation 0 again: a replay, and the bytes that revoke the family.
        let Record::Replay(Some(revoked)) = record(&r, &s, "refresh:f", 0, 700, 300) else {
            panic!("expected a revoking replay");
        };
        // The newest token (generation 2) is refused now, until every token issued so far
        // (the last at 300, living 600 s) has expired.
        assert!(refused(&revoked, "refresh:f", 2, 300));
        assert!(refused(&revoked, "refresh:f", 2, 899));
        assert!(!refused(&revoked, "refresh:f", 2, 900));
        assert_eq!(
            record(&r, &revoked, "refresh:f", 2, 900, 400),
            Record::Replay(None)
        );
        // Other families are untouched.
        assert!(!refused(&revoked, "refresh:g", 0, 300));
        // Codes are never "revoked": a replay leaves the slot as it is.
        let c = ring(UsedKind::Code, 4);
        let s = added(record(&c, &empty(), "code:a", 0, 160, 100));
        assert_eq!(record(&c, &s, "code:a", 0, 160, 120), Record::Replay(None));
    }

    #[test]
    fn foreign_bytes_fail_closed() {
        let r = ring(UsedKind::Code, 4);
        for bad in [
            b"".as_slice(),
            b"1700000000",
            b"mcpU2x",
            // The previous format (24-byte entries) is not read as this one.
            b"mcpU1\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ] {
            assert_eq!(record(&r, bad, "code:a", 0, 10, 1), Record::Unreadable);
            assert!(refused(bad, "code:a", 0, 1));
        }
    }

    #[test]
    fn live_codes_never_share_a_slot_with_another_live_bucket() {
        for ttl in [1, 7, 60, 600] {
            let t = Ttls {
                code: ttl,
                ..Ttls::default()
            };
            let ring = Ring::code(&t);
            let now = 1_700_000_123u64;
            // Every expiry a live code can have, (now, now + ttl]: one bucket per slot.
            let first = (now + 1) / ring.width;
            let last = (now + ttl) / ring.width;
            assert!(
                last - first < u64::from(ring.slots),
                "{ring:?} ttl {ttl}: buckets {first}..={last}"
            );
            let mut seen = std::collections::HashMap::new();
            let mut e = now + 1;
            while e <= now + ttl {
                let b = e / ring.width;
                let prev = seen.insert(ring.slot("code:x", e), b);
                assert!(prev.is_none() || prev == Some(b), "{ring:?} ttl {ttl}");
                e += ring.width.min(ttl).max(1);
            }
        }
    }

    #[test]
    fn refresh_families_spread_over_the_slots_by_digest() {
        let r = Ring::refresh(&Ttls::default());
        let mut per_slot = vec![0u32; r.slots as usize];
        for i in 0..12_800 {
            let slot = r.slot(&format!("refresh:{i}"), 0);
            // The expiry plays no part: a family keeps its slot as it slides.
            assert_eq!(slot, r.slot(&format!("refresh:{i}"), 99_999));
            per_slot[slot as usize] += 1;
        }
        // 100 per slot on average; a hash that clumps would show here.
        assert!(
            per_slot.iter().all(|&n| (50..=160).contains(&n)),
            "{per_slot:?}"
        );
    }

    #[test]
    fn keys_and_widths() {
        let t = Ttls::default();
        let c = Ring::code(&t);
        assert_eq!((c.slots, c.width), (CODE_SLOTS, 5));
        assert_eq!(c.key("p.", c.slot("code:x", 12)), "p.code.2");
        let r = Ring::refresh(&t);
        assert_eq!(r.lifetime, 30 * 24 * 3600);
        assert!(r.key("p.", 7).ends_with("refresh.7"));
        assert_eq!(Ring::of(UsedKind::Refresh, &t), r);
    }
}
