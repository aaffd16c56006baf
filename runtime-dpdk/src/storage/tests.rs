//! The log file's contract: replay rebuilds what was written, cuts only a torn last write,
//! and refuses every other damage with the offset and record named (the corruption matrix of
//! issue 15), and another cluster's or node's file.

use super::writer::Writer;
use super::*;

fn entry(term: u64, req_id: u16, body: Option<&[u8]>) -> LogEntry {
    LogEntry {
        term,
        client: SocketAddrV4::new([10, 77, 0, 4].into(), 4242),
        req_id,
        policy: Policy::ReplicatedRoute,
        replier: 2,
        body: body.map(|b| b.to_vec()),
    }
}

fn req(
    seq: u64,
    term: u64,
    vote: Option<u8>,
    from: Option<u64>,
    last: u64,
    entries: Vec<LogEntry>,
) -> PersistRequest {
    PersistRequest {
        seq,
        term,
        voted_for: vote,
        log_from: from,
        last_index: last,
        entries,
        snapshot: None,
    }
}

fn ident() -> LogIdentity {
    let members: Vec<SocketAddrV4> = (0..3)
        .map(|i| SocketAddrV4::new([10, 77, 0, i + 1].into(), 7000))
        .collect();
    LogIdentity {
        cluster_id: cluster_id(Mode::Hovercraft, &members),
        cluster_name: "test-3".into(),
        node_id: 1,
        nodes: 3,
        mode: Mode::Hovercraft,
        app: AppKind::Kv,
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hc-storage-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// A log shaped like a real follower's: a vote, one record per appended entry (some with
/// bodies), and a new leader rewriting a suffix. Returns its bytes and the state it holds.
fn sample_log(name: &str, records: u64) -> (PathBuf, Vec<u8>, DurableState) {
    let path = dir(name).join("raft.log");
    let (mut f, s, _) = LogFile::open(&path, &ident(), false).unwrap();
    assert_eq!(s, DurableState::default());
    f.append(&req(1, 1, Some(0), None, 0, vec![]));
    let mut last = 0;
    let mut term = 1;
    for seq in 2..records {
        if seq % 17 == 0 {
            // A new leader in a higher term overwrites the last two entries.
            term += 1;
            let from = last - 1;
            let es = vec![
                entry(term, seq as u16, None),
                entry(term, seq as u16 + 1, None),
            ];
            f.append(&req(seq, term, None, Some(from), from + 1, es));
            last = from + 1;
        } else {
            last += 1;
            let body = (seq % 3 == 0).then_some(&b"SET k v"[..]);
            let e = entry(term, seq as u16, body);
            let vote = (term == 1).then_some(0);
            f.append(&req(seq, term, vote, Some(last), last, vec![e]));
        }
        if seq % 5 == 0 {
            f.flush().unwrap();
        }
    }
    f.flush().unwrap();
    drop(f);
    let data = std::fs::read(&path).unwrap();
    let (state, r) = replay(&data, &ident()).unwrap();
    assert_eq!(r.records, records - 1);
    assert!(r.cut.is_none());
    (path, data, state)
}

/// (offset, total length) of every whole record of an undamaged file (or its prefix).
fn frames(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = HEADER_BYTES;
    while pos + FRAME_BYTES <= data.len()
        && pos + FRAME_BYTES + (le_u32(data, pos) as usize) <= data.len()
    {
        let len = FRAME_BYTES + le_u32(data, pos) as usize;
        out.push((pos, len));
        pos += len;
    }
    out
}

/// What replay gives for the first `k` records of an undamaged file.
fn prefix_state(data: &[u8], k: usize) -> DurableState {
    let end = frames(data).get(k).map_or(data.len(), |f| f.0);
    replay(&data[..end], &ident()).unwrap().0
}

fn expect_corrupt(data: &[u8], record: usize, offset: usize, what: &str) -> String {
    match replay(data, &ident()) {
        Err(e @ ReplayError::Corrupt { .. }) => {
            assert_eq!(
                e,
                ReplayError::Corrupt {
                    offset: offset as u64,
                    record: record as u64,
                    reason: match &e {
                        ReplayError::Corrupt { reason, .. } => reason.clone(),
                        _ => unreachable!(),
                    },
                },
                "{what}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("record {record} at byte {offset}")) && !msg.contains('\n'),
                "{what}: {msg}"
            );
            msg
        }
        other => panic!("{what}: expected a refusal at record {record}, got {other:?}"),
    }
}

fn expect_cut(data: &[u8], record: usize, what: &str) -> (DurableState, Replay) {
    let (state, r) = replay(data, &ident()).unwrap_or_else(|e| panic!("{what}: refused: {e}"));
    let cut = r
        .cut
        .clone()
        .unwrap_or_else(|| panic!("{what}: nothing cut"));
    assert_eq!(cut.record, record as u64, "{what}: {cut:?}");
    assert_eq!(r.records, record as u64, "{what}");
    assert_eq!(state, prefix_state(data, record), "{what}");
    (state, r)
}

#[test]
fn replays_votes_appends_and_truncations() {
    let path = dir("replay").join("raft.log");
    {
        let (mut f, _, _) = LogFile::open(&path, &ident(), true).unwrap();
        f.append(&req(1, 1, Some(0), None, 0, vec![]));
        f.append(&req(
            2,
            1,
            Some(0),
            Some(1),
            3,
            vec![
                entry(1, 1, Some(b"a")),
                entry(1, 2, None),
                entry(1, 3, None),
            ],
        ));
        f.flush().unwrap();
        // A new leader rewrites the suffix from index 3.
        f.append(&req(3, 2, None, Some(3), 3, vec![entry(2, 9, Some(b"z"))]));
        f.flush().unwrap();
    }
    let (_, s, r) = LogFile::open(&path, &ident(), true).unwrap();
    assert_eq!((r.records, r.cut), (3, None));
    assert_eq!((s.term, s.voted_for), (2, None));
    assert_eq!(
        s.entries,
        vec![
            entry(1, 1, Some(b"a")),
            entry(1, 2, None),
            entry(2, 9, Some(b"z"))
        ]
    );
}

// ---- the corruption matrix ----

#[test]
fn bit_flips_before_the_last_record_are_refused_with_offset_and_record() {
    let (_, data, _) = sample_log("flips", 60);
    let f = frames(&data);
    let n = f.len();
    for (k, name) in [(1, "early"), (n / 2, "middle"), (n - 2, "late")] {
        // In the payload, and in the header (the record number's low byte).
        for (at, part) in [
            (f[k].0 + FRAME_BYTES + 3, "payload"),
            (f[k].0 + 4, "header"),
        ] {
            let mut d = data.clone();
            d[at] ^= 0x10;
            expect_corrupt(&d, k, f[k].0, &format!("{name} record {k}, {part}"));
        }
    }
}

#[test]
fn a_bit_flip_in_the_last_record_is_a_torn_write_and_cut() {
    let (_, data, _) = sample_log("flip-last", 60);
    let f = frames(&data);
    let k = f.len() - 1;
    for at in [f[k].0 + 1, f[k].0 + FRAME_BYTES + 2, data.len() - 1] {
        let mut d = data.clone();
        d[at] ^= 0x01;
        let (_, r) = expect_cut(&d, k, &format!("flip at byte {at} of the last record"));
        assert_eq!(r.cut_bytes(), f[k].1 as u64);
    }
}

#[test]
fn a_zeroed_4k_block_mid_file_is_refused() {
    let (_, data, _) = sample_log("zero-block", 400);
    assert!(data.len() > 3 * 4096, "{}", data.len());
    let mut d = data.clone();
    d[4096..8192].fill(0);
    let f = frames(&data);
    // The first damaged record is the one that holds byte 4096.
    let k = f.iter().position(|&(o, l)| o + l > 4096).unwrap();
    let msg = expect_corrupt(&d, k, f[k].0, "zeroed block");
    assert!(msg.contains("a valid record"), "{msg}");
}

#[test]
fn swapped_records_are_refused() {
    let (_, data, _) = sample_log("swap", 60);
    let f = frames(&data);
    for k in [3, f.len() - 2] {
        let (a, b) = (f[k], f[k + 1]);
        let mut d = data[..a.0].to_vec();
        d.extend_from_slice(&data[b.0..b.0 + b.1]);
        d.extend_from_slice(&data[a.0..a.0 + a.1]);
        d.extend_from_slice(&data[b.0 + b.1..]);
        let msg = expect_corrupt(&d, k, a.0, &format!("records {k} and {} swapped", k + 1));
        assert!(msg.contains("where"), "{msg}");
    }
}

#[test]
fn a_bad_length_field_is_refused() {
    let (_, data, _) = sample_log("bad-len", 60);
    let f = frames(&data);
    let k = f.len() / 2;
    // Longer than the file (would look like a torn tail without the header checksum),
    // slightly longer, shorter.
    for len in [u32::MAX, 1 << 20, le_u32(&data, f[k].0) + 1, 3] {
        let mut d = data.clone();
        d[f[k].0..f[k].0 + 4].copy_from_slice(&len.to_le_bytes());
        expect_corrupt(&d, k, f[k].0, &format!("length {len}"));
    }
}

#[test]
fn a_truncated_last_record_is_cut_and_appends_continue() {
    let (path, data, full) = sample_log("torn", 40);
    let f = frames(&data);
    let k = f.len() - 1;
    for keep in [1, FRAME_BYTES - 1, FRAME_BYTES, FRAME_BYTES + 3, f[k].1 - 1] {
        expect_cut(
            &data[..f[k].0 + keep],
            k,
            &format!("{keep} bytes of the last record"),
        );
    }
    // Through the file: cut on disk, then appends continue after it.
    std::fs::write(&path, &data[..data.len() - 3]).unwrap();
    let (mut log, s, r) = LogFile::open(&path, &ident(), true).unwrap();
    assert_eq!(r.records as usize, k);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), f[k].0 as u64);
    let last = s.entries.len() as u64;
    log.append(&req(
        99,
        full.term + 1,
        Some(1),
        Some(last + 1),
        last + 1,
        vec![entry(full.term + 1, 7, None)],
    ));
    log.flush().unwrap();
    drop(log);
    let (_, s2, r2) = LogFile::open(&path, &ident(), true).unwrap();
    assert_eq!((r2.records as usize, r2.cut), (k + 1, None));
    assert_eq!(s2.term, full.term + 1);
    assert_eq!(s2.entries.last().unwrap().req_id, 7);
}

/// Garbage after the last good record cannot hold acknowledged state: it never parses as a
/// complete record with the next number, and a crash mid-append leaves exactly such bytes.
#[test]
fn garbage_or_zeros_after_the_last_record_are_cut() {
    let (_, data, full) = sample_log("garbage-tail", 40);
    let n = frames(&data).len();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut garbage = Vec::new();
    for _ in 0..5000 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        garbage.push(rng as u8);
    }
    for (tail, what) in [
        (garbage.clone(), "random bytes"),
        (vec![0u8; 8192], "zeros (file extended, data never written)"),
        (vec![0xFF; 7], "a few bytes"),
    ] {
        let mut d = data.clone();
        d.extend_from_slice(&tail);
        let (s, r) = expect_cut(&d, n, what);
        assert_eq!(s, full, "{what}");
        assert_eq!(r.cut_bytes(), tail.len() as u64, "{what}");
    }
}

#[test]
fn the_writer_cannot_produce_these_records_so_they_are_refused() {
    let cases: Vec<(&str, Vec<PersistRequest>)> = vec![
        (
            "term goes back",
            vec![
                req(1, 5, None, None, 0, vec![]),
                req(2, 4, None, None, 0, vec![]),
            ],
        ),
        (
            "vote changes",
            vec![
                req(1, 5, Some(0), None, 0, vec![]),
                req(2, 5, Some(2), None, 0, vec![]),
            ],
        ),
        (
            "gap",
            vec![req(1, 1, None, Some(3), 3, vec![entry(1, 1, None)])],
        ),
        (
            "entry term above the record's",
            vec![req(1, 1, None, Some(1), 1, vec![entry(2, 1, None)])],
        ),
        (
            "entry terms out of order",
            vec![req(
                1,
                3,
                None,
                Some(1),
                2,
                vec![entry(3, 1, None), entry(2, 2, None)],
            )],
        ),
        (
            "last index beyond the log",
            vec![req(1, 1, None, None, 4, vec![])],
        ),
    ];
    for (what, reqs) in cases {
        let path = dir("impossible").join("raft.log");
        let (mut f, _, _) = LogFile::open(&path, &ident(), false).unwrap();
        for r in &reqs {
            f.append(r);
        }
        f.flush().unwrap();
        drop(f);
        let data = std::fs::read(&path).unwrap();
        let k = reqs.len() - 1;
        // Even as the last record: its checksums hold, so no torn write made it.
        let msg = expect_corrupt(&data, k, frames(&data)[k].0, what);
        println!("{what}: {msg}");
    }
}

#[test]
fn another_clusters_or_nodes_log_is_refused_naming_the_field() {
    let (path, data, _) = sample_log("identity", 10);
    let members = |port: u16| -> Vec<SocketAddrV4> {
        (0..3)
            .map(|i| SocketAddrV4::new([10, 77, 0, i + 1].into(), port))
            .collect()
    };
    let other_cluster = LogIdentity {
        cluster_id: cluster_id(Mode::Hovercraft, &members(7001)),
        cluster_name: "other".into(),
        ..ident()
    };
    let cases = [
        (other_cluster, "cluster_id"),
        (
            LogIdentity {
                node_id: 2,
                ..ident()
            },
            "node_id",
        ),
        (
            LogIdentity {
                mode: Mode::Raft,
                ..ident()
            },
            "mode",
        ),
        (
            LogIdentity {
                app: AppKind::Synthetic,
                ..ident()
            },
            "app",
        ),
        (
            LogIdentity {
                nodes: 5,
                ..ident()
            },
            "nodes",
        ),
    ];
    for (want, field) in cases {
        let e = LogFile::open(&path, &want, false).err().unwrap();
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}: belongs to another", path.display()))
                && msg.contains(&format!("header field `{field}`"))
                && !msg.contains('\n'),
            "{field}: {msg}"
        );
        println!("{msg}");
    }
    // Refusing changed nothing.
    assert_eq!(std::fs::read(&path).unwrap(), data);
    // Member order is part of the identity (ids name nodes in votes).
    let mut swapped = members(7000);
    swapped.swap(0, 1);
    assert_ne!(cluster_id(Mode::Hovercraft, &swapped), ident().cluster_id);
}

#[test]
fn headerless_and_damaged_headers_are_refused_with_what_to_do() {
    // A record in the format before version 1: `len u32 | crc u32 | payload`.
    let mut payload = Vec::new();
    encode_payload(&req(1, 3, Some(1), None, 0, vec![]), &mut payload);
    let mut old = (payload.len() as u32).to_le_bytes().to_vec();
    old.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    old.extend_from_slice(&payload);
    let e = replay(&old, &ident()).unwrap_err();
    assert_eq!(e, ReplayError::Headerless);
    assert!(e.to_string().contains("fresh storage dir"), "{e}");

    let good = encode_header(&ident());
    let mut flipped = good;
    flipped[40] ^= 1;
    let mut version = good;
    version[8] = 2;
    for (data, want) in [
        (&[0xFFu8; 100][..], "magic"),
        (&good[..50], "ends inside"),
        (&flipped[..], "checksum"),
        (&version[..], "format version 2"),
    ] {
        let e = replay(data, &ident()).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "{want}: {e}");
    }
}

/// Any single damaged byte: refused, or — only inside the last record — cut to exactly the
/// records before it. Never a silently shortened log, never a panic.
#[test]
fn any_single_byte_damage_is_refused_unless_in_the_last_record() {
    let (_, data, _) = sample_log("every-byte", 30);
    let f = frames(&data);
    let last = f[f.len() - 1].0;
    for at in HEADER_BYTES..data.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut d = data.clone();
            d[at] ^= flip;
            match replay(&d, &ident()) {
                Err(ReplayError::Corrupt { offset, .. }) => {
                    assert!(at < last, "byte {at}: the last record is cut, not refused");
                    assert!(offset as usize <= at, "byte {at}: refused at {offset}");
                }
                Ok((_, r)) => {
                    assert!(
                        at >= last,
                        "byte {at} (before the last record) was accepted"
                    );
                    assert_eq!(r.cut.map(|c| c.offset), Some(last as u64), "byte {at}");
                }
                Err(e) => panic!("byte {at}: {e}"),
            }
        }
    }
}

#[test]
fn a_second_process_cannot_open_the_same_log() {
    let path = dir("lock").join("raft.log");
    let (_held, _, _) = LogFile::open(&path, &ident(), false).unwrap();
    let e = LogFile::open(&path, &ident(), false).err().unwrap();
    assert!(e.to_string().contains("cannot lock"), "{e}");
}

#[test]
fn the_storage_thread_persists_in_order_and_reports_after_writing() {
    let path = dir("writer").join("raft.log");
    let (log, _, _) = LogFile::open(&path, &ident(), true).unwrap();
    let mut w = Writer::start(log).unwrap();
    let mut batch = Vec::new();
    for i in 1..=500u64 {
        batch.push(req(
            i,
            1,
            Some(1),
            Some(i),
            i,
            vec![entry(1, i as u16, None)],
        ));
        if i % 3 == 0 {
            let b = std::mem::take(&mut batch);
            if let Err(b) = w.try_submit(b) {
                w.submit_blocking(b).unwrap();
            }
        }
    }
    w.submit_blocking(batch).unwrap();
    let mut seen = 0;
    for _ in 0..1000 {
        if let Some(s) = w.poll().unwrap() {
            assert!(s > seen);
            seen = s;
        }
        if !w.in_flight() {
            break;
        }
        w.wake().wait(std::time::Duration::from_millis(10)).unwrap();
        w.wake().clear();
    }
    assert_eq!(seen, 500);
    let c = w.counters();
    assert_eq!(c.records, 500);
    assert!(c.commits >= 1 && c.commits <= 168, "{c:?}");
    drop(w);
    let (_, s, r) = LogFile::open(&path, &ident(), true).unwrap();
    assert_eq!((r.records, s.entries.len()), (500, 500));
}

/// Replay is linear: it used to clone the whole state per record (80k entries took 149 s).
/// `hovercraft-runtime-bench replay` prints the full table in a release build.
#[test]
fn replay_of_80k_entries_is_fast() {
    let path = dir("linear").join("raft.log");
    let n = 80_000;
    write_bench_log(&path, n).unwrap();
    let data = std::fs::read(&path).unwrap();
    let clock = crate::clock::Clock::new();
    let (s, r) = replay(&data, &bench_identity()).unwrap();
    let replay_ms = clock.now().as_ns() as f64 / 1e6;
    assert_eq!((s.entries.len() as u64, r.records), (n, n + 1));
    // Generous: a debug build on a shared machine; release takes a few ms.
    assert!(replay_ms < 10_000.0, "{replay_ms} ms");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Random blocks of random bytes overwritten anywhere (the header included) and random
/// truncations: never a panic; an overwrite is refused unless it reaches the last record
/// (then the log is cut at the first damaged record); a truncation is cut at a record
/// boundary.
#[test]
fn random_damage_never_panics_and_never_shortens_the_log_silently() {
    let (_, data, _) = sample_log("random", 80);
    let f = frames(&data);
    let last = f[f.len() - 1].0;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    for round in 0..3_000 {
        let mut d = data.clone();
        let at = next(d.len());
        let len = 1 + next(64).min(d.len() - at - 1);
        for b in &mut d[at..at + len] {
            *b = next(256) as u8;
        }
        let what = format!("round {round}: {len} bytes at {at}");
        match replay(&d, &ident()) {
            Ok((_, r)) if d == data => assert_eq!(r.cut, None, "{what}"),
            Ok((_, r)) => {
                // Damage that reaches the end of the file leaves nothing valid after it:
                // that is a torn last write (possibly of several records, as a crash in the
                // middle of a group commit leaves), cut at the first damaged record.
                assert!(at + len > last, "{what}: accepted");
                let first = f.iter().rev().find(|&&(o, _)| o <= at).unwrap().0;
                let cut = r.cut.map_or(0, |c| c.offset as usize);
                assert!((first..=last).contains(&cut), "{what}: cut at {cut}");
            }
            Err(ReplayError::Corrupt { offset, .. }) => {
                assert!(
                    at < last && offset as usize <= at + len,
                    "{what}: at {offset}"
                )
            }
            Err(e) => assert!(at < HEADER_BYTES, "{what}: {e}"),
        }
        let cut_at = HEADER_BYTES + next(data.len() - HEADER_BYTES);
        let (_, r) = replay(&data[..cut_at], &ident()).unwrap();
        assert!(
            f.iter().any(|&(o, _)| o as u64 == r.good_bytes) || r.good_bytes as usize == cut_at
        );
    }
}

// ---- snapshots: the log bounded behind them, every crash point, the corruption matrix ----

use super::snapshot::{decode, snapshot_path, SnapshotFile, SNAPSHOT_FILE};

fn snap(index: u64, term: u64) -> Snapshot {
    let data: Vec<u8> = format!("sessions and state up to {index}; ")
        .bytes()
        .cycle()
        .take(300 + index as usize)
        .collect();
    Snapshot {
        index,
        term,
        data: data.into(),
    }
}

fn with_snapshot(mut r: PersistRequest, s: Snapshot) -> PersistRequest {
    r.snapshot = Some(s);
    r
}

/// What storage must hold after `reqs`: the simulator's storage semantics (`sim/src/storage.rs`).
fn model(reqs: &[PersistRequest]) -> DurableState {
    let mut img = DurableState::default();
    for r in reqs {
        img.term = r.term;
        img.voted_for = r.voted_for;
        if let Some(s) = &r.snapshot {
            let drop = (s.index + 1)
                .saturating_sub(img.first_index())
                .min(img.entries.len() as u64);
            img.entries.drain(..drop as usize);
            img.snapshot = Some(s.clone());
        }
        let base = img.first_index();
        if let Some(f) = r.log_from {
            let from = f.max(base);
            img.entries.truncate((from - base) as usize);
            img.entries
                .extend(r.entries.iter().skip((from - f) as usize).cloned());
        }
        img.entries
            .truncate((r.last_index + 1).saturating_sub(base) as usize);
    }
    img
}

/// The state a crash leaves between request `reqs[k]`'s snapshot and its record: the state
/// before it with the request's term and vote (written just before the snapshot) and the
/// snapshot installed by Raft's rule (entries after it stay only if the log holds its last
/// entry with its term).
fn model_between(reqs: &[PersistRequest], k: usize) -> DurableState {
    let mut img = model(&reqs[..k]);
    img.term = reqs[k].term;
    img.voted_for = reqs[k].voted_for;
    let s = reqs[k].snapshot.clone().unwrap();
    let first = img.first_index();
    let at = |i: u64| -> Option<u64> {
        if i + 1 == first {
            img.snapshot.as_ref().map(|s| s.term).or(Some(0))
        } else {
            i.checked_sub(first)
                .and_then(|o| img.entries.get(o as usize))
                .map(|e| e.term)
        }
    };
    if at(s.index) == Some(s.term) {
        img.entries.drain(..(s.index + 1 - first) as usize);
    } else {
        img.entries.clear();
    }
    img.snapshot = Some(s);
    img
}

/// A follower's life: votes, appends, a new leader's rewrite, snapshots it takes, and one it
/// installs from a leader over a log that conflicts with it; then appends after it.
fn life() -> Vec<PersistRequest> {
    let mut reqs = vec![req(1, 1, Some(0), None, 0, vec![])];
    let mut seq = 2;
    let mut push = |reqs: &mut Vec<PersistRequest>, r: PersistRequest| {
        let mut r = r;
        r.seq = seq;
        seq += 1;
        reqs.push(r);
    };
    let body = |i: u64| i.is_multiple_of(3).then_some(&b"SET k v"[..]);
    for i in 1..=40 {
        push(
            &mut reqs,
            req(0, 1, Some(0), Some(i), i, vec![entry(1, i as u16, body(i))]),
        );
    }
    // Taken at the applied index 30, in the request that also appends 41.
    push(
        &mut reqs,
        with_snapshot(
            req(0, 1, Some(0), Some(41), 41, vec![entry(1, 41, None)]),
            snap(30, 1),
        ),
    );
    for i in 42..=60 {
        push(
            &mut reqs,
            req(0, 1, Some(0), Some(i), i, vec![entry(1, i as u16, body(i))]),
        );
    }
    // A leader of term 2 rewrites 55..=60.
    let es: Vec<LogEntry> = (55..=60).map(|i| entry(2, i as u16 + 500, None)).collect();
    push(&mut reqs, req(0, 2, None, Some(55), 60, es));
    // Taken at 58 with nothing else changed; its request starts before it (entries 57..=60
    // were re-persisted in the same turn).
    let es: Vec<LogEntry> = (57..=60).map(|i| entry(2, i as u16 + 500, None)).collect();
    push(
        &mut reqs,
        with_snapshot(req(0, 2, None, Some(57), 60, es), snap(58, 2)),
    );
    // A deposed leader's entries 61..=70 of term 3 that the next leader never had.
    let es: Vec<LogEntry> = (61..=70).map(|i| entry(3, i as u16, None)).collect();
    push(&mut reqs, req(0, 3, Some(1), Some(61), 70, es));
    // Term 4's leader installs its snapshot at 100 (its entry 65 has term 4: the old suffix
    // conflicts); the log restarts after it.
    push(
        &mut reqs,
        with_snapshot(req(0, 4, None, Some(101), 100, vec![]), snap(100, 4)),
    );
    for i in 101..=110 {
        push(
            &mut reqs,
            req(0, 4, None, Some(i), i, vec![entry(4, i as u16, body(i))]),
        );
    }
    // And one more taken snapshot that matches the log.
    push(
        &mut reqs,
        with_snapshot(req(0, 4, None, None, 110, vec![]), snap(105, 4)),
    );
    reqs
}

/// Copies a node's storage files (`raft.log`, `snapshot`) into a fresh dir: what a crash
/// at this moment leaves.
fn image(from: &Path, name: &str) -> PathBuf {
    let d = dir(name);
    std::fs::create_dir_all(&d).unwrap();
    for f in ["raft.log", SNAPSHOT_FILE] {
        if from.join(f).exists() {
            std::fs::copy(from.join(f), d.join(f)).unwrap();
        }
    }
    d.join("raft.log")
}

fn reopen(log: &Path) -> (DurableState, Replay) {
    let (_, s, r) = LogFile::open(log, &ident(), false)
        .unwrap_or_else(|e| panic!("{}: refused: {e}", log.display()));
    (s, r)
}

/// Every crash point of the life: after each snapshot file (before its record), after each
/// record, after each rewrite (and a rewrite's leftover half-written `raft.log.new`): replay
/// gives the state the requests made durable — old snapshot + old log, new snapshot + old
/// log, new snapshot + new log.
#[test]
fn every_crash_point_around_a_snapshot_replays_to_what_was_durable() {
    let reqs = life();
    let path = dir("life").join("raft.log");
    let node = path.parent().unwrap().to_path_buf();
    let (mut log, _, _) = LogFile::open(&path, &ident(), true).unwrap();
    let mut peak_bytes = 0;
    let mut rewrites = 0;
    for (k, r) in reqs.iter().enumerate() {
        if r.snapshot.is_some() {
            log.write_snapshot(r).unwrap();
            let (s, _) = reopen(&image(&node, "life-between"));
            assert_eq!(
                s,
                model_between(&reqs, k),
                "crash after snapshot {k}, before its record"
            );
        }
        log.append(r);
        log.flush().unwrap();
        peak_bytes = peak_bytes.max(log.bytes());
        let want = model(&reqs[..=k]);
        let (s, r2) = reopen(&image(&node, "life-after"));
        assert_eq!(s, want, "crash after record {k}");
        assert_eq!(r2.cut, None);
        if log.rewrite_due() {
            // A crash mid-rewrite: the half-written new log is ignored.
            let img = image(&node, "life-mid-rewrite");
            std::fs::write(img.with_extension("log.new"), b"HCRFTLOG half a header").unwrap();
            assert_eq!(reopen(&img).0, want, "crash during the rewrite after {k}");
            let before = log.bytes();
            assert!(log.rewrite().unwrap());
            rewrites += 1;
            assert!(log.bytes() < before, "{} -> {}", before, log.bytes());
            let (s, r3) = reopen(&image(&node, "life-rewritten"));
            assert_eq!(s, want, "crash after the rewrite after {k}");
            assert_eq!(r3.records, 1, "one record: the hard state and the entries");
            assert_eq!(
                std::fs::read(snapshot_path(&path)).unwrap().len() as u64,
                r3.snapshot_file_bytes
            );
        }
    }
    assert_eq!(rewrites, 4);
    // Appends continue after a rewrite; the node reopens to the model.
    drop(log);
    let (s, r) = reopen(&path);
    assert_eq!(s, model(&reqs));
    assert_eq!(s.snapshot.as_ref().unwrap().index, 105);
    assert_eq!(s.first_index(), 106);
    assert_eq!(s.last_index(), 110);
    assert!(
        r.good_bytes < peak_bytes / 4,
        "{} vs {peak_bytes}",
        r.good_bytes
    );
    for d in [
        "life",
        "life-between",
        "life-after",
        "life-mid-rewrite",
        "life-rewritten",
    ] {
        let _ = std::fs::remove_dir_all(dir(d));
    }
}

/// A rewritten log holds more than one record when its entries do not fit in one.
#[test]
fn a_large_rewrite_is_split_into_records_and_appends_continue() {
    let path = dir("big-rewrite").join("raft.log");
    let (mut log, _, _) = LogFile::open(&path, &ident(), false).unwrap();
    let mut reqs = vec![req(1, 1, Some(2), None, 0, vec![])];
    let body = vec![7u8; 4000];
    for i in 1..=1000u64 {
        reqs.push(req(
            i + 1,
            1,
            Some(2),
            Some(i),
            i,
            vec![entry(1, i as u16, Some(&body))],
        ));
    }
    reqs.push(with_snapshot(
        req(1002, 1, Some(2), None, 1000, vec![]),
        snap(10, 1),
    ));
    for r in &reqs {
        log.write_snapshot(r).unwrap();
        log.append(r);
    }
    log.flush().unwrap();
    assert!(log.rewrite().unwrap());
    let r = req(1003, 1, Some(2), Some(1001), 1001, vec![entry(1, 1, None)]);
    log.append(&r);
    reqs.push(r);
    log.flush().unwrap();
    drop(log);
    let (s, rep) = reopen(&path);
    assert_eq!(s, model(&reqs));
    assert!(rep.records >= 4 && rep.records <= 6, "{rep:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The node's files after the life, rewritten behind snapshot 105, plus appends; and the
/// same life's log before the last rewrite.
fn life_files(name: &str) -> (PathBuf, Vec<u8>, Vec<u8>) {
    let reqs = life();
    let path = dir(name).join("raft.log");
    let (mut log, _, _) = LogFile::open(&path, &ident(), false).unwrap();
    for r in &reqs {
        log.write_snapshot(r).unwrap();
        log.append(r);
        log.flush().unwrap();
    }
    let old_log = std::fs::read(&path).unwrap();
    log.rewrite().unwrap();
    log.append(&req(99, 4, None, Some(111), 111, vec![entry(4, 111, None)]));
    log.flush().unwrap();
    drop(log);
    (
        path.clone(),
        old_log,
        std::fs::read(snapshot_path(&path)).unwrap(),
    )
}

fn expect_refused(path: &Path, file: &Path, want: &str) -> String {
    let e = LogFile::open(path, &ident(), false)
        .err()
        .unwrap_or_else(|| panic!("{want}: accepted"));
    let msg = e.to_string();
    assert!(
        matches!(e, StorageError::Replay { .. }),
        "{want}: not a refusal (exit 3): {msg}"
    );
    assert!(
        msg.starts_with(&format!("{}: ", file.display())) && !msg.contains('\n'),
        "{want}: names {}: {msg}",
        file.display()
    );
    assert!(msg.contains(want), "{want}: {msg}");
    println!("{msg}");
    msg
}

#[test]
fn a_bit_flip_anywhere_in_the_snapshot_file_is_refused() {
    let (path, _, good) = life_files("snap-flip");
    let sp = snapshot_path(&path);
    // Every byte: the header, the frame, the data, the checksum.
    for at in 0..good.len() {
        let mut d = good.clone();
        d[at] ^= 0x04;
        let e = decode(&d, &ident()).expect_err("a flipped byte is refused");
        let msg = e.to_string();
        assert!(
            !msg.contains('\n')
                && (msg.contains("damaged snapshot")
                    || msg.contains("snapshot of this runtime")
                    || msg.contains("belongs to")
                    || msg.contains("format version")),
            "byte {at}: {msg}"
        );
    }
    for (at, want) in [
        (3, "no \"HCRFTSNP\" magic"),
        (40, "header checksum mismatch"),
        (HEADER_BYTES + 9, "damaged snapshot: checksum mismatch"),
        (good.len() / 2, "damaged snapshot: checksum mismatch"),
        (good.len() - 1, "damaged snapshot: checksum mismatch"),
    ] {
        let mut d = good.clone();
        d[at] ^= 0x40;
        std::fs::write(&sp, &d).unwrap();
        expect_refused(&path, &sp, want);
    }
    // Refusing changed nothing.
    let mut d = good.clone();
    d[good.len() - 1] ^= 0x40;
    assert_eq!(std::fs::read(&sp).unwrap(), d);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_truncated_snapshot_is_refused() {
    let (path, _, good) = life_files("snap-trunc");
    let sp = snapshot_path(&path);
    for keep in [
        0,
        50,
        HEADER_BYTES,
        HEADER_BYTES + 20,
        good.len() / 2,
        good.len() - 1,
    ] {
        std::fs::write(&sp, &good[..keep]).unwrap();
        let msg = expect_refused(&path, &sp, "");
        assert!(
            msg.contains("truncated") || msg.contains("ends inside") || msg.contains("magic"),
            "{keep} bytes: {msg}"
        );
    }
    // Bytes after its end are damage too (it is written whole, then renamed).
    let mut long = good.clone();
    long.extend_from_slice(&[0; 10]);
    std::fs::write(&sp, &long).unwrap();
    expect_refused(&path, &sp, "damaged snapshot");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn another_clusters_or_nodes_snapshot_is_refused_naming_the_field() {
    let (path, _, _) = life_files("snap-identity");
    let sp = snapshot_path(&path);
    let other_cluster = LogIdentity {
        cluster_id: ident().cluster_id ^ 1,
        cluster_name: "other".into(),
        ..ident()
    };
    let other_node = LogIdentity {
        node_id: 0,
        ..ident()
    };
    for (who, field) in [(other_cluster, "cluster_id"), (other_node, "node_id")] {
        let sf = SnapshotFile {
            log_records: 3,
            snapshot: snap(105, 4),
        };
        snapshot::write(&path, &who, &sf, false).unwrap();
        let msg = expect_refused(&path, &sp, &format!("header field `{field}`"));
        assert!(msg.contains("belongs to another"), "{msg}");
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_leftover_snapshot_tmp_is_ignored() {
    let (path, _, good) = life_files("snap-tmp");
    let want = reopen(&path).0;
    let tmp = path.with_file_name("snapshot.tmp");
    // A crash while writing a newer snapshot: half of one, or garbage.
    for d in [&good[..good.len() / 2], &b"garbage"[..], &[][..]] {
        std::fs::write(&tmp, d).unwrap();
        assert_eq!(reopen(&path).0, want);
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// New snapshot + old log: a crash after the snapshot's rename, before the rewrite (entries
/// it covers are skipped on replay).
#[test]
fn a_crash_between_the_snapshot_rename_and_the_log_rewrite_replays_fine() {
    let (path, old_log, _) = life_files("snap-norewrite");
    let reqs = life();
    std::fs::write(&path, &old_log).unwrap();
    let (s, r) = reopen(&path);
    assert_eq!(s, model(&reqs));
    // The old log: rewritten behind snapshot 100 (entries 101..=110), then the term and
    // vote of the request that carried snapshot 105, and its record; 101..=105 are skipped.
    assert_eq!(r.records, 3);
    assert_eq!(s.first_index(), 106);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_log_rewritten_behind_another_snapshot_is_refused() {
    let (path, _, good) = life_files("snap-behind");
    let sp = snapshot_path(&path);
    // The log was rewritten behind snapshot 105; the snapshot beside it is an older one (a
    // restored backup, or another copy of the dir).
    let older = SnapshotFile {
        log_records: 50,
        snapshot: snap(58, 2),
    };
    snapshot::write(&path, &ident(), &older, false).unwrap();
    expect_refused(&path, &path, "entries 59..=105 are in neither");
    // Same index, another term.
    let other = SnapshotFile {
        log_records: 50,
        snapshot: snap(105, 3),
    };
    snapshot::write(&path, &ident(), &other, false).unwrap();
    expect_refused(&path, &path, "has term 3");
    // No snapshot at all.
    std::fs::remove_file(&sp).unwrap();
    expect_refused(&path, &path, "no snapshot file beside it");
    // A snapshot without a log: the term and vote are gone.
    std::fs::write(&sp, &good).unwrap();
    std::fs::remove_file(&path).unwrap();
    expect_refused(&path, &path, "term and vote the log held are lost");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// The records a snapshot follows were synced before it was written: a log that lost them
/// (shorter than the snapshot says) is damage, not a torn write.
#[test]
fn a_log_missing_records_the_snapshot_follows_is_refused() {
    let (path, old_log, _) = life_files("snap-short");
    let f = frames(&old_log);
    // Snapshot 105 was written after the old log's first two records (its restart behind
    // 100, and the term and vote of the request that carried 105).
    assert_eq!(f.len(), 3);
    std::fs::write(&path, &old_log[..f[2].0]).unwrap();
    assert_eq!(reopen(&path).0.snapshot.unwrap().index, 105);
    // Without them (gone, or cut as if torn: they were synced, so they cannot be).
    for keep in [
        HEADER_BYTES,
        HEADER_BYTES + 5,
        f[1].0 - 1,
        f[1].0,
        f[2].0 - 1,
    ] {
        std::fs::write(&path, &old_log[..keep]).unwrap();
        expect_refused(
            &path,
            &path,
            "records synced before the snapshot are missing",
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// A restart record anywhere but first, and an impossible truncation behind the log's start.
#[test]
fn impossible_records_around_a_restart_are_refused() {
    let mut payload = Vec::new();
    encode_restart(3, None, 10, 2, &[entry(3, 1, None)], &mut payload);
    let mut data = encode_header(&ident()).to_vec();
    let mut first = Vec::new();
    encode_payload(&req(1, 3, None, None, 0, vec![]), &mut first);
    push_frame(0, &first, &mut data);
    push_frame(1, &payload, &mut data);
    let msg = expect_corrupt(&data, 1, frames(&data)[1].0, "restart in the middle");
    assert!(msg.contains("in the middle of the file"), "{msg}");

    let sf = SnapshotFile {
        log_records: 0,
        snapshot: snap(10, 2),
    };
    let mut data = encode_header(&ident()).to_vec();
    push_frame(0, &payload, &mut data);
    let mut cut = Vec::new();
    encode_payload(&req(2, 3, None, None, 9, vec![]), &mut cut);
    push_frame(1, &cut, &mut data);
    match replay_with(&data, &ident(), Some(&sf)) {
        Err(ReplayError::Corrupt {
            record: 1, reason, ..
        }) => {
            assert!(reason.contains("before the log's start"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // Without that record it replays: the snapshot, then the log after it.
    let (s, _) = replay_with(&data[..frames(&data)[1].0], &ident(), Some(&sf)).unwrap();
    assert_eq!((s.first_index(), s.last_index(), s.term), (11, 11, 3));
}

/// The storage thread writes the snapshot before the request's record, reports the request
/// after both, and then rewrites the log behind it.
#[test]
fn the_storage_thread_writes_snapshots_and_bounds_the_log() {
    let path = dir("writer-snap").join("raft.log");
    let (log, _, _) = LogFile::open(&path, &ident(), true).unwrap();
    let mut w = Writer::start(log).unwrap();
    let mut all = Vec::new();
    let mut batch = Vec::new();
    for i in 1..=3000u64 {
        let mut r = req(i, 1, Some(1), Some(i), i, vec![entry(1, i as u16, None)]);
        if i % 1000 == 0 {
            r.snapshot = Some(snap(i - 500, 1));
        }
        batch.push(r.clone());
        all.push(r);
        if i % 7 == 0 {
            let b = std::mem::take(&mut batch);
            if let Err(b) = w.try_submit(b) {
                w.submit_blocking(b).unwrap();
            }
        }
    }
    w.submit_blocking(batch).unwrap();
    let mut seen = 0;
    for _ in 0..2000 {
        if let Some(s) = w.poll().unwrap() {
            seen = s;
        }
        if !w.in_flight() {
            break;
        }
        w.wake().wait(std::time::Duration::from_millis(10)).unwrap();
        w.wake().clear();
    }
    assert_eq!(seen, 3000);
    drop(w);
    let (s, r) = reopen(&path);
    assert_eq!(s, model(&all));
    assert_eq!(s.snapshot.as_ref().unwrap().index, 2500);
    // Behind snapshot 2500: a restart record with 500 entries, then a few appends.
    assert!(r.records < 100, "{r:?}");
    assert!(r.good_bytes < 60_000, "{r:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// A rewritten log's first record holds the term, the vote and every entry after the
/// snapshot, and it was synced before the rename: damage to it is refused even when it is
/// the file's only record (never cut as a torn write).
#[test]
fn damage_to_a_rewritten_logs_first_record_is_refused() {
    let (path, _, _) = life_files("restart-damage");
    let data = std::fs::read(&path).unwrap();
    let f = frames(&data);
    assert_eq!(f.len(), 2, "restart record, one append");
    let only = &data[..f[1].0];
    for at in HEADER_BYTES..only.len() {
        for (d, what) in [(only, "alone"), (&data[..], "with an append after it")] {
            let mut d = d.to_vec();
            d[at] ^= 0x20;
            std::fs::write(&path, &d).unwrap();
            let e = LogFile::open(&path, &ident(), false)
                .err()
                .unwrap_or_else(|| panic!("byte {at} ({what}): accepted"));
            assert!(matches!(e, StorageError::Replay { .. }), "byte {at}: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Fuzz target `storage_replay`, input `crash-de7641f08528bda39ebcdacb28347ba26fb9824c`: the
/// file's first record (below, verbatim) restarts the log after index `u64::MAX - 1` in term
/// `u64::MAX`, with entry terms out of order; wording that error computed `from + i` and
/// overflowed (a panic in debug builds, a wrong index in the message in release). With
/// `from = u64::MAX` and two entries in order, `kept + n` overflowed too; and a snapshot at
/// index `u64::MAX` made the next record's `kept + 1` overflow. Terms and indexes above the
/// wire limit (2^62) are refused now, naming the record.
#[test]
fn a_term_or_index_past_the_wire_limit_is_refused_not_overflowed() {
    let hex = "ffffffffffffffff010102ffffffffffffffff4000000000000001000000000000000000000003\
               9d9372a8f7b81a150a010002232800010104010000000909090909090909090900000000000000\
               090a010002232800010104010000000000000000000000060a01000223280004030300";
    let fuzz: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut restart_at_max = Vec::new();
    let entries = [entry(1, 1, None), entry(2, 2, None)];
    encode_record(
        5,
        None,
        LOG_RESTART,
        u64::MAX,
        7,
        1,
        &entries,
        &mut restart_at_max,
    );
    let mut term_past_limit = Vec::new();
    encode_payload(
        &req(1, MAX_WIRE_NUMBER + 1, None, None, 0, vec![]),
        &mut term_past_limit,
    );
    for (what, payload) in [
        ("the fuzz input", fuzz),
        ("a restart after u64::MAX - 1", restart_at_max),
        ("a term past the limit", term_past_limit),
    ] {
        let mut data = encode_header(&ident()).to_vec();
        push_frame(0, &payload, &mut data);
        let msg = expect_corrupt(&data, 0, HEADER_BYTES, what);
        assert!(
            msg.contains("above the limit of 4611686018427387904"),
            "{what}: {msg}"
        );
    }
    // At the limit, the numbers are still read (and refused only for what they say).
    let mut at_limit = Vec::new();
    encode_payload(
        &req(1, MAX_WIRE_NUMBER, None, None, 0, vec![]),
        &mut at_limit,
    );
    let mut data = encode_header(&ident()).to_vec();
    push_frame(0, &at_limit, &mut data);
    assert_eq!(replay(&data, &ident()).unwrap().0.term, MAX_WIRE_NUMBER);

    // A snapshot file at index u64::MAX (checksums valid) is damaged.
    for (index, term) in [(u64::MAX, 1), (MAX_WIRE_NUMBER + 1, 1), (5, u64::MAX)] {
        let mut f = encode_header_for(&super::snapshot::SNAPSHOT_MAGIC, &ident()).to_vec();
        for v in [0, index, term, 3] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(b"abc");
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        let msg = decode(&f, &ident()).unwrap_err().to_string();
        assert!(msg.contains("above the limit"), "{index} {term}: {msg}");
    }
}
