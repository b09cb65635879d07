#!/usr/bin/python3
"""Writes the seed corpus for fuzz_profile_loader: valid profiles (empty, one run, many runs,
odd source size) and near misses (bad version, out-of-range run, duplicate region). The first
byte of each seed is the fuzzer's mode: 0 = raw bytes, 1 = checksum repaired by the fuzzer."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import hprof  # noqa: E402

K64 = 64 << 10
seeds = {
    "empty": hprof.encode(1 << 30, K64, "nbd://backup/vm1", []),
    "one_run": hprof.encode(1 << 30, K64, "file:/dev/sdb", [(100, 8)]),
    "many_runs": hprof.encode(1 << 30, 4096, "nbd+unix:///disk?socket=/s",
                              [(i * 7 % 4000, 1) for i in range(200)]),
    "odd_size": hprof.encode((10 << 20) + 12345, K64, "x", [(160, 1), (0, 3)]),
    "bad_version": hprof.encode(1 << 30, K64, "x", [(1, 1)], version=2),
    "out_of_range": hprof.encode(1 << 20, K64, "x", [(15, 5)]),
    "duplicate": hprof.encode(1 << 20, K64, "x", [(1, 4), (3, 1)]),
}

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "profile_loader")
os.makedirs(out_dir, exist_ok=True)
for i, (name, body) in enumerate(sorted(seeds.items())):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(bytes([i % 2]) + body)
