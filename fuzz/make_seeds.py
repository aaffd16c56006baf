#!/usr/bin/env python3
"""Writes the committed seed corpora in fuzz/seeds/<target>/ (README "Fuzzing").

Raw-bytes targets get real encodings: the P4 test vectors' packets (p4/tests/*.json, encoded
by an implementation independent of the core), hand-encoded kv requests, replies and
snapshots, and the repository's scenario and cluster files. Targets that draw their input
with `arbitrary` get a few deterministic pseudo-random byte strings (any bytes decode).
Run from anywhere: python3 fuzz/make_seeds.py
"""
import json
import random
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# P4 vectors: whole packets for the header decoder, their Raft part for the message decoder.
packets = []
for f in sorted((ROOT / "p4" / "tests").glob("*.json")):
    v = json.loads(f.read_text())
    for step in v["steps"]:
        for p in [step["in"]] + step["out"]:
            b = bytes.fromhex(p["hex"])
            if b not in packets:
                packets.append(b)
for i, p in enumerate(packets[:8]):
    put("header", f"p4-{i}", p)
    if len(p) > 8 and p[1] == 8:
        put("raft_message", f"p4-{i}", p[8:])
put("header", "golden-request", bytes([0xCC, 0x08, 0x02, 0xC0, 0x12, 0x34, 0x00, 0x01]) + b"hi")

# app_decoders: first byte picks the decoder (fuzz_targets/app_decoders.rs).
KV = 0x4B


def kv_req(op, key, rest=b""):
    return bytes([KV, op]) + struct.pack(">H", len(key)) + key + rest


get = kv_req(1, b"k1")
put_ = kv_req(2, b"k1", struct.pack(">I", 3) + b"abc")
scan = kv_req(4, b"k", struct.pack(">H", 5))
put("app_decoders", "kv-get", b"\x00" + get)
put("app_decoders", "kv-put", b"\x00" + put_)
put("app_decoders", "kv-scan", b"\x00" + scan)
put("app_decoders", "kv-delete", b"\x00" + kv_req(5, b"k1"))
put("app_decoders", "kv-reply-value", b"\x01" + b"\x03" + struct.pack(">I", 2) + b"hi")
put("app_decoders", "kv-reply-records",
    b"\x01" + b"\x04" + struct.pack(">H", 1) + struct.pack(">H", 2) + b"k1" + struct.pack(">I", 1) + b"v")
kv_snap = (bytes([KV]) + struct.pack(">QQ", 0, 2)
           + struct.pack(">H", 2) + b"k1" + b"\x01" + struct.pack(">I", 1) + b"v"
           + struct.pack(">H", 2) + b"k2" + b"\x01" + struct.pack(">I", 0))
put("app_decoders", "kv-restore-then-requests", b"\x02" + kv_snap + b"\xff\xfe" + get + b"\xff\xfe" + put_ + b"\xff\xfe" + scan)
put("app_decoders", "synthetic-restore", b"\x04" + bytes([0x53]) + struct.pack(">QQ", 7, 0x1234))
put("app_decoders", "snapshot-split", b"\x05" + b"HCSN\x01" + struct.pack(">I", 2) + b"ss" + b"app")
sessions = (struct.pack(">I", 1) + bytes([10, 1, 0, 1]) + struct.pack(">HHQI", 9000, 5, 12, 1)
            + struct.pack(">HH", 3, 3))
put("app_decoders", "sessions", b"\x06\x03" + sessions)

# Config files: the repository's own.
for name in ["quickstart.json", "raft-3.json", "hovercraftpp-9.json"]:
    put("config_files", "scenario-" + name, (ROOT / "scenarios" / name).read_bytes())
for name in ["local-3.json", "local-3-redis.json"]:
    put("config_files", "cluster-" + name, (ROOT / "runtime-dpdk" / "clusters" / name).read_bytes())

# Structured targets: any bytes are an input.
rng = random.Random(16)
for target in ["framing", "aggregator", "storage_replay", "node"]:
    for i in range(3):
        put(target, f"random-{i}", bytes(rng.randrange(256) for _ in range(256 * (i + 1))))
