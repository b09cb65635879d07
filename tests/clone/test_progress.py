#!/usr/bin/python3
"""Progress that describes the copy, through the real server, control socket and CLI, over a
real sparse source served by nbdkit: holes hydrated by the allocation scan are not progress,
`percent` and the ETA count data only, the data figures survive a restart, and the edge cases
(fully sparse, no allocation information, complete) read sensibly. No timing is asserted:
every figure is checked against the others of the same status reply or against the image."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clonelib import CloneTest, check, run  # noqa: E402

MiB = 1 << 20
SIZE = 64 * MiB
# Data runs, MiB-aligned so they are whole regions: 12 MiB of data, 52 MiB of holes.
DATA_RUNS = [(16 * MiB, 8 * MiB), (60 * MiB, 4 * MiB)]
DATA = sum(length for _, length in DATA_RUNS)
HYDRATE = os.environ.get("HYDRATE_BIN")


def make_sparse(path, size, runs):
    with open(path, "wb") as f:
        f.truncate(size)
        for offset, length in runs:
            f.seek(offset)
            f.write(os.urandom(length))
    return path


def cli_status(t):
    return run([HYDRATE, "status", "--control", t.control], capture=True)


def check_consistent(s, what):
    """The relations every status reply must satisfy, whatever the moment."""
    check(s["data_hydrated_bytes"] + s["data_remaining_bytes"] == s["data_bytes"],
          "%s: data hydrated + remaining != data: %r" % (what, s))
    want = 100.0 * s["data_hydrated_bytes"] / s["data_bytes"] if s["data_bytes"] else 100.0
    check(abs(s["percent"] - want) < 1e-9, "%s: percent %r is not data done over data %r"
          % (what, s["percent"], want))
    check(abs(s["regions_percent"] - 100.0 * s["hydrated_regions"] / s["regions"]) < 1e-9,
          "%s: regions_percent: %r" % (what, s))
    eta, rate, left = s["eta_seconds"], s["data_rate_bytes_per_second"], s["data_remaining_bytes"]
    if s["state"] == "complete" or left == 0:
        check(eta == 0, "%s: nothing left to fetch but ETA %r" % (what, eta))
    elif rate > 0:
        check(eta is not None and abs(eta - left / rate) <= 1e-9 * max(1.0, eta),
              "%s: ETA %r is not data remaining %d at the data rate %r" % (what, eta, left, rate))
    else:
        check(eta is None, "%s: no data rate but ETA %r" % (what, eta))


with CloneTest("progress") as t:

    def sparse_source_percent_and_eta_count_data():
        src = make_sparse(t.path("source.img"), SIZE, DATA_RUNS)
        t.start_source(src, delay_ms=1)
        t.start_clone({"region_size": "64KiB",
                       "hydration": {"enabled": False, "rate": "128KiB", "batch": "64KiB"}})
        # Paused from the start: nothing scanned, so everything unhydrated may be data.
        s = t.status()
        check(not s["allocation_scanned"] and s["data_bytes"] == SIZE,
              "before the scan data_bytes must be the upper bound: %r" % s)
        check(s["percent"] == 0 and s["data_remaining_bytes"] == SIZE, "before the scan: %r" % s)
        check_consistent(s, "before the scan")
        out = cli_status(t)
        check("of up to 64.00 MiB data" in out, "the CLI must mark the bound: %s" % out)

        r = t.ctl({"command": "resume", "export": "vm"})
        check(r["ok"], "resume: %r" % r)
        s = t.wait_for(lambda: (lambda x: x["allocation_scanned"] and x)(t.status()),
                       "the allocation scan")
        check(s["data_bytes"] == DATA, "data_bytes %d, the image holds %d" % (s["data_bytes"], DATA))
        check_consistent(s, "after the scan")
        # Copying at 128 KiB/s: wait for a data rate, then check the ETA against it.
        s = t.wait_for(lambda: (lambda x: x["data_rate_bytes_per_second"] > 0 and x)(t.status()),
                       "a data rate")
        check_consistent(s, "while copying")
        if s["data_remaining_bytes"] > 0:
            # The scan hydrated 52 of 64 MiB at once; counting regions said over 80 %.
            check(s["percent"] < s["regions_percent"],
                  "percent must count data, not holes: %r" % s)
        out = cli_status(t)
        check(re.search(r"\d+\.\d% of 12\.00 MiB data, [\d.]+ \w+ to fetch at [\d.]+ \w+/s, "
                        r"ETA [\dhms?]+; regions \d+%", out),
              "the CLI progress line: %s" % out)

        run([HYDRATE, "ctl", "vm", "set", "rate=0", "--control", t.control], capture=True)
        s = t.wait_complete()
        check_consistent(s, "complete")
        check(s["percent"] == 100 and s["data_remaining_bytes"] == 0 and s["eta_seconds"] == 0,
              "complete: %r" % s)
        check(s["data_hydrated_bytes"] == DATA and s["fetched_bytes"] == DATA,
              "complete: the data fetched must be the image's data: %r" % s)
        t.assert_clone_equals(src)

    def data_done_survives_a_restart():
        src = make_sparse(t.path("source.img"), SIZE, DATA_RUNS)
        t.start_source(src)
        t.start_clone({"region_size": "64KiB", "hydration": {"rate": "1MiB", "batch": "64KiB"}})
        t.wait_for(lambda: t.status()["data_hydrated_bytes"] >= 2 * MiB, "some data copied")
        check(t.ctl({"command": "pause", "export": "vm"})["ok"], "pause")
        check(t.stop_clone() == 0, "hydrate serve did not stop cleanly")
        before = t.meta_dump()["hydrated_regions"] * 64 * 1024 - (SIZE - DATA)
        check(before >= 2 * MiB, "the metadata lost the copied data: %d" % before)

        t.start_clone({"region_size": "64KiB", "hydration": {"rate": "64KiB", "batch": "64KiB"}})
        s = t.wait_for(lambda: (lambda x: x["allocation_scanned"] and x)(t.status()),
                       "the allocation scan after the restart")
        check_consistent(s, "after the restart")
        check(s["data_bytes"] == DATA and s["data_hydrated_bytes"] >= before,
              "data done must come from the map, not this process's counters: %r (before %d)"
              % (s, before))
        check(s["fetched_bytes"] < s["data_hydrated_bytes"],
              "fetched_bytes counts this process only: %r" % s)

    def fully_sparse_source_is_all_done():
        src = make_sparse(t.path("source.img"), 16 * MiB, [])
        t.start_source(src)
        t.start_clone({"region_size": "64KiB"})
        s = t.wait_complete()
        check_consistent(s, "fully sparse")
        check(s["allocation_scanned"] and s["data_bytes"] == 0 and s["fetched_bytes"] == 0
              and s["percent"] == 100, "a fully sparse source has no data to copy: %r" % s)
        out = cli_status(t)
        check("100.0% of 0 B data, 0 B to fetch" in out, "the CLI: %s" % out)

    def source_without_allocation_information_is_all_data():
        src = make_sparse(t.path("source.img"), 16 * MiB, [(0, 4 * MiB)])
        t.start_source(src, extra_filters=["noextents"])
        t.start_clone({"region_size": "64KiB",
                       "hydration": {"rate": "64KiB", "batch": "64KiB"}})
        s = t.wait_for(lambda: (lambda x: x["allocation_scanned"] and x)(t.status()),
                       "the allocation scan")
        check(s["data_bytes"] == 16 * MiB,
              "without allocation information everything is data: %r" % s)
        check_consistent(s, "no allocation information")
        check(abs(s["percent"] - s["regions_percent"]) < 1e-9,
              "with no holes, data and regions agree: %r" % s)

    t.case("sparse_source_percent_and_eta_count_data", sparse_source_percent_and_eta_count_data)
    t.case("data_done_survives_a_restart", data_done_survives_a_restart)
    t.case("fully_sparse_source_is_all_done", fully_sparse_source_is_all_done)
    t.case("source_without_allocation_information_is_all_data",
           source_without_allocation_information_is_all_data)
    t.finish()
