#!/usr/bin/python3
"""Faults with real peers: read errors injected by nbdkit's error filter, the source killed and
restarted mid-hydration, latency spikes, and a destination that runs out of space. Clients get
correct data or EIO, never wrong data; hydration finishes once the source is back."""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clonelib import CloneTest, check, read_range, run  # noqa: E402

import nbd  # noqa: E402

MiB = 1 << 20

with CloneTest("faults") as t:

    def read_errors_are_retried_and_counted():
        src = t.make_source_image(32, percent=60, seed=31)
        t.start_source(src, extra_filters=["error"],
                       extra_params=["error=EIO", "error-pread-rate=5%"])
        t.start_clone({"hydration": {"batch": "256KiB"}})
        s = t.wait_complete()
        errors = s["source"]["read_errors"] + s["hydration_errors"]
        check(errors > 0, "5%% injected read errors, yet none counted: %r" % s)
        t.assert_clone_equals(src)

    def source_restart_mid_hydration():
        src = t.make_source_image(48, percent=100, seed=32)
        t.start_source(src, delay_ms=2)
        t.start_clone({"hydration": {"batch": "256KiB", "rate": "32MiB"},
                       "source_timeout": "3s"})
        t.wait_for(lambda: t.status()["hydrated_regions"] > 50, "some progress")
        t.stop_source(signal.SIGKILL)
        # During the outage: hydrated ranges still read fine; unhydrated reads wait, then EIO.
        h = t.connect()
        s = t.status()
        check(h.pread(4096, 0) == read_range(src, 0, 4096), "hydrated read during the outage")
        started = time.time()
        try:
            data = h.pread(4096, 47 * MiB)
            check(data == read_range(src, 47 * MiB, 4096),
                  "a read during the outage returned wrong data")
        except nbd.Error as e:
            check(e.errnum == 5, "expected EIO during the outage, got %s" % e)  # EIO
            check(time.time() - started >= 2.5, "EIO came before source_timeout")
        h.shutdown()
        time.sleep(0.5)
        t.start_source(src, delay_ms=2)
        s = t.wait_complete()
        check(s["source"]["reconnects"] >= 1 or s["hydration_errors"] >= 1,
              "the outage left no trace in the status: %r" % s)
        t.assert_clone_equals(src)

    def short_outage_is_invisible_to_clients():
        src = t.make_source_image(16, percent=100, seed=33)
        t.start_source(src, delay_ms=1)
        t.start_clone({"hydration": {"enabled": False}, "source_timeout": "20s"})
        h = t.connect()
        t.stop_source(signal.SIGKILL)
        result = {}

        def reader():
            try:
                result["data"] = h.pread(65536, 9 * MiB)
            except nbd.Error as e:
                result["error"] = e

        th = threading.Thread(target=reader)
        th.start()
        time.sleep(1.0)
        t.start_source(src, delay_ms=1)
        th.join(timeout=60)
        check("data" in result, "a read across a 1 s outage failed: %r" % result)
        check(result["data"] == read_range(src, 9 * MiB, 65536), "wrong data after the outage")
        h.shutdown()

    def latency_spikes_slow_but_do_not_break():
        src = t.make_source_image(32, percent=100, seed=34)
        t.start_source(src, delay_ms=1)
        t.start_clone({"hydration": {"batch": "512KiB"}})
        t.wait_for(lambda: t.status()["hydrated_regions"] > 20, "some progress")
        t.stop_source(signal.SIGKILL)
        t.start_source(src, delay_ms=150)   # a spike: every request now takes 150 ms
        h = t.connect()
        check(h.pread(4096, 31 * MiB) == read_range(src, 31 * MiB, 4096), "read during spike")
        h.shutdown()
        time.sleep(1)
        t.stop_source(signal.SIGKILL)
        t.start_source(src, delay_ms=1)
        t.wait_complete()
        t.assert_clone_equals(src)

    def destination_full_goes_read_only():
        mnt = t.path("small")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                           stderr=subprocess.PIPE)
        if r.returncode != 0:
            print("SKIP: cannot mount a small tmpfs: %s" % r.stderr.decode().strip())
            return
        try:
            src = t.make_source_image(32, percent=100, seed=35)
            t.destination = os.path.join(mnt, "clone.img")
            t.start_source(src)
            t.start_clone({"hydration": {"batch": "1MiB"}})
            s = t.wait_for(lambda: t.status()["state"] == "read-only" and t.status(),
                           "the clone to turn read-only on a full destination")
            check("No space left" in s.get("reason", "") or "ENOSPC" in s.get("reason", ""),
                  "reason should name the full destination: %r" % s.get("reason"))
            h = t.connect()
            try:
                h.pwrite(b"x" * 512, 0)
                check(False, "a write to a read-only clone succeeded")
            except nbd.Error:
                pass
            # What was hydrated and committed still reads back from the destination.
            check(h.pread(4096, 0) == read_range(src, 0, 4096), "read after going read-only")
            h.shutdown()
            t.stop_clone()
            r = run([os.environ["HYDRATE_BIN"], "meta", "check", t.metadata], capture=True)
            check("valid" in r or "ok" in r.lower(), "metadata after ENOSPC: %s" % r)
        finally:
            t.stop_all()
            subprocess.run(["umount", "-l", mnt])
            t.destination = t.path("clone.img")

    def sigterm_while_the_source_hangs_exits_promptly():
        # A source that stops answering (SIGSTOP: the connection stays up, nothing comes back)
        # must not hold a shutdown for source_timeout: background fetches are cut off, and the
        # next start fetches those regions again.
        src = t.make_source_image(48, percent=100, seed=36)
        t.start_source(src, delay_ms=2)
        t.start_clone({"hydration": {"batch": "256KiB", "rate": "16MiB"},
                       "source_timeout": "120s"})
        t.wait_for(lambda: t.status()["hydrated_regions"] > 20, "some progress")
        t.source_proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(0.5)
            started = time.time()
            code = t.stop_clone(signal.SIGTERM, timeout=100)
            took = time.time() - started
            check(code == 0, "hydrate serve exited %s on SIGTERM" % code)
            check(took < 30, "SIGTERM with a hung source took %.1f s (source_timeout 120 s)" % took)
        finally:
            t.source_proc.send_signal(signal.SIGCONT)
        t.start_clone({"hydration": {"batch": "256KiB"}})
        t.wait_complete()
        t.assert_clone_equals(src)

    t.case("read_errors_are_retried_and_counted", read_errors_are_retried_and_counted)
    t.case("sigterm_while_the_source_hangs_exits_promptly",
           sigterm_while_the_source_hangs_exits_promptly)
    t.case("source_restart_mid_hydration", source_restart_mid_hydration)
    t.case("short_outage_is_invisible_to_clients", short_outage_is_invisible_to_clients)
    t.case("latency_spikes_slow_but_do_not_break", latency_spikes_slow_but_do_not_break)
    t.case("destination_full_goes_read_only", destination_full_goes_read_only)
    t.finish()
