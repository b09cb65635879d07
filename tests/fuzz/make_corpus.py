#!/usr/bin/python3
"""Writes the seed corpus for fuzz_nbd_server: well-formed client conversations covering every
option and command, plus a few broken ones. Each seed starts with one byte that the fuzzer
uses to choose how the stream is sliced into reads."""
import os
import struct
import sys

OPT_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513


def opt(option, data=b""):
    return struct.pack(">QII", OPT_MAGIC, option, len(data)) + data


def info(name, items=()):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(items)) + b"".join(
        struct.pack(">H", i) for i in items)


def meta(name, queries):
    n = name.encode()
    out = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
    for q in queries:
        out += struct.pack(">I", len(q)) + q.encode()
    return out


def req(cmd, offset, length, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, flags, cmd, cookie, offset, length) + payload


FIXED = struct.pack(">I", 3)  # FIXED_NEWSTYLE | NO_ZEROES

seeds = {
    "go_structured": FIXED + opt(8) + opt(10, meta("disk", ["base:allocation", "hydrate:state"]))
    + opt(7, info("disk", [1, 2, 3]))
    + req(1, 0, 512, payload=b"\xab" * 512, cookie=1)
    + req(0, 0, 512, cookie=2) + req(0, 0, 65536, cookie=3) + req(0, 0, 4096, flags=4, cookie=4)
    + req(7, 0, 65536, cookie=5) + req(7, 0, 4096, flags=8, cookie=6)
    + req(3, 0, 0, cookie=7) + req(4, 4096, 4096, flags=1, cookie=8)
    + req(6, 8192, 4096, flags=2, cookie=9) + req(6, 8193, 10, flags=16, cookie=10)
    + req(5, 0, 65536, cookie=11) + req(0, 12288, 512, cookie=12) + req(2, 0, 0),
    "export_name_simple": struct.pack(">I", 1) + opt(1, b"disk") + req(0, 0, 1024)
    + req(1, 100, 8, payload=b"12345678") + req(0, 60000, 8192) + req(99, 0, 0) + req(2, 0, 0),
    "list_info_abort": FIXED + opt(3) + opt(6, info("")) + opt(6, info("ro", [3]))
    + opt(9, meta("disk", [])) + opt(8) + opt(9, meta("disk", ["base:"])) + opt(2),
    "read_only": FIXED + opt(8) + opt(7, info("ro")) + req(1, 0, 512, payload=b"x" * 512)
    + req(0, 1, 512) + req(0, 0, 512) + req(4, 0, 512) + req(2, 0, 0),
    "broken_options": FIXED + opt(6, struct.pack(">I", 100) + b"ab") + opt(4242, b"zz")
    + opt(5) + opt(3, b"data") + opt(10, meta("disk", ["nonamespace"])) + opt(7, info("missing"))
    + opt(7, info("disk") + b"junk"),
    "giant_write": FIXED + opt(7, info("disk")) + req(1, 0, 40000, payload=b"\x00" * 40000)
    + req(0, 0, 0xFFFFFFFF) + req(0, 0xFFFFFFFFFFFFFF00, 512) + b"BADMAGIC" * 4,
}

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "nbd_server")
os.makedirs(out_dir, exist_ok=True)
for i, (name, body) in enumerate(sorted(seeds.items())):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(bytes([7 if i % 2 else 0]) + body)
