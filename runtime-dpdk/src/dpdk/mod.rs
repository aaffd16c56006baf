//! The DPDK backend (cargo feature `dpdk`): Debian's `libdpdk` through a small C shim
//! (`shim.c`, built by `build.rs` with the flags `pkg-config libdpdk` gives), on one port and
//! one queue pair, run to completion on the calling thread (the EAL's main lcore).
//!
//! - The EAL is initialised once per process ([`DpdkIo::open`] refuses a second call) with the
//!   cluster file's `dpdk.eal_args` (e.g. `--no-huge --no-pci -m 256 --no-shconf
//!   --file-prefix=hc0 --vdev=net_af_packet0,iface=veth0,framecnt=2048`).
//! - Frames are ours ([`crate::frame`]): Ethernet/IPv4/UDP built and parsed in safe Rust;
//!   only whole frames cross into C, by copy, so no DPDK pointer is ever held by Rust.
//! - `wait` busy-polls the RX queue (run to completion). On a shared machine `idle_nap_us`
//!   makes an idle poller yield and then nap, so several pollers can share two cores.
//!
//! This is the crate's only module with `unsafe`; each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CString};
use std::io::{self, ErrorKind};
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::clock::Clock;
use crate::frame::{self, Mac, Neighbours, Reject};
use crate::io::Io;

extern "C" {
    fn hc_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    fn hc_port_count() -> u16;
    fn hc_port_setup(port: u16, mac_out: *mut u8) -> c_int;
    fn hc_rx(buf: *mut u8, cap: u16) -> c_int;
    fn hc_tx(frame: *const u8, len: u16) -> c_int;
    fn hc_tx_flush();
    fn hc_tx_dropped() -> u64;
}

/// Set by the first [`DpdkIo::open`]: the EAL and the shim's port are per process.
static OPENED: AtomicBool = AtomicBool::new(false);

/// Frames inspected per `recv` call at most (not-for-us frames included), so one call is
/// bounded even when the wire is busy with other traffic.
const RX_INSPECT: usize = 256;

#[derive(Clone, Debug)]
pub struct DpdkOptions {
    /// EAL arguments (without the program name).
    pub eal_args: Vec<String>,
    pub port: u16,
    /// This endpoint's IP and UDP port (DPDK owns the interface: nothing is bound).
    pub local: SocketAddrV4,
    /// Multicast groups whose datagrams (to `local`'s port) are accepted.
    pub groups: Vec<Ipv4Addr>,
    /// 0: busy-poll while waiting. Otherwise poll (yielding the CPU between polls) for this
    /// long, then nap this long between polls.
    pub idle_nap_us: u64,
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct DpdkCounters {
    pub rx_frames: u64,
    pub rx_not_for_us: u64,
    pub rx_bad: u64,
    pub rx_own: u64,
    pub rx_too_long: u64,
    pub tx_frames: u64,
    pub tx_no_mbuf: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    #[error("DPDK is already initialised in this process (one backend per process)")]
    AlreadyOpen,
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadArg(String),
    #[error("rte_eal_init failed (rc {0}); EAL args: {1}")]
    Eal(i32, String),
    #[error("no DPDK port {port} ({available} available): check the --vdev EAL argument")]
    NoPort { port: u16, available: u16 },
    #[error("port {port} setup failed (rc {rc})")]
    Port { port: u16, rc: i32 },
}

pub struct DpdkIo {
    local: SocketAddrV4,
    groups: Vec<Ipv4Addr>,
    mac: Mac,
    neighbours: Neighbours,
    ip_id: u16,
    frame: Vec<u8>,
    /// A frame `wait` received (length), handed out by the next `recv`.
    stash: Option<usize>,
    stash_buf: Vec<u8>,
    nap: Duration,
    clock: Clock,
    pub counters: DpdkCounters,
    /// The shim's state is unsynchronised: keep the backend on the thread that opened it.
    _not_send: PhantomData<*const ()>,
}

impl DpdkIo {
    pub fn open(opts: &DpdkOptions) -> Result<DpdkIo, DpdkError> {
        if OPENED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyOpen);
        }
        let mut args = vec!["hovercraft".to_string()];
        args.extend(opts.eal_args.iter().cloned());
        let cstrings = args
            .iter()
            .map(|a| CString::new(a.as_str()).map_err(|_| DpdkError::BadArg(a.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        // The EAL may keep pointers into argv for the life of the process: leak them (once).
        let mut argv: Vec<*mut c_char> = cstrings.into_iter().map(CString::into_raw).collect();
        let argc = argv.len() as c_int;
        argv.push(std::ptr::null_mut());
        let argv: &'static mut [*mut c_char] = Vec::leak(argv);
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a NULL, all leaked
        // so they outlive the EAL; OPENED guarantees this runs at most once per process.
        let rc = unsafe { hc_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::Eal(rc, opts.eal_args.join(" ")));
        }
        // SAFETY: a plain query, valid once the EAL is initialised (just checked).
        let available = unsafe { hc_port_count() };
        if opts.port >= available {
            return Err(DpdkError::NoPort {
                port: opts.port,
                available,
            });
        }
        let mut mac = [0u8; 6];
        // SAFETY: `mac` is 6 writable bytes, what hc_port_setup writes; the EAL is up and the
        // port exists (checked above); called once (OPENED).
        let rc = unsafe { hc_port_setup(opts.port, mac.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::Port {
                port: opts.port,
                rc,
            });
        }
        Ok(DpdkIo {
            local: opts.local,
            groups: opts.groups.clone(),
            mac,
            neighbours: Neighbours::default(),
            ip_id: 0,
            frame: Vec::with_capacity(frame::MAX_FRAME),
            stash: None,
            stash_buf: vec![0; frame::MAX_FRAME],
            nap: Duration::from_micros(opts.idle_nap_us),
            clock: Clock::new(),
            counters: DpdkCounters::default(),
            _not_send: PhantomData,
        })
    }

    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// Frames the TX queue refused (freed by the shim).
    pub fn tx_dropped(&self) -> u64 {
        // SAFETY: reads a counter of the shim; the port was set up by `open` (the only way to
        // get a DpdkIo), and this thread is the only user (`_not_send`).
        unsafe { hc_tx_dropped() }
    }

    fn flush(&mut self) {
        // SAFETY: the port was set up by `open`; single-threaded use (`_not_send`).
        unsafe { hc_tx_flush() }
    }

    /// One frame from the RX queue into `stash_buf`: its length, or `None`.
    fn rx_frame(&mut self) -> Option<usize> {
        loop {
            // SAFETY: `stash_buf` has MAX_FRAME writable bytes and the shim writes at most
            // `cap` = its length; the port was set up by `open`; single-threaded use.
            let n = unsafe { hc_rx(self.stash_buf.as_mut_ptr(), self.stash_buf.len() as u16) };
            match n {
                0 => return None,
                n if n < 0 => self.counters.rx_too_long += 1,
                n => return Some(n as usize),
            }
        }
    }
}

impl Io for DpdkIo {
    fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    fn send(&mut self, dst: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
        self.ip_id = self.ip_id.wrapping_add(1);
        let dst_mac = self.neighbours.mac_of(*dst.ip());
        frame::build(
            &mut self.frame,
            self.mac,
            dst_mac,
            self.local,
            dst,
            self.ip_id,
            payload,
        )
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidInput, "datagram exceeds one frame"))?;
        // SAFETY: `frame` is an initialised buffer of `len` ≤ MAX_FRAME bytes that the shim
        // only reads (it copies them into an mbuf); single-threaded use.
        let rc = unsafe { hc_tx(self.frame.as_ptr(), self.frame.len() as u16) };
        if rc < 0 {
            self.counters.tx_no_mbuf += 1;
            return Err(io::Error::new(
                ErrorKind::WouldBlock,
                "no free mbuf (datagram dropped)",
            ));
        }
        self.counters.tx_frames += 1;
        Ok(())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddrV4)>> {
        for _ in 0..RX_INSPECT {
            let n = match self.stash.take() {
                Some(n) => n,
                None => match self.rx_frame() {
                    Some(n) => n,
                    None => {
                        // Idle: what we queued goes out now rather than at the next burst.
                        self.flush();
                        return Ok(None);
                    }
                },
            };
            self.counters.rx_frames += 1;
            match frame::parse(&self.stash_buf[..n], self.local, &self.groups) {
                Ok(r) if r.src_mac == self.mac => self.counters.rx_own += 1,
                Ok(r) if r.payload.len() <= buf.len() => {
                    self.neighbours.learn(*r.from.ip(), r.src_mac);
                    buf[..r.payload.len()].copy_from_slice(r.payload);
                    return Ok(Some((r.payload.len(), r.from)));
                }
                Ok(_) => self.counters.rx_too_long += 1,
                Err(Reject::NotForUs | Reject::NotIpv4) => self.counters.rx_not_for_us += 1,
                Err(_) => self.counters.rx_bad += 1,
            }
        }
        Ok(None)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.flush();
        if self.stash.is_some() {
            return Ok(());
        }
        let start = self.clock.now();
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
        loop {
            if let Some(n) = self.rx_frame() {
                self.stash = Some(n);
                return Ok(());
            }
            let waited = (self.clock.now() - start).as_ns();
            if waited >= ns(timeout) {
                return Ok(());
            }
            if self.nap.is_zero() {
                std::hint::spin_loop();
            } else if waited < ns(self.nap) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(self.nap.min(Duration::from_nanos(ns(timeout) - waited)));
            }
        }
    }
}
