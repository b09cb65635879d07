#!/usr/bin/python3
"""The plugin stacked under nbdkit's own filters, the reason to have a plugin at all: stats
counts exactly the client's requests (not the engine's source traffic), rate and log pass
requests through unchanged and the clone's data stays right, and log shows the capabilities
the plugin gives nbdkit (native FUA and cache, fast zero) and the errno of a failed read."""

import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pluginlib import PluginCloneTest, check, read_range  # noqa: E402

import nbd  # noqa: E402

MiB = 1 << 20
KiB = 1 << 10


def stats_of(path):
    """{"read": (ops, bytes), …} from an nbdkit stats filter file."""
    scale = {"bytes": 1, "B": 1, "KiB": KiB, "MiB": MiB, "GiB": 1 << 30}
    out = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\w+): (\d+) ops, [\d.]+ s, ([\d.]+) (\w+)", line)
            if m:
                out[m.group(1)] = (int(m.group(2)), round(float(m.group(3)) * scale[m.group(4)]))
    return out


with PluginCloneTest("filters") as t:

    def stats_counts_the_clients_requests():
        src = t.make_source_image(16, percent=100, seed=51)
        t.start_source(src, delay_ms=1)
        statsfile = t.path("client.stats")
        t.filters = ("stats",)
        t.extra_keys = ("statsfile=" + statsfile,)
        t.start_clone({"hydration": {"enabled": False}})
        h = t.connect()
        for i in range(7):
            got = h.pread(64 * KiB, i * MiB)
            check(got == read_range(src, i * MiB, 64 * KiB), "read %d through stats" % i)
        for i in range(3):
            h.pwrite(b"w" * 4096, 12 * MiB + i * 4096)
        h.flush()
        h.shutdown()
        code = t.stop_clone()
        check(code == 0, "nbdkit exited %s" % code)
        stats = stats_of(statsfile)
        check(stats.get("read") == (7, 7 * 64 * KiB), "stats read: %r" % stats)
        check(stats.get("write") == (3, 3 * 4096), "stats write: %r" % stats)
        check(stats.get("flush", (0, 0))[0] == 1, "stats flush: %r" % stats)
        # Below the plugin, the engine fetched from the source on demand: fetch windows and
        # whole regions, which the client-side stats never see.
        t.stop_source()
        source = t.source_stats()
        check(source.get("read", (0, 0))[1] >= 7 * 64 * KiB,
              "the source saw %r; the reads must have been fetched from it" % source)

    def rate_and_log_pass_everything_through():
        src = t.make_source_image(16, percent=50, seed=52)
        t.start_source(src)
        logfile = t.path("requests.log")
        t.filters = ("log", "rate")
        t.extra_keys = ("logfile=" + logfile, "rate=64M")
        t.start_clone()
        h = t.connect()
        h.pwrite(b"\xab" * 100000, 3 * MiB + 5, nbd.CMD_FLAG_FUA)
        h.zero(2 * MiB, 8 * MiB, nbd.CMD_FLAG_FAST_ZERO)
        h.cache(MiB, 14 * MiB)
        h.shutdown()
        t.wait_complete()
        expected = bytearray(open(src, "rb").read())
        expected[3 * MiB + 5:3 * MiB + 5 + 100000] = b"\xab" * 100000
        expected[8 * MiB:10 * MiB] = bytes(2 * MiB)
        got = open(t.read_clone(), "rb").read()
        check(got == bytes(expected), "clone read through log+rate differs from source + writes")
        log = open(logfile).read()
        connect = re.search(r"Connect export=vm .*", log)
        check(connect, "no Connect line in the log filter's file: %s" % log[:2000])
        for flag in ("write=1", "flush=1", "trim=1", "zero=2", "fua=2", "extents=1", "cache=2",
                     "fast_zero=1", "maxsize=0x2000000"):
            check(flag in connect.group(0), "%s not in %s" % (flag, connect.group(0)))
        check(re.search(r"Write id=\d+ offset=0x300005 count=0x186a0 fua=1", log),
              "the FUA write is not in the log: %s" % log[-2000:])
        check(re.search(r"Zero id=\d+ offset=0x800000 count=0x200000 .*fast=1", log),
              "the fast zero is not in the log: %s" % log[-2000:])
        check("return=-1" not in log, "a request failed: %s" % log[-3000:])

    def a_failed_read_shows_its_errno_through_the_filters():
        src = t.make_source_image(16, percent=100, seed=53)
        t.start_source(src)
        logfile = t.path("requests.log")
        t.filters = ("log", "stats")
        t.extra_keys = ("logfile=" + logfile, "statsfile=" + t.path("client.stats"))
        t.start_clone({"hydration": {"enabled": False}, "source_timeout": "1s"})
        t.stop_source(signal.SIGKILL)
        h = t.connect()
        try:
            h.pread(4096, 5 * MiB)
            raise AssertionError("a read of an unhydrated region succeeded without the source")
        except nbd.Error as e:
            check(e.errno == "EIO", "failed with %s, expected EIO" % e.errno)
        h.shutdown()
        log = open(logfile).read()
        check(re.search(r"\.\.\.Read id=\d+ return=-1 error=EIO", log),
              "the log filter does not show the read failing with EIO: %s" % log[-2000:])

    t.case("stats_counts_the_clients_requests", stats_counts_the_clients_requests)
    t.case("rate_and_log_pass_everything_through", rate_and_log_pass_everything_through)
    t.case("a_failed_read_shows_its_errno_through_the_filters",
           a_failed_read_shows_its_errno_through_the_filters)
    t.finish()
