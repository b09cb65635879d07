"""Scenario (g), second half: the memory a huge clone needs. `hydrate serve` clones a 1 TiB
sparse source (`nbdkit sparse-random 1T seed=1 percent=25 runlength=1048576` behind 5 ms of
delay on reads *and* block-status) at 64 KiB regions: only the map and the allocation scan
matter. It runs until the scan has finished and hydration has copied data for a few seconds,
then peak RSS (VmHWM), CPU, scan time and BLOCK_STATUS calls are read. (CPU and RSS per GiB
hydrated of every contender come from scenario (a)'s runs.)"""

import os
import time

from hydrate_clone import HydrateClone
from procs import BenchError, proc_usage, unlink, wait_for_nbd

SIZE = "1T"
DELAY_MS = 5
HYDRATE_AFTER_SCAN_S = 3


def run(ctx):
    sock = os.path.join(ctx.tmp, "huge-source.sock")
    log = os.path.join(ctx.tmp, "huge-source.log")
    unlink(sock)
    remote = ctx.procs.start(
        "nbdkit sparse-random 1T",
        ["nbdkit", "-f", "--exit-with-parent", "-r", "-U", sock, "--filter=delay",
         "sparse-random", SIZE, "seed=1", "percent=25", "runlength=1048576",
         "delay-read=%dms" % DELAY_MS, "delay-extents=%dms" % DELAY_MS], log, deadline_s=900)
    uri = "nbd+unix:///?socket=" + sock
    clone = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin, name="huge")
    result = {"size": SIZE, "delay_ms": DELAY_MS, "region_size": 65536}
    try:
        ctx.log("[footprint] starting nbdkit sparse-random %s (it builds its map first)" % SIZE)
        wait_for_nbd(uri, remote, log, timeout=120)
        ctx.log("[footprint] hydrate serve on the 1 TiB source")
        start = time.monotonic()
        clone.start(uri, clone_extra={"region_size": "64KiB"})
        result["serving_s"] = time.monotonic() - start
        deadline = start + 600
        scanned_at = None
        while time.monotonic() < deadline:
            with open(clone.log_path, errors="replace") as f:
                if "hydrate.allocation_scanned" in f.read():
                    scanned_at = time.monotonic() - start
                    break
            if clone.proc.poll() is not None:
                raise BenchError("hydrate serve exited during the 1 TiB scan (log %s)" %
                                 clone.log_path)
            time.sleep(0.05)
        if scanned_at is None:
            raise BenchError("the 1 TiB allocation scan did not finish within 600 s")
        result["scan_s"] = scanned_at
        s = clone.status()
        result["after_scan"] = {"hydrated_bytes": s["hydrated_bytes"],
                                "block_status_calls": s["source"]["block_status_calls"]}
        result["rss_after_scan"] = proc_usage(clone.proc.pid)[1]
        time.sleep(HYDRATE_AFTER_SCAN_S)
        s = clone.status()
        cpu, rss = proc_usage(clone.proc.pid)
        result.update(peak_rss=rss, cpu_s=cpu, hydrated_bytes=s["hydrated_bytes"],
                      fetched_bytes=s["fetched_bytes"], regions=s["regions"],
                      block_status_calls=s["source"]["block_status_calls"],
                      hydrate_after_scan_s=HYDRATE_AFTER_SCAN_S,
                      metadata_bytes=os.path.getsize(clone.metadata))
        ctx.log("    peak RSS %.1f MiB, scan %.1f s, %d BLOCK_STATUS calls" % (
            rss / (1 << 20), scanned_at, result["block_status_calls"]))
    finally:
        clone.stop()
        ctx.procs.stop(remote)
        unlink(clone.destination, clone.metadata, sock)
    return result
