//! A synthetic service in the style of the lancet load generator's: each request says how much
//! CPU time it costs and how large its reply is, so experiments can sweep service time, request
//! size and reply size independently of any real application.
//!
//! Request layout (16-byte header, big-endian), optionally followed by padding:
//!
//! ```text
//! 0     1       2          4             8            16
//! | tag | flags | reserved | reply_bytes | service_ns | padding...
//! ```
//!
//! - `tag` is [`tag::SYNTHETIC`].
//! - `flags` bit 0 marks the request read-only; the other bits must be 0 (so a future flag is
//!   rejected rather than silently ignored by an old replica).
//! - `reserved` must be 0, for the same reason.
//! - `reply_bytes` ≤ [`MAX_REPLY_BYTES`], `service_ns` ≤ [`MAX_SERVICE_NS`].
//! - Any bytes after the header are padding: ignored, and there only to vary request size.
//!
//! The reply is `reply_bytes` zero bytes. Executing a request *reports* `service_ns` as its CPU
//! cost; nothing here spins.

use super::{tag, AppError, Execution, StateMachine};

/// Size of the fixed request header; requests may be longer (padding).
pub const HEADER_BYTES: usize = 16;
/// Largest reply a request may ask for (1 MiB); larger is [`AppError::OutOfRange`]. Bounds the
/// memory one request can make a replica allocate.
pub const MAX_REPLY_BYTES: u32 = 1 << 20;
/// Largest service time a request may ask for (1 s); larger is [`AppError::OutOfRange`]. A
/// longer request would stall a simulated core for longer than any sensible experiment.
pub const MAX_SERVICE_NS: u64 = 1_000_000_000;

/// `flags` bit 0: the request has no side effects.
const FLAG_READ_ONLY: u8 = 0x01;

const NAME: &str = "synthetic";

/// One decoded synthetic request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyntheticRequest {
    /// CPU time the request costs on the executing core.
    pub service_ns: u64,
    /// Size of the (all-zero) reply body.
    pub reply_bytes: u32,
    /// Whether the request has no side effects.
    pub read_only: bool,
}

impl SyntheticRequest {
    /// Appends the request padded with zeros to `max(HEADER_BYTES, total_bytes)`.
    ///
    /// Fields are written as given: a request whose `service_ns` or `reply_bytes` exceeds the
    /// limits encodes fine and is rejected by [`SyntheticRequest::decode`] (and so by every
    /// replica alike), which lets tests build invalid requests with this same encoder.
    pub fn encode(&self, total_bytes: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.push(tag::SYNTHETIC);
        out.push(if self.read_only { FLAG_READ_ONLY } else { 0 });
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.reply_bytes.to_be_bytes());
        out.extend_from_slice(&self.service_ns.to_be_bytes());
        out.resize(start + total_bytes.max(HEADER_BYTES), 0);
    }

    /// Parses a request, ignoring any padding after the header.
    ///
    /// The tag is checked before the length so a misrouted request (even a short one) is
    /// reported as [`AppError::WrongApp`], which points at the real bug.
    pub fn decode(bytes: &[u8]) -> Result<SyntheticRequest, AppError> {
        super::check_tag(bytes, tag::SYNTHETIC, NAME, HEADER_BYTES)?;
        let Some(header) = bytes.get(..HEADER_BYTES) else {
            return Err(AppError::Truncated {
                need: HEADER_BYTES,
                have: bytes.len(),
            });
        };
        let flags = header[1];
        if flags & !FLAG_READ_ONLY != 0 {
            return Err(AppError::OutOfRange {
                field: "flags",
                value: u64::from(flags),
            });
        }
        let reserved = u16::from_be_bytes([header[2], header[3]]);
        if reserved != 0 {
            return Err(AppError::OutOfRange {
                field: "reserved",
                value: u64::from(reserved),
            });
        }
        let reply_bytes = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if reply_bytes > MAX_REPLY_BYTES {
            return Err(AppError::OutOfRange {
                field: "reply_bytes",
                value: u64::from(reply_bytes),
            });
        }
        let mut service = [0u8; 8];
        service.copy_from_slice(&header[8..16]);
        let service_ns = u64::from_be_bytes(service);
        if service_ns > MAX_SERVICE_NS {
            return Err(AppError::OutOfRange {
                field: "service_ns",
                value: service_ns,
            });
        }
        Ok(SyntheticRequest {
            service_ns,
            reply_bytes,
            read_only: flags & FLAG_READ_ONLY != 0,
        })
    }
}

use super::{fnv1a, FNV_OFFSET};

/// The synthetic service. Its only state is a running digest of the writes it has applied, so
/// replicas that applied different write sequences (different order, a missing or extra write)
/// end with different digests.
#[derive(Clone, Debug)]
pub struct SyntheticApp {
    /// Number of non-read-only requests applied.
    writes_applied: u64,
    /// FNV-1a fold of every applied write's `(service_ns, reply_bytes)`, in apply order.
    digest: u64,
}

impl Default for SyntheticApp {
    fn default() -> Self {
        // Start from the FNV offset basis rather than 0 so the fold is standard FNV-1a.
        SyntheticApp {
            writes_applied: 0,
            digest: FNV_OFFSET,
        }
    }
}

impl SyntheticApp {
    /// Number of non-read-only requests this replica has applied.
    pub fn writes_applied(&self) -> u64 {
        self.writes_applied
    }
}

impl StateMachine for SyntheticApp {
    fn name(&self) -> &'static str {
        NAME
    }

    fn execute(&mut self, request: &[u8], reply: &mut Vec<u8>) -> Result<Execution, AppError> {
        let req = SyntheticRequest::decode(request)?;
        if !req.read_only {
            self.writes_applied += 1;
            self.digest = fnv1a(self.digest, &req.service_ns.to_be_bytes());
            self.digest = fnv1a(self.digest, &req.reply_bytes.to_be_bytes());
        }
        // reply_bytes ≤ MAX_REPLY_BYTES (1 MiB) was checked by decode, so this is bounded.
        reply.resize(reply.len() + req.reply_bytes as usize, 0);
        Ok(Execution {
            cpu_ns: req.service_ns,
        })
    }

    fn is_read_only(&self, request: &[u8]) -> bool {
        SyntheticRequest::decode(request).is_ok_and(|r| r.read_only)
    }

    fn state_digest(&self) -> u64 {
        // Fold the count in too: the per-write fold alone already differs with the sequence,
        // the count makes "how many writes" explicit for anyone reading two digests' inputs.
        fnv1a(self.digest, &self.writes_applied.to_be_bytes())
    }

    /// `tag | writes_applied u64 | digest u64`: the state is two numbers, so a synthetic
    /// snapshot costs nothing to take or load.
    fn snapshot(&mut self, out: &mut Vec<u8>) -> Execution {
        out.push(super::tag::SYNTHETIC);
        out.extend_from_slice(&self.writes_applied.to_be_bytes());
        out.extend_from_slice(&self.digest.to_be_bytes());
        Execution { cpu_ns: 0 }
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<Execution, AppError> {
        super::check_tag(snapshot, super::tag::SYNTHETIC, NAME, 17)?;
        let bad = |why| AppError::BadSnapshot { app: NAME, why };
        let [_, rest @ ..] = snapshot else {
            return Err(bad("empty"));
        };
        if rest.len() != 16 {
            return Err(bad("length is not 17 bytes"));
        }
        let (w, d) = rest.split_at(8);
        self.writes_applied = u64::from_be_bytes(w.try_into().map_err(|_| bad("length"))?);
        self.digest = u64::from_be_bytes(d.try_into().map_err(|_| bad("length"))?);
        Ok(Execution { cpu_ns: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(req: SyntheticRequest, total_bytes: usize) -> Vec<u8> {
        let mut out = Vec::new();
        req.encode(total_bytes, &mut out);
        out
    }

    const WRITE: SyntheticRequest = SyntheticRequest {
        service_ns: 10_000,
        reply_bytes: 64,
        read_only: false,
    };

    /// Golden: the exact header bytes of a read-only request.
    #[test]
    fn golden_layout() {
        let req = SyntheticRequest {
            service_ns: 0x0102_0304_0506_0708,
            reply_bytes: 0x0A0B_0C0D,
            read_only: true,
        };
        assert_eq!(
            encoded(req, 0),
            [0x53, 0x01, 0, 0, 0x0A, 0x0B, 0x0C, 0x0D, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn padding_is_appended_and_ignored() {
        let bytes = encoded(WRITE, 100);
        assert_eq!(bytes.len(), 100);
        assert!(bytes[HEADER_BYTES..].iter().all(|&b| b == 0));
        assert_eq!(SyntheticRequest::decode(&bytes), Ok(WRITE));

        // Shorter than the header: the header still goes out whole.
        assert_eq!(encoded(WRITE, 3).len(), HEADER_BYTES);

        // Non-zero padding is ignored too.
        let mut bytes = encoded(WRITE, HEADER_BYTES);
        bytes.extend_from_slice(&[0xFF; 7]);
        assert_eq!(SyntheticRequest::decode(&bytes), Ok(WRITE));

        // Encoding appends: existing contents of `out` are kept.
        let mut out = vec![9, 9];
        WRITE.encode(20, &mut out);
        assert_eq!(out.len(), 22);
        assert_eq!(&out[..2], &[9, 9]);
        assert_eq!(SyntheticRequest::decode(&out[2..]), Ok(WRITE));
    }

    #[test]
    fn execute_reports_reply_size_and_cpu() {
        let mut app = SyntheticApp::default();
        let mut reply = Vec::new();
        let exec = app.execute(&encoded(WRITE, 200), &mut reply).unwrap();
        assert_eq!(exec, Execution { cpu_ns: 10_000 });
        assert_eq!(reply, vec![0u8; 64]);

        let max = SyntheticRequest {
            service_ns: MAX_SERVICE_NS,
            reply_bytes: MAX_REPLY_BYTES,
            read_only: true,
        };
        let mut reply = Vec::new();
        let exec = app.execute(&encoded(max, 0), &mut reply).unwrap();
        assert_eq!(exec.cpu_ns, MAX_SERVICE_NS);
        assert_eq!(reply.len(), MAX_REPLY_BYTES as usize);
        assert_eq!(app.name(), "synthetic");
    }

    #[test]
    fn every_error_is_reachable() {
        let good = encoded(WRITE, 0);
        assert_eq!(
            SyntheticRequest::decode(&[]),
            Err(AppError::Truncated { need: 16, have: 0 })
        );
        assert_eq!(
            SyntheticRequest::decode(&good[..15]),
            Err(AppError::Truncated { need: 16, have: 15 })
        );
        let mut wrong = good.clone();
        wrong[0] = tag::KV;
        assert_eq!(
            SyntheticRequest::decode(&wrong),
            Err(AppError::WrongApp {
                expected: "synthetic",
                found: tag::KV
            })
        );
        // A short misrouted request is still reported as misrouted.
        assert!(matches!(
            SyntheticRequest::decode(&[tag::KV]),
            Err(AppError::WrongApp { .. })
        ));
        let mut flags = good.clone();
        flags[1] = 0x02;
        assert_eq!(
            SyntheticRequest::decode(&flags),
            Err(AppError::OutOfRange {
                field: "flags",
                value: 2
            })
        );
        let mut reserved = good.clone();
        reserved[3] = 1;
        assert_eq!(
            SyntheticRequest::decode(&reserved),
            Err(AppError::OutOfRange {
                field: "reserved",
                value: 1
            })
        );
        let big_reply = SyntheticRequest {
            reply_bytes: MAX_REPLY_BYTES + 1,
            ..WRITE
        };
        assert_eq!(
            SyntheticRequest::decode(&encoded(big_reply, 0)),
            Err(AppError::OutOfRange {
                field: "reply_bytes",
                value: u64::from(MAX_REPLY_BYTES) + 1
            })
        );
        let slow = SyntheticRequest {
            service_ns: MAX_SERVICE_NS + 1,
            ..WRITE
        };
        assert_eq!(
            SyntheticRequest::decode(&encoded(slow, 0)),
            Err(AppError::OutOfRange {
                field: "service_ns",
                value: MAX_SERVICE_NS + 1
            })
        );
        // A rejected request leaves the state and the reply untouched.
        let mut app = SyntheticApp::default();
        let before = app.state_digest();
        let mut reply = Vec::new();
        assert!(app.execute(&encoded(slow, 0), &mut reply).is_err());
        assert!(reply.is_empty());
        assert_eq!(app.state_digest(), before);
    }

    #[test]
    fn is_read_only_reads_the_flag() {
        let app = SyntheticApp::default();
        assert!(!app.is_read_only(&encoded(WRITE, 0)));
        let read = SyntheticRequest {
            read_only: true,
            ..WRITE
        };
        assert!(app.is_read_only(&encoded(read, 32)));
        // Malformed: not read-only, whatever the flag byte says.
        assert!(!app.is_read_only(&encoded(read, 0)[..8]));
        let mut bad = encoded(read, 0);
        bad[0] = tag::KV;
        assert!(!app.is_read_only(&bad));
    }

    #[test]
    fn digest_tracks_writes_only() {
        let mut a = SyntheticApp::default();
        let mut b = SyntheticApp::default();
        let mut reply = Vec::new();
        let w1 = encoded(WRITE, 0);
        let w2 = encoded(
            SyntheticRequest {
                service_ns: 5,
                ..WRITE
            },
            0,
        );
        let read = encoded(
            SyntheticRequest {
                read_only: true,
                ..WRITE
            },
            0,
        );
        for req in [&w1, &w2] {
            a.execute(req, &mut reply).unwrap();
            b.execute(req, &mut reply).unwrap();
        }
        assert_eq!(a.state_digest(), b.state_digest());
        assert_eq!(a.writes_applied(), 2);

        // A read changes nothing.
        a.execute(&read, &mut reply).unwrap();
        assert_eq!(a.state_digest(), b.state_digest());
        assert_eq!(a.writes_applied(), 2);

        // One more write (even an identical one) does.
        a.execute(&w1, &mut reply).unwrap();
        assert_ne!(a.state_digest(), b.state_digest());

        // Same writes in a different order differ.
        let mut c = SyntheticApp::default();
        let mut d = SyntheticApp::default();
        c.execute(&w1, &mut reply).unwrap();
        c.execute(&w2, &mut reply).unwrap();
        d.execute(&w2, &mut reply).unwrap();
        d.execute(&w1, &mut reply).unwrap();
        assert_ne!(c.state_digest(), d.state_digest());
    }

    fn arb_request() -> impl Strategy<Value = SyntheticRequest> {
        (0..=MAX_SERVICE_NS, 0..=MAX_REPLY_BYTES, any::<bool>()).prop_map(
            |(service_ns, reply_bytes, read_only)| SyntheticRequest {
                service_ns,
                reply_bytes,
                read_only,
            },
        )
    }

    proptest! {
        #[test]
        fn round_trips(req in arb_request(), total_bytes in 0usize..256) {
            let bytes = encoded(req, total_bytes);
            prop_assert_eq!(bytes.len(), total_bytes.max(HEADER_BYTES));
            prop_assert_eq!(SyntheticRequest::decode(&bytes), Ok(req));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut app = SyntheticApp::default();
            let _ = SyntheticRequest::decode(&bytes);
            let _ = app.is_read_only(&bytes);
            let mut reply = Vec::new();
            if app.execute(&bytes, &mut reply).is_err() {
                prop_assert!(reply.is_empty());
            }
        }

        #[test]
        fn tagged_bytes_never_panic(rest in proptest::collection::vec(any::<u8>(), 0..40)) {
            // Most arbitrary inputs die at the tag check; this reaches the field checks.
            let mut bytes = vec![tag::SYNTHETIC];
            bytes.extend_from_slice(&rest);
            let mut reply = Vec::new();
            let _ = SyntheticApp::default().execute(&bytes, &mut reply);
            prop_assert!(reply.len() <= MAX_REPLY_BYTES as usize);
        }
    }
}
