#!/usr/bin/python3
"""Client I/O on a clone while it hydrates, with real clients (libnbd, qemu-io, qemu-img):
client writes win over source data, zero/trim/cache behave, multi-conn is consistent, and
qemu's own tools accept the export."""
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clonelib import CloneTest, check, read_range, run  # noqa: E402

MiB = 1 << 20

with CloneTest("client_io") as t:

    def writes_during_hydration_win_over_source_data():
        src = t.make_source_image(64, percent=60, seed=11)
        t.start_source(src, delay_ms=3)
        t.start_clone({"hydration": {"batch": "256KiB"}})
        rng = random.Random(11)
        h = t.connect()
        written = []
        for i in range(60):
            off = rng.randrange(0, 64 * MiB - 300000)
            length = rng.randrange(1, 300000)
            data = bytes([rng.randrange(256)]) * length
            h.pwrite(data, off, nbd.CMD_FLAG_FUA if i % 7 == 0 else 0)
            written.append((off, data))
        h.flush()
        h.shutdown()
        t.wait_complete()
        expected = bytearray(open(src, "rb").read())
        for off, data in written:
            expected[off:off + len(data)] = data
        got = open(t.read_clone(), "rb").read()
        check(got == bytes(expected), "clone differs from source + client writes")
        dest = open(t.destination, "rb").read()
        check(dest == bytes(expected), "destination differs from source + client writes")

    def zero_trim_and_cache():
        src = t.make_source_image(16, percent=100, seed=12)
        t.start_source(src, delay_ms=2)
        t.start_clone({"hydration": {"enabled": False}})
        h = t.connect()
        h.zero(2 * MiB, 1 * MiB)                     # whole regions: no fetch
        h.zero(100, 5 * MiB - 50)                    # partial edges: merged
        h.trim(8 * MiB, 2 * MiB)
        h.cache(12 * MiB, 2 * MiB)
        s = t.status()
        check(s["hydrated_regions"] >= 32 + 32, "zero/trim/cache hydrated too little: %r" % s)
        check(h.pread(1 * MiB, 2 * MiB) == bytes(1 * MiB), "zeroed range reads non-zero")
        check(h.pread(50, 50) == read_range(src, 50, 50), "bytes before a partial zero changed")
        check(h.pread(2 * MiB, 8 * MiB) == bytes(2 * MiB), "trimmed regions do not read zero")
        check(h.pread(MiB, 12 * MiB) == read_range(src, 12 * MiB, MiB), "cached range differs")
        fetched = t.status()["fetched_bytes"]
        h.pread(MiB, 12 * MiB)
        check(t.status()["fetched_bytes"] == fetched, "CACHE did not hydrate the range")
        h.shutdown()

    def multi_conn_write_flush_read():
        src = t.make_source_image(16, percent=100, seed=13)
        t.start_source(src, delay_ms=1)
        t.start_clone({"hydration": {"enabled": False}})
        a, b, c = t.connect(), t.connect(), t.connect()
        check(a.can_multi_conn(), "a clone export must advertise multi-conn")
        data = os.urandom(300000)
        a.pwrite(data, 5 * MiB + 123)
        b.flush()
        check(c.pread(len(data), 5 * MiB + 123) == data, "write on 1, flush on 2, read on 3")
        meta = t.meta_dump()
        check(meta["hydrated_regions"] >= 4, "flush on another connection did not commit")
        for h in (a, b, c):
            h.shutdown()

    def qemu_tools_accept_the_clone():
        src = t.make_source_image(32, percent=40, seed=14)
        t.start_source(src, delay_ms=1)
        t.start_clone()
        out = run(["qemu-img", "info", "--output=json", t.uri()], capture=True)
        check('"virtual-size": %d' % (32 * MiB) in out, "qemu-img info: %s" % out)
        run(["qemu-io", "-f", "raw", "-c", "write -P 0xab 3M 1M", "-c", "read -P 0xab 3M 1M",
             "-c", "write -z 5M 1M", "-c", "read -P 0 5M 1M", "-c", "flush",
             "-c", "aio_write -P 0xcd 9M 64k", "-c", "aio_flush", "-c", "read -P 0xcd 9M 64k",
             t.uri()])
        t.wait_complete()
        expected = bytearray(open(src, "rb").read())
        expected[3 * MiB:4 * MiB] = b"\xab" * MiB
        expected[5 * MiB:6 * MiB] = bytes(MiB)
        expected[9 * MiB:9 * MiB + 65536] = b"\xcd" * 65536
        with open(t.path("expected.img"), "wb") as f:
            f.write(expected)
        run(["qemu-img", "compare", "-f", "raw", "-F", "raw", t.uri(), t.path("expected.img")])

    import nbd  # noqa: E402  (after sys.path is set; used by the cases above)

    t.case("writes_during_hydration_win_over_source_data",
           writes_during_hydration_win_over_source_data)
    t.case("zero_trim_and_cache", zero_trim_and_cache)
    t.case("multi_conn_write_flush_read", multi_conn_write_flush_read)
    t.case("qemu_tools_accept_the_clone", qemu_tools_accept_the_clone)
    t.finish()
