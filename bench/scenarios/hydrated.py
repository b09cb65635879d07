"""Scenario (e): a fully hydrated clone against `nbdkit file` serving the destination file it
hydrated (the best a plain server does with the same bytes). The bench/plain workloads
(bench/README.md), one connection: fio nbd engine, 4 KiB random read/write QD32, 1 MiB
sequential read/write QD8. Both servers stay up; workloads interleave, the server that goes
first alternates by repetition; the page cache is warm for both (same file)."""

import os

from fio import run_fio
from hydrate_clone import HydrateClone
from hydration_runs import start_remote
from images import make_image
from procs import unlink, wait_for_nbd

WORKLOADS = [
    ("randread-4k-qd32", "randread", "4k", 32, "iops"),
    ("randwrite-4k-qd32", "randwrite", "4k", 32, "iops"),
    ("read-1m-qd8", "read", "1M", 8, "MBps"),
    ("write-1m-qd8", "write", "1M", 8, "MBps"),
]


def run(ctx):
    image = make_image(ctx, "sparse25", ctx.size)
    runtime = 1 if ctx.quick else 3
    remote = start_remote(ctx, image, 0)
    clone = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
    nbdkit = None
    records = []
    try:
        clone.start(remote.uri)
        clone.wait_state("complete", timeout=600)
        # The clone released its source when it completed; the remote is not needed any more.
        remote.stop()
        remote = None
        # Warm the page cache for both servers alike: it measures serving, not the disk.
        with open(clone.destination, "rb") as f:
            while f.read(1 << 24):
                pass
        sock = os.path.join(ctx.tmp, "dest-file.sock")
        unlink(sock)
        log = os.path.join(ctx.tmp, "dest-file.log")
        nbdkit = ctx.procs.start("nbdkit file (destination)",
                                 ["nbdkit", "-f", "--exit-with-parent", "-U", sock, "file",
                                  clone.destination], log, deadline_s=1800)
        uris = {"hydrate (complete clone)": clone.uri,
                "nbdkit file": "nbd+unix:///?socket=" + sock}
        wait_for_nbd(uris["nbdkit file"], nbdkit, log)
        for rep in range(1, ctx.reps + 1):
            order = list(uris) if rep % 2 else list(reversed(list(uris)))
            for name, rw, bs, depth, unit in WORKLOADS:
                for server in order:
                    ctx.log("[hydrated rep %d/%d] %s: %s" % (rep, ctx.reps, name, server))
                    try:
                        res = run_fio(ctx, "hyd", uris[server], rw, bs, depth, runtime, ramp=1)
                    except Exception as e:  # noqa: BLE001
                        ctx.failure("hydrated %s %s rep %d" % (name, server, rep), e)
                        continue
                    side = res["write" if "write" in rw else "read"]
                    records.append({"scenario": "hydrated", "workload": name, "server": server,
                                    "rep": rep, "unit": unit, "value": side[unit],
                                    "p50_us": side["p50_us"]})
                    ctx.log("    %.0f %s" % (side[unit], unit))
    finally:
        if nbdkit is not None:
            ctx.procs.stop(nbdkit)
        clone.stop()
        if remote is not None:
            remote.stop()
        unlink(clone.destination, clone.metadata)
    return {"records": records, "runtime": runtime}
