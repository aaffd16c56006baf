//! The runtime bench (`hovercraft-runtime-bench`): what the protocol costs on a real backend,
//! measured against the raw packet path of that same backend.
//!
//! - **Raw path**: [`echo_serve`] answers every single-packet R2P2 REQUEST with a RESPONSE of
//!   the same req_id and no protocol at all (no log, no application): a ping-pong.
//! - **Cluster**: three `hovercraft-node` processes in hovercraft mode, the synthetic app with
//!   zero service time, fsync off (a microbenchmark of the packet path, not of the disk).
//!
//! Both are driven by [`closed_loop`]: the same R2P2 client endpoint keeps `window` requests
//! in flight for `duration`, re-sending as each completes; it reports completed requests per
//! second and the latency percentiles. The ratio cluster RPS / raw RPS is what HovercRaft
//! keeps of the transport's throughput (the paper's claim: close to 1 for small requests).
#![forbid(unsafe_code)]

use std::net::SocketAddrV4;
use std::time::Duration as StdDuration;

use hdrhistogram::Histogram;
use hovercraft_core::r2p2::client::{Client, ClientConfig, ClientEvent};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::header::HEADER_LEN;
use hovercraft_core::wire::{Header, MsgType, Policy};
use serde::Serialize;

use crate::clock::Clock;
use crate::io::{Io, MAX_DATAGRAM};

/// Datagrams drained per turn of the echo server and of the client.
const BURST: usize = 64;
/// Largest reply body the echo server sends (it answers with `reply_bytes` zero bytes).
pub const MAX_ECHO_REPLY_BYTES: usize = 1024;

/// Counters of the echo server.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct EchoCounters {
    pub answered: u64,
    /// Datagrams that were not a single-packet REQUEST (dropped).
    pub ignored: u64,
    pub tx_errors: u64,
}

/// Builds the RESPONSE to `request` (a whole single-packet R2P2 REQUEST) in `out`; `None`
/// for anything else. Never panics on any input.
pub fn echo_reply(request: &[u8], reply_bytes: usize, out: &mut Vec<u8>) -> Option<()> {
    let (h, _) = Header::decode(request).ok()?;
    if h.msg_type != MsgType::Request || !h.first || !h.last {
        return None;
    }
    let resp = Header {
        msg_type: MsgType::Response,
        policy: h.policy,
        first: true,
        last: true,
        req_id: h.req_id,
        packet_order: 1,
    };
    out.clear();
    out.extend_from_slice(&resp.encode());
    out.resize(HEADER_LEN + reply_bytes.min(MAX_ECHO_REPLY_BYTES), 0);
    Some(())
}

/// The raw ping-pong server: runs until `stop()` says so (checked every turn; the wait is
/// bounded by 50 ms, so a stop is seen within that).
pub fn echo_serve(io: &mut dyn Io, reply_bytes: usize, stop: &dyn Fn() -> bool) -> EchoCounters {
    let mut c = EchoCounters::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(HEADER_LEN + MAX_ECHO_REPLY_BYTES);
    while !stop() {
        let mut got = 0;
        while got < BURST {
            match io.recv(&mut buf) {
                Ok(Some((n, from))) => {
                    got += 1;
                    if echo_reply(&buf[..n], reply_bytes, &mut out).is_none() {
                        c.ignored += 1;
                        continue;
                    }
                    match io.send(from, &out) {
                        Ok(()) => c.answered += 1,
                        Err(_) => c.tx_errors += 1,
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
        if got < BURST {
            let _ = io.wait(StdDuration::from_millis(50));
        }
    }
    c
}

/// One closed-loop measurement.
#[derive(Clone, Debug)]
pub struct ClosedLoop {
    /// Where each request goes (every address gets a copy: a cluster without multicast; or
    /// the one multicast group).
    pub dsts: Vec<SocketAddrV4>,
    /// Who answers (for `per_source`): the echo server, or every node.
    pub sources: Vec<SocketAddrV4>,
    pub policy: Policy,
    /// The request body (the same for every request).
    pub body: Vec<u8>,
    /// Requests in flight at once.
    pub window: usize,
    /// Not measured: the pipeline fills and the caches warm.
    pub warmup: StdDuration,
    pub duration: StdDuration,
    /// A request unanswered this long is counted as timed out and replaced.
    pub timeout: StdDuration,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct BenchResult {
    pub completed: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub timeouts: u64,
    pub drops: u64,
    /// Responses per source, in `sources` order (raw path: one entry).
    pub per_source: Vec<u64>,
}

/// Keeps `window` requests in flight on `io` for warmup + duration; measures the duration.
pub fn closed_loop(io: &mut dyn Io, cfg: &ClosedLoop) -> anyhow::Result<BenchResult> {
    anyhow::ensure!(!cfg.dsts.is_empty(), "closed loop: no destination");
    let window = cfg.window.clamp(1, 4096);
    let clock = Clock::new();
    let timeout = Duration::from_ns(cfg.timeout.as_nanos().min(u64::MAX as u128) as u64);
    let mut client = Client::new(
        io.local_addr(),
        ClientConfig {
            timeout,
            max_outstanding: window,
            ..ClientConfig::default()
        },
    );
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let ns = |d: StdDuration| Duration::from_ns(d.as_nanos().min(u64::MAX as u128) as u64);
    let start = clock.now();
    let warm = start + ns(cfg.warmup);
    let end = warm + ns(cfg.duration);
    let give_up = end + timeout + Duration::from_ms(100);
    let mut res = BenchResult {
        per_source: vec![0; cfg.sources.len()],
        ..Default::default()
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut in_window_done = 0u64;
    // The group placeholder: the client endpoint sends once, this loop fans out.
    let dst = cfg.dsts[0];
    loop {
        let now = clock.now();
        if now < end {
            while client.in_flight() < window {
                if client
                    .send_request(now, dst, cfg.policy, &cfg.body, now.as_ns())
                    .is_err()
                {
                    break;
                }
                while let Some(tx) = client.poll_transmit() {
                    for d in &cfg.dsts {
                        let _ = io.send(*d, &tx.payload);
                    }
                }
            }
        } else if client.in_flight() == 0 || now >= give_up {
            break;
        }
        let mut got = 0;
        while got < BURST {
            match io.recv(&mut buf) {
                Ok(Some((n, from))) => {
                    got += 1;
                    let _ = client.handle_datagram(clock.now(), from, &buf[..n]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let now = clock.now();
        client.handle_timeout(now);
        while let Some(ev) = client.poll_event() {
            match ev {
                ClientEvent::Response { tag, from, .. } => {
                    if tag >= warm.as_ns() && now < end {
                        in_window_done += 1;
                        hist.saturating_record(now.saturating_since(Instant::from_ns(tag)).as_ns());
                    }
                    if let Some(i) = cfg.sources.iter().position(|d| *d == from) {
                        res.per_source[i] += 1;
                    }
                }
                ClientEvent::Dropped { .. } => res.drops += 1,
                ClientEvent::TimedOut { .. } => res.timeouts += 1,
            }
        }
        if got == 0 {
            let next = client.poll_timeout().unwrap_or(give_up).min(give_up);
            let wait = StdDuration::from_nanos((next.saturating_since(now)).as_ns())
                .min(StdDuration::from_millis(5));
            let _ = io.wait(wait);
        }
    }
    res.completed = in_window_done;
    res.rps = in_window_done as f64 / cfg.duration.as_secs_f64().max(1e-9);
    res.p50_us = hist.value_at_quantile(0.5) as f64 / 1e3;
    res.p99_us = hist.value_at_quantile(0.99) as f64 / 1e3;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_reply_answers_requests_only() {
        let req = Header {
            msg_type: MsgType::Request,
            policy: Policy::ReplicatedRoute,
            first: true,
            last: true,
            req_id: 77,
            packet_order: 1,
        };
        let mut bytes = req.encode().to_vec();
        bytes.extend_from_slice(b"body");
        let mut out = Vec::new();
        echo_reply(&bytes, 8, &mut out).unwrap();
        let (h, body) = Header::decode(&out).unwrap();
        assert_eq!(
            (h.msg_type, h.req_id, body.len()),
            (MsgType::Response, 77, 8)
        );
        // A response, a fragment, garbage and nothing: no reply, no panic.
        let mut resp = bytes.clone();
        resp[2] = (MsgType::Response as u8) << 4;
        assert!(echo_reply(&resp, 8, &mut out).is_none());
        let mut frag = bytes.clone();
        frag[3] = 0x80;
        assert!(echo_reply(&frag, 8, &mut out).is_none());
        for junk in [&b""[..], b"\xCC", b"hello world"] {
            assert!(echo_reply(junk, 8, &mut out).is_none());
        }
        echo_reply(&bytes, 1 << 20, &mut out).unwrap();
        assert_eq!(out.len(), HEADER_LEN + MAX_ECHO_REPLY_BYTES, "bounded");
    }
}
