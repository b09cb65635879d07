#!/usr/bin/python3
"""Background hydration from a real, delayed nbdkit source: the clone ends up identical to the
source, holes move no data, the allocation map comes in a few round trips, progress is visible,
and the destination is byte-for-byte the source at completion."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clonelib import CloneTest, check, assert_same_file, run  # noqa: E402

with CloneTest("hydration") as t:

    def completes_identical_to_the_source():
        src = t.make_source_image(64, percent=25)
        t.start_source(src, delay_ms=2)
        t.start_clone()
        s = t.wait_complete()
        check(s["hydrated_regions"] == s["regions"], "not every region hydrated: %r" % s)
        t.assert_clone_equals(src)
        assert_same_file(t.destination, src, "destination file at completion")
        meta = t.meta_dump()
        active = meta["slots"][meta["active_slot"]]
        check(meta["hydrated_regions"] == meta["region_count"] == active["committed_regions"],
              "metadata does not record every region: %r" % meta)
        check(active["flags"] & 1 and "complete" in active["flag_names"],
              "metadata flags do not say complete: %r" % active)

    def holes_move_no_data():
        src = t.make_source_image(128, percent=10, seed=7)
        data = t.data_bytes(src)
        t.start_source(src, delay_ms=1)
        t.start_clone()
        t.wait_complete()
        t.stop_clone()
        t.stop_source()
        stats = t.source_stats()
        read_bytes = stats.get("read", (0, 0))[1]
        extents_ops = stats.get("extents", (0, 0))[0]
        # Partial regions at the edges of data runs may add a little; holes add nothing.
        check(read_bytes <= data + 2 * 64 * 1024 * 128,
              "read %d bytes from the source for %d bytes of data" % (read_bytes, data))
        check(read_bytes >= data, "read only %d of %d data bytes" % (read_bytes, data))
        check(extents_ops <= 4, "the allocation map took %d BLOCK_STATUS calls" % extents_ops)

    def progress_is_visible_and_state_map_draws_it():
        src = t.make_source_image(64, percent=50, seed=3)
        t.start_source(src, delay_ms=5)
        t.start_clone({"hydration": {"enabled": False}})
        s = t.status()
        check(s["state"] == "paused", "hydration disabled must show paused, got %r" % s["state"])
        # Touch 1 MiB at 8 MiB: copy-on-read hydrates it; hydrate:state shows exactly that.
        h = t.connect(contexts=["hydrate:state"])
        h.pread(1 << 20, 8 << 20)
        t.wait_for(lambda: t.status()["hydrated_regions"] >= 16, "copy-on-read to land")
        extents = []

        def collect(metacontext, offset, entries, err):
            if metacontext == "hydrate:state":
                extents.extend(zip(entries[0::2], entries[1::2]))

        h.block_status(64 << 20, 0, collect)
        h.shutdown()
        hydrated = []
        at = 0
        for length, flags in extents:
            if flags & 1:
                hydrated.append((at, length))
            at += length
        check(any(o <= 8 << 20 and o + n >= 9 << 20 for o, n in hydrated),
              "hydrate:state does not show 8-9 MiB hydrated: %r" % hydrated)
        out = run(["nbdinfo", "--map=hydrate:state", t.uri()], capture=True)
        check("hydrate:state" in out or "1" in out, "nbdinfo --map=hydrate:state: %s" % out)
        r = t.ctl({"command": "resume", "export": "vm"})
        check(r["ok"], "resume: %r" % r)
        s = t.wait_complete()
        check(s["rate_bytes_per_second"] >= 0 and s["fetched_bytes"] > 0, "status: %r" % s)
        t.assert_clone_equals(src)

    def cli_status_and_ctl_work():
        src = t.make_source_image(32, percent=50, seed=4)
        t.start_source(src, delay_ms=5)
        t.start_clone({"hydration": {"enabled": True, "rate": "1MiB"}})
        out = run([os.environ.get("HYDRATE_BIN"), "status", "--control", t.control], capture=True)
        check("vm" in out and ("hydrating" in out or "starting" in out), "status: %s" % out)
        out = run([os.environ.get("HYDRATE_BIN"), "status", "--json", "--control", t.control],
                  capture=True)
        check('"rate": 1048576' in out, "rate limit not shown in status --json: %s" % out)
        r = run([os.environ.get("HYDRATE_BIN"), "ctl", "vm", "set", "rate=0", "batch=1MiB",
                 "--control", t.control], capture=True)
        s = t.status()
        check(s["hydration"]["rate"] == 0 and s["hydration"]["batch"] == 1 << 20,
              "ctl set did not apply: %r" % s["hydration"])
        bad = run([os.environ.get("HYDRATE_BIN"), "ctl", "vm", "set", "batch=1",
                   "--control", t.control], capture=True, check_status=False)
        check(bad.returncode == 1 and b"out of range" in bad.stderr,
              "a bad batch must be refused with the range: %r" % bad.stderr)
        r = run([os.environ.get("HYDRATE_BIN"), "status", "--wait", "--interval", "0.2",
                 "--control", t.control], capture=True, timeout=120)
        check("complete" in r, "status --wait output: %s" % r)
        t.assert_clone_equals(src)

    def local_file_source():
        src = t.make_source_image(32, percent=30, seed=5)
        t.start_clone(source=src)
        t.wait_complete()
        t.assert_clone_equals(src)

    def nbdkit_subprocess_source():
        src = t.make_source_image(16, percent=30, seed=6)
        t.start_clone(source={"nbdkit": ["file", src]})
        t.wait_complete()
        t.assert_clone_equals(src)

    def discard_source_after_commit_frees_the_source():
        src = t.make_source_image(32, percent=60, seed=8)
        expected = t.path("expected.img")
        run(["cp", "--sparse=always", src, expected])
        before = t.data_bytes(src)
        t.start_source(src, readonly=False, stats=False)
        t.start_clone({"discard_source_after_commit": True, "hydration": {"batch": "1MiB"}})
        t.wait_complete()
        t.assert_clone_equals(expected)
        t.stop_clone()
        after = t.data_bytes(src)
        check(after < before // 4,
              "the source still holds %d of %d data bytes after every region was committed"
              % (after, before))

    t.case("completes_identical_to_the_source", completes_identical_to_the_source)
    t.case("discard_source_after_commit_frees_the_source",
           discard_source_after_commit_frees_the_source)
    t.case("holes_move_no_data", holes_move_no_data)
    t.case("progress_is_visible_and_state_map_draws_it", progress_is_visible_and_state_map_draws_it)
    t.case("cli_status_and_ctl_work", cli_status_and_ctl_work)
    t.case("local_file_source", local_file_source)
    t.case("nbdkit_subprocess_source", nbdkit_subprocess_source)
    t.finish()
