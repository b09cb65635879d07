#!/usr/bin/python3
"""Crash and restart with real processes: SIGKILL of `hydrate serve` during hydration and
during client writes, restart on the same files, and check that flushed data survived and
progress was kept up to the last commit; the wrong source or corrupted metadata is refused
with the cause named (and `hydrate meta check` names the same cause)."""
import os
import random
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clonelib import HYDRATE, CloneTest, check, run  # noqa: E402

import nbd  # noqa: E402

MiB = 1 << 20

with CloneTest("restart") as t:

    def kill_during_hydration_keeps_committed_progress():
        src = t.make_source_image(48, percent=100, seed=21)
        t.start_source(src, delay_ms=3)
        extra = {"hydration": {"batch": "256KiB", "rate": "24MiB"}}
        rng = random.Random(21)
        fetched_total = 0
        for round_ in range(3):
            t.start_clone(extra)
            time.sleep(0.3 + rng.random() * 0.5)
            committed = t.status()["committed_regions"]
            fetched_total += t.status()["fetched_bytes"]
            t.stop_clone(signal.SIGKILL)
            t.start_clone(extra)
            s = t.status()
            check(s["hydrated_regions"] >= committed,
                  "round %d: %d regions hydrated after restart, %d were committed before the kill"
                  % (round_, s["hydrated_regions"], committed))
            t.stop_clone(signal.SIGKILL)
        t.start_clone({"hydration": {"batch": "1MiB"}})
        t.wait_complete()
        t.assert_clone_equals(src)

    def kill_after_flush_keeps_acknowledged_writes():
        src = t.make_source_image(32, percent=100, seed=22)
        t.start_source(src, delay_ms=2)
        extra = {"hydration": {"batch": "256KiB", "rate": "16MiB"}}
        rng = random.Random(22)
        expected = bytearray(open(src, "rb").read())
        maybe = []  # unflushed writes: each byte may hold old or new data after the kill
        for round_ in range(4):
            t.start_clone(extra)
            h = t.connect()
            for i in range(20):
                off = rng.randrange(0, 32 * MiB - 200000)
                data = os.urandom(rng.randrange(1, 200000))
                h.pwrite(data, off)
                expected[off:off + len(data)] = data
            h.flush()
            # Not flushed: allowed to survive or not.
            for i in range(5):
                off = rng.randrange(0, 32 * MiB - 100000)
                data = os.urandom(rng.randrange(1, 100000))
                h.pwrite(data, off)
                maybe.append((off, data))
            t.stop_clone(signal.SIGKILL)
            # Check the flushed state right after the restart, before hydration completes.
            t.start_clone(extra)
            h = t.connect()
            got = h.pread(32 * MiB, 0)
            h.shutdown()
            mismatch = first_unexplained_difference(got, expected, maybe)
            check(mismatch is None, "round %d: byte %s is neither the flushed value nor an "
                  "unflushed write" % (round_, mismatch))
            # From here on, what the clone holds is the truth for the next round.
            expected = bytearray(got)
            maybe = []
            t.stop_clone(signal.SIGKILL)
        t.start_clone()
        t.wait_complete()
        got = open(t.read_clone(), "rb").read()
        check(got == bytes(expected), "after completion the clone lost flushed writes")

    def wrong_source_is_refused():
        src = t.make_source_image(16, percent=50, seed=23)
        other = t.make_source_image(16, percent=50, seed=24, name="other.img")
        t.start_source(src)
        # Left incomplete: a complete clone never needs its source again.
        t.start_clone({"hydration": {"enabled": False}})
        t.connect().pread(MiB, 0)
        t.stop_clone()
        code, log = t.start_clone(source=other, expect_failure=True)
        check(code != 0, "serve accepted another source")
        check(other in log and "socket=" + t.source_sock in log,
              "the refusal must name both sources: %s" % log[-800:])
        # Same URI, but the server now serves a different size: refused once it connects.
        t.stop_source()
        bigger = t.make_source_image(32, percent=50, seed=23, name="bigger.img")
        t.start_source(bigger)
        t.start_clone({"hydration": {"enabled": False}})
        s = t.wait_for(lambda: t.status()["state"] == "failed" and t.status(),
                       "the clone to notice the resized source")
        check("source size differs" in s.get("reason", ""), "reason: %r" % s)

    def corrupted_metadata_is_refused_with_its_cause():
        src = t.make_source_image(8, percent=50, seed=25)
        t.start_source(src)
        t.start_clone()
        t.wait_complete()
        t.stop_clone()
        good = open(t.metadata, "rb").read()

        def corrupt(name, mutate, cause):
            data = bytearray(good)
            mutate(data)
            with open(t.metadata, "wb") as f:
                f.write(data)
            code, log = t.start_clone(expect_failure=True)
            check(code != 0, "%s: serve started on corrupted metadata" % name)
            check(cause in log, "%s: serve's refusal does not say '%s': %s" % (name, cause,
                                                                                 log[-600:]))
            r = run([HYDRATE, "meta", "check", t.metadata], capture=True, check_status=False)
            check(r.returncode != 0, "%s: meta check accepted it" % name)
            check(cause in r.stderr.decode() + r.stdout.decode(),
                  "%s: meta check does not say '%s': %r" % (name, cause, r.stderr))
            with open(t.metadata, "wb") as f:
                f.write(good)
            os.truncate(t.path("serve.log"), 0)

        def both_slots(data, offset, value):
            for slot in (0, 4096):
                data[slot + offset:slot + offset + len(value)] = value

        corrupt("bad magic", lambda d: both_slots(d, 0, b"NOTMETA!"), "bad magic")
        corrupt("bad version", lambda d: both_slots(d, 8, struct.pack("<I", 7)),
                "unsupported format version")
        corrupt("bad checksum", lambda d: both_slots(d, 200, b"\xff\xfe"), "bad checksum")
        corrupt("truncated", lambda d: d.__delitem__(slice(5000, None)), "truncated")
        # One bad slot is not a refusal: the other slot carries the clone.
        data = bytearray(good)
        data[200:202] = b"\xff\xfe"
        with open(t.metadata, "wb") as f:
            f.write(data)
        t.start_clone()
        t.wait_complete()
        t.assert_clone_equals(src)

    def first_unexplained_difference(got, expected, maybe):
        if got == bytes(expected):
            return None
        allowed = {}
        for off, data in maybe:
            for i in range(len(data)):
                allowed.setdefault(off + i, set()).add(data[i])
        for i in range(len(got)):
            if got[i] != expected[i] and got[i] not in allowed.get(i, ()):
                return i
        return None

    t.case("kill_during_hydration_keeps_committed_progress",
           kill_during_hydration_keeps_committed_progress)
    t.case("kill_after_flush_keeps_acknowledged_writes", kill_after_flush_keeps_acknowledged_writes)
    t.case("wrong_source_is_refused", wrong_source_is_refused)
    t.case("corrupted_metadata_is_refused_with_its_cause",
           corrupted_metadata_is_refused_with_its_cause)
    t.finish()
