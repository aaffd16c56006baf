//! Exactly-once execution (Raft dissertation §6.3, client sessions).
//!
//! A request is identified by `(client address, req_id)`: R2P2's identity (DESIGN.md §3). Two
//! guards keep a network duplicate of a request from running twice:
//!
//! - [`PendingIds`] (leader only, volatile): the identities of the entries in the leader's
//!   log that it has not applied yet. A copy of one of them is ignored: the entry's designated
//!   replier answers the request once, for both copies.
//! - [`Sessions`] (replicated state): per client, a window of the req_ids already applied.
//!   Every replica feeds it every committed request entry, in log order, whether it executes
//!   the entry or not (a read assigned to another replier counts), so every replica takes the
//!   same decision for every index. An entry whose identity is already in its client's
//!   window is a duplicate: no replica executes it and nobody answers it (the first copy's
//!   replier answered, or will; the client never sees two answers). The leader also asks
//!   its sessions before ordering, so a copy of an applied request is not ordered again.
//!
//! And [`Refusals`] (volatile, per node) makes a DROP stick: a node remembers the identities
//! it refused for a while, and refuses a later copy again instead of ordering it. So a DROP
//! sent by the leader of term T promises that the request is never ordered in term T (see
//! `scenarios/faults/README.md` for which DROPs are promises).
//!
//! ## req_id reuse
//!
//! req_ids are 16 bits, so a client reuses them: our client ([`crate::r2p2::client`]) hands
//! them out in sequence (skipping those still in flight), so a req_id comes back only after
//! 65 535 other requests from the same address. A session therefore keeps a *serial-number
//! window* (RFC 1982): `newest` is the most advanced req_id applied, and the window is the
//! 32 768 req_ids at or behind it. A req_id in the window is a duplicate iff it was applied;
//! one ahead of `newest` (by 1..=32 768) is fresh and moves the window, and the req_ids that
//! fall out of the window become fresh again. The rule is exact as long as
//! - a client's requests are ordered within 32 768 of each other (no request waits behind
//!   32 768 newer ones of the same client: the client times requests out long before), and
//! - a copy of a request is not delivered after its client sent 32 768 newer ones (a copy that
//!   late would be taken for a fresh request and run again);
//! - a client that restarts on the same address starts a new session only once its old one
//!   is evicted: until then its req_ids at or behind the old `newest` are taken for
//!   duplicates and never answered (our clients never restart on an address).
//!
//! Sessions are bounded: at most `capacity` clients, evicting the client whose last applied
//! request has the lowest log index (LRU by log index, a function of the log alone, so every
//! replica evicts the same one). A copy of a request of an evicted client would run again;
//! the capacity must exceed the number of clients that are active at once. Without
//! snapshots, a restarted replica rebuilds its sessions by re-applying its log; a snapshot
//! must carry them.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::net::SocketAddrV4;

use crate::time::{Duration, Instant};

use super::output::Refusal;

/// A request's identity.
pub type RequestKey = (SocketAddrV4, u16);

/// req_ids remembered behind a client's newest applied one (half the req_id space).
const WINDOW: u16 = 1 << 15;
const WORDS: usize = (1 << 16) / 64;

/// One client's applied req_ids.
struct Session {
    /// The most advanced req_id applied (serial-number order).
    newest: u16,
    /// Log index of the client's latest applied request (the eviction order).
    last_index: u64,
    /// Bit per req_id: applied and inside the window. Zero outside the window.
    applied: Box<[u64; WORDS]>,
}

impl Session {
    fn new(req_id: u16, index: u64) -> Session {
        let mut s = Session {
            newest: req_id,
            last_index: index,
            applied: Box::new([0; WORDS]),
        };
        s.set(req_id, true);
        s
    }

    fn bit(&self, req_id: u16) -> bool {
        self.applied[req_id as usize / 64] & (1 << (req_id % 64)) != 0
    }

    fn set(&mut self, req_id: u16, on: bool) {
        let w = &mut self.applied[req_id as usize / 64];
        if on {
            *w |= 1 << (req_id % 64);
        } else {
            *w &= !(1 << (req_id % 64));
        }
    }

    /// The applied req_ids as runs `(first, len)`, walking the window from its oldest req_id
    /// to `newest`. A word at a time: a snapshot encodes every client's window, and a bit at
    /// a time that was 32 768 steps per client.
    fn runs(&self) -> Vec<(u16, u16)> {
        const W: u32 = WINDOW as u32;
        let oldest = self.newest.wrapping_sub(WINDOW - 1);
        // The bits of the window from position `k` on, within `k`'s word (low bit = `k`),
        // and how many positions that word still covers.
        let word_at = |k: u32| {
            let id = oldest.wrapping_add(k as u16);
            let shift = u32::from(id % 64);
            (self.applied[id as usize / 64] >> shift, 64 - shift)
        };
        let mut out = Vec::new();
        let mut k = 0u32;
        while k < W {
            let (bits, avail) = word_at(k);
            if bits == 0 {
                k += avail;
                continue;
            }
            k += bits.trailing_zeros();
            if k >= W {
                break;
            }
            let first = k;
            loop {
                let (bits, avail) = word_at(k);
                let run = (!bits).trailing_zeros().min(avail);
                k += run;
                if run < avail || k >= W {
                    break;
                }
            }
            let end = k.min(W);
            out.push((oldest.wrapping_add(first as u16), (end - first) as u16));
        }
        out
    }

    /// Whether `req_id` lies at or behind `newest`, inside the window.
    fn in_window(&self, req_id: u16) -> bool {
        self.newest.wrapping_sub(req_id) < WINDOW
    }

    fn is_duplicate(&self, req_id: u16) -> bool {
        self.in_window(req_id) && self.bit(req_id)
    }

    fn record(&mut self, req_id: u16, index: u64) {
        debug_assert!(index > self.last_index, "sessions are fed in log order");
        if !self.in_window(req_id) {
            // Ahead by `ahead` (1..=WINDOW): as many req_ids leave the window at its back.
            let ahead = req_id.wrapping_sub(self.newest);
            debug_assert!((1..=WINDOW).contains(&ahead));
            for k in 1..=ahead {
                let leaving = self.newest.wrapping_add(k).wrapping_add(WINDOW);
                self.set(leaving, false);
            }
            self.newest = req_id;
        }
        self.set(req_id, true);
        self.last_index = index;
        debug_assert!(self.is_duplicate(req_id));
    }
}

/// The replicated client-session table: fed every committed request entry in log order.
pub struct Sessions {
    capacity: usize,
    /// Looked up three times per applied entry on every replica: a hash map (a B-tree's
    /// address comparisons were ~3% of a HovercRaft run). Iterated only in address order
    /// (`encode`) or sorted (`rebuild_lru`), so its own order never shows. Bounded by
    /// `capacity`, so colliding addresses cost at most a scan of the table.
    clients: FxHashMap<SocketAddrV4, Session>,
    /// (last_index, client) in increasing index order, for least-recent eviction. A pair
    /// whose client has moved on (a later index) is stale and skipped when reached; the queue
    /// is rebuilt when stale pairs outnumber live ones. (A map keyed by index cost a remove
    /// and an insert per applied entry: 7% of a HovercRaft simulation.)
    lru: VecDeque<(u64, SocketAddrV4)>,
    /// Sessions evicted to stay within `capacity`.
    pub evicted: u64,
}

impl Sessions {
    pub fn new(capacity: usize) -> Sessions {
        assert!(capacity > 0, "sessions need room for one client");
        Sessions {
            capacity,
            clients: FxHashMap::default(),
            lru: VecDeque::new(),
            evicted: 0,
        }
    }

    /// Whether this request was applied already (at an earlier index).
    pub fn is_duplicate(&self, (client, req_id): RequestKey) -> bool {
        self.clients
            .get(&client)
            .is_some_and(|s| s.is_duplicate(req_id))
    }

    /// The request entry at `index` was applied (executed here, or by its replier only).
    /// Returns whether it was a duplicate (what [`Sessions::is_duplicate`] said before), so a
    /// caller that needs both pays for one lookup.
    pub fn record(&mut self, (client, req_id): RequestKey, index: u64) -> bool {
        let mut duplicate = false;
        if let Some(s) = self.clients.get_mut(&client) {
            duplicate = s.is_duplicate(req_id);
            s.record(req_id, index);
        } else {
            if self.clients.len() >= self.capacity {
                let lru = self.pop_least_recent();
                self.clients.remove(&lru);
                self.evicted += 1;
            }
            self.clients.insert(client, Session::new(req_id, index));
        }
        self.lru.push_back((index, client));
        if self.lru.len() > 2 * self.clients.len() + 64 {
            self.rebuild_lru();
        }
        debug_assert!(self.clients.len() <= self.capacity);
        duplicate
    }

    /// The client with the smallest last index (each index is recorded once, so it is
    /// unique), taken off the queue.
    fn pop_least_recent(&mut self) -> SocketAddrV4 {
        while let Some((index, client)) = self.lru.pop_front() {
            if self
                .clients
                .get(&client)
                .is_some_and(|s| s.last_index == index)
            {
                return client;
            }
        }
        unreachable!("every client has a live pair in the queue")
    }

    /// The queue with live pairs only, in index order.
    fn rebuild_lru(&mut self) {
        let mut live: Vec<(u64, SocketAddrV4)> = self
            .clients
            .iter()
            .map(|(a, s)| (s.last_index, *a))
            .collect();
        live.sort_unstable();
        self.lru = live.into();
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The table as a snapshot carries it (every replica at one applied index holds the same
    /// table, so a follower that installs the snapshot decides duplicates as they do):
    ///
    /// ```text
    /// n_clients u32, then per client, in address order:
    ///   ip u32 | port u16 | newest u16 | last_index u64 | n_runs u32 |
    ///   n_runs × { first u16 | len u16 }   applied req_ids, runs inside the window
    /// ```
    ///
    /// Runs, not the 8 KiB bitmap: a client that sends in sequence has one or a few runs.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&(self.clients.len() as u32).to_be_bytes());
        let mut by_addr: Vec<(&SocketAddrV4, &Session)> = self.clients.iter().collect();
        by_addr.sort_unstable_by_key(|&(a, _)| *a);
        for (addr, s) in by_addr {
            crate::wire::put_addr(out, *addr);
            out.extend_from_slice(&s.newest.to_be_bytes());
            out.extend_from_slice(&s.last_index.to_be_bytes());
            let n_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let mut runs = 0u32;
            for (first, len) in s.runs() {
                out.extend_from_slice(&first.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                runs += 1;
            }
            out[n_at..n_at + 4].copy_from_slice(&runs.to_be_bytes());
        }
    }

    /// Reads a table [`Sessions::encode`] wrote; `capacity` is this node's bound. Bytes from
    /// a peer: every count is checked against what is left, and every run against the window.
    pub fn decode(bytes: &[u8], capacity: usize) -> Result<Sessions, crate::wire::WireError> {
        use crate::wire::WireError;
        let mut r = crate::wire::Reader::new(bytes);
        let n = r.u32()? as usize;
        // 20 bytes per client at least (address 6, newest 2, last_index 8, n_runs 4): what
        // `encode` writes for a client with no runs, so every table it writes decodes.
        if n > capacity || n.saturating_mul(20) > r.remaining() {
            return Err(WireError::Inconsistent(
                "snapshot sessions: more clients than the capacity or the bytes allow",
            ));
        }
        let mut t = Sessions::new(capacity);
        let mut indexes = std::collections::BTreeSet::new();
        for _ in 0..n {
            let addr = r.addr()?;
            let newest = r.u16()?;
            let last_index = r.u64()?;
            let runs = r.u32()? as usize;
            if runs.saturating_mul(4) > r.remaining() {
                return Err(WireError::Inconsistent("snapshot sessions: run count"));
            }
            let mut s = Session {
                newest,
                last_index,
                applied: Box::new([0; WORDS]),
            };
            // Runs in window order, apart and inside the window (as `encode` writes them): so
            // a client costs at most one pass over its window, whatever a peer claims (runs
            // overlapping each other once let a few KiB set billions of bits).
            let oldest = newest.wrapping_sub(WINDOW - 1);
            let mut next_free = 0u32;
            for _ in 0..runs {
                let first = r.u16()?;
                let len = u32::from(r.u16()?);
                let at = u32::from(first.wrapping_sub(oldest));
                if len == 0 || at < next_free || at + len > u32::from(WINDOW) {
                    return Err(WireError::Inconsistent(
                        "snapshot sessions: runs out of order, overlapping or out of the window",
                    ));
                }
                for k in 0..len {
                    s.set(first.wrapping_add(k as u16), true);
                }
                next_free = at + len + 1;
            }
            if !indexes.insert(last_index) || t.clients.insert(addr, s).is_some() {
                return Err(WireError::Inconsistent(
                    "snapshot sessions: a client or an index twice",
                ));
            }
        }
        r.finish()?;
        t.rebuild_lru();
        Ok(t)
    }
}

/// The leader's index of the requests in its log it has not applied yet (volatile; rebuilt
/// from the log when a node starts leading a term).
#[derive(Default)]
pub struct PendingIds {
    /// The term it was built for (0: not built).
    pub term: u64,
    ids: FxHashMap<RequestKey, u64>,
}

impl PendingIds {
    pub fn clear(&mut self, term: u64) {
        self.term = term;
        self.ids.clear();
    }

    pub fn insert(&mut self, key: RequestKey, index: u64) {
        self.ids.insert(key, index);
    }

    pub fn get(&self, key: &RequestKey) -> Option<u64> {
        self.ids.get(key).copied()
    }

    /// The entry `key` at `index` was applied: from now on the sessions answer for it.
    pub fn applied(&mut self, key: &RequestKey, index: u64) {
        if self.ids.get(key) == Some(&index) {
            self.ids.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Identities this node refused with DROP, remembered for `ttl` (at most `capacity`), so a
/// later copy is refused again rather than ordered.
pub struct Refusals {
    capacity: usize,
    ttl: Duration,
    why: FxHashMap<RequestKey, (Instant, Refusal)>,
    order: VecDeque<(Instant, RequestKey)>,
}

impl Refusals {
    pub fn new(capacity: usize, ttl: Duration) -> Refusals {
        Refusals {
            capacity: capacity.max(1),
            ttl,
            why: FxHashMap::default(),
            order: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(at, key)) = self.order.front() {
            if at + self.ttl > now && self.order.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if self.why.get(&key).is_some_and(|(a, _)| *a == at) {
                self.why.remove(&key);
            }
        }
    }

    pub fn insert(&mut self, now: Instant, key: RequestKey, why: Refusal) {
        self.why.insert(key, (now, why));
        self.order.push_back((now, key));
        self.expire(now);
        debug_assert!(self.why.len() <= self.capacity);
    }

    /// Why `key` was refused, if it was, recently.
    pub fn get(&mut self, now: Instant, key: &RequestKey) -> Option<Refusal> {
        self.expire(now);
        self.why.get(key).map(|(_, w)| *w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn c(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new([10, 1, 0, 1].into(), port)
    }

    proptest::proptest! {
        /// The word-at-a-time run walk finds the runs a bit-at-a-time walk of the window finds,
        /// whatever the window's position and gaps.
        #[test]
        fn runs_match_a_bitwise_walk(
            start in proptest::num::u16::ANY,
            steps in proptest::collection::vec((1u16..200, proptest::bool::ANY), 1..400),
        ) {
            let mut t = Sessions::new(1);
            let mut id = start;
            for (i, (step, jump)) in steps.into_iter().enumerate() {
                // Mostly in sequence, sometimes far ahead (req_ids skipped leave gaps, and
                // a jump of up to the window moves ids out at its back).
                id = id.wrapping_add(if jump { step.wrapping_mul(97) % WINDOW + 1 } else { step % 3 + 1 });
                t.record((c(1), id), i as u64 + 1);
                let s = &t.clients[&c(1)];
                let oldest = s.newest.wrapping_sub(WINDOW - 1);
                let mut want = Vec::new();
                let mut k = 0u32;
                while k < u32::from(WINDOW) {
                    if !s.bit(oldest.wrapping_add(k as u16)) {
                        k += 1;
                        continue;
                    }
                    let mut len = 0u32;
                    while k + len < u32::from(WINDOW) && s.bit(oldest.wrapping_add((k + len) as u16)) {
                        len += 1;
                    }
                    want.push((oldest.wrapping_add(k as u16), len as u16));
                    k += len;
                }
                proptest::prop_assert_eq!(s.runs(), want);
            }
        }

        /// Eviction takes the client with the smallest last index, as a plain scan over the
        /// table would, however stale the queue gets; a decoded table evicts the same way.
        #[test]
        fn eviction_takes_the_least_recent_client(
            clients in proptest::collection::vec(0u16..12, 1..400),
            capacity in 1usize..6,
        ) {
            let mut t = Sessions::new(capacity);
            let mut model: BTreeMap<SocketAddrV4, u64> = BTreeMap::new();
            let mut req = BTreeMap::new();
            for (i, port) in clients.into_iter().enumerate() {
                let index = i as u64 + 1;
                let id: &mut u16 = req.entry(port).or_insert(0);
                *id = id.wrapping_add(1);
                if !model.contains_key(&c(port)) && model.len() >= capacity {
                    let (&lru, _) = model.iter().min_by_key(|(_, &ix)| ix).unwrap();
                    model.remove(&lru);
                }
                model.insert(c(port), index);
                t.record((c(port), *id), index);
                let mut held: Vec<_> = t.clients.iter().map(|(a, s)| (*a, s.last_index)).collect();
                held.sort_unstable();
                let want: Vec<_> = model.iter().map(|(a, ix)| (*a, *ix)).collect();
                proptest::prop_assert_eq!(held, want);
                if index.is_multiple_of(37) {
                    let mut bytes = Vec::new();
                    t.encode(&mut bytes);
                    t = Sessions::decode(&bytes, capacity).unwrap();
                }
            }
        }
    }

    #[test]
    fn an_applied_request_is_a_duplicate_and_others_are_not() {
        let mut s = Sessions::new(4);
        assert!(!s.is_duplicate((c(1), 7)));
        s.record((c(1), 7), 1);
        assert!(s.is_duplicate((c(1), 7)));
        assert!(!s.is_duplicate((c(2), 7)), "sessions are per client");
        // Out of order within the window: fresh, then a duplicate.
        assert!(!s.is_duplicate((c(1), 5)));
        s.record((c(1), 5), 2);
        assert!(s.is_duplicate((c(1), 5)));
    }

    #[test]
    fn a_req_id_is_fresh_again_once_it_left_the_window() {
        let mut s = Sessions::new(1);
        let mut index = 0;
        // A client going once round the req_id space, in order.
        for id in 0..=u16::MAX {
            index += 1;
            assert!(!s.is_duplicate((c(1), id)), "req_id {id}");
            s.record((c(1), id), index);
        }
        // The first half left the window: reused ids are fresh; the newest half is not.
        assert!(!s.is_duplicate((c(1), 0)));
        assert!(!s.is_duplicate((c(1), WINDOW - 1)));
        assert!(s.is_duplicate((c(1), WINDOW)));
        assert!(s.is_duplicate((c(1), u16::MAX)));
        index += 1;
        s.record((c(1), 0), index);
        assert!(s.is_duplicate((c(1), 0)));
        assert!(!s.is_duplicate((c(1), WINDOW)), "left the window");
    }

    #[test]
    fn sessions_survive_encoding_and_bad_bytes_are_refused() {
        let mut s = Sessions::new(8);
        let mut index = 0;
        for id in (0..40_000u16).filter(|i| i % 7 != 3) {
            index += 1;
            s.record((c(1), id), index);
        }
        index += 1;
        s.record((c(2), 9), index);
        let mut bytes = Vec::new();
        s.encode(&mut bytes);
        let t = Sessions::decode(&bytes, 8).unwrap();
        assert_eq!(t.len(), 2);
        for id in 0..=u16::MAX {
            for cl in [c(1), c(2), c(3)] {
                assert_eq!(
                    t.is_duplicate((cl, id)),
                    s.is_duplicate((cl, id)),
                    "{cl} {id}"
                );
            }
        }
        let mut again = Vec::new();
        t.encode(&mut again);
        assert_eq!(again, bytes, "canonical");
        assert!(Sessions::decode(&bytes, 1).is_err(), "over capacity");
        for cut in 0..bytes.len() {
            assert!(Sessions::decode(&bytes[..cut], 8).is_err());
        }
    }

    /// Fuzz target `app_decoders`, input `crash-1c41b8d3eee7ba0de3803c9bb838c27b21887655`:
    /// a table (below, verbatim) whose one client has a single run of length 0 decodes to a
    /// session with no applied req_id; `encode` writes it with no runs, 20 bytes, which
    /// `decode` refused ("22 bytes per client at least"): a snapshot taken after installing
    /// such a table could not be loaded by a follower, nor by the node itself on restart.
    /// Runs of length 0 are now refused (`encode` never writes one); a client with no runs
    /// still round-trips.
    #[test]
    fn a_client_without_runs_encodes_to_bytes_that_decode() {
        let fuzz = [
            0, 0, 0, 1, 10, 1, 0, 1, 0x23, 0x28, 0, 5, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 1, 0, 3,
            0, 0,
        ];
        assert!(Sessions::decode(&fuzz, 4).is_err(), "a run of length 0");
        // The same client with no runs at all.
        let mut no_runs = fuzz[..fuzz.len() - 8].to_vec();
        no_runs.extend_from_slice(&[0, 0, 0, 0]);
        let t = Sessions::decode(&no_runs, 4).unwrap();
        assert_eq!(t.len(), 1);
        assert!(!t.is_duplicate((c(9000), 3)));
        let mut bytes = Vec::new();
        t.encode(&mut bytes);
        assert_eq!(bytes.len(), 4 + 20, "no runs");
        let again = Sessions::decode(&bytes, 4).expect("an encoded table decodes");
        let mut twice = Vec::new();
        again.encode(&mut twice);
        assert_eq!(twice, bytes);
        // One byte short of the 20 is still refused.
        assert!(Sessions::decode(&bytes[..bytes.len() - 1], 4).is_err());
    }

    /// Overlapping runs would let a few bytes set the same window over and over (a peer's
    /// snapshot costing seconds of CPU): runs must be in window order and apart.
    #[test]
    fn overlapping_or_unordered_runs_are_refused() {
        let mut s = Sessions::new(4);
        for (i, id) in [1u16, 2, 3, 10, 11].into_iter().enumerate() {
            s.record((c(1), id), i as u64 + 1);
        }
        let mut bytes = Vec::new();
        s.encode(&mut bytes);
        assert!(Sessions::decode(&bytes, 4).is_ok());
        // Two runs: (1, 3) then (10, 2), the last 8 bytes. Swap them; then make them overlap.
        let n = bytes.len();
        let mut swapped = bytes.clone();
        swapped[n - 8..].copy_from_slice(&[0, 10, 0, 2, 0, 1, 0, 3]);
        assert!(Sessions::decode(&swapped, 4).is_err());
        let mut overlapping = bytes.clone();
        overlapping[n - 8..].copy_from_slice(&[0, 1, 0, 3, 0, 2, 0, 3]);
        assert!(Sessions::decode(&overlapping, 4).is_err());
    }

    #[test]
    fn the_least_recent_client_is_evicted() {
        let mut s = Sessions::new(2);
        s.record((c(1), 1), 1);
        s.record((c(2), 1), 2);
        s.record((c(1), 2), 3);
        s.record((c(3), 1), 4);
        assert_eq!((s.len(), s.evicted), (2, 1));
        assert!(!s.is_duplicate((c(2), 1)), "client 2 was least recent");
        assert!(s.is_duplicate((c(1), 1)) && s.is_duplicate((c(3), 1)));
    }

    #[test]
    fn refusals_are_remembered_for_their_ttl_and_capacity() {
        let mut r = Refusals::new(2, Duration::from_us(10));
        let t = Instant::from_ns(0);
        r.insert(t, (c(1), 1), Refusal::FlowControl);
        assert_eq!(r.get(t, &(c(1), 1)), Some(Refusal::FlowControl));
        assert_eq!(r.get(Instant::from_ns(10_000), &(c(1), 1)), None);
        r.insert(t, (c(1), 2), Refusal::NoReplier);
        r.insert(t, (c(1), 3), Refusal::NoReplier);
        r.insert(t, (c(1), 4), Refusal::NoReplier);
        assert_eq!(r.get(t, &(c(1), 2)), None, "capacity 2");
        assert_eq!(r.get(t, &(c(1), 4)), Some(Refusal::NoReplier));
    }
}
