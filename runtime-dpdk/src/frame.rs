//! Our own Ethernet II / IPv4 / UDP framing for the DPDK backend, which owns the NIC and so
//! has no kernel stack to do it. Safe code, no DPDK: it is compiled and tested without the
//! `dpdk` feature.
//!
//! - Multicast IPv4 goes to the MAC `01:00:5e` + the group's low 23 bits (RFC 1112), TTL 1.
//! - Unicast goes to the MAC learned from frames received from that IP ([`Neighbours`]), or
//!   to the broadcast MAC until one was heard: the testbed's bridge floods broadcast, and
//!   receivers filter by IP, so no ARP is needed between our own endpoints.
//! - Receive accepts only unfragmented IPv4/UDP with a valid header checksum, addressed to our
//!   IP or a joined group and our port. UDP checksums are not sent (0 is legal in IPv4) and
//!   not checked (the R2P2 codec rejects damaged payloads it cannot parse; Ethernet's FCS
//!   already covers the wire).
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

pub const ETH_HEADER: usize = 14;
pub const IPV4_HEADER: usize = 20;
pub const UDP_HEADER: usize = 8;
pub const HEADERS: usize = ETH_HEADER + IPV4_HEADER + UDP_HEADER;
/// Largest UDP payload in one 1500-byte-MTU frame.
pub const MAX_PAYLOAD: usize = 1500 - IPV4_HEADER - UDP_HEADER;
/// Largest frame built or accepted (no FCS).
pub const MAX_FRAME: usize = ETH_HEADER + 1500;
/// IP addresses whose MAC is remembered.
pub const MAX_NEIGHBOURS: usize = 1024;

pub type Mac = [u8; 6];
pub const BROADCAST: Mac = [0xff; 6];

/// The MAC of an IPv4 multicast group.
pub fn multicast_mac(group: Ipv4Addr) -> Mac {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// IP → MAC, learned from received frames; bounded (a full table forgets nothing and learns
/// nothing new: unknown destinations then go to broadcast, which still works).
#[derive(Default)]
pub struct Neighbours {
    map: rustc_hash::FxHashMap<Ipv4Addr, Mac>,
}

impl Neighbours {
    pub fn learn(&mut self, ip: Ipv4Addr, mac: Mac) {
        if mac[0] & 1 != 0 || ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() {
            return;
        }
        if self.map.len() < MAX_NEIGHBOURS || self.map.contains_key(&ip) {
            self.map.insert(ip, mac);
        }
    }

    pub fn mac_of(&self, ip: Ipv4Addr) -> Mac {
        if ip.is_multicast() {
            return multicast_mac(ip);
        }
        self.map.get(&ip).copied().unwrap_or(BROADCAST)
    }
}

/// The internet checksum of `bytes`.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in bytes.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes a whole frame into `out` (cleared first). `None` if the payload does not fit one
/// frame.
pub fn build(
    out: &mut Vec<u8>,
    src_mac: Mac,
    dst_mac: Mac,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    ip_id: u16,
    payload: &[u8],
) -> Option<()> {
    if payload.len() > MAX_PAYLOAD {
        return None;
    }
    out.clear();
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (IPV4_HEADER + UDP_HEADER + payload.len()) as u16;
    let ttl = if dst.ip().is_multicast() { 1 } else { 64 };
    let ip_start = out.len();
    out.extend_from_slice(&[0x45, 0]);
    out.extend_from_slice(&ip_len.to_be_bytes());
    out.extend_from_slice(&ip_id.to_be_bytes());
    out.extend_from_slice(&0x4000u16.to_be_bytes()); // DF, no fragments
    out.extend_from_slice(&[ttl, 17, 0, 0]);
    out.extend_from_slice(&src.ip().octets());
    out.extend_from_slice(&dst.ip().octets());
    let c = checksum(&out[ip_start..ip_start + IPV4_HEADER]);
    out[ip_start + 10..ip_start + 12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&((UDP_HEADER + payload.len()) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    Some(())
}

/// A received UDP datagram for us.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'a> {
    pub src_mac: Mac,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub payload: &'a [u8],
}

/// Why a frame was not for us (counted by the backend, never trusted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    Short,
    NotIpv4,
    BadIpHeader,
    Fragment,
    NotUdp,
    NotForUs,
}

/// Parses `frame`; accepts UDP to `local` (its IP, or any of `groups`, on its port).
pub fn parse<'a>(
    frame: &'a [u8],
    local: SocketAddrV4,
    groups: &[Ipv4Addr],
) -> Result<Received<'a>, Reject> {
    if frame.len() < HEADERS {
        return Err(Reject::Short);
    }
    if frame[12..14] != [0x08, 0x00] {
        return Err(Reject::NotIpv4);
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if ip[0] >> 4 != 4 || ihl < IPV4_HEADER || total < ihl + UDP_HEADER || total > ip.len() {
        return Err(Reject::BadIpHeader);
    }
    if checksum(&ip[..ihl]) != 0 {
        return Err(Reject::BadIpHeader);
    }
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if frag & 0x3fff != 0 {
        return Err(Reject::Fragment);
    }
    if ip[9] != 17 {
        return Err(Reject::NotUdp);
    }
    let src_ip = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst_ip = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let udp = &ip[ihl..total];
    let src_port = u16::from_be_bytes([udp[0], udp[1]]);
    let dst_port = u16::from_be_bytes([udp[2], udp[3]]);
    let udp_len = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    if udp_len < UDP_HEADER || udp_len > udp.len() {
        return Err(Reject::BadIpHeader);
    }
    let for_us = dst_port == local.port() && (dst_ip == *local.ip() || groups.contains(&dst_ip));
    if !for_us {
        return Err(Reject::NotForUs);
    }
    let mut src_mac = [0; 6];
    src_mac.copy_from_slice(&frame[6..12]);
    Ok(Received {
        src_mac,
        from: SocketAddrV4::new(src_ip, src_port),
        to: SocketAddrV4::new(dst_ip, dst_port),
        payload: &udp[UDP_HEADER..udp_len],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), 7000);
    const B: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 7000);
    const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
    const MAC_A: Mac = [2, 0, 0x0a, 0x4d, 0, 1];

    #[test]
    fn build_then_parse_round_trips() {
        let mut f = Vec::new();
        build(&mut f, MAC_A, BROADCAST, A, B, 7, b"hello").unwrap();
        assert_eq!(f.len(), HEADERS + 5);
        let r = parse(&f, B, &[]).unwrap();
        assert_eq!(
            (r.from, r.to, r.payload, r.src_mac),
            (A, B, &b"hello"[..], MAC_A)
        );
        assert_eq!(parse(&f, A, &[]), Err(Reject::NotForUs));
        // To the group: multicast MAC, TTL 1, accepted by a member on the port.
        let g = SocketAddrV4::new(G, 7000);
        build(&mut f, MAC_A, multicast_mac(G), A, g, 8, b"x").unwrap();
        assert_eq!(&f[..6], &[0x01, 0x00, 0x5e, 0x01, 0x01, 0x01]);
        assert_eq!(f[ETH_HEADER + 8], 1);
        assert_eq!(parse(&f, B, &[G]).unwrap().to, g);
        assert_eq!(parse(&f, B, &[]), Err(Reject::NotForUs));
        assert!(build(&mut f, MAC_A, BROADCAST, A, B, 0, &[0; MAX_PAYLOAD + 1]).is_none());
    }

    #[test]
    fn damaged_frames_are_rejected_without_panic() {
        let mut f = Vec::new();
        build(&mut f, MAC_A, BROADCAST, A, B, 7, b"hello").unwrap();
        for cut in 0..f.len() {
            let _ = parse(&f[..cut], B, &[G]);
        }
        let mut bad = f.clone();
        bad[ETH_HEADER + 12] ^= 1; // source IP: checksum now wrong
        assert_eq!(parse(&bad, B, &[]), Err(Reject::BadIpHeader));
        let mut frag = f.clone();
        frag[ETH_HEADER + 6] = 0x20; // MF
        let c = checksum(&{
            let mut h = frag[ETH_HEADER..ETH_HEADER + 20].to_vec();
            h[10] = 0;
            h[11] = 0;
            h
        });
        frag[ETH_HEADER + 10..ETH_HEADER + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&frag, B, &[]), Err(Reject::Fragment));
        // Every single-byte corruption: an error or a datagram, never a panic.
        for i in 0..f.len() {
            for v in [0u8, 0xff, 0x45] {
                let mut g = f.clone();
                g[i] = v;
                let _ = parse(&g, B, &[G]);
            }
        }
    }

    #[test]
    fn neighbours_learn_unicast_only_and_stay_bounded() {
        let mut n = Neighbours::default();
        assert_eq!(n.mac_of(*B.ip()), BROADCAST);
        n.learn(*B.ip(), MAC_A);
        assert_eq!(n.mac_of(*B.ip()), MAC_A);
        n.learn(*A.ip(), multicast_mac(G));
        assert_eq!(n.mac_of(*A.ip()), BROADCAST);
        assert_eq!(n.mac_of(G), multicast_mac(G));
        for i in 0..(MAX_NEIGHBOURS as u32 + 10) {
            n.learn(Ipv4Addr::from(0x0a00_0000 + i), MAC_A);
        }
        assert!(n.map.len() <= MAX_NEIGHBOURS);
    }
}
