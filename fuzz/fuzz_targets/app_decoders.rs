//! Application and snapshot decoders on untrusted bytes: the kv request and reply codecs
//! (canonical: what decodes re-encodes to the same bytes), `StateMachine::restore` of the kv
//! and synthetic apps (what restores snapshots back to the same bytes, and a failed restore
//! leaves the state as it was), requests executed on the restored kv store,
//! `Snapshot::split` and `Sessions::decode`. The first byte picks the decoder.
#![no_main]

use hovercraft_core::app::kv::{KvApp, KvCosts, KvReply, KvRequest};
use hovercraft_core::app::synthetic::{SyntheticApp, SyntheticRequest};
use hovercraft_core::app::StateMachine;
use hovercraft_core::raft::session::Sessions;
use hovercraft_core::raft::Snapshot;
use libfuzzer_sys::fuzz_target;

/// Kv stores to restore into: empty, and with a small preloaded YCSB table (tombstones for
/// implicit records are only valid there). Both with a small `max_keys`: `state_digest`
/// generates every implicit record, and a snapshot may claim up to `max_keys` of them.
fn kv_stores() -> [KvApp; 2] {
    [
        KvApp::new(KvCosts {
            max_keys: 64,
            ..KvCosts::default()
        }),
        KvApp::new(KvCosts {
            max_keys: 8,
            preloaded_ycsb_records: 4,
            ..KvCosts::default()
        }),
    ]
}

/// `restore` succeeded: the state is exactly the snapshot, which re-encodes to itself.
/// Failed: the state is what it was.
fn check_restore(app: &mut dyn StateMachine, snapshot: &[u8]) -> bool {
    let mut before = Vec::new();
    app.snapshot(&mut before);
    let digest = app.state_digest();
    match app.restore(snapshot) {
        Ok(_) => {
            let mut again = Vec::new();
            app.snapshot(&mut again);
            assert_eq!(
                again, snapshot,
                "restore -> snapshot gives back the same bytes"
            );
            true
        }
        Err(e) => {
            assert!(!e.to_string().contains('\n'));
            let mut after = Vec::new();
            app.snapshot(&mut after);
            assert_eq!(after, before, "a failed restore changes nothing");
            assert_eq!(app.state_digest(), digest);
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [which, data @ ..] = data else {
        return;
    };
    match which % 7 {
        0 => {
            if let Ok(req) = KvRequest::decode(data) {
                let mut out = Vec::new();
                req.encode(&mut out);
                assert_eq!(out, data, "kv requests are canonical");
                let _ = (req.is_read_only(), req.key());
            }
        }
        1 => {
            if let Ok(reply) = KvReply::decode(data) {
                let mut out = Vec::new();
                reply.encode(&mut out);
                assert_eq!(out, data, "kv replies are canonical");
            }
        }
        2 | 3 => {
            // A snapshot, then requests separated by 0xFF 0xFE, executed on what it restored.
            let mut parts = split(data);
            let snapshot = parts.next().unwrap_or_default();
            let mut stores = kv_stores();
            let store = &mut stores[usize::from(which % 7 == 3)];
            check_restore(store, snapshot);
            for request in parts {
                let ro = store.is_read_only(request);
                let before = store.state_digest();
                let mut reply = Vec::new();
                if store.execute(request, &mut reply).is_ok() {
                    KvReply::decode(&reply).expect("the store's replies decode");
                }
                if ro {
                    assert_eq!(store.state_digest(), before, "a read-only request wrote");
                }
            }
        }
        4 => {
            check_restore(&mut SyntheticApp::default(), data);
            let _ = SyntheticRequest::decode(data);
        }
        5 => {
            if let Ok((sessions, app)) = Snapshot::split(data) {
                assert_eq!(sessions.len() + app.len() + 9, data.len());
                let mut again = Snapshot::compose(sessions, app);
                assert_eq!(again, data, "split -> compose gives back the same bytes");
                again.clear();
            }
        }
        _ => {
            let capacity = 1 + usize::from(data.first().copied().unwrap_or(0) % 8);
            let data = data.get(1..).unwrap_or_default();
            if let Ok(s) = Sessions::decode(data, capacity) {
                assert!(s.len() <= capacity);
                // Decoding is lenient (runs may overlap or be split), encoding is canonical.
                let mut enc = Vec::new();
                s.encode(&mut enc);
                let again = Sessions::decode(&enc, capacity).expect("an encoded table decodes");
                let mut enc2 = Vec::new();
                again.encode(&mut enc2);
                assert_eq!(enc, enc2, "encode -> decode -> encode is stable");
                assert!(
                    enc.len() <= data.len(),
                    "the canonical encoding is the shortest"
                );
            }
        }
    }
});

/// `data` split at each `0xFF 0xFE`.
fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let r = rest?;
        match r.windows(2).position(|w| w == [0xFF, 0xFE]) {
            Some(i) => {
                rest = Some(&r[i + 2..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}
