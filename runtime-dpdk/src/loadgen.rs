//! The open-loop load generator (`hovercraft-loadgen`): Poisson arrivals at the workload's
//! rate, requests drawn by the core's `Generator` (the simulator's clients use it too) from
//! the same `workload` section, sent through the core's R2P2 client endpoint to the target
//! and with the leader hint and outcome accounting of the core's `loadclient`; latency in an HDR histogram, measured from
//! each request's *scheduled* send time (no coordinated omission). It writes a `summary.json`
//! with the simulator's field names where they apply, so one script compares both.
//!
//! Exactly-once accounting: every request ends answered, dropped or timed out; a second
//! RESPONSE for an answered request is a `duplicate`, one after a timeout is `late`.
//! kv app: every PUT and its outcome is recorded (bounded, [`MAX_KV_WRITES`]); `--verify`
//! then reads back every key that had an acknowledged write and checks that the value is
//! not older than the last acknowledged write (see [`verify`]).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration as StdDuration;

use anyhow::Context;
use hovercraft_core::app::kv::{KvReply, KvRequest};
use hovercraft_core::app::AppKind;
use hovercraft_core::loadclient::{Outcomes, Targets};
use hovercraft_core::r2p2::client::{Client, ClientConfig, ClientEvent, ClientStats};
use hovercraft_core::rng::{stream_rng, Stream};
use hovercraft_core::summary::{round3, LatencyUs, Timeline, TimelinePoint};
use hovercraft_core::time::{Duration, Instant};
use hovercraft_core::wire::{Header, MsgType, Policy};
use hovercraft_core::workload::{Generator, WorkloadConfig};
use serde::Serialize;

use crate::clock::Clock;
use crate::cluster::ClusterFile;
use crate::io::{Io, UdpIo, UdpOptions, MAX_DATAGRAM};
use crate::ycsb_check::{YcsbChecker, YcsbReport};

/// kv writes remembered for verification; past it, writes are not recorded (and the
/// summary says so) — memory stays bounded whatever the run length.
pub const MAX_KV_WRITES: usize = 2_000_000;
/// Requests sent per loop turn at most, so receiving is never starved by a late schedule.
const SEND_BURST: usize = 256;

pub struct LoadgenOptions {
    pub cluster: ClusterFile,
    pub cluster_file: String,
    pub rate_rps: Option<f64>,
    pub duration_ms: Option<u64>,
    pub seed: Option<u64>,
    pub bind: Option<SocketAddrV4>,
    pub verify: bool,
    pub out: PathBuf,
    pub command: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ExactlyOnce {
    pub sent: u64,
    pub responses: u64,
    pub drops: u64,
    pub timeouts: u64,
    /// A second RESPONSE to an answered request (must be 0).
    pub duplicates: u64,
    /// A RESPONSE after the request timed out or was refused.
    pub late: u64,
    /// Still unanswered when the generator gave up waiting (must be 0).
    pub unresolved: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub keys: u64,
    pub ok: u64,
    /// Keys whose value is older than an acknowledged write, or missing.
    pub lost: u64,
    /// Keys that could not be read back (no answer after every retry).
    pub unreadable: u64,
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct KvReport {
    pub writes: u64,
    pub acked_writes: u64,
    pub keys_written: u64,
    /// `true` if more than MAX_KV_WRITES writes were sent (the rest were not recorded).
    pub history_truncated: bool,
    pub verify: Option<VerifyReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LoadgenManifest {
    pub command: String,
    pub cluster_file: String,
    pub runtime: &'static str,
    pub wall_ms: u64,
}

/// `summary.json`: the simulator's `Summary` fields where they apply, plus what only a
/// real run has (per-replica replies, exactly-once accounting, kv verification).
#[derive(Clone, Debug, Serialize)]
pub struct LoadSummary {
    pub scenario: String,
    pub seed: u64,
    pub mode: &'static str,
    pub nodes: u32,
    pub duration_ms: u64,
    pub warmup_ms: u64,
    pub offered_rps: f64,
    pub completed_rps: f64,
    pub dropped: u64,
    pub dropped_by_server: u64,
    pub timed_out: u64,
    pub client_refused: u64,
    pub measured_requests: u64,
    pub latency_us: LatencyUs,
    /// RESPONSEs received from each node (index = node id), over the whole run.
    pub per_replica_replies: Vec<u64>,
    pub replies_from_unknown: u64,
    /// Longest time without any RESPONSE between the first and the last one, in ms (a
    /// failover shows here).
    pub longest_gap_ms: f64,
    pub exactly_once: ExactlyOnce,
    pub client: ClientStats,
    pub timeline: Vec<TimelinePoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvReport>,
    /// YCSB-E runs: scans checked against the inserts acknowledged before them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ycsb: Option<YcsbReport>,
    pub manifest: LoadgenManifest,
}

impl LoadSummary {
    /// Problems a test or operator should see (empty: the run was clean).
    pub fn exactly_once_ok(&self) -> bool {
        let e = &self.exactly_once;
        e.duplicates == 0 && e.unresolved == 0 && e.sent == e.responses + e.drops + e.timeouts
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Free,
    InFlight,
    Answered,
    TimedOut,
    Refused,
}

struct KvWrite {
    key: Vec<u8>,
    value: Vec<u8>,
    sent_ns: u64,
    acked_ns: Option<u64>,
}

struct Run<'a> {
    cluster: &'a ClusterFile,
    clock: Clock,
    io: Box<dyn Io>,
    client: Client,
    slots: Vec<Slot>,
    exact: ExactlyOnce,
    per_replica: Vec<u64>,
    from_unknown: u64,
    /// Where requests go, and the leader hint.
    targets: Targets,
    writes: Vec<KvWrite>,
    /// req_id → index in `writes`.
    write_of: Vec<u32>,
    history_truncated: bool,
    /// kv reads of the verification phase: req_id → key index.
    read_of: Vec<u32>,
    last_response: Option<Instant>,
    first_response: Option<Instant>,
    longest_gap: Duration,
    buf: Vec<u8>,
}

const NONE: u32 = u32::MAX;

impl<'a> Run<'a> {
    fn send(&mut self, now: Instant, read_only: bool, body: &[u8], tag: u64) -> Option<u16> {
        let (dst, policy) = self.targets.target(read_only);
        let req_id = self.client.send_request(now, dst, policy, body, tag).ok()?;
        self.slots[req_id as usize] = Slot::InFlight;
        self.write_of[req_id as usize] = NONE;
        self.read_of[req_id as usize] = NONE;
        self.exact.sent += 1;
        while let Some(tx) = self.client.poll_transmit() {
            for d in self.cluster.expand(tx.dst) {
                // A full socket buffer loses the datagram; the request then times out.
                let _ = self.io.send(d, &tx.payload);
            }
        }
        Some(req_id)
    }

    fn receive(&mut self) -> usize {
        let mut got = 0;
        let mut buf = std::mem::take(&mut self.buf);
        while got < 256 {
            match self.io.recv(&mut buf) {
                Ok(Some((n, from))) => {
                    got += 1;
                    let now = self.clock.now();
                    // Exactly-once is about the cluster's answers: a datagram from any other
                    // address is the client's to reject (`client.untrusted`), not a duplicate.
                    if self.targets.server_index(from).is_some() {
                        self.account_duplicate(&buf[..n]);
                    }
                    let _ = self.client.handle_datagram(now, from, &buf[..n]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        self.buf = buf;
        got
    }

    /// A RESPONSE's first packet for a request no longer in flight: duplicate or late.
    fn account_duplicate(&mut self, bytes: &[u8]) {
        let Ok((h, _)) = Header::decode(bytes) else {
            return;
        };
        if h.msg_type != MsgType::Response || !h.first {
            return;
        }
        match self.slots[h.req_id as usize] {
            Slot::Answered => self.exact.duplicates += 1,
            Slot::TimedOut | Slot::Refused => self.exact.late += 1,
            Slot::Free | Slot::InFlight => {}
        }
    }
}

fn wait_until(run: &mut Run<'_>, deadline: Instant) {
    let now = run.clock.now();
    if deadline > now {
        let d = StdDuration::from_nanos((deadline - now).as_ns()).min(StdDuration::from_millis(10));
        let _ = run.io.wait(d);
    }
}

pub fn run(opts: LoadgenOptions) -> anyhow::Result<LoadSummary> {
    let cluster = &opts.cluster;
    let mut workload: WorkloadConfig = cluster.workload.clone().with_context(|| {
        format!(
            "{}: field `workload`: the load generator needs a workload section",
            opts.cluster_file
        )
    })?;
    if let Some(r) = opts.rate_rps {
        workload.rate_rps = r;
    }
    workload
        .validate()
        .map_err(|(f, r)| anyhow::anyhow!("{}: field `{f}`: {r}", opts.cluster_file))?;
    let lg = &cluster.loadgen;
    let duration_ms = opts.duration_ms.unwrap_or(lg.duration_ms);
    let warmup_ms = lg.warmup_ms.min(duration_ms / 2);
    let seed = opts.seed.unwrap_or(cluster.seed);
    let bind = opts.bind.unwrap_or(lg.bind);
    // DPDK binds nothing: a wildcard port becomes a fixed one derived from the process id.
    let local = if bind.port() == 0 {
        SocketAddrV4::new(*bind.ip(), 20_000 + (std::process::id() % 40_000) as u16)
    } else {
        bind
    };
    let io = crate::io::open_backend(
        cluster.dpdk.as_ref(),
        &format!("c{}", std::process::id()),
        &UdpOptions {
            bind,
            advertised: None,
            join: None,
            multicast_if: (!bind.ip().is_unspecified()).then_some(*bind.ip()),
        },
        local,
        Vec::new(),
    )
    .map_err(|e| anyhow::anyhow!("loadgen: {e:#}"))?;
    let clock = Clock::new();
    let mut run = Run {
        cluster,
        client: Client::new(
            io.local_addr(),
            ClientConfig {
                timeout: Duration::from_ms(lg.timeout_ms),
                max_outstanding: lg.max_outstanding,
                ..ClientConfig::default()
            },
        ),
        io,
        clock,
        slots: vec![Slot::Free; 1 << 16],
        exact: ExactlyOnce::default(),
        per_replica: vec![0; cluster.nodes.len()],
        from_unknown: 0,
        targets: Targets::new(
            cluster.mode,
            cluster.nodes.iter().map(|n| n.address).collect(),
            cluster.group(),
        ),
        writes: Vec::new(),
        write_of: vec![NONE; 1 << 16],
        history_truncated: false,
        read_of: vec![NONE; 1 << 16],
        last_response: None,
        first_response: None,
        longest_gap: Duration::ZERO,
        buf: vec![0; MAX_DATAGRAM],
    };
    // Replies count only from the cluster's members (`client.untrusted` counts the rest).
    run.client
        .trust_only(cluster.nodes.iter().map(|n| n.address));
    let max_latency_ns = lg.timeout_ms.saturating_mul(2_000_000).max(1_000_000);
    // Outcomes count in ns since `start`; the window is [warm-up, duration).
    let mut outcomes = Outcomes::new(
        warmup_ms * 1_000_000,
        duration_ms * 1_000_000,
        max_latency_ns,
    );
    outcomes.timeline = Some(Timeline::new(
        lg.timeline_bucket_ms * 1_000_000,
        (duration_ms + lg.timeout_ms) * 1_000_000,
        max_latency_ns,
    ));
    let mut generator = Generator::new(
        &workload,
        1,
        0,
        stream_rng(seed, Stream::Client, 0),
        stream_rng(seed, Stream::Workload, 0),
    );
    let mut ycsb = workload
        .ycsb
        .as_ref()
        .filter(|_| workload.app == AppKind::Kv)
        .map(|_| YcsbChecker::new(workload.node_kv_costs().preloaded_ycsb_records));
    let start = run.clock.now();
    let end = start + Duration::from_ms(duration_ms);
    let give_up = end + Duration::from_ms(lg.timeout_ms + 200);
    let mut next = start + Duration::from_ns(generator.next_gap_ns());
    let mut body = Vec::new();
    loop {
        let now = run.clock.now();
        let mut burst = 0;
        while next <= now && next < end && burst < SEND_BURST {
            burst += 1;
            let spec = generator.next_request(&mut body);
            let tag = next.as_ns();
            let sent = run.send(now, spec.read_only, &body, tag);
            outcomes.on_send((next - start).as_ns(), sent.is_some());
            if let Some(req_id) = sent {
                if let Some(y) = ycsb.as_mut() {
                    y.on_send(req_id, &body, now.as_ns());
                }
                if let Some((key, Some(value))) = spec.kv {
                    if run.writes.len() < MAX_KV_WRITES {
                        run.write_of[req_id as usize] = run.writes.len() as u32;
                        run.writes.push(KvWrite {
                            key,
                            value,
                            sent_ns: now.as_ns(),
                            acked_ns: None,
                        });
                    } else {
                        run.history_truncated = true;
                    }
                }
            }
            next += Duration::from_ns(generator.next_gap_ns());
        }
        let got = run.receive();
        let now = run.clock.now();
        run.client.handle_timeout(now);
        while let Some(ev) = run.client.poll_event() {
            let t_rel = (now - start).as_ns();
            run.targets.on_event(&ev);
            match ev {
                ClientEvent::Response {
                    req_id,
                    tag,
                    from,
                    body,
                    ..
                } => {
                    run.exact.responses += 1;
                    run.slots[req_id as usize] = Slot::Answered;
                    // From the scheduled send time: no coordinated omission.
                    let latency = now.saturating_since(Instant::from_ns(tag)).as_ns();
                    outcomes.on_response(t_rel, tag.saturating_sub(start.as_ns()), latency);
                    match run.targets.server_index(from) {
                        Some(i) => run.per_replica[i] += 1,
                        None => run.from_unknown += 1,
                    }
                    if let Some(prev) = run.last_response {
                        run.longest_gap = run.longest_gap.max(now - prev);
                    }
                    run.first_response.get_or_insert(now);
                    run.last_response = Some(now);
                    if let Some(y) = ycsb.as_mut() {
                        y.on_response(req_id, &body, now.as_ns());
                    }
                    let w = run.write_of[req_id as usize];
                    if w != NONE && KvReply::decode(&body) == Ok(KvReply::Ok) {
                        run.writes[w as usize].acked_ns = Some(now.as_ns());
                    }
                }
                ClientEvent::Dropped { req_id, tag, .. } => {
                    run.exact.drops += 1;
                    run.slots[req_id as usize] = Slot::Refused;
                    if let Some(y) = ycsb.as_mut() {
                        y.forget(req_id);
                    }
                    outcomes.on_dropped(t_rel, tag.saturating_sub(start.as_ns()));
                }
                ClientEvent::TimedOut { req_id, tag } => {
                    run.exact.timeouts += 1;
                    run.slots[req_id as usize] = Slot::TimedOut;
                    if let Some(y) = ycsb.as_mut() {
                        y.forget(req_id);
                    }
                    outcomes.on_timed_out(t_rel, tag.saturating_sub(start.as_ns()));
                }
            }
        }
        run.targets.end_of_events();
        if now >= end && (run.client.in_flight() == 0 || now >= give_up) {
            break;
        }
        if got < 256 && burst < SEND_BURST {
            let mut deadline = run.client.poll_timeout().unwrap_or(give_up).min(give_up);
            if next < end {
                deadline = deadline.min(next);
            }
            wait_until(&mut run, deadline);
        }
    }
    run.exact.unresolved = run.client.in_flight() as u64;
    let window_s = (duration_ms - warmup_ms) as f64 / 1e3;
    let kv = (cluster.app() == AppKind::Kv).then(|| {
        let keys: std::collections::BTreeSet<&[u8]> =
            run.writes.iter().map(|w| w.key.as_slice()).collect();
        KvReport {
            writes: run.writes.len() as u64,
            acked_writes: run.writes.iter().filter(|w| w.acked_ns.is_some()).count() as u64,
            keys_written: keys.len() as u64,
            history_truncated: run.history_truncated,
            verify: None,
        }
    });
    let mut summary = LoadSummary {
        scenario: cluster.name.clone(),
        seed,
        mode: cluster.mode.as_str(),
        nodes: cluster.nodes.len() as u32,
        duration_ms,
        warmup_ms,
        offered_rps: round3(outcomes.sent_in_window as f64 / window_s),
        completed_rps: round3(outcomes.completed_in_window as f64 / window_s),
        dropped: outcomes.measured_dropped + outcomes.measured_timed_out,
        dropped_by_server: outcomes.measured_dropped,
        timed_out: outcomes.measured_timed_out,
        client_refused: outcomes.client_refused,
        measured_requests: outcomes.latency_ns.len(),
        latency_us: LatencyUs::from_histogram(&outcomes.latency_ns),
        per_replica_replies: run.per_replica.clone(),
        replies_from_unknown: run.from_unknown,
        longest_gap_ms: round3(run.longest_gap.as_ns() as f64 / 1e6),
        exactly_once: run.exact.clone(),
        client: run.client.stats,
        timeline: outcomes
            .timeline
            .as_ref()
            .map_or_else(Vec::new, Timeline::summary),
        kv,
        ycsb: ycsb.map(|y| y.report),
        manifest: LoadgenManifest {
            command: opts.command.clone(),
            cluster_file: opts.cluster_file.clone(),
            runtime: if cluster.dpdk.is_some() {
                "dpdk"
            } else {
                "kernel-udp"
            },
            wall_ms: 0,
        },
    };
    if opts.verify && cluster.app() == AppKind::Kv {
        let report = verify(&mut run);
        if let Some(kv) = summary.kv.as_mut() {
            kv.verify = Some(report);
        }
    }
    summary.manifest.wall_ms = (run.clock.now() - start).as_ns() / 1_000_000;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let path = opts.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(summary)
}

/// GETs in flight at once while verifying.
const VERIFY_WINDOW: usize = 64;
const VERIFY_ATTEMPTS: u32 = 40;

struct KeyCheck<'w> {
    key: &'w [u8],
    /// Send time of the latest-sent acknowledged write: any write acknowledged before it is
    /// overwritten, so the value read must come from a write not acknowledged before it.
    threshold_ns: u64,
    attempts: u32,
    done: bool,
}

/// Reads back every key that had an acknowledged write (ordered reads: REPLICATED_ROUTE_NO_SE
/// goes through the log, so it is linearizable) and checks that the value is one of this
/// run's writes to that key that was *not* acknowledged before the last acknowledged write
/// was sent. A missing key, or an older value, means an acknowledged write was lost.
fn verify(run: &mut Run<'_>) -> VerifyReport {
    let writes = std::mem::take(&mut run.writes);
    let mut by_key: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
    for (i, w) in writes.iter().enumerate() {
        by_key.entry(w.key.as_slice()).or_default().push(i);
    }
    let mut checks: Vec<KeyCheck<'_>> = by_key
        .iter()
        .filter_map(|(k, ws)| {
            let threshold_ns = ws
                .iter()
                .filter(|&&i| writes[i].acked_ns.is_some())
                .map(|&i| writes[i].sent_ns)
                .max()?;
            Some(KeyCheck {
                key: k,
                threshold_ns,
                attempts: 0,
                done: false,
            })
        })
        .collect();
    let mut report = VerifyReport {
        keys: checks.len() as u64,
        ..Default::default()
    };
    let mut queue: std::collections::VecDeque<usize> = (0..checks.len()).collect();
    let deadline = run.clock.now() + Duration::from_ms(60_000);
    let mut body = Vec::new();
    let mut in_flight = 0usize;
    while (in_flight > 0 || !queue.is_empty()) && run.clock.now() < deadline {
        while in_flight < VERIFY_WINDOW {
            let Some(k) = queue.pop_front() else { break };
            body.clear();
            KvRequest::Get {
                key: checks[k].key.to_vec(),
            }
            .encode(&mut body);
            let now = run.clock.now();
            checks[k].attempts += 1;
            match run.send(now, true, &body, k as u64) {
                Some(req_id) => {
                    run.read_of[req_id as usize] = k as u32;
                    in_flight += 1;
                }
                None => queue.push_back(k),
            }
        }
        run.receive();
        let now = run.clock.now();
        run.client.handle_timeout(now);
        while let Some(ev) = run.client.poll_event() {
            run.targets.on_event(&ev);
            let (k, reply) = match ev {
                ClientEvent::Response { req_id, body, .. } => {
                    (run.read_of[req_id as usize], Some(body))
                }
                ClientEvent::Dropped { req_id, .. } | ClientEvent::TimedOut { req_id, .. } => {
                    (run.read_of[req_id as usize], None)
                }
            };
            if k == NONE {
                continue; // a late answer from the load phase
            }
            in_flight -= 1;
            let k = k as usize;
            let c = &mut checks[k];
            match reply.map(|b| KvReply::decode(&b)) {
                Some(Ok(KvReply::Value(v))) => {
                    let fresh = by_key[c.key].iter().any(|&i| {
                        writes[i].value == v
                            && writes[i].acked_ns.unwrap_or(u64::MAX) >= c.threshold_ns
                    });
                    c.done = true;
                    if fresh {
                        report.ok += 1;
                    } else {
                        report.lost += 1;
                        push_example(
                            &mut report,
                            format!(
                                "key {} reads {} (older than an acknowledged write)",
                                String::from_utf8_lossy(c.key),
                                String::from_utf8_lossy(&v)
                            ),
                        );
                    }
                }
                Some(Ok(KvReply::NotFound)) => {
                    c.done = true;
                    report.lost += 1;
                    push_example(
                        &mut report,
                        format!(
                            "key {} not found (it had an acknowledged write)",
                            String::from_utf8_lossy(c.key)
                        ),
                    );
                }
                _ if c.attempts < VERIFY_ATTEMPTS => queue.push_back(k),
                _ => {
                    c.done = true;
                    report.unreadable += 1;
                }
            }
        }
        run.targets.end_of_events();
        let next = run.client.poll_timeout().unwrap_or(deadline);
        wait_until(run, next.min(deadline));
    }
    report.unreadable += checks.iter().filter(|c| !c.done).count() as u64;
    report
}

fn push_example(r: &mut VerifyReport, s: String) {
    if r.examples.len() < 10 {
        r.examples.push(s);
    }
}

/// Robustness check (`hovercraft-loadgen --garbage N`): sends `n` malformed datagrams to every
/// node — random bytes, plausible R2P2 headers with random fields, requests claiming 65535
/// packets, Raft message types with random bodies from a non-peer, empty and oversize
/// datagrams. Nodes must count and drop them all. Returns how many were sent.
pub fn send_garbage(
    cluster: &ClusterFile,
    bind: SocketAddrV4,
    n: u64,
    seed: u64,
) -> anyhow::Result<u64> {
    use rand::Rng;
    let mut io = UdpIo::open(&UdpOptions {
        bind,
        advertised: None,
        join: None,
        multicast_if: None,
    })
    .map_err(|e| anyhow::anyhow!("loadgen: {e}"))?;
    let mut rng = stream_rng(seed, Stream::Faults, 0);
    let mut sent = 0;
    for node in &cluster.nodes {
        for i in 0..n {
            let len = match i % 6 {
                0 => 0,
                5 => 1_800,
                _ => rng.gen_range(1..1_472),
            };
            let mut d: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            if d.len() >= 8 && i % 6 != 1 {
                d[0] = 0xCC;
                d[1] = 8;
                match i % 6 {
                    2 => {
                        // A REQUEST claiming 65535 packets: reassembly must bound it.
                        d[2] = Policy::ReplicatedRoute as u8;
                        d[3] = 0x80;
                        d[6] = 0xFF;
                        d[7] = 0xFF;
                    }
                    3 => {
                        // A Raft message (types 5..=7) with a random body, from a non-peer.
                        d[2] = ((5 + rng.gen_range(0..3u8)) << 4) | 1;
                        d[3] = 0xC0;
                        d[6] = 0;
                        d[7] = 1;
                    }
                    _ => {}
                }
            }
            if io.send(node.address, &d).is_ok() {
                sent += 1;
            }
            if i % 64 == 63 {
                // Do not overflow the receivers' socket buffers: every datagram should
                // reach the parser.
                std::thread::sleep(StdDuration::from_millis(2));
            }
        }
    }
    Ok(sent)
}
