/*
 * HovercRaft++ in-network fan-out/fan-in aggregator -- P4_16, v1model (BMv2 simple_switch).
 *
 * Semantics: p4/README.md (rules 1-3); the Rust model the simulator runs is
 * core/src/switch/aggregator.rs, and both are checked against the JSON vectors in p4/tests,
 * which p4/tests/gen_vectors.py produces from this program's logic.
 *
 *  1. APPEND_ENTRIES_REQ (raft_type 3) to the aggregator: an older term is dropped; a newer
 *     term (or the first leader ever) resets every register and makes the sender the leader;
 *     a second sender in the same term is dropped. With n_entries > 0, slot
 *     (prev_log_idx + n_entries) mod SLOTS is armed for that index. The packet is multicast
 *     unchanged to every other replica (multicast group leader + 1).
 *  2. APPEND_ENTRIES_REP (raft_type 4) with result 1 (success), the current term and a known
 *     leader: the sender's done counter is raised; if the reply names the armed index of its
 *     slot and the sender has not acked it yet, its bit is set and counted; when count + 1
 *     (the leader) reaches N/2 + 1, once per slot, the packet is rewritten into one
 *     APPEND_ENTRIES_REP_GROUP and multicast to every replica (group GROUP_ALL).
 *  3. Anything else that parsed goes unchanged to the leader's port (dropped with no leader).
 *
 * Dropped before any rule: bad magic, header_size != 8, flags != 0xC0 (multi-packet
 * messages are not aggregated), too short for the fixed parts parsed, ingress port not a
 * replica, Raft `from` != the ingress port's replica id. Replica i sits on port i.
 *
 * Reset is lazy: a slot or done entry carries the term that wrote it, and an entry with an
 * older tag reads as zero (terms only grow, and a reset always raises the term, except the
 * very first one, when every register is still zero). Outputs equal those of an eager reset.
 *
 * The group reply's per-peer list is unrolled for MAX_PEERS = 16 replicas (the Rust side
 * accepts 32): raise MAX_PEERS and add GROUP_DONE lines to go further.
 *
 * NOT COMPILED HERE: the machine this was written on has no p4c/BMv2 (see p4/README.md).
 * Note for editors: core/tests/p4_vectors.rs parses the message declarations below; keep
 * one `bit<W> name;` per line inside them, no comments inside their braces, and never
 * write the word h-e-a-d-e-r followed by a space anywhere else in this file (comments
 * included), or that test mis-parses the declarations.
 */
#include <core.p4>
#include <v1model.p4>

#define MAX_PEERS 16
/* Register slots for in-flight AppendEntries; must be a power of two. */
#ifndef SLOTS
#define SLOTS 64
#endif
/* The aggregator's address; the simulator uses 10.0.255.254:8000 (sim switch_addr()). */
#ifndef AGG_IP
#define AGG_IP 0x0A00FFFE
#endif
#ifndef AGG_UDP_PORT
#define AGG_UDP_PORT 8000
#endif
/* Multicast groups: L + 1 = every replica but L (1..MAX_PEERS), GROUP_ALL = every replica. */
#define GROUP_ALL 1000

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
const bit<32> AGG_ADDR = AGG_IP;
const bit<16> AGG_PORT = AGG_UDP_PORT;

const bit<8>  R2P2_MAGIC = 0xCC;
const bit<8>  R2P2_HEADER_LEN = 8;
const bit<8>  R2P2_SINGLE_PACKET = 0xC0;      /* FIRST 0x80 | LAST 0x40 */
const bit<8>  R2P2_RAFT_MSG_FIXED = 0x71;     /* RAFT_MSG 7 << 4 | FIXED_ROUTE 1 */
const bit<8>  RAFT_AE_REQ = 3;
const bit<8>  RAFT_AE_REP = 4;
const bit<8>  RAFT_AE_REP_GROUP = 5;
const bit<8>  AE_SUCCESS = 1;
const bit<8>  SWITCH_NODE_ID = 0xFF;

/* Group reply sizes: R2P2 8 + common 10 + group fixed part 17 = 35, plus 9 per peer. */
const bit<16> GROUP_FIXED_LEN = 35;
const bit<16> UDP_HDR_LEN = 8;
const bit<16> IPV4_HDR_LEN = 20;
const bit<16> ETH_HDR_LEN = 14;

/* ---- packet formats -------------------------------------------------------------------- */

header ethernet_h {
    bit<48> dst;
    bit<48> src;
    bit<16> ether_type;
}

header ipv4_h {
    bit<4> version;
    bit<4> ihl;
    bit<8> tos;
    bit<16> total_len;
    bit<16> id;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> checksum;
    bit<32> src;
    bit<32> dst;
}

header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> len;
    bit<16> checksum;
}

/* R2P2, 8 bytes (core/src/wire/header.rs): type in the high nibble of type_policy. */
header r2p2_h {
    bit<8> magic;
    bit<8> header_size;
    bit<8> type_policy;
    bit<8> flags;
    bit<16> req_id;
    bit<16> packet_order;
}

/* Raft common part, 10 bytes (core/src/wire/raft.rs). */
header raft_common_h {
    bit<8> raft_type;
    bit<8> from;
    bit<64> term;
}

/* APPEND_ENTRIES_REQ, fixed 26 bytes; the entries after it are never parsed. */
header ae_req_h {
    bit<64> prev_log_idx;
    bit<64> prev_log_term;
    bit<64> leader_commit;
    bit<16> n_entries;
}

/* APPEND_ENTRIES_REP, 25 bytes. */
header ae_rep_h {
    bit<8> result;
    bit<64> last_log_idx;
    bit<64> first_idx;
    bit<64> done;
}

/* APPEND_ENTRIES_REP_GROUP, fixed 17 bytes, then n_peers times group_done_h (9 bytes). */
header group_h {
    bit<64> last_log_idx;
    bit<64> commit_idx;
    bit<8> n_peers;
}

header group_done_h {
    bit<8> peer;
    bit<64> done;
}

struct headers_t {
    ethernet_h              ethernet;
    ipv4_h                  ipv4;
    udp_h                   udp;
    r2p2_h                  r2p2;
    raft_common_h           raft;
    ae_req_h                ae_req;
    ae_rep_h                ae_rep;
    group_h                 group;
    group_done_h[MAX_PEERS] dones;
}

/* BMv2 zeroes user metadata for every packet; multicast copies carry it into egress. */
struct metadata_t {
    bit<1>  to_agg;        /* UDP to AGG_ADDR:AGG_PORT: aggregator traffic */
    bit<1>  group_reply;   /* this packet became an APPEND_ENTRIES_REP_GROUP */
    bit<8>  n_peers;       /* N, from the `cluster` table */
    bit<8>  peer;          /* sender's replica id (= ingress port) */
    bit<32> slot;
    bit<32> frame_len;     /* group reply: exact frame length (trailing bytes are cut) */
}

/* ---- parser ------------------------------------------------------------------------------ */

parser AggParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t std) {
    state start {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        /* No IP options and no non-first fragments on the aggregator path. */
        transition select(hdr.ipv4.ihl, hdr.ipv4.frag_offset, hdr.ipv4.protocol) {
            (4w5, 13w0, IPPROTO_UDP): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        /* Only traffic to the aggregator's address is parsed further: R2P2 between
         * replicas (also UDP port 8000) is plain IPv4 and never touched. */
        transition select(hdr.ipv4.dst, hdr.udp.dst_port) {
            (AGG_ADDR, AGG_PORT): parse_r2p2;
            default: accept;
        }
    }
    state parse_r2p2 {
        meta.to_agg = 1;
        /* A short packet fails an extract: parser_error is set and ingress drops it. */
        pkt.extract(hdr.r2p2);
        pkt.extract(hdr.raft);
        transition select(hdr.raft.raft_type) {
            RAFT_AE_REQ: parse_ae_req;
            RAFT_AE_REP: parse_ae_rep;
            default: accept;
        }
    }
    state parse_ae_req {
        pkt.extract(hdr.ae_req);
        transition accept;
    }
    state parse_ae_rep {
        pkt.extract(hdr.ae_rep);
        transition accept;
    }
}

control AggVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

/* ---- ingress: the three rules ------------------------------------------------------------ */

control AggIngress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std) {

    /* Global state. */
    register<bit<64>>(1) reg_term;
    register<bit<8>>(1)  reg_leader;
    register<bit<1>>(1)  reg_has_leader;
    register<bit<16>>(1) reg_msg_id;         /* req_id of the next group reply; never reset */
    /* Per slot (an in-flight AppendEntries); tag = the term that wrote the entry. */
    register<bit<64>>(SLOTS) slot_tag;
    register<bit<64>>(SLOTS) slot_index;
    register<bit<32>>(SLOTS) slot_acks;      /* bit p = replica p acked */
    register<bit<8>>(SLOTS)  slot_count;
    register<bit<1>>(SLOTS)  slot_sent;
    /* Per replica: highest `done` reported in the term `done_tag`. */
    register<bit<64>>(MAX_PEERS) done_tag;
    register<bit<64>>(MAX_PEERS) done_value;

    action drop() {
        mark_to_drop(std);
    }

    /* Plain IPv4 forwarding for everything not addressed to the aggregator. */
    action forward(bit<9> port) {
        std.egress_spec = port;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dst: lpm; }
        actions = { forward; drop; }
        default_action = drop();
        size = 1024;
    }

    /* Cluster size N (1..MAX_PEERS); replicas 0..N-1 sit on ports 0..N-1. */
    action set_cluster(bit<8> n) {
        meta.n_peers = n;
    }
    table cluster {
        actions = { set_cluster; }
        default_action = set_cluster(0);
        size = 1;
    }

    /* One entry of the group reply's per-peer list; a done of an older term reads 0. */
#define GROUP_DONE(i)                                              \
        if (i < meta.n_peers) {                                    \
            bit<64> dt;                                            \
            bit<64> dv;                                            \
            done_tag.read(dt, i);                                  \
            done_value.read(dv, i);                                \
            hdr.dones[i].setValid();                               \
            hdr.dones[i].peer = i;                                 \
            hdr.dones[i].done = (dt == term) ? dv : 64w0;          \
        }

    apply {
        if (!hdr.ipv4.isValid()) {
            drop();
            return;
        }
        if (meta.to_agg == 0) {
            ipv4_lpm.apply();
            return;
        }

        /* ---- aggregator traffic: validation ---- */
        cluster.apply();
        if (std.parser_error != error.NoError) {
            drop();                          /* shorter than the fixed parts parsed */
            return;
        }
        if (hdr.r2p2.magic != R2P2_MAGIC || hdr.r2p2.header_size != R2P2_HEADER_LEN
            || hdr.r2p2.flags != R2P2_SINGLE_PACKET) {
            drop();
            return;
        }
        if (meta.n_peers == 0 || meta.n_peers > MAX_PEERS
            || std.ingress_port >= (bit<9>) meta.n_peers) {
            drop();                          /* not configured, or not from a replica */
            return;
        }
        meta.peer = (bit<8>) std.ingress_port;
        if (hdr.raft.from != meta.peer) {
            drop();
            return;
        }

        bit<64> term;
        bit<8> leader;
        bit<1> has_leader;
        reg_term.read(term, 0);
        reg_leader.read(leader, 0);
        reg_has_leader.read(has_leader, 0);

        /* ---- rule 1: the leader's AppendEntries -> fan-out ---- */
        if (hdr.ae_req.isValid()) {
            if (hdr.raft.term < term) {
                drop();                      /* stale leader */
                return;
            }
            if (hdr.raft.term > term || has_leader == 0) {
                /* New term: lazy reset (every older-tagged entry now reads as zero). */
                term = hdr.raft.term;
                leader = hdr.raft.from;
                reg_term.write(0, term);
                reg_leader.write(0, leader);
                reg_has_leader.write(0, 1);
            } else if (leader != hdr.raft.from) {
                drop();                      /* a second leader in one term: impossible */
                return;
            }
            if (hdr.ae_req.n_entries != 0) {
                bit<64> last = hdr.ae_req.prev_log_idx + (bit<64>) hdr.ae_req.n_entries;
                meta.slot = (bit<32>) (last & (bit<64>) (SLOTS - 1));
                slot_tag.write(meta.slot, term);
                slot_index.write(meta.slot, last);
                slot_acks.write(meta.slot, 0);
                slot_count.write(meta.slot, 0);
                slot_sent.write(meta.slot, 0);
            }
            std.mcast_grp = (bit<16>) leader + 1;   /* every replica but the leader */
            return;
        }

        /* ---- rule 2: a follower's success -> count, maybe fan-in ---- */
        if (hdr.ae_rep.isValid() && hdr.ae_rep.result == AE_SUCCESS && hdr.raft.term == term
            && has_leader == 1) {
            bit<32> p = (bit<32>) meta.peer;
            bit<64> dtag;
            bit<64> dval;
            done_tag.read(dtag, p);
            done_value.read(dval, p);
            if (dtag != term) {
                dval = 0;
            }
            if (hdr.ae_rep.done > dval) {
                dval = hdr.ae_rep.done;
            }
            done_tag.write(p, term);
            done_value.write(p, dval);

            bit<64> idx = hdr.ae_rep.last_log_idx;
            meta.slot = (bit<32>) (idx & (bit<64>) (SLOTS - 1));
            bit<64> stag;
            bit<64> sidx;
            bit<32> acks;
            bit<8> count;
            bit<1> sent;
            slot_tag.read(stag, meta.slot);
            slot_index.read(sidx, meta.slot);
            slot_acks.read(acks, meta.slot);
            slot_count.read(count, meta.slot);
            slot_sent.read(sent, meta.slot);
            if (stag != term) {
                sidx = 0;
                acks = 0;
                count = 0;
                sent = 0;
            }
            bit<32> mine = 32w1 << meta.peer;
            if (sidx != idx || idx == 0 || (acks & mine) != 0) {
                drop();                      /* not the armed index, or a duplicate */
                return;
            }
            /* Here stag == term (an older tag reads index 0, and idx != 0). */
            acks = acks | mine;
            count = count + 1;
            slot_acks.write(meta.slot, acks);
            slot_count.write(meta.slot, count);
            bit<8> quorum = (meta.n_peers >> 1) + 1;
            if (count + 1 < quorum || sent == 1) {
                drop();                      /* no majority yet, or already answered */
                return;
            }
            slot_sent.write(meta.slot, 1);

            /* Rewrite this packet into the group reply. */
            bit<16> msg_id;
            reg_msg_id.read(msg_id, 0);
            reg_msg_id.write(0, msg_id + 1);
            hdr.r2p2.type_policy = R2P2_RAFT_MSG_FIXED;
            hdr.r2p2.flags = R2P2_SINGLE_PACKET;
            hdr.r2p2.req_id = msg_id;
            hdr.r2p2.packet_order = 1;
            hdr.raft.raft_type = RAFT_AE_REP_GROUP;
            hdr.raft.from = SWITCH_NODE_ID;
            hdr.raft.term = term;
            hdr.ae_rep.setInvalid();
            hdr.group.setValid();
            hdr.group.last_log_idx = idx;
            hdr.group.commit_idx = idx;
            hdr.group.n_peers = meta.n_peers;
            GROUP_DONE(0)  GROUP_DONE(1)  GROUP_DONE(2)  GROUP_DONE(3)
            GROUP_DONE(4)  GROUP_DONE(5)  GROUP_DONE(6)  GROUP_DONE(7)
            GROUP_DONE(8)  GROUP_DONE(9)  GROUP_DONE(10) GROUP_DONE(11)
            GROUP_DONE(12) GROUP_DONE(13) GROUP_DONE(14) GROUP_DONE(15)
            /* Lengths from scratch; egress truncates anything that followed the reply. */
            bit<16> udp_payload = GROUP_FIXED_LEN + 9 * (bit<16>) meta.n_peers;
            hdr.udp.len = UDP_HDR_LEN + udp_payload;
            hdr.ipv4.total_len = IPV4_HDR_LEN + UDP_HDR_LEN + udp_payload;
            meta.frame_len = (bit<32>) (ETH_HDR_LEN + IPV4_HDR_LEN + UDP_HDR_LEN + udp_payload);
            meta.group_reply = 1;
            std.mcast_grp = GROUP_ALL;              /* leader and followers */
            return;
        }

        /* ---- rule 3: anything else -> the leader ---- */
        if (has_leader == 0) {
            drop();
            return;
        }
        std.egress_spec = (bit<9>) leader;
    }
}

/* ---- egress: address every aggregator output to the replica on its port ------------------ */

control AggEgress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std) {
    action drop() {
        mark_to_drop(std);
    }
    /* Replicas see every aggregator output as coming from AGG_ADDR:AGG_PORT. */
    action set_replica(bit<48> dmac, bit<48> smac, bit<32> ip, bit<16> udp_port) {
        hdr.ethernet.dst = dmac;
        hdr.ethernet.src = smac;
        hdr.ipv4.src = AGG_ADDR;
        hdr.ipv4.dst = ip;
        hdr.udp.src_port = AGG_PORT;
        hdr.udp.dst_port = udp_port;
        hdr.udp.checksum = 0;                /* optional over IPv4 */
    }
    table replica_port {
        key = { std.egress_port: exact; }
        actions = { set_replica; drop; }
        default_action = drop();
        size = MAX_PEERS;
    }
    apply {
        if (meta.to_agg == 1) {
            replica_port.apply();
            if (meta.group_reply == 1) {
                truncate(meta.frame_len);
            }
        }
    }
}

control AggComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.tos, hdr.ipv4.total_len, hdr.ipv4.id,
              hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl, hdr.ipv4.protocol,
              hdr.ipv4.src, hdr.ipv4.dst },
            hdr.ipv4.checksum, HashAlgorithm.csum16);
    }
}

control AggDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.r2p2);
        pkt.emit(hdr.raft);
        pkt.emit(hdr.ae_req);
        pkt.emit(hdr.ae_rep);
        pkt.emit(hdr.group);
        pkt.emit(hdr.dones);
    }
}

V1Switch(AggParser(), AggVerifyChecksum(), AggIngress(), AggEgress(), AggComputeChecksum(),
         AggDeparser()) main;
