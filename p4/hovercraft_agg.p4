/*
 * HovercRaft++ in-network fan-out/fan-in aggregator (P4_16, v1model).
 *
 * The same rules as core/src/switch/aggregator.rs (the reference model the simulator runs),
 * checked against it byte for byte through the vectors in p4/tests/*.json:
 *
 *  1. APPEND_ENTRIES_REQ from the leader to the aggregator address: a higher term resets
 *     the registers (lazily: entries are tagged with the term that wrote them); an older term
 *     is dropped; with entries, slot (prev + n) mod SLOTS is armed for index prev + n; the
 *     packet is multicast unchanged to every other replica (group leader + 1).
 *  2. APPEND_ENTRIES_REP with result = success in the current term: the follower's `done` is
 *     stored; if the index is the armed one, the follower's bit is set (duplicates count
 *     once); at a majority (the leader counts as one) the packet is rewritten into one
 *     APPEND_ENTRIES_REP_GROUP and multicast to every replica (group 1000).
 *  3. Anything else addressed to the aggregator goes unchanged to the leader.
 *
 * Not compiled on the machine that wrote it (no p4c there); see p4/README.md.
 * Replicas 0..MAX_PEERS-1 sit on egress ports 0..MAX_PEERS-1 (port i = peer i).
 */
#include <core.p4>
#include <v1model.p4>

#define MAX_PEERS 16
#define SLOTS 64
#define AGG_UDP_PORT 8000
#define GROUP_ALL 1000

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  PROTO_UDP = 17;
const bit<8>  R2P2_MAGIC = 0xCC;
const bit<8>  RAFT_AE_REQ = 3;
const bit<8>  RAFT_AE_REP = 4;
const bit<8>  RAFT_AE_REP_GROUP = 5;
const bit<8>  SWITCH_NODE_ID = 0xFF;

header ethernet_h {
    bit<48> dst;
    bit<48> src;
    bit<16> ether_type;
}

header ipv4_h {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  tos;
    bit<16> total_len;
    bit<16> id;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
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

/* R2P2 header, 8 bytes (core/src/wire/header.rs). */
header r2p2_h {
    bit<8> magic;
    bit<8> header_size;
    bit<8> type_policy;
    bit<8> flags;
    bit<16> req_id;
    bit<16> packet_order;
}

/* Raft common header, 10 bytes (core/src/wire/raft.rs). */
header raft_common_h {
    bit<8> raft_type;
    bit<8> from;
    bit<64> term;
}

/* Fixed part of APPEND_ENTRIES_REQ; the entries that follow are never parsed. */
header ae_req_h {
    bit<64> prev_log_idx;
    bit<64> prev_log_term;
    bit<64> leader_commit;
    bit<16> n_entries;
}

/* APPEND_ENTRIES_REP. */
header ae_rep_h {
    bit<8> result;
    bit<64> last_log_idx;
    bit<64> first_idx;
    bit<64> done;
}

/* APPEND_ENTRIES_REP_GROUP, followed by n_peers group_done_h. */
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
    ethernet_h    ethernet;
    ipv4_h        ipv4;
    udp_h         udp;
    r2p2_h        r2p2;
    raft_common_h raft;
    ae_req_h      ae_req;
    ae_rep_h      ae_rep;
    group_h       group;
    group_done_h[MAX_PEERS] dones;
}

struct metadata_t {
    bit<1>  to_aggregator;
    bit<32> slot;
    bit<8>  peer;        /* sender, from the ingress port */
}

/* ---- registers (bounded, indexed by slot or peer) ----------------------------------- */
register<bit<64>>(1) reg_term;
register<bit<8>>(1)  reg_leader;
register<bit<1>>(1)  reg_has_leader;
register<bit<16>>(1) reg_msg_id;
register<bit<64>>(SLOTS) slot_tag;      /* term that wrote the slot: older reads as empty */
register<bit<64>>(SLOTS) slot_index;
register<bit<32>>(SLOTS) slot_acks;
register<bit<8>>(SLOTS)  slot_count;
register<bit<1>>(SLOTS)  slot_sent;
register<bit<64>>(MAX_PEERS) done_tag;
register<bit<64>>(MAX_PEERS) done_value;

/* ---- parser ------------------------------------------------------------------------ */
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
        transition select(hdr.ipv4.protocol) {
            PROTO_UDP: parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        transition select(hdr.udp.dst_port) {
            AGG_UDP_PORT: parse_r2p2;
            default: accept;
        }
    }
    state parse_r2p2 {
        pkt.extract(hdr.r2p2);
        transition parse_raft;
    }
    state parse_raft {
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

control AggVerifyChecksum(inout headers_t hdr, inout metadata_t meta) { apply { } }

/* ---- ingress ------------------------------------------------------------------------ */
control AggIngress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t std) {

    action drop() { mark_to_drop(std); }

    /* Plain IPv4 forwarding for everything that is not for the aggregator. */
    action forward(bit<9> port) { std.egress_spec = port; }
    table ipv4_lpm {
        key = { hdr.ipv4.dst: lpm; }
        actions = { forward; drop; }
        default_action = drop();
        size = 1024;
    }

    /* Which destination address is the aggregator (one entry, set by the control plane). */
    action is_aggregator() { meta.to_aggregator = 1; }
    table aggregator_addr {
        key = { hdr.ipv4.dst: exact; hdr.udp.dst_port: exact; }
        actions = { is_aggregator; NoAction; }
        default_action = NoAction();
        size = 1;
    }

    /* Cluster size and quorum (one entry). */
    bit<8> n_peers = 0;
    bit<8> quorum = 0;
    action set_cluster(bit<8> n, bit<8> q) { n_peers = n; quorum = q; }
    table cluster {
        actions = { set_cluster; }
        default_action = set_cluster(0, 0);
        size = 1;
    }

    action to_leader(bit<8> leader) { std.egress_spec = (bit<9>) leader; }

    apply {
        if (!hdr.ipv4.isValid()) { drop(); return; }
        if (hdr.udp.isValid()) { aggregator_addr.apply(); }
        if (meta.to_aggregator == 0) { ipv4_lpm.apply(); return; }
        cluster.apply();
        meta.peer = (bit<8>) std.ingress_port;
        /* Fixed headers only; a multi-packet message or a stranger is dropped. */
        if (!hdr.r2p2.isValid() || !hdr.raft.isValid() || hdr.r2p2.magic != R2P2_MAGIC
            || hdr.r2p2.header_size != 8 || hdr.r2p2.flags != 0xC0
            || meta.peer >= n_peers || hdr.raft.from != meta.peer) {
            drop(); return;
        }
        bit<64> term; reg_term.read(term, 0);
        bit<8> leader; reg_leader.read(leader, 0);
        bit<1> has_leader; reg_has_leader.read(has_leader, 0);

        if (hdr.ae_req.isValid()) {
            /* Rule 1: the leader's AppendEntries. */
            if (hdr.raft.term < term) { drop(); return; }
            if (hdr.raft.term > term || has_leader == 0) {
                term = hdr.raft.term; leader = hdr.raft.from; has_leader = 1;
                reg_term.write(0, term); reg_leader.write(0, leader); reg_has_leader.write(0, 1);
            } else if (leader != hdr.raft.from) { drop(); return; }
            if (hdr.ae_req.n_entries > 0) {
                bit<64> last = hdr.ae_req.prev_log_idx + (bit<64>) hdr.ae_req.n_entries;
                meta.slot = (bit<32>) (last & (SLOTS - 1));
                slot_tag.write(meta.slot, term);
                slot_index.write(meta.slot, last);
                slot_acks.write(meta.slot, 0);
                slot_count.write(meta.slot, 0);
                slot_sent.write(meta.slot, 0);
            }
            /* Fan-out: group leader+1 holds every replica but the leader. */
            std.mcast_grp = (bit<16>) leader + 1;
            return;
        }

        if (hdr.ae_rep.isValid() && hdr.ae_rep.result == 1 && hdr.raft.term == term
            && has_leader == 1) {
            /* Rule 2: count a success. */
            bit<32> p = (bit<32>) meta.peer;
            bit<64> dtag; done_tag.read(dtag, p);
            bit<64> dval; done_value.read(dval, p);
            if (dtag != term) { dval = 0; }
            if (hdr.ae_rep.done > dval) { dval = hdr.ae_rep.done; }
            done_tag.write(p, term); done_value.write(p, dval);

            bit<64> idx = hdr.ae_rep.last_log_idx;
            meta.slot = (bit<32>) (idx & (SLOTS - 1));
            bit<64> stag; slot_tag.read(stag, meta.slot);
            bit<64> sidx; slot_index.read(sidx, meta.slot);
            bit<32> acks; slot_acks.read(acks, meta.slot);
            bit<8> count; slot_count.read(count, meta.slot);
            bit<1> sent; slot_sent.read(sent, meta.slot);
            if (stag != term) { sidx = 0; acks = 0; count = 0; sent = 0; }
            bit<32> bit_p = (bit<32>) 1 << (bit<8>) meta.peer;
            if (sidx != idx || idx == 0 || (acks & bit_p) != 0) { drop(); return; }
            acks = acks | bit_p; count = count + 1;
            slot_tag.write(meta.slot, term);
            slot_acks.write(meta.slot, acks);
            slot_count.write(meta.slot, count);
            if (count + 1 < quorum || sent == 1) {
                slot_sent.write(meta.slot, sent);
                drop(); return;
            }
            slot_sent.write(meta.slot, 1);

            /* Rewrite this packet into the group reply. */
            bit<16> msg_id; reg_msg_id.read(msg_id, 0); reg_msg_id.write(0, msg_id + 1);
            hdr.r2p2.type_policy = 0x71;          /* RAFT_MSG << 4 | FIXED_ROUTE */
            hdr.r2p2.req_id = msg_id;
            hdr.r2p2.packet_order = 1;
            hdr.raft.raft_type = RAFT_AE_REP_GROUP;
            hdr.raft.from = SWITCH_NODE_ID;
            hdr.ae_rep.setInvalid();
            hdr.group.setValid();
            hdr.group.last_log_idx = idx;
            hdr.group.commit_idx = idx;
            hdr.group.n_peers = n_peers;
            /* One done per peer, unrolled (done of an older term reads 0). */
#define DONE(i) \
            if (i < n_peers) { \
                bit<64> t##i; done_tag.read(t##i, i); \
                bit<64> v##i; done_value.read(v##i, i); \
                hdr.dones[i].setValid(); hdr.dones[i].peer = i; \
                hdr.dones[i].done = (t##i == term) ? v##i : 64w0; \
            }
            DONE(0) DONE(1) DONE(2) DONE(3) DONE(4) DONE(5) DONE(6) DONE(7)
            DONE(8) DONE(9) DONE(10) DONE(11) DONE(12) DONE(13) DONE(14) DONE(15)
            /* Lengths: AE_REP body was 25 bytes; the group body is 17 + 9 n. */
            bit<16> delta = 17 + 9 * (bit<16>) n_peers - 25;
            hdr.ipv4.total_len = hdr.ipv4.total_len + delta;
            hdr.udp.len = hdr.udp.len + delta;
            std.mcast_grp = GROUP_ALL;
            return;
        }

        /* Rule 3: everything else to the leader, or dropped with none. */
        if (has_leader == 0) { drop(); return; }
        to_leader(leader);
    }
}

/* ---- egress: address each copy to the replica on its port ----------------------------- */
control AggEgress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t std) {
    action set_replica(bit<48> mac, bit<32> ip, bit<48> switch_mac, bit<32> switch_ip) {
        hdr.ethernet.dst = mac;
        hdr.ethernet.src = switch_mac;
        hdr.ipv4.dst = ip;
        hdr.ipv4.src = switch_ip;
        hdr.udp.checksum = 0;        /* optional for IPv4 */
    }
    table replica_port {
        key = { std.egress_port: exact; }
        actions = { set_replica; NoAction; }
        default_action = NoAction();
        size = MAX_PEERS;
    }
    apply {
        if (meta.to_aggregator == 1) { replica_port.apply(); }
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

V1Switch(AggParser(), AggVerifyChecksum(), AggIngress(), AggEgress(),
         AggComputeChecksum(), AggDeparser()) main;
