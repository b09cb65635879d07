"""Scenario (h): a guest's cold 4 KiB read while the background copy saturates the link.

The remote is 20 ms away behind a 1 Gbit/s cap (issue 18's condition); the image is dense,
so every read of an unhydrated region costs a round trip. fio reads 4 KiB at random, one at a
time (QD1), in the second half of the device only, while the background copy walks forward
from offset 0: the copy cannot reach the half fio reads before fio stops, so every read is a
miss that competes with background traffic at every queue on the way. Contenders:
- remote direct, idle link: one round trip, the reference;
- hydrate, background copy running;
- q-s-d COR + stream: qemu-storage-daemon's copy-on-read node with block-stream running.

Reads served locally (a 4 KiB read inside a window a previous miss fetched) are counted apart:
they would flatter the percentiles. Reported: p50/p99 of misses and their ratio to the idle
round trip (targets: p50 <= 1.5x, p99 <= 3x)."""

import time

from fio import percentile, read_log, run_fio
from hydrate_clone import HydrateClone
from hydration_runs import start_remote
from images import make_image
from peers import QsdCopyOnRead
from procs import BenchError

CONTENDERS = ["remote direct (idle link)", "hydrate (background copy running)",
              "q-s-d COR + stream"]
DELAY_MS = 20
RATE = "1G"
# Below this a read did not cross the link (the remote is DELAY_MS away).
LOCAL_BELOW_US = DELAY_MS * 1000 / 2


def _wait_copying(clone, timeout=60):
    """Waits until the allocation scan is done and data is moving, so the link is busy."""
    clone.wait_scanned(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = clone.try_status()
        if s and s.get("fetched_bytes", 0) > 0:
            return s
        time.sleep(0.01)
    raise BenchError("hydrate's background copy did not start within %d s" % timeout)


def _measure(ctx, contender, remote, runtime, half):
    extra = {}
    target = None
    try:
        if contender.startswith("remote direct"):
            uri = remote.uri
        elif contender.startswith("hydrate"):
            target = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            target.start(remote.uri)
            _wait_copying(target)
            uri = target.uri
        elif contender.startswith("q-s-d"):
            target = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
            target.start(remote, ctx.size)
            target.start_stream()
            time.sleep(0.5)  # let the stream fill the link
            uri = target.uri
        else:
            raise ValueError(contender)
        res = run_fio(ctx, "prio", uri, "randread", "4k", 1, runtime, lat_log=True,
                      extra=["--offset=%d" % half, "--size=%d" % half])
        if contender.startswith("hydrate"):
            s = target.status()
            extra["fetched_bytes_at_end"] = s["fetched_bytes"]
            extra["window_bytes_at_end"] = s.get("window_bytes", 0)
            if s["fetched_bytes"] >= half:
                extra["note"] = "background reached the half fio read: misses undercounted"
    finally:
        if target is not None:
            target.stop()
    lat = [v / 1000.0 for _, v, d, n, o in read_log(res["lat_log"]) if d == 0]
    misses = [v for v in lat if v >= LOCAL_BELOW_US]
    return dict(ios=len(lat), misses=len(misses), p50_us=percentile(misses, 0.5),
                p99_us=percentile(misses, 0.99), max_us=max(misses) if misses else None, **extra)


def run(ctx):
    image = make_image(ctx, "dense", ctx.size)
    half = ctx.size // 2
    runtime = 2 if ctx.quick else 4
    records = []
    for rep in range(1, ctx.reps + 1):
        shift = (rep - 1) % len(CONTENDERS)
        for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
            ctx.log("[priority rep %d/%d] %s" % (rep, ctx.reps, contender))
            remote = start_remote(ctx, image, DELAY_MS, delay_extents=True, rate=RATE)
            try:
                m = _measure(ctx, contender, remote, runtime, half)
            except Exception as e:  # noqa: BLE001
                ctx.failure("priority %s rep %d" % (contender, rep), e)
                continue
            finally:
                remote.stop()
            m.update(scenario="priority", contender=contender, delay_ms=DELAY_MS, rate=RATE,
                     rep=rep, runtime=runtime)
            records.append(m)
            ctx.log("    misses %d/%d p50 %s p99 %s" % (m["misses"], m["ios"], _fmt(m["p50_us"]),
                                                        _fmt(m["p99_us"])))
    return {"records": records}


def _fmt(v):
    return "-" if v is None else "%.1f ms" % (v / 1000.0)
