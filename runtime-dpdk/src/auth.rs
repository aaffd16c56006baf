//! Authenticated cluster traffic (issue 16). Membership used to be a source IP:port match,
//! which a host that can forge source addresses defeats. Every datagram a node sends whose
//! R2P2 type is a Raft type (RAFT_REQ, RAFT_REP, RAFT_MSG: node-to-node traffic) now carries
//! a trailer with a keyed MAC; a receiving node hands such a datagram to the core only when
//! the MAC verifies, the trailer names this node (or all nodes) as destination, and the
//! replay window has not seen it. Client REQUEST/RESPONSE traffic is left as is: R2P2 clients
//! are outside the cluster and hold no key.
//!
//! ```text
//! datagram = R2P2 packet (unchanged) || trailer (35 bytes)
//! trailer  = version 0xA1 | sender id u8 | destination id u8 (0xFF: every node)
//!          | epoch u64 BE | counter u64 BE | tag [16]
//! tag      = BLAKE3-keyed(subkey, trailer[..19] || packet) truncated to 128 bits
//! subkey   = BLAKE3-derive_key(CONTEXT, key || cluster id u64 BE || cluster name)
//! ```
//!
//! Why each field: the subkey binds the tag to one cluster (one key file shared by two
//! clusters cannot cross-feed them); the sender id is what the node then believes, not the
//! source address (the runtime hands the core the member's configured address); the
//! destination stops a genuine message to node A (say a vote granted to candidate A) from
//! being replayed to node B; epoch and counter feed the replay window.
//!
//! Replay window (as IPsec's and WireGuard's): per peer, the highest epoch seen, the highest
//! counter seen in it, and a bitmap of the last [`WINDOW_BITS`] counters. A message with a
//! higher epoch starts a fresh window (the sender restarted); a lower epoch is refused (a
//! recording of an earlier incarnation). The sender's epoch is `max(wall-clock ns at start,
//! previous epoch + 1)`, the previous one read from `<storage dir>/auth_epoch` and written back
//! synced before the node sends anything, so it increases strictly across restarts even if
//! the wall clock steps back. Counters start at 1 in each epoch. Residual: a receiver that
//! restarts forgets its windows, so until a peer's next genuine message it would accept one
//! replay of each message of that peer's current epoch; Raft is safe under duplicated and
//! delayed messages, so that costs at most some wasted work (documented in the README).
//!
//! The tag is compared in constant time (`constant_time_eq`). Nothing here panics on any
//! input: every length is checked before it is sliced.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// Key file length: 32 random bytes.
pub const KEY_BYTES: usize = 32;
/// Length of the truncated tag (128 bits, as Poly1305 and WireGuard's MACs).
pub const TAG_BYTES: usize = 16;
/// Trailer fields the tag covers (everything before the tag).
const FIELDS_BYTES: usize = 1 + 1 + 1 + 8 + 8;
/// Bytes the trailer adds to every cluster datagram.
pub const TRAILER_BYTES: usize = FIELDS_BYTES + TAG_BYTES;
/// Trailer format version (a later format changes it; old receivers refuse it as malformed).
pub const TRAILER_VERSION: u8 = 0xA1;
/// Destination id meaning "every node" (what goes to the group).
pub const DST_ALL: u8 = 0xFF;
/// Counters the replay window remembers behind the highest one (in 64-bit words).
pub const WINDOW_WORDS: usize = 64;
/// Width of the replay window: reordering deeper than this is refused as too old.
pub const WINDOW_BITS: u64 = WINDOW_WORDS as u64 * 64;
/// BLAKE3 KDF context: fixed, unique to this use (BLAKE3's rule for `derive_key`).
const CONTEXT: &str = "hovercraft-runtime 2024-06 cluster datagram MAC v1";

/// Whether an R2P2 datagram is node-to-node traffic that must be authenticated: its type
/// nibble (byte 2, high half) is RAFT_REQ (5), RAFT_REP (6) or RAFT_MSG (7). The check is on
/// the type alone, not on the magic, so nothing the core would dispatch as a Raft message can
/// reach it unauthenticated. Shorter datagrams go to the core, which refuses them.
pub fn is_cluster_datagram(datagram: &[u8]) -> bool {
    datagram.get(2).is_some_and(|b| matches!(b >> 4, 5..=7))
}

/// The per-cluster MAC key derived from the key file's bytes.
pub fn subkey(key: &[u8; KEY_BYTES], cluster_id: u64, cluster_name: &str) -> [u8; 32] {
    let mut material = Vec::with_capacity(KEY_BYTES + 8 + cluster_name.len());
    material.extend_from_slice(key);
    material.extend_from_slice(&cluster_id.to_be_bytes());
    material.extend_from_slice(cluster_name.as_bytes());
    blake3::derive_key(CONTEXT, &material)
}

fn tag(subkey: &[u8; 32], fields: &[u8], packet: &[u8]) -> [u8; TAG_BYTES] {
    let mut h = blake3::Hasher::new_keyed(subkey);
    h.update(fields);
    h.update(packet);
    let full = h.finalize();
    let mut t = [0u8; TAG_BYTES];
    t.copy_from_slice(&full.as_bytes()[..TAG_BYTES]);
    t
}

/// The sending side: this node's id, its epoch and its next counter.
pub struct Sealer {
    subkey: [u8; 32],
    id: u8,
    epoch: u64,
    next_counter: u64,
}

impl Sealer {
    pub fn new(subkey: [u8; 32], id: u8, epoch: u64) -> Sealer {
        Sealer {
            subkey,
            id,
            epoch,
            next_counter: 1,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Writes `packet || trailer` for destination `dst` (a node id or [`DST_ALL`]) into `out`.
    pub fn seal(&mut self, dst: u8, packet: &[u8], out: &mut Vec<u8>) {
        // 2^64 messages outlast the hardware; saturating keeps it panic-free regardless.
        let counter = self.next_counter;
        self.next_counter = self.next_counter.saturating_add(1);
        let mut fields = [0u8; FIELDS_BYTES];
        fields[0] = TRAILER_VERSION;
        fields[1] = self.id;
        fields[2] = dst;
        fields[3..11].copy_from_slice(&self.epoch.to_be_bytes());
        fields[11..19].copy_from_slice(&counter.to_be_bytes());
        let t = tag(&self.subkey, &fields, packet);
        out.clear();
        out.reserve(packet.len() + TRAILER_BYTES);
        out.extend_from_slice(packet);
        out.extend_from_slice(&fields);
        out.extend_from_slice(&t);
    }
}

/// Why a cluster datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Too short for a trailer, or an unknown trailer version.
    Malformed,
    /// The claimed sender is not a member of this cluster.
    UnknownSender,
    /// The tag does not verify under any accepted key.
    BadMac,
    /// Genuine, but for another node.
    Misdirected,
    /// Genuine, from an earlier incarnation of the sender.
    StaleEpoch,
    /// Genuine, and already received.
    Replayed,
    /// Genuine, but older than the replay window remembers.
    TooOld,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed or missing MAC trailer",
            Reject::UnknownSender => "claimed sender is not a member",
            Reject::BadMac => "bad MAC",
            Reject::Misdirected => "addressed to another node",
            Reject::StaleEpoch => "epoch older than the sender's latest",
            Reject::Replayed => "replayed",
            Reject::TooOld => "older than the replay window",
        }
    }
}

/// Counts of authenticated datagrams accepted and refused, by reason (in `status.json`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AuthCounters {
    pub accepted: u64,
    pub malformed: u64,
    pub unknown_sender: u64,
    pub bad_mac: u64,
    pub misdirected: u64,
    pub stale_epoch: u64,
    pub replayed: u64,
    pub too_old: u64,
    /// Peers seen restarting (a higher epoch than before).
    pub epochs_advanced: u64,
}

impl AuthCounters {
    fn count(&mut self, r: Reject) {
        let c = match r {
            Reject::Malformed => &mut self.malformed,
            Reject::UnknownSender => &mut self.unknown_sender,
            Reject::BadMac => &mut self.bad_mac,
            Reject::Misdirected => &mut self.misdirected,
            Reject::StaleEpoch => &mut self.stale_epoch,
            Reject::Replayed => &mut self.replayed,
            Reject::TooOld => &mut self.too_old,
        };
        *c += 1;
    }

    pub fn rejected(&self) -> u64 {
        self.malformed
            + self.unknown_sender
            + self.bad_mac
            + self.misdirected
            + self.stale_epoch
            + self.replayed
            + self.too_old
    }
}

/// One peer's replay window.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    epoch: u64,
    /// Highest counter accepted in `epoch` (0: none yet; senders start at 1).
    top: u64,
    /// Ring of bits: counter `c` is bit `c % WINDOW_BITS`. Words are cleared as the window
    /// slides over them, so the ring holds whole words `top/64 - WINDOW_WORDS + 1 ..= top/64`.
    bits: [u64; WINDOW_WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            epoch: 0,
            top: 0,
            bits: [0; WINDOW_WORDS],
        }
    }
}

impl ReplayWindow {
    /// Whether (epoch, counter) is new; records it if so. Call only for authentic messages:
    /// a forged one must not move the window.
    pub fn accept(&mut self, epoch: u64, counter: u64) -> Result<bool, Reject> {
        let mut advanced = false;
        if epoch < self.epoch {
            return Err(Reject::StaleEpoch);
        }
        if epoch > self.epoch {
            advanced = self.epoch != 0;
            *self = ReplayWindow {
                epoch,
                ..ReplayWindow::default()
            };
        }
        let word = counter / 64;
        let top_word = self.top / 64;
        if counter > self.top {
            // Clear the words the window slides onto (at most the whole ring).
            let fresh = (word - top_word).min(WINDOW_WORDS as u64);
            for w in 0..fresh {
                let i = (word - w) % WINDOW_WORDS as u64;
                self.bits[i as usize] = 0;
            }
            self.top = counter;
        } else if word + (WINDOW_WORDS as u64) <= top_word {
            return Err(Reject::TooOld);
        }
        let i = ((counter % WINDOW_BITS) / 64) as usize;
        let bit = 1u64 << (counter % 64);
        if self.bits[i] & bit != 0 {
            return Err(Reject::Replayed);
        }
        self.bits[i] |= bit;
        Ok(advanced)
    }
}

/// The receiving side: accepted keys (the current one first), this node's id, and one
/// replay window per peer.
pub struct Opener {
    subkeys: Vec<[u8; 32]>,
    me: u8,
    windows: Vec<ReplayWindow>,
    pub counters: AuthCounters,
}

impl Opener {
    /// `subkeys`: every key accepted (during a rotation, the new and the old one).
    pub fn new(subkeys: Vec<[u8; 32]>, me: u8, nodes: usize) -> Opener {
        Opener {
            subkeys,
            me,
            windows: vec![ReplayWindow::default(); nodes],
            counters: AuthCounters::default(),
        }
    }

    /// Checks a cluster datagram; returns the authenticated sender and the R2P2 packet.
    /// Counts the outcome either way.
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<(u8, &'a [u8]), Reject> {
        let r = self.check(datagram);
        match r {
            Ok(_) => self.counters.accepted += 1,
            Err(e) => self.counters.count(e),
        }
        r
    }

    fn check<'a>(&mut self, datagram: &'a [u8]) -> Result<(u8, &'a [u8]), Reject> {
        let Some(split) = datagram.len().checked_sub(TRAILER_BYTES) else {
            return Err(Reject::Malformed);
        };
        let (packet, trailer) = datagram.split_at(split);
        let (fields, got) = trailer.split_at(FIELDS_BYTES);
        if fields[0] != TRAILER_VERSION {
            return Err(Reject::Malformed);
        }
        let (sender, dst) = (fields[1], fields[2]);
        // This node's own id is a member too: without multicast, what it sends to the group
        // comes back to it, as before authentication (its own replay window guards it).
        if sender as usize >= self.windows.len() {
            return Err(Reject::UnknownSender);
        }
        // Every key is tried (no early exit), each compare in constant time: the timing
        // tells nothing about which key or which byte failed.
        let mut ok = false;
        for k in &self.subkeys {
            let want = tag(k, fields, packet);
            ok |= constant_time_eq::constant_time_eq(&want, got);
        }
        if !ok {
            return Err(Reject::BadMac);
        }
        if dst != self.me && dst != DST_ALL {
            return Err(Reject::Misdirected);
        }
        let mut be = [0u8; 8];
        be.copy_from_slice(&fields[3..11]);
        let epoch = u64::from_be_bytes(be);
        be.copy_from_slice(&fields[11..19]);
        let counter = u64::from_be_bytes(be);
        if self.windows[sender as usize].accept(epoch, counter)? {
            self.counters.epochs_advanced += 1;
        }
        Ok((sender, packet))
    }
}

/// Reads a key file: exactly [`KEY_BYTES`] bytes, readable by its owner only (like ssh, a key
/// others can read is refused rather than trusted). The error is the reason, one line.
pub fn load_key(path: &Path) -> Result<[u8; KEY_BYTES], String> {
    use std::os::unix::fs::PermissionsExt;
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is readable or writable by group or others (mode {mode:04o}): chmod 600 it",
            path.display()
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    <[u8; KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "{} holds {} bytes; a key is exactly {KEY_BYTES} random bytes (make one with \
             `hovercraft-node keygen {}`)",
            path.display(),
            bytes.len(),
            path.display()
        )
    })
}

/// Writes a new random key to `path` (mode 0600, created new: an existing key is never
/// overwritten, since replacing it by accident would cut the node off its cluster).
pub fn keygen(path: &Path) -> Result<(), String> {
    use rand::RngCore;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; KEY_BYTES];
    // The operating system's CSPRNG (getrandom(2)), never a seeded generator.
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|e| format!("cannot get random bytes from the OS: {e}"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(&key)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// This process's epoch: `max(now_ns, previous + 1)` with the previous one kept in `file`,
/// written back and synced before it is used, so epochs increase strictly across restarts
/// even when the wall clock steps back.
pub fn next_epoch(file: &Path, now_ns: u64) -> Result<u64, String> {
    let previous = match std::fs::read_to_string(file) {
        Ok(t) => t.trim().parse::<u64>().map_err(|e| {
            format!(
                "{}: not an epoch ({e}); it holds the last MAC epoch of this node (remove it \
                 only if every peer restarts too)",
                file.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let epoch = now_ns.max(previous.saturating_add(1));
    let tmp = file.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{epoch}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)?;
        if let Some(dir) = file.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(epoch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 32] = [7; 32];

    fn pair(n: usize) -> (Sealer, Opener) {
        let k = subkey(&KEY, 42, "c");
        (Sealer::new(k, 1, 1_000), Opener::new(vec![k], 0, n))
    }

    fn raft_packet(len: usize) -> Vec<u8> {
        let mut p = vec![0xAB; len.max(8)];
        p[0] = 0xCC;
        p[2] = 0x50; // RAFT_REQ
        p
    }

    #[test]
    fn classifies_by_type_nibble() {
        assert!(is_cluster_datagram(&raft_packet(8)));
        assert!(!is_cluster_datagram(&[0xCC, 8, 0x00, 0x80]));
        assert!(!is_cluster_datagram(&[0xCC, 8]));
        assert!(is_cluster_datagram(&[0, 0, 0x7F]));
    }

    #[test]
    fn genuine_opens_and_every_tamper_is_refused() {
        let (mut s, mut o) = pair(3);
        let p = raft_packet(100);
        let mut d = Vec::new();
        s.seal(0, &p, &mut d);
        assert_eq!(d.len(), p.len() + TRAILER_BYTES);
        assert_eq!(o.open(&d), Ok((1, &p[..])));
        // Flip each byte of a fresh message in turn: never accepted.
        s.seal(0, &p, &mut d);
        for i in 0..d.len() {
            let mut t = d.clone();
            t[i] ^= 0x01;
            let r = o.open(&t);
            assert!(r.is_err(), "byte {i} flipped was accepted");
        }
        // The untampered one still opens: refusals did not move the window.
        assert_eq!(o.open(&d), Ok((1, &p[..])));
        assert_eq!(o.counters.accepted, 2);
    }

    #[test]
    fn wrong_key_or_cluster_is_a_bad_mac() {
        let p = raft_packet(64);
        let mut d = Vec::new();
        for k in [
            subkey(&[8; 32], 42, "c"),
            subkey(&KEY, 43, "c"),
            subkey(&KEY, 42, "d"),
        ] {
            Sealer::new(k, 1, 5).seal(0, &p, &mut d);
            let (_, mut o) = pair(3);
            assert_eq!(o.open(&d), Err(Reject::BadMac));
            assert_eq!(o.counters.bad_mac, 1);
        }
    }

    #[test]
    fn replays_old_epochs_and_strangers_are_refused() {
        let (mut s, mut o) = pair(3);
        let p = raft_packet(20);
        let mut d = Vec::new();
        s.seal(DST_ALL, &p, &mut d);
        assert!(o.open(&d).is_ok());
        assert_eq!(o.open(&d), Err(Reject::Replayed));
        // The sender restarts with a higher epoch: accepted; the old recording is not.
        let k = subkey(&KEY, 42, "c");
        let mut s2 = Sealer::new(k, 1, 2_000);
        let mut d2 = Vec::new();
        s2.seal(0, &p, &mut d2);
        assert!(o.open(&d2).is_ok());
        assert_eq!(o.counters.epochs_advanced, 1);
        s.seal(0, &p, &mut d);
        assert_eq!(o.open(&d), Err(Reject::StaleEpoch));
        // For another node.
        s2.seal(2, &p, &mut d2);
        assert_eq!(o.open(&d2), Err(Reject::Misdirected));
        // This node's own group messages come back to it; a node outside the cluster does not
        // exist.
        Sealer::new(k, 0, 3_000).seal(DST_ALL, &p, &mut d);
        assert_eq!(o.open(&d), Ok((0, &p[..])));
        Sealer::new(k, 9, 3_000).seal(0, &p, &mut d);
        assert_eq!(o.open(&d), Err(Reject::UnknownSender));
        Sealer::new(k, 3, 3_000).seal(0, &p, &mut d);
        assert_eq!(o.open(&d), Err(Reject::UnknownSender));
        let c = o.counters;
        assert_eq!(
            (c.replayed, c.stale_epoch, c.misdirected, c.unknown_sender),
            (1, 1, 1, 2)
        );
    }

    #[test]
    fn reordering_within_the_window_is_accepted_beyond_it_refused() {
        let (mut s, mut o) = pair(3);
        let p = raft_packet(10);
        let msgs: Vec<Vec<u8>> = (0..WINDOW_BITS + 200)
            .map(|_| {
                let mut d = Vec::new();
                s.seal(0, &p, &mut d);
                d
            })
            .collect();
        // Newest first down to the oldest still in the window, then the rest.
        let last = msgs.len() - 1;
        assert!(o.open(&msgs[last]).is_ok());
        assert!(o.open(&msgs[last - 100]).is_ok());
        assert!(o.open(&msgs[last - 1]).is_ok());
        assert_eq!(o.open(&msgs[last - 100]), Err(Reject::Replayed));
        assert_eq!(o.open(&msgs[0]), Err(Reject::TooOld));
        // Counter (last+1) - (WINDOW_BITS - 64) is always inside the ring.
        let edge = last + 1 - (WINDOW_BITS as usize - 64);
        assert!(o.open(&msgs[edge]).is_ok());
    }

    #[test]
    fn a_far_jump_clears_the_whole_ring() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(1, 5), Ok(false));
        assert_eq!(w.accept(1, 5 + 10 * WINDOW_BITS), Ok(false));
        // Counter 5 + 9·WINDOW_BITS was never seen and is too old; same-slot aliases too.
        assert_eq!(w.accept(1, 5 + 9 * WINDOW_BITS), Err(Reject::TooOld));
        assert_eq!(w.accept(1, 5 + 10 * WINDOW_BITS - 1), Ok(false));
        assert_eq!(w.accept(1, u64::MAX), Ok(false));
        assert_eq!(w.accept(1, u64::MAX), Err(Reject::Replayed));
        assert_eq!(w.accept(0, 1), Err(Reject::StaleEpoch));
        assert_eq!(w.accept(2, 1), Ok(true));
    }

    #[test]
    fn short_and_garbage_input_is_malformed() {
        let (_, mut o) = pair(3);
        for n in 0..TRAILER_BYTES {
            assert_eq!(o.open(&vec![0xA1; n]), Err(Reject::Malformed));
        }
        assert_eq!(o.open(&[0u8; 100]), Err(Reject::Malformed));
    }

    #[test]
    fn key_files_are_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hc-auth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let k = dir.join("k");
        keygen(&k).unwrap();
        let meta = std::fs::metadata(&k).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let key = load_key(&k).unwrap();
        assert_ne!(key, [0; 32]);
        assert!(keygen(&k).unwrap_err().starts_with("cannot create"));
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_key(&k).unwrap_err().contains("chmod 600"));
        let short = dir.join("short");
        std::fs::write(&short, b"abc").unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = load_key(&short).unwrap_err();
        assert!(e.contains("holds 3 bytes") && !e.contains('\n'), "{e}");
        assert!(load_key(&dir.join("none"))
            .unwrap_err()
            .starts_with("cannot read"));
        // Epochs increase strictly even when the clock goes back.
        let ef = dir.join("auth_epoch");
        assert_eq!(next_epoch(&ef, 100), Ok(100));
        assert_eq!(next_epoch(&ef, 50), Ok(101));
        assert_eq!(next_epoch(&ef, 500), Ok(500));
        std::fs::write(&ef, "x").unwrap();
        assert!(next_epoch(&ef, 1).unwrap_err().contains("not an epoch"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    proptest! {
        /// Arbitrary bytes never panic and are never accepted (no key, no tag).
        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let (_, mut o) = pair(4);
            prop_assert!(o.open(&bytes).is_err());
        }

        /// Any delivery order of genuine messages accepts each exactly once when within the
        /// window, and the window never accepts a duplicate.
        #[test]
        fn each_message_accepted_at_most_once(order in proptest::collection::vec(0usize..300, 1..600)) {
            let (mut s, mut o) = pair(3);
            let p = raft_packet(16);
            let msgs: Vec<Vec<u8>> = (0..300).map(|_| { let mut d = Vec::new(); s.seal(0, &p, &mut d); d }).collect();
            let mut seen = std::collections::BTreeSet::new();
            for i in order {
                let r = o.open(&msgs[i]);
                if seen.insert(i) {
                    prop_assert!(r.is_ok(), "first delivery of {} refused: {:?}", i, r);
                } else {
                    prop_assert_eq!(r, Err(Reject::Replayed));
                }
            }
        }

        /// A single flipped bit anywhere is refused.
        #[test]
        fn any_flipped_bit_is_refused(len in 8usize..300, pos in any::<usize>(), bit in 0u8..8) {
            let (mut s, mut o) = pair(3);
            let mut d = Vec::new();
            s.seal(0, &raft_packet(len), &mut d);
            let i = pos % d.len();
            d[i] ^= 1 << bit;
            prop_assert!(o.open(&d).is_err());
        }
    }
}
