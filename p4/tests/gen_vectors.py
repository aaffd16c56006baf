#!/usr/bin/env python3
"""Test vectors for the HovercRaft++ aggregator, written from the P4 program's rules
(p4/hovercraft_agg.p4) and independently of the Rust code: packets are built with
struct.pack, the switch state is a model of the P4 registers (with lazy, term-tagged reset).

Each JSON file is one scenario: a fresh switch, then steps; a step feeds one UDP payload
(R2P2 header onward) in on a port (port i = peer i) and lists every packet out, in
ascending port order. Run: python3 p4/tests/gen_vectors.py  (writes p4/tests/*.json)
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
AE_REQ, AE_REP = 3, 4
SWITCH_ID = 0xFF


def r2p2(msg_type, policy=1, req_id=0, flags=0xC0, order=1, magic=0xCC, hsize=8):
    return struct.pack(">BBBBHH", magic, hsize, (msg_type << 4) | policy, flags, req_id, order)


def entry(term, client_ip=0x0A010001, port=9000, req_id=1, policy=2, replier=0):
    # 19-byte metadata-only log entry (has_body = 0).
    return struct.pack(">QIHHBBB", term, client_ip, port, req_id, policy, replier, 0)


def ae_req(frm, term, prev, n, commit=0, prev_term=None, req_id=0, **hdr):
    body = struct.pack(">BBQ", AE_REQ, frm, term)
    body += struct.pack(">QQQH", prev, term if prev_term is None else prev_term, commit, n)
    body += b"".join(entry(term, req_id=i + 1) for i in range(n))
    return r2p2(5, req_id=req_id, **hdr) + body


def ae_rep(frm, term, last, done, result=1, first=None, req_id=0):
    body = struct.pack(">BBQ", AE_REP, frm, term)
    body += struct.pack(">BQQQ", result, last, last if first is None else first, done)
    return r2p2(6, req_id=req_id) + body


def vote_req(frm, term, last=0, last_term=0):
    return r2p2(5) + struct.pack(">BBQQQ", 1, frm, term, last, last_term)


class Switch:
    """The P4 program's state and rules."""

    def __init__(self, peers, slots):
        self.n, self.slots = peers, slots
        self.quorum = peers // 2 + 1
        self.term, self.leader = 0, None
        # Registers; entries carry the term they were written in (lazy reset).
        self.slot = [dict(tag=0, index=0, acks=0, count=0, sent=0) for _ in range(slots)]
        self.done = [dict(tag=0, value=0) for _ in range(peers)]
        self.msg_id = 0

    def slot_view(self, s):
        r = self.slot[s]
        if r["tag"] != self.term:
            return dict(tag=self.term, index=0, acks=0, count=0, sent=0)
        return dict(r)

    def done_view(self, p):
        d = self.done[p]
        return d["value"] if d["tag"] == self.term else 0

    def handle(self, port, pkt):
        if port >= self.n or len(pkt) < 18:
            return []
        magic, hsize, _tp, flags, _rid, _order = struct.unpack(">BBBBHH", pkt[:8])
        if magic != 0xCC or hsize != 8 or flags != 0xC0:
            return []
        raft_type, frm, term = struct.unpack(">BBQ", pkt[8:18])
        if frm != port:
            return []
        if raft_type == AE_REQ:
            if len(pkt) < 18 + 26:
                return []
            prev, _pt, _commit, n = struct.unpack(">QQQH", pkt[18:44])
            if term < self.term:
                return []
            if term > self.term or self.leader is None:
                self.term, self.leader = term, frm  # lazy reset: old tags now read as zero
            elif self.leader != frm:
                return []
            if n > 0:
                last = prev + n
                self.slot[last % self.slots] = dict(tag=self.term, index=last, acks=0, count=0, sent=0)
            return [(p, pkt) for p in range(self.n) if p != frm]
        if raft_type == AE_REP:
            if len(pkt) < 18 + 25:
                return []
            result, last, _first, done = struct.unpack(">BQQQ", pkt[18:43])
            if result == 1 and term == self.term and self.leader is not None:
                self.done[frm] = dict(tag=self.term, value=max(self.done_view(frm), done))
                s = last % self.slots
                v = self.slot_view(s)
                if v["index"] != last or last == 0 or v["acks"] & (1 << frm):
                    return []
                v["acks"] |= 1 << frm
                v["count"] += 1
                out = []
                if v["count"] + 1 >= self.quorum and not v["sent"]:
                    v["sent"] = 1
                    out = self.group(last)
                self.slot[s] = v
                return out
        # Everything else goes to the leader untouched.
        return [] if self.leader is None else [(self.leader, pkt)]

    def group(self, index):
        body = struct.pack(">BBQQQB", 5, SWITCH_ID, self.term, index, index, self.n)
        body += b"".join(struct.pack(">BQ", p, self.done_view(p)) for p in range(self.n))
        pkt = r2p2(7, req_id=self.msg_id) + body
        self.msg_id = (self.msg_id + 1) & 0xFFFF
        return [(p, pkt) for p in range(self.n)]


def scenario(name, description, peers, steps, slots=64):
    sw = Switch(peers, slots)
    out = []
    for comment, port, pkt in steps:
        outs = sorted(sw.handle(port, pkt))
        out.append({
            "comment": comment,
            "in": {"port": port, "hex": pkt.hex()},
            "out": [{"port": p, "hex": b.hex()} for p, b in outs],
        })
    doc = {"name": name, "description": description, "peers": peers, "slots": slots, "steps": out}
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return len(out)


def main():
    n = 0
    n += scenario("first_reply", "AE with entries fans out; the first success is counted, no group yet", 5, [
        ("leader 0, term 1, entries 1..3", 0, ae_req(0, 1, 0, 3)),
        ("follower 1 acks index 3", 1, ae_rep(1, 1, 3, 0)),
    ])
    n += scenario("majority_reached", "replies up to a majority give one group reply to all; later replies nothing", 5, [
        ("leader 0, term 2, entries 5..6", 0, ae_req(0, 2, 4, 2, prev_term=2)),
        ("follower 1 acks 6, done 3", 1, ae_rep(1, 2, 6, 3)),
        ("follower 3 acks 6, done 4: majority (leader + 2)", 3, ae_rep(3, 2, 6, 4)),
        ("follower 4 acks 6 after the majority", 4, ae_rep(4, 2, 6, 5)),
        ("next batch 7..9", 0, ae_req(0, 2, 6, 3, commit=6)),
        ("follower 2 acks 9", 2, ae_rep(2, 2, 9, 6)),
        ("follower 4 acks 9: second group reply, msg_id 1", 4, ae_rep(4, 2, 9, 6)),
    ])
    n += scenario("duplicate_reply", "the same follower acking twice counts once", 5, [
        ("leader 0, term 1, entries 1..2", 0, ae_req(0, 1, 0, 2)),
        ("follower 2 acks 2", 2, ae_rep(2, 1, 2, 0)),
        ("follower 2 acks 2 again (duplicate)", 2, ae_rep(2, 1, 2, 0)),
        ("follower 1 acks 2: majority", 1, ae_rep(1, 1, 2, 1)),
    ])
    n += scenario("stale_term", "an older term's AE is dropped; an older term's reply goes to the leader", 5, [
        ("leader 1, term 5, entries 10..11", 1, ae_req(1, 5, 9, 2, prev_term=4)),
        ("node 0 still thinks it leads term 4", 0, ae_req(0, 4, 9, 1, prev_term=4)),
        ("follower 2 answers term 4: forwarded to the leader", 2, ae_rep(2, 4, 11, 1)),
        ("follower 3 acks 11 in term 5", 3, ae_rep(3, 5, 11, 2)),
        ("follower 4 acks 11 in term 5: majority", 4, ae_rep(4, 5, 11, 2)),
    ])
    n += scenario("new_leader_reset", "a higher term resets every register", 5, [
        ("leader 0, term 1, entries 1..4", 0, ae_req(0, 1, 0, 4)),
        ("follower 1 acks 4, done 2", 1, ae_rep(1, 1, 4, 2)),
        ("leader 3, term 2, entries 4..4 (its no-op at index 4)", 3, ae_req(3, 2, 3, 1, prev_term=1)),
        ("follower 1's old ack for term 1 goes to the new leader", 1, ae_rep(1, 1, 4, 2)),
        ("follower 0 acks 4 in term 2", 0, ae_rep(0, 2, 4, 3)),
        ("follower 2 acks 4 in term 2: majority; node 1's done reads 0", 2, ae_rep(2, 2, 4, 3)),
    ])
    n += scenario("slot_reuse", "with 4 slots, index 6 overwrites index 2's slot", 3, [
        ("leader 0, term 1, entries 1..2", 0, ae_req(0, 1, 0, 2)),
        ("leader 0, entries 3..6 (slot 2 again)", 0, ae_req(0, 1, 2, 4, commit=0)),
        ("late ack for index 2: its slot now holds 6", 1, ae_rep(1, 1, 2, 0)),
        ("follower 2 acks 6: majority of 3", 2, ae_rep(2, 1, 6, 1)),
    ], slots=4)
    n += scenario("malformed", "bad packets are dropped", 5, [
        ("leader 0, term 1, entries 1..1", 0, ae_req(0, 1, 0, 1)),
        ("bad magic", 1, b"\xcd" + ae_rep(1, 1, 1, 0)[1:]),
        ("first packet of a multi-packet message", 1, ae_req(0, 1, 0, 1, flags=0x80, order=2)[:8] + ae_rep(1, 1, 1, 0)[8:]),
        ("node 2's reply arriving on port 3", 3, ae_rep(2, 1, 1, 0)),
        ("truncated reply", 1, ae_rep(1, 1, 1, 0)[:30]),
        ("from a port that is no peer", 7, ae_rep(1, 1, 1, 0)),
    ])
    n += scenario("heartbeat", "an AE without entries fans out but arms no slot", 5, [
        ("leader 0, term 1, empty AE (prev 3)", 0, ae_req(0, 1, 3, 0)),
        ("follower 1 acks 3: no armed slot, nothing", 1, ae_rep(1, 1, 3, 0)),
        ("follower 2 acks 3: nothing", 2, ae_rep(2, 1, 3, 0)),
    ])
    n += scenario("forward_to_leader", "non-success replies and other messages go to the leader", 5, [
        ("leader 2, term 3, entries 8..9", 2, ae_req(2, 3, 7, 2, prev_term=3)),
        ("follower 4 needs more (result 3)", 4, ae_rep(4, 3, 5, 1, result=3, first=0)),
        ("a vote request from node 1", 1, vote_req(1, 4, 9, 3)),
    ])
    print(f"wrote {n} steps")


if __name__ == "__main__":
    main()
