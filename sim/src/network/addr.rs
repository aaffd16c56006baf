//! The simulated address plan: server `i` is 10.0.0.(i+1):8000; client machine `m` is
//! 10.1.0.(m+1) with ports 9000.. ; the cluster's multicast group is 239.1.1.1:8000; the
//! HovercRaft++ aggregator in the ToR switch is 10.0.255.254:8000. These are simulated
//! addresses only: nothing here touches a real network.

use std::net::{Ipv4Addr, SocketAddrV4};

pub const SERVER_PORT: u16 = 8000;
pub const CLIENT_BASE_PORT: u16 = 9000;

pub fn server_addr(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 0, (i >> 8) as u8, (i & 0xFF) as u8 + 1),
        SERVER_PORT,
    )
}

pub fn client_ip(m: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, (m >> 8) as u8, (m & 0xFF) as u8 + 1)
}

/// The HovercRaft++ aggregator's address (it lives in the ToR switch).
pub fn switch_addr() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 255, 254), SERVER_PORT)
}

pub fn cluster_group() -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(239, 1, 1, 1), SERVER_PORT)
}
