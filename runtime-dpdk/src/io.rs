//! I/O backends. A driver talks to the network through [`Io`]: send one datagram, receive
//! one datagram without blocking, and wait until a datagram may be ready or a deadline passes.
//!
//! [`UdpIo`] is the kernel UDP backend: one non-blocking `std::net::UdpSocket` (options and the
//! multicast join through `socket2`), and `ppoll(2)` for waiting, whose nanosecond timeout
//! lets Raft's 1 ms timers and a Poisson load generator keep time without busy-polling a
//! shared machine. Datagrams go one system call each (`send_to`/`recv_from`): at the rates
//! this testbed runs on kernel UDP (thousands to tens of thousands per second) the system
//! call is not the bottleneck, so `sendmmsg`/`recvmmsg` batching (which needs `unsafe` or a
//! heavier crate) is left to the DPDK backend. The receive path drains up to a batch of
//! datagrams per wake-up.
#![forbid(unsafe_code)]

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, Socket, Type};

/// Largest datagram a backend receives (bigger ones are truncated by the kernel and then
/// rejected by the core's codec, never trusted).
pub const MAX_DATAGRAM: usize = 2048;

/// Socket buffer sizes asked of the kernel (it may cap them at `net.core.rmem_max`): bounded,
/// and large enough to absorb a burst of a few thousand packets.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// What a driver needs from the network.
pub trait Io {
    /// The address peers see as this endpoint's source.
    fn local_addr(&self) -> SocketAddrV4;
    /// Sends one datagram. A full socket buffer (`WouldBlock`) is an error the caller counts
    /// as a loss: the protocol retransmits, the driver never blocks.
    fn send(&mut self, dst: SocketAddrV4, payload: &[u8]) -> io::Result<()>;
    /// Receives one datagram into `buf`; `Ok(None)` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddrV4)>>;
    /// Blocks until a datagram may be waiting or `timeout` passed (spurious wake-ups allowed).
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;
    /// [`Io::wait`] that also returns when `wake` is signalled (the storage thread reporting
    /// an fsync). This default, for backends that cannot poll a file descriptor (DPDK polls
    /// its port), re-checks at least every [`WAKE_RECHECK`].
    fn wait_or_wake(&mut self, timeout: Duration, wake: &Wake) -> io::Result<()> {
        let _ = wake;
        self.wait(timeout.min(WAKE_RECHECK))
    }
}

/// How often a backend without file descriptors re-checks a [`Wake`] while waiting: short
/// next to an fsync (hundreds of µs to ms), long next to a busy-poll iteration.
pub const WAKE_RECHECK: Duration = Duration::from_micros(50);

/// The receiving side of a cross-thread wake-up: a socket pair, so `ppoll` can wait on it
/// next to the network socket without `unsafe` or an eventfd dependency.
pub struct Wake {
    rx: UnixDatagram,
}

/// The sending side of a [`Wake`] (owned by another thread).
pub struct Waker {
    tx: UnixDatagram,
}

/// A connected wake-up pair.
pub fn wake_pair() -> io::Result<(Waker, Wake)> {
    let (tx, rx) = UnixDatagram::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((Waker { tx }, Wake { rx }))
}

impl Waker {
    pub fn wake(&self) {
        // A full socket buffer means wake-ups are already pending: dropping this one is fine.
        let _ = self.tx.send(&[1]);
    }
}

impl Wake {
    /// Consumes pending wake-ups (bounded: the socket buffer holds a bounded number).
    pub fn clear(&self) {
        let mut b = [0u8; 16];
        while self.rx.recv(&mut b).is_ok() {}
    }

    /// Blocks until woken or `timeout` passed (spurious wake-ups allowed).
    pub fn wait(&self, timeout: Duration) -> io::Result<()> {
        let mut fds = [PollFd::new(self.rx.as_fd(), PollFlags::POLLIN)];
        match nix::poll::ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

/// How to open a [`UdpIo`].
#[derive(Clone, Debug)]
pub struct UdpOptions {
    /// Address to bind. `0.0.0.0:port` receives unicast and the joined group on that port.
    pub bind: SocketAddrV4,
    /// The address peers see (`bind` when it is not the wildcard).
    pub advertised: Option<SocketAddrV4>,
    /// Join this multicast group on the interface that has this address.
    pub join: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Send multicast out of the interface that has this address.
    pub multicast_if: Option<Ipv4Addr>,
}

#[derive(Debug, thiserror::Error)]
pub enum IoSetupError {
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        source: io::Error,
    },
    #[error("cannot join multicast group {group} on interface {iface}: {source}")]
    Join {
        group: Ipv4Addr,
        iface: Ipv4Addr,
        source: io::Error,
    },
    #[error("socket setup: {0}")]
    Other(#[from] io::Error),
}

/// The kernel UDP backend.
pub struct UdpIo {
    sock: UdpSocket,
    local: SocketAddrV4,
}

impl UdpIo {
    pub fn open(opts: &UdpOptions) -> Result<UdpIo, IoSetupError> {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        // Best effort: the kernel caps these at net.core.{r,w}mem_max.
        let _ = s.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
        let _ = s.set_send_buffer_size(SOCKET_BUFFER_BYTES);
        // No SO_REUSEADDR and no SO_REUSEPORT, in any mode: with either, another local
        // process (any user for SO_REUSEADDR) could bind this port beside the node and read
        // or send as it. UDP has no TIME_WAIT, so a restarted node rebinds at once without
        // them; a multicast node binds the wildcard and joins the group on this one socket.
        s.bind(&SocketAddr::V4(opts.bind).into())
            .map_err(|source| IoSetupError::Bind {
                addr: opts.bind,
                source,
            })?;
        if let Some((group, iface)) = opts.join {
            s.join_multicast_v4(&group, &iface)
                .map_err(|source| IoSetupError::Join {
                    group,
                    iface,
                    source,
                })?;
        }
        if let Some(iface) = opts.multicast_if {
            s.set_multicast_if_v4(&iface)?;
        }
        s.set_multicast_ttl_v4(1)?;
        s.set_nonblocking(true)?;
        let sock: UdpSocket = s.into();
        let bound = match sock.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(_) => unreachable!("an IPv4 socket"),
        };
        let local = opts.advertised.unwrap_or(bound);
        let local = if local.port() == 0 {
            SocketAddrV4::new(*local.ip(), bound.port())
        } else {
            local
        };
        Ok(UdpIo { sock, local })
    }
}

impl Io for UdpIo {
    fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    fn send(&mut self, dst: SocketAddrV4, payload: &[u8]) -> io::Result<()> {
        self.sock.send_to(payload, dst).map(|_| ())
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddrV4)>> {
        loop {
            match self.sock.recv_from(buf) {
                Ok((n, SocketAddr::V4(from))) => return Ok(Some((n, from))),
                // Not reachable on an IPv4 socket; drop rather than trust it.
                Ok((_, SocketAddr::V6(_))) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                // ICMP errors (port unreachable after our send) surface here on Linux;
                // the caller logs them and carries on.
                Err(e) => return Err(e),
            }
        }
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
        match nix::poll::ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    fn wait_or_wake(&mut self, timeout: Duration, wake: &Wake) -> io::Result<()> {
        let mut fds = [
            PollFd::new(self.sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.rx.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::ppoll(&mut fds, Some(TimeSpec::from_duration(timeout)), None) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

/// Opens the backend a cluster file asks for: DPDK when it has a `dpdk` section (`host` names
/// this process in the EAL arguments), else kernel UDP with `udp`. `local` and `groups` are
/// what DPDK answers to (it binds nothing: it owns the interface).
pub fn open_backend(
    dpdk: Option<&crate::cluster::DpdkConfig>,
    host: &str,
    udp: &UdpOptions,
    local: SocketAddrV4,
    groups: Vec<Ipv4Addr>,
) -> anyhow::Result<Box<dyn Io>> {
    let Some(d) = dpdk else {
        return Ok(Box::new(UdpIo::open(udp)?));
    };
    anyhow::ensure!(
        !local.ip().is_unspecified() && local.port() != 0,
        "the DPDK backend needs a concrete address (IP and port) for this endpoint, got {local}"
    );
    open_dpdk(d, host, local, groups)
}

#[cfg(feature = "dpdk")]
fn open_dpdk(
    d: &crate::cluster::DpdkConfig,
    host: &str,
    local: SocketAddrV4,
    groups: Vec<Ipv4Addr>,
) -> anyhow::Result<Box<dyn Io>> {
    let io = crate::dpdk::DpdkIo::open(&crate::dpdk::DpdkOptions {
        eal_args: d.eal_args_for(host),
        port: d.port,
        local,
        groups,
        idle_nap_us: d.idle_nap_us,
    })?;
    Ok(Box::new(io))
}

#[cfg(not(feature = "dpdk"))]
fn open_dpdk(
    _: &crate::cluster::DpdkConfig,
    _: &str,
    _: SocketAddrV4,
    _: Vec<Ipv4Addr>,
) -> anyhow::Result<Box<dyn Io>> {
    anyhow::bail!(
        "the cluster file asks for DPDK (field `dpdk`), but this binary was built without it: \
         cargo build --release -p hovercraft-runtime --features dpdk"
    )
}

/// Whether a send error means "this datagram was dropped, carry on" rather than a broken
/// socket. Every error is survivable for a UDP driver; this only picks which ones to log.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::Interrupted | ErrorKind::ConnectionRefused
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(addr: SocketAddrV4) -> UdpIo {
        UdpIo::open(&UdpOptions {
            bind: addr,
            advertised: None,
            join: None,
            multicast_if: None,
        })
        .unwrap()
    }

    #[test]
    fn loopback_send_wait_recv() {
        let lo = Ipv4Addr::LOCALHOST;
        let mut a = open(SocketAddrV4::new(lo, 0));
        let mut b = open(SocketAddrV4::new(lo, 0));
        let mut buf = [0u8; MAX_DATAGRAM];
        assert!(b.recv(&mut buf).unwrap().is_none(), "non-blocking");
        a.send(b.local_addr(), b"hello").unwrap();
        b.wait(Duration::from_secs(2)).unwrap();
        let (n, from) = b.recv(&mut buf).unwrap().unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()));
    }

    #[test]
    fn bind_error_names_the_address() {
        let e = UdpIo::open(&UdpOptions {
            bind: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 7000),
            advertised: None,
            join: None,
            multicast_if: None,
        })
        .err()
        .unwrap();
        assert!(
            e.to_string().starts_with("cannot bind UDP 192.0.2.1:7000"),
            "{e}"
        );
    }
}
