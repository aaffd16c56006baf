//! Helpers the fuzz targets share: numbers and Raft messages drawn from fuzzer bytes with
//! `arbitrary`, so that structured targets reach deep into the protocol instead of stopping
//! at a checksum or a type byte. Raw bytes are fuzzed too (every target has a raw path).

use std::net::SocketAddrV4;

use arbitrary::{Result, Unstructured};
use hovercraft_core::wire::framing;
use hovercraft_core::wire::raft::{
    AppendResult, GroupDone, LogEntry, RaftBody, RaftMessage, MAX_WIRE_NUMBER,
};
use hovercraft_core::wire::{MsgType, Policy};

/// Small numbers most of the time (where the protocol's branches are), extremes sometimes:
/// `u64::MAX` and its neighbour, the wire limit and one past it, and anything.
pub fn number(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0u8..=19)? {
        0..=13 => u64::from(u.int_in_range(0u8..=15)?),
        14 => u64::MAX,
        15 => u64::MAX - 1,
        16 => MAX_WIRE_NUMBER,
        17 => MAX_WIRE_NUMBER + 1,
        _ => u.arbitrary()?,
    })
}

pub fn policy(u: &mut Unstructured) -> Result<Policy> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => Policy::LbRoute,
        1 => Policy::FixedRoute,
        2 => Policy::ReplicatedRoute,
        _ => Policy::ReplicatedRouteNoSe,
    })
}

pub fn msg_type(u: &mut Unstructured) -> Result<MsgType> {
    Ok(MsgType::from_u8(u.int_in_range(0u8..=7)?).expect("0..=7 are types"))
}

/// A short byte string (a body, a chunk): bounded so one input makes many messages.
pub fn bytes(u: &mut Unstructured, max: usize) -> Result<Vec<u8>> {
    let n = u.int_in_range(0..=max)?;
    Ok(u.bytes(n.min(u.len()))?.to_vec())
}

/// One of `addrs`, chosen by the input.
pub fn pick(u: &mut Unstructured, addrs: &[SocketAddrV4]) -> Result<SocketAddrV4> {
    Ok(*u.choose(addrs)?)
}

pub fn entry(u: &mut Unstructured, clients: &[SocketAddrV4]) -> Result<LogEntry> {
    Ok(LogEntry {
        term: number(u)?,
        client: pick(u, clients)?,
        req_id: u.int_in_range(0u16..=7)?,
        policy: policy(u)?,
        replier: u.int_in_range(0u8..=4)?,
        body: if u.arbitrary()? {
            Some(bytes(u, 40)?)
        } else {
            None
        },
    })
}

fn result(u: &mut Unstructured) -> Result<AppendResult> {
    Ok(AppendResult::from_u8(u.int_in_range(0u8..=3)?).expect("0..=3 are results"))
}

/// Any Raft message body, with small numbers mostly.
pub fn raft_body(u: &mut Unstructured, clients: &[SocketAddrV4]) -> Result<RaftBody> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => RaftBody::VoteRequest {
            last_log_idx: number(u)?,
            last_log_term: number(u)?,
        },
        1 => RaftBody::VoteReply {
            granted: u.arbitrary()?,
        },
        2 => RaftBody::PreVoteRequest {
            last_log_idx: number(u)?,
            last_log_term: number(u)?,
        },
        3 => RaftBody::PreVoteReply {
            granted: u.arbitrary()?,
        },
        4 => {
            let n = u.int_in_range(0usize..=4)?;
            let mut entries = Vec::with_capacity(n);
            for _ in 0..n {
                entries.push(entry(u, clients)?);
            }
            RaftBody::AppendEntriesReq {
                prev_log_idx: number(u)?,
                prev_log_term: number(u)?,
                leader_commit: number(u)?,
                entries,
            }
        }
        5 => RaftBody::AppendEntriesRep {
            result: result(u)?,
            last_log_idx: number(u)?,
            first_idx: number(u)?,
            done: number(u)?,
        },
        6 => {
            let n = u.int_in_range(0usize..=5)?;
            let mut dones = Vec::with_capacity(n);
            for _ in 0..n {
                dones.push(GroupDone {
                    peer: u.int_in_range(0u8..=5)?,
                    done: number(u)?,
                });
            }
            RaftBody::AppendEntriesRepGroup {
                last_log_idx: number(u)?,
                commit_idx: number(u)?,
                dones,
            }
        }
        7 => RaftBody::AnnounceCommitReq {
            commit_idx: number(u)?,
        },
        8 => RaftBody::AnnounceCommitRep {
            commit_idx: number(u)?,
            done: number(u)?,
        },
        9 => RaftBody::RecoveryReq {
            log_idx: number(u)?,
            client: pick(u, clients)?,
            req_id: u.int_in_range(0u16..=7)?,
        },
        10 => RaftBody::RecoveryRep {
            log_idx: number(u)?,
            client: pick(u, clients)?,
            req_id: u.int_in_range(0u16..=7)?,
            policy: policy(u)?,
            body: bytes(u, 40)?,
        },
        11 => RaftBody::DropSuffix {
            from_idx: number(u)?,
            entry_term: number(u)?,
        },
        12 => {
            let chunk = bytes(u, 64)?;
            RaftBody::InstallSnapshotReq {
                last_idx: number(u)?,
                last_term: number(u)?,
                total_len: if u.arbitrary()? {
                    chunk.len() as u64
                } else {
                    number(u)?
                },
                offset: number(u)?,
                chunk,
            }
        }
        13 => RaftBody::InstallSnapshotRep {
            last_idx: number(u)?,
            received: number(u)?,
        },
        _ => RaftBody::RecoveryCompacted {
            log_idx: number(u)?,
            snapshot_idx: number(u)?,
            snapshot_term: number(u)?,
        },
    })
}

pub fn raft_message(
    u: &mut Unstructured,
    from: u8,
    clients: &[SocketAddrV4],
) -> Result<RaftMessage> {
    Ok(RaftMessage {
        from,
        term: number(u)?,
        body: raft_body(u, clients)?,
    })
}

/// The R2P2 packets of `msg` (its own type, FIXED_ROUTE) with request id `req_id`.
pub fn raft_packets(msg: &RaftMessage, req_id: u16) -> Vec<Vec<u8>> {
    let mut body = Vec::new();
    msg.encode(&mut body);
    let mut pkts = Vec::new();
    framing::fragment(msg.r2p2_type(), Policy::FixedRoute, req_id, &body, |p| {
        pkts.push(p)
    })
    .expect("small messages fit");
    pkts
}

/// Address `10.0.0.<i+1>:8000` (replicas) — the layout the core's tests use.
pub fn peer(i: u8) -> SocketAddrV4 {
    SocketAddrV4::new([10, 0, 0, i + 1].into(), 8000)
}

/// Address `10.1.0.<i+1>:9000` (clients).
pub fn client(i: u8) -> SocketAddrV4 {
    SocketAddrV4::new([10, 1, 0, i + 1].into(), 9000)
}
