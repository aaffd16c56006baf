#!/usr/bin/env python3
"""Test vectors for the HovercRaft++ switch aggregator (p4/hovercraft_agg.p4).

An independent implementation of the aggregator rules (p4/README.md), written from the P4
program's logic and NOT from the Rust code: packets are built with struct.pack, and the switch
is modelled the way the P4 program holds state (registers with term tags, lazy reset). A
second, eager-reset model runs beside it on every step and must emit the same bytes, which is
the lazy-reset equivalence argument of the README checked on every vector (and, with
`--fuzz N`, on N random packet sequences).

Each scenario becomes p4/tests/<name>.json:

    {"name": ..., "description": ..., "peers": N, "slots": S,
     "steps": [{"comment": ..., "in": {"port": p, "hex": ...}, "out": [{"port": q, "hex": ...}]}]}

`hex` is the UDP payload from the R2P2 header on, lowercase. `out` lists every packet the
switch emits for that input, in ascending port order (empty = dropped). State carries over
from step to step; each file starts from a fresh switch. Port i is replica i
(10.0.0.(i+1):8000). The Rust side replays them: cargo test -p hovercraft-core --test p4_vectors

Usage: python3 p4/tests/gen_vectors.py [--fuzz N]     (Python 3, standard library only)
"""
import json
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MASK64 = (1 << 64) - 1

# R2P2 (8 bytes): magic, header_size, type << 4 | policy, flags, req_id u16, packet_order u16.
MAGIC = 0xCC
FIRST, LAST = 0x80, 0x40
RAFT_REQ, RAFT_REP, RAFT_MSG = 5, 6, 7
FIXED_ROUTE, REPLICATED_ROUTE, REPLICATED_ROUTE_NO_SE = 1, 2, 3
# Raft common part (10 bytes): raft_type u8, from u8, term u64.
VOTE_REQUEST, VOTE_REPLY, AE_REQ, AE_REP, AE_REP_GROUP = 1, 2, 3, 4, 5
ANNOUNCE_COMMIT_REQ, ANNOUNCE_COMMIT_REP, RECOVERY_REQ, RECOVERY_REP = 6, 7, 8, 9
FAILURE, SUCCESS, PARTIAL_MISSING, NEED_MORE = 0, 1, 2, 3
SWITCH_NODE_ID = 0xFF
R2P2_LEN, COMMON_LEN, AE_REQ_FIXED_LEN, AE_REP_LEN = 8, 10, 26, 25
ENTRY_LEN = 19  # metadata-only log entry (has_body = 0)
GROUP_FIXED_LEN, GROUP_DONE_LEN = 17, 9


# ---- packet builders ------------------------------------------------------------------------

def r2p2(msg_type, req_id=0, policy=FIXED_ROUTE, flags=FIRST | LAST, order=1, magic=MAGIC,
         header_size=R2P2_LEN):
    return struct.pack(">BBBBHH", magic, header_size, (msg_type << 4) | policy, flags,
                       req_id, order)


def common(raft_type, frm, term):
    return struct.pack(">BBQ", raft_type, frm, term)


def log_entry(term, client_ip, client_port, req_id, policy, replier):
    """Entry layout: term u64, client ip u32, client port u16, req_id u16, policy u8,
    replier u8, has_body u8 (0) -- 19 bytes."""
    e = struct.pack(">QIHHBBB", term, client_ip, client_port, req_id, policy, replier, 0)
    assert len(e) == ENTRY_LEN
    return e


def ae_req(frm, term, prev, n, commit=0, prev_term=None, req_id=0, peers=5, **hdr):
    """APPEND_ENTRIES_REQ with n real metadata entries (distinct clients, rotating repliers)."""
    body = common(AE_REQ, frm, term)
    body += struct.pack(">QQQH", prev, term if prev_term is None else prev_term, commit, n)
    for i in range(n):
        idx = prev + i + 1
        policy = REPLICATED_ROUTE_NO_SE if idx % 4 == 0 else REPLICATED_ROUTE
        body += log_entry(term, 0x0A010000 | (idx & 0xFF), 9000 + (idx % 7), idx & 0xFFFF,
                          policy, idx % peers)
    return r2p2(RAFT_REQ, req_id=req_id, **hdr) + body


def ae_rep(frm, term, last, done, result=SUCCESS, first=None, req_id=0, **hdr):
    body = common(AE_REP, frm, term)
    body += struct.pack(">BQQQ", result, last, last if first is None else first, done)
    return r2p2(RAFT_REP, req_id=req_id, **hdr) + body


def vote_request(frm, term, last=0, last_term=0, req_id=0):
    return r2p2(RAFT_REQ, req_id=req_id) + common(VOTE_REQUEST, frm, term) + \
        struct.pack(">QQ", last, last_term)


def vote_reply(frm, term, granted, req_id=0):
    return r2p2(RAFT_REP, req_id=req_id) + common(VOTE_REPLY, frm, term) + \
        struct.pack(">B", granted)


def announce_commit_rep(frm, term, commit, done, req_id=0):
    return r2p2(RAFT_REP, req_id=req_id) + common(ANNOUNCE_COMMIT_REP, frm, term) + \
        struct.pack(">QQ", commit, done)


def recovery_req(frm, term, log_idx, client_ip, client_port, client_req_id, req_id=0):
    return r2p2(RAFT_REQ, req_id=req_id) + common(RECOVERY_REQ, frm, term) + \
        struct.pack(">QIHH", log_idx, client_ip, client_port, client_req_id)


def group_reply(msg_id, term, index, dones):
    """What the switch emits at a majority: APPEND_ENTRIES_REP_GROUP in a RAFT_MSG."""
    body = common(AE_REP_GROUP, SWITCH_NODE_ID, term)
    body += struct.pack(">QQB", index, index, len(dones))
    body += b"".join(struct.pack(">BQ", p, d) for p, d in enumerate(dones))
    return r2p2(RAFT_MSG, req_id=msg_id) + body


# ---- the switch: parsing (fixed parts only) ----------------------------------------------------

def parse(n_peers, port, pkt):
    """The P4 parser plus ingress validation. Returns None (drop) or a dict of fields."""
    if port >= n_peers:
        return None                                   # ingress port is not a replica
    if len(pkt) < R2P2_LEN + COMMON_LEN:
        return None                                   # too short for R2P2 + common part
    magic, header_size, _type_policy, flags, _req_id, _order = struct.unpack(">BBBBHH", pkt[:8])
    if magic != MAGIC or header_size != R2P2_LEN or flags != FIRST | LAST:
        return None
    raft_type, frm, term = struct.unpack(">BBQ", pkt[8:18])
    if frm != port:
        return None
    m = dict(raft_type=raft_type, frm=frm, term=term)
    if raft_type == AE_REQ:
        if len(pkt) < 18 + AE_REQ_FIXED_LEN:
            return None
        m["prev"], _prev_term, _commit, m["n"] = struct.unpack(">QQQH", pkt[18:44])
    elif raft_type == AE_REP:
        if len(pkt) < 18 + AE_REP_LEN:
            return None
        m["result"], m["last"], _first, m["done"] = struct.unpack(">BQQQ", pkt[18:43])
    return m


class LazySwitch:
    """The P4 program's registers: slot and done entries tagged with the term that wrote
    them; an entry whose tag is not the current term reads as zero."""

    def __init__(self, n_peers, slots):
        assert 1 <= n_peers <= 32 and slots & (slots - 1) == 0
        self.n, self.slots = n_peers, slots
        self.reg_term, self.reg_leader, self.reg_has_leader, self.reg_msg_id = 0, 0, 0, 0
        self.slot_tag = [0] * slots
        self.slot_index = [0] * slots
        self.slot_acks = [0] * slots
        self.slot_count = [0] * slots
        self.slot_sent = [0] * slots
        self.done_tag = [0] * n_peers
        self.done_value = [0] * n_peers

    def handle(self, port, pkt):
        m = parse(self.n, port, pkt)
        if m is None:
            return []
        term, leader, has_leader = self.reg_term, self.reg_leader, self.reg_has_leader
        if m["raft_type"] == AE_REQ:                                   # rule 1
            if m["term"] < term:
                return []
            if m["term"] > term or not has_leader:
                term, leader = m["term"], m["frm"]
                self.reg_term, self.reg_leader, self.reg_has_leader = term, leader, 1
            elif leader != m["frm"]:
                return []
            if m["n"] != 0:
                last = (m["prev"] + m["n"]) & MASK64
                s = last & (self.slots - 1)
                self.slot_tag[s], self.slot_index[s] = term, last
                self.slot_acks[s] = self.slot_count[s] = self.slot_sent[s] = 0
            return [(q, pkt) for q in range(self.n) if q != leader]   # group leader + 1
        if (m["raft_type"] == AE_REP and m["result"] == SUCCESS and m["term"] == term
                and has_leader):                                       # rule 2
            p = m["frm"]
            dval = self.done_value[p] if self.done_tag[p] == term else 0
            self.done_tag[p], self.done_value[p] = term, max(dval, m["done"])
            idx = m["last"]
            s = idx & (self.slots - 1)
            if self.slot_tag[s] == term:
                sidx, acks = self.slot_index[s], self.slot_acks[s]
                count, sent = self.slot_count[s], self.slot_sent[s]
            else:
                sidx = acks = count = sent = 0
            mine = 1 << p
            if sidx != idx or idx == 0 or acks & mine:
                return []
            self.slot_acks[s], self.slot_count[s] = acks | mine, count + 1
            if count + 1 + 1 < self.n // 2 + 1 or sent:
                return []
            self.slot_sent[s] = 1
            msg_id = self.reg_msg_id
            self.reg_msg_id = (msg_id + 1) & 0xFFFF
            dones = [self.done_value[q] if self.done_tag[q] == term else 0 for q in range(self.n)]
            out = group_reply(msg_id, term, idx, dones)
            return [(q, out) for q in range(self.n)]                  # group 1000
        if not has_leader:                                             # rule 3
            return []
        return [(leader, pkt)]


class EagerSwitch:
    """The same rules with an explicit reset that clears every slot and every done."""

    def __init__(self, n_peers, slots):
        self.n, self.slots = n_peers, slots
        self.term, self.leader, self.msg_id = 0, None, 0
        self.reset()

    def reset(self):
        self.slot = [dict(index=0, acks=0, count=0, sent=False) for _ in range(self.slots)]
        self.done = [0] * self.n

    def handle(self, port, pkt):
        m = parse(self.n, port, pkt)
        if m is None:
            return []
        if m["raft_type"] == AE_REQ:
            if m["term"] < self.term:
                return []
            if m["term"] > self.term or self.leader is None:
                self.reset()
                self.term, self.leader = m["term"], m["frm"]
            elif self.leader != m["frm"]:
                return []
            if m["n"] > 0:
                last = (m["prev"] + m["n"]) % (1 << 64)
                self.slot[last % self.slots] = dict(index=last, acks=0, count=0, sent=False)
            return [(q, pkt) for q in range(self.n) if q != m["frm"]]
        if (m["raft_type"] == AE_REP and m["result"] == SUCCESS and m["term"] == self.term
                and self.leader is not None):
            p, last = m["frm"], m["last"]
            self.done[p] = max(self.done[p], m["done"])
            sl = self.slot[last % self.slots]
            if sl["index"] != last or last == 0 or sl["acks"] >> p & 1:
                return []
            sl["acks"] |= 1 << p
            sl["count"] += 1
            if sl["count"] + 1 >= self.n // 2 + 1 and not sl["sent"]:
                sl["sent"] = True
                out = group_reply(self.msg_id, self.term, last, list(self.done))
                self.msg_id = (self.msg_id + 1) % 65536
                return [(q, out) for q in range(self.n)]
            return []
        if self.leader is None:
            return []
        return [(self.leader, pkt)]


# ---- sanity checks on what we build (so the vectors are valid for a full decoder too) ------

def check_well_formed(pkt):
    """Full-length check for the messages built here (not applied to deliberately broken
    inputs): the Raft message ends exactly where its last field ends."""
    raft_type = pkt[8]
    size = {VOTE_REQUEST: 26, VOTE_REPLY: 11, AE_REP: 35, ANNOUNCE_COMMIT_REQ: 18,
            ANNOUNCE_COMMIT_REP: 26, RECOVERY_REQ: 26}
    body = len(pkt) - R2P2_LEN
    if raft_type == AE_REQ:
        n = struct.unpack(">H", pkt[42:44])[0]
        assert body == COMMON_LEN + AE_REQ_FIXED_LEN + ENTRY_LEN * n, pkt.hex()
    elif raft_type == AE_REP_GROUP:
        n = pkt[34]
        assert body == COMMON_LEN + GROUP_FIXED_LEN + GROUP_DONE_LEN * n, pkt.hex()
    else:
        assert body == size[raft_type], pkt.hex()


# ---- scenarios ---------------------------------------------------------------------------

class Scenario:
    def __init__(self, name, description, peers, slots=64):
        self.name, self.description, self.peers, self.slots = name, description, peers, slots
        self.lazy, self.eager = LazySwitch(peers, slots), EagerSwitch(peers, slots)
        self.steps = []

    def step(self, comment, port, pkt, expect=None, malformed=False):
        """Feeds one packet. `expect`, when given, is what the scenario is meant to show:
        "drop", ("to", [ports]) for unchanged forwarding, or ("group", msg_id, index, dones)."""
        if not malformed:
            check_well_formed(pkt)
        out = sorted(self.lazy.handle(port, pkt))
        assert out == sorted(self.eager.handle(port, pkt)), f"{self.name}: lazy != eager at {comment}"
        if expect is not None:
            self._check(comment, pkt, out, expect)
        for _, b in out:
            check_well_formed(b)
        self.steps.append({
            "comment": comment,
            "in": {"port": port, "hex": pkt.hex()},
            "out": [{"port": q, "hex": b.hex()} for q, b in out],
        })

    def _check(self, comment, pkt, out, expect):
        where = f"{self.name}: {comment}"
        if expect == "drop":
            assert out == [], where
        elif expect[0] == "to":
            assert out == [(q, pkt) for q in expect[1]], where
        elif expect[0] == "group":
            _, msg_id, index, dones = expect
            term = struct.unpack(">Q", pkt[10:18])[0]
            g = group_reply(msg_id, term, index, dones)
            assert out == [(q, g) for q in range(self.peers)], where
        else:
            raise ValueError(expect)

    def write(self):
        doc = {"name": self.name, "description": self.description, "peers": self.peers,
               "slots": self.slots, "steps": self.steps}
        with open(os.path.join(HERE, self.name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        return len(self.steps)


def others(n, leader):
    return [q for q in range(n) if q != leader]


def scenarios():
    s = Scenario("first_reply", "An AppendEntries with entries from leader 0 fans out to the "
                 "four followers; the first success is counted but is no majority yet.", 5)
    s.step("leader 0, term 1, entries 1..3: fan-out to 1..4", 0, ae_req(0, 1, 0, 3),
           ("to", [1, 2, 3, 4]))
    s.step("follower 2 acks index 3: count 1 (+ leader = 2 < quorum 3)", 2, ae_rep(2, 1, 3, 0),
           "drop")
    s.step("leader 0, entries 4..5 (commit 0): fan-out", 0, ae_req(0, 1, 3, 2, req_id=1),
           ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks index 5: count 1 for the new slot", 1, ae_rep(1, 1, 5, 0), "drop")
    yield s

    s = Scenario("majority_reached", "7 replicas (quorum 4): replies up to the majority give "
                 "one group reply to every replica with each peer's done; later replies give "
                 "nothing but still raise done; msg_id counts group replies.", 7)
    s.step("leader 0, term 2, entries 5..6: fan-out to 1..6", 0,
           ae_req(0, 2, 4, 2, commit=4, peers=7), ("to", others(7, 0)))
    s.step("follower 1 acks 6, done 3", 1, ae_rep(1, 2, 6, 3), "drop")
    s.step("follower 5 acks 6, done 4", 5, ae_rep(5, 2, 6, 4), "drop")
    s.step("follower 3 acks 6, done 2: leader + 3 = quorum 4, group msg_id 0", 3,
           ae_rep(3, 2, 6, 2), ("group", 0, 6, [0, 3, 0, 2, 0, 4, 0]))
    s.step("follower 4 acks 6 after the majority: nothing (done 5 recorded)", 4,
           ae_rep(4, 2, 6, 5), "drop")
    s.step("follower 6 acks 6: nothing (done 1 recorded)", 6, ae_rep(6, 2, 6, 1), "drop")
    s.step("leader 0, entries 7..9, commit 6", 0, ae_req(0, 2, 6, 3, commit=6, peers=7, req_id=1),
           ("to", others(7, 0)))
    s.step("follower 2 acks 9, done 6", 2, ae_rep(2, 2, 9, 6, req_id=1), "drop")
    s.step("follower 4 acks 9, done 7", 4, ae_rep(4, 2, 9, 7, req_id=1), "drop")
    s.step("follower 1 acks 9, done 3 (unchanged): second group, msg_id 1", 1,
           ae_rep(1, 2, 9, 3, req_id=1), ("group", 1, 9, [0, 3, 6, 2, 7, 4, 1]))
    yield s

    s = Scenario("duplicate_reply", "The same follower acking twice counts once; its done "
                 "still rises (never falls) with each reply.", 5)
    s.step("leader 0, term 1, entries 1..2", 0, ae_req(0, 1, 0, 2), ("to", [1, 2, 3, 4]))
    s.step("follower 2 acks 2, done 1: count 1", 2, ae_rep(2, 1, 2, 1), "drop")
    s.step("follower 2 acks 2 again, done 4: duplicate, not counted", 2,
           ae_rep(2, 1, 2, 4, req_id=1), "drop")
    s.step("follower 2 acks 2 a third time, done 2: duplicate; done stays 4", 2,
           ae_rep(2, 1, 2, 2, req_id=2), "drop")
    s.step("follower 1 acks 2, done 1: count 2 + leader = quorum 3", 1, ae_rep(1, 1, 2, 1),
           ("group", 0, 2, [0, 1, 4, 0, 0]))
    s.step("follower 1 acks 2 again after the group: nothing", 1, ae_rep(1, 1, 2, 1), "drop")
    yield s

    s = Scenario("stale_term", "An AppendEntries of an older term, or from a second node in "
                 "the current term, is dropped; replies whose term is not the switch's go to the "
                 "leader untouched and are not counted.", 5)
    s.step("leader 1, term 5, entries 10..11: fan-out to 0,2,3,4", 1,
           ae_req(1, 5, 9, 2, prev_term=4), ("to", [0, 2, 3, 4]))
    s.step("node 0 still leads term 4: dropped", 0, ae_req(0, 4, 9, 1, prev_term=4), "drop")
    s.step("node 2 sends an AppendEntries in term 5 too: dropped", 2,
           ae_req(2, 5, 9, 1, prev_term=4), "drop")
    s.step("follower 2 acks 11 in term 4: not counted, forwarded to leader 1", 2,
           ae_rep(2, 4, 11, 1), ("to", [1]))
    s.step("follower 3 acks 11 in term 5: count 1", 3, ae_rep(3, 5, 11, 2), "drop")
    s.step("follower 0 acks 11 in term 6: not counted, forwarded to leader 1", 0,
           ae_rep(0, 6, 11, 3), ("to", [1]))
    s.step("follower 4 acks 11 in term 5: count 2 + leader = quorum", 4, ae_rep(4, 5, 11, 2),
           ("group", 0, 11, [0, 0, 0, 2, 2]))
    yield s

    s = Scenario("new_leader_reset", "Leader 0 (term 1) arms slots and collects acks; leader 3 "
                 "(term 2) resets everything: the old acks no longer count, every done reads 0 "
                 "until re-reported in term 2, msg_id keeps counting.", 5)
    s.step("leader 0, term 1, entries 1..2", 0, ae_req(0, 1, 0, 2), ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks 2, done 2", 1, ae_rep(1, 1, 2, 2), "drop")
    s.step("follower 2 acks 2, done 3: group msg_id 0 (term 1)", 2, ae_rep(2, 1, 2, 3),
           ("group", 0, 2, [0, 2, 3, 0, 0]))
    s.step("leader 0, entries 3..4", 0, ae_req(0, 1, 2, 2, commit=2, req_id=1),
           ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks 4, done 4: count 1 in term 1", 1, ae_rep(1, 1, 4, 4, req_id=1),
           "drop")
    s.step("leader 3, term 2, entry 4 (its no-op, same slot): reset, fan-out to 0,1,2,4", 3,
           ae_req(3, 2, 3, 1, prev_term=1), ("to", [0, 1, 2, 4]))
    s.step("follower 1's term-1 ack for 4 arrives late: forwarded to leader 3", 1,
           ae_rep(1, 1, 4, 4, req_id=1), ("to", [3]))
    s.step("follower 4 acks 4 in term 2, done 7: count 1 (the term-1 ack is gone)", 4,
           ae_rep(4, 2, 4, 7), "drop")
    s.step("follower 2 acks 4 in term 2, done 1: group msg_id 1; dones of term 1 read 0", 2,
           ae_rep(2, 2, 4, 1), ("group", 1, 4, [0, 0, 1, 0, 7]))
    s.step("follower 1 acks 4 in term 2, done 5: after the group, nothing", 1,
           ae_rep(1, 2, 4, 5, req_id=2), "drop")
    s.step("leader 3, entry 5, commit 4", 3, ae_req(3, 2, 4, 1, commit=4, req_id=1),
           ("to", [0, 1, 2, 4]))
    s.step("follower 0 acks 5, done 2", 0, ae_rep(0, 2, 5, 2), "drop")
    s.step("follower 1 acks 5, done 5: group msg_id 2", 1, ae_rep(1, 2, 5, 5, req_id=3),
           ("group", 2, 5, [2, 5, 1, 0, 7]))
    yield s

    s = Scenario("slot_reuse", "With 4 slots, index 6 overwrites index 2's slot (acks, count "
                 "and the sent bit start over); a late ack for 2 is ignored; 6 reaches a majority "
                 "with its own acks; index 10 re-arms the slot after its group was sent.", 5,
                 slots=4)
    s.step("leader 0, term 1, entries 1..2: slot 2 = index 2", 0, ae_req(0, 1, 0, 2),
           ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks 2: count 1", 1, ae_rep(1, 1, 2, 1), "drop")
    s.step("leader 0, entries 3..6: slot 2 = index 6, count 0", 0,
           ae_req(0, 1, 2, 4, req_id=1), ("to", [1, 2, 3, 4]))
    s.step("late ack for index 2 from follower 2: slot holds 6, nothing", 2,
           ae_rep(2, 1, 2, 1), "drop")
    s.step("follower 3 acks 6: count 1 (follower 1's ack was for 2)", 3, ae_rep(3, 1, 6, 2),
           "drop")
    s.step("follower 1 acks 2 again: nothing", 1, ae_rep(1, 1, 2, 1, req_id=1), "drop")
    s.step("follower 4 acks 6: count 2 + leader = quorum, group for 6", 4, ae_rep(4, 1, 6, 3),
           ("group", 0, 6, [0, 1, 1, 2, 3]))
    s.step("leader 0, entries 7..10, commit 6: slot 2 = index 10, sent cleared", 0,
           ae_req(0, 1, 6, 4, commit=6, req_id=2), ("to", [1, 2, 3, 4]))
    s.step("follower 2 acks 10: count 1", 2, ae_rep(2, 1, 10, 4, req_id=1), "drop")
    s.step("follower 3 acks 10: group for 10, msg_id 1", 3, ae_rep(3, 1, 10, 5, req_id=1),
           ("group", 1, 10, [0, 1, 4, 5, 3]))
    yield s

    s = Scenario("malformed", "Packets that fail validation are dropped without touching the "
                 "state: bad magic, header_size != 8, multi-packet flags, `from` not the ingress "
                 "port's replica, an ingress port that is no replica, packets too short for the "
                 "fixed parts. A valid packet after them shows the state unchanged.", 5)
    s.step("leader 0, term 1, entry 1", 0, ae_req(0, 1, 0, 1), ("to", [1, 2, 3, 4]))
    s.step("bad magic 0xCD on a success for 1", 1, ae_rep(1, 1, 1, 0, magic=0xCD), "drop",
           malformed=True)
    s.step("header_size 10 with 2 extension bytes (valid R2P2, not aggregated)", 1,
           r2p2(RAFT_REP, header_size=10) + b"\x00\x00" + ae_rep(1, 1, 1, 0)[8:], "drop",
           malformed=True)
    s.step("flags 0x80: first packet of a 2-packet message", 1,
           ae_rep(1, 1, 1, 0, flags=FIRST, order=2), "drop", malformed=True)
    s.step("flags 0x00: a middle packet", 2, ae_rep(2, 1, 1, 0, flags=0, order=1), "drop",
           malformed=True)
    s.step("flags 0x40: a last packet", 3, ae_rep(3, 1, 1, 0, flags=LAST, order=1), "drop",
           malformed=True)
    s.step("vote request claiming node 2 arrives on port 3", 3, vote_request(2, 2, 1, 1),
           "drop")
    s.step("success claiming node 1 arrives on port 2", 2, ae_rep(1, 1, 1, 0), "drop")
    s.step("ingress port 7 is no replica (5 replicas)", 7, vote_request(7, 2, 1, 1), "drop")
    s.step("success truncated to 30 bytes (fixed part needs 43)", 1, ae_rep(1, 1, 1, 0)[:30],
           "drop", malformed=True)
    s.step("AppendEntries truncated inside its fixed part (40 of 44 bytes)", 0,
           ae_req(0, 1, 1, 1)[:40], "drop", malformed=True)
    s.step("common part truncated (R2P2 + 5 bytes)", 1, vote_request(1, 2)[:13], "drop",
           malformed=True)
    s.step("R2P2 header truncated (6 bytes)", 1, vote_request(1, 2)[:6], "drop",
           malformed=True)
    s.step("valid vote request from node 2: forwarded to leader 0", 2, vote_request(2, 2, 1, 1),
           ("to", [0]))
    s.step("follower 1 acks 1: count 1 (no malformed ack counted)", 1, ae_rep(1, 1, 1, 0),
           "drop")
    s.step("follower 2 acks 1: group", 2, ae_rep(2, 1, 1, 0), ("group", 0, 1, [0, 0, 0, 0, 0]))
    yield s

    s = Scenario("heartbeat", "An AppendEntries with no entries is fanned out but arms no slot "
                 "and clears none; replies naming index 0 or an unarmed index emit nothing.", 5)
    s.step("leader 0, term 1, heartbeat (prev 3, n 0): fan-out", 0, ae_req(0, 1, 3, 0),
           ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks 3: nothing armed", 1, ae_rep(1, 1, 3, 0), "drop")
    s.step("follower 2 acks 3: still nothing", 2, ae_rep(2, 1, 3, 0), "drop")
    s.step("leader 0, entries 4..5: slot 5 = index 5", 0, ae_req(0, 1, 3, 2, req_id=1),
           ("to", [1, 2, 3, 4]))
    s.step("follower 1 acks 5: count 1", 1, ae_rep(1, 1, 5, 1), "drop")
    s.step("leader 0, heartbeat (prev 5, n 0, commit 3): fan-out, slot 5 untouched", 0,
           ae_req(0, 1, 5, 0, commit=3, req_id=2), ("to", [1, 2, 3, 4]))
    s.step("follower 2 acks 5: count 2 + leader = quorum, group", 2, ae_rep(2, 1, 5, 1),
           ("group", 0, 5, [0, 1, 1, 0, 0]))
    s.step("follower 3 acks 0 (empty log): index 0 never counts", 3, ae_rep(3, 1, 0, 0), "drop")
    s.step("follower 4 acks 0 too: still nothing", 4, ae_rep(4, 1, 0, 0), "drop")
    yield s

    s = Scenario("forward_to_leader", "Replies other than success (NeedMore, failure, partial-"
                 "missing) and other Raft messages go unchanged to the leader, or are dropped "
                 "while no leader is known; they change no state.", 5)
    s.step("vote request from node 1 before any leader: dropped", 1, vote_request(1, 4, 9, 3),
           "drop")
    s.step("need-more from node 4 before any leader: dropped", 4,
           ae_rep(4, 3, 5, 1, result=NEED_MORE, first=0), "drop")
    s.step("leader 2, term 3, entries 8..9: fan-out to 0,1,3,4", 2,
           ae_req(2, 3, 7, 2, prev_term=3), ("to", [0, 1, 3, 4]))
    s.step("follower 4 needs more (result 3): to leader 2", 4,
           ae_rep(4, 3, 5, 1, result=NEED_MORE, first=0), ("to", [2]))
    s.step("follower 1 fails (result 0): to leader 2", 1,
           ae_rep(1, 3, 6, 0, result=FAILURE, first=0), ("to", [2]))
    s.step("follower 0 partial-missing (result 2) for 9: to leader 2", 0,
           ae_rep(0, 3, 9, 2, result=PARTIAL_MISSING, first=8), ("to", [2]))
    s.step("vote request from node 1, term 4: to leader 2 (switch term stays 3)", 1,
           vote_request(1, 4, 9, 3), ("to", [2]))
    s.step("vote reply from node 3: to leader 2", 3, vote_reply(3, 4, 1), ("to", [2]))
    s.step("announce-commit reply from node 0: to leader 2", 0,
           announce_commit_rep(0, 3, 9, 4), ("to", [2]))
    s.step("recovery request from node 3: to leader 2", 3,
           recovery_req(3, 3, 9, 0x0A010009, 9002, 9), ("to", [2]))
    s.step("follower 0 acks 9 in term 3: count 1", 0, ae_rep(0, 3, 9, 4), "drop")
    s.step("follower 1 acks 9 in term 3: group (non-success replies counted nothing)", 1,
           ae_rep(1, 3, 9, 3), ("group", 0, 9, [4, 3, 0, 0, 0]))
    yield s


# ---- fuzz: lazy (P4) model vs eager model -------------------------------------------------------

def fuzz(rounds, seed=1):
    rng = random.Random(seed)
    for r in range(rounds):
        n = rng.choice([1, 2, 3, 4, 5, 7, 9, 16])
        slots = rng.choice([1, 2, 4, 8])
        lazy, eager = LazySwitch(n, slots), EagerSwitch(n, slots)
        term, idx = 0, 0
        for _ in range(200):
            port = rng.randrange(n + 1)
            frm = port if rng.random() < 0.95 else rng.randrange(n)
            k = rng.random()
            # Mostly the current term; sometimes an older or newer one.
            t = max(0, term + rng.choice([-1, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
            if k < 0.3:
                cnt = rng.choice([0, 1, 2, 3])
                pkt = ae_req(frm, t, idx, cnt, peers=max(n, 1))
                if t >= term:
                    term, idx = t, idx + cnt
            elif k < 0.85:
                last = max(0, idx - rng.randrange(slots + 2))
                pkt = ae_rep(frm, t, last, rng.randrange(10),
                             result=rng.choice([1, 1, 1, 0, 2, 3]))
            else:
                pkt = vote_request(frm, t)
            if rng.random() < 0.03:
                pkt = pkt[:rng.randrange(len(pkt))]
            a, b = sorted(lazy.handle(port, pkt)), sorted(eager.handle(port, pkt))
            assert a == b, f"fuzz round {r}: lazy and eager differ on {pkt.hex()}"
    print(f"fuzz: {rounds} random sequences, lazy == eager")


def main():
    args = sys.argv[1:]
    if args[:1] == ["--fuzz"]:
        fuzz(int(args[1]) if len(args) > 1 else 200)
    total = 0
    for s in scenarios():
        k = s.write()
        total += k
        print(f"{s.name}.json: {k} steps")
    print(f"{total} steps in total")


if __name__ == "__main__":
    main()
