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
