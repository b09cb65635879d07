"""Scenario (c): on-demand 4 KiB random-read latency on a cold clone against one direct
round trip to the source. fio QD1 randread over the whole device (perf-anchors.md §3); every
repetition starts each front fresh (empty overlay, empty destination).

Each I/O's latency and offset are logged (fio --write_lat_log --log_offset), and split by what
the source holds there: reads inside a source hole should cost no round trip at all, which is
only possible once the allocation map is known. hydrate is measured twice:
- hydration disabled (`hydration: {enabled: false}`), as the issue asks: no allocation scan,
  so every miss, hole or data, goes to the source;
- map scanned, then paused: hydration enabled until the allocation scan has finished (holes
  hydrated without moving data), then `pause` through the control socket. The few regions the
  background copied before the pause are reported."""

import bisect

from fio import percentile, read_log, run_fio
from hydrate_clone import HydrateClone
from hydration_runs import start_remote
from images import make_image
from nbdhelpers import data_extents
from peers import NbdkitCowFront, QsdCopyOnRead

CONTENDERS = ["remote direct", "hydrate", "hydrate (map scanned)", "cow front", "q-s-d COR"]


class HoleMap:
    def __init__(self, image):
        self.extents = data_extents(image)
        self.starts = [o for o, _ in self.extents]

    def in_data(self, offset, length):
        """True if [offset, offset+length) touches source data."""
        i = bisect.bisect_right(self.starts, offset + length - 1) - 1
        if i < 0:
            return False
        o, n = self.extents[i]
        return offset < o + n


def _measure(ctx, contender, remote, runtime, holes):
    extra = {}
    target = None
    try:
        if contender == "remote direct":
            uri = remote.uri
        elif contender == "hydrate":
            target = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            target.start(remote.uri, hydration={"enabled": False})
            uri = target.uri
        elif contender == "hydrate (map scanned)":
            target = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            target.start(remote.uri)
            target.wait_scanned()
            target.ctl({"command": "pause"})
            s = target.status()
            extra["hydrated_at_pause_bytes"] = s["hydrated_bytes"]
            extra["fetched_at_pause_bytes"] = s["fetched_bytes"]
            uri = target.uri
        elif contender == "cow front":
            target = NbdkitCowFront(ctx.procs, ctx.tmp)
            target.start(remote)
            uri = target.uri
        elif contender == "q-s-d COR":
            target = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
            target.start(remote, ctx.size)
            uri = target.uri
        else:
            raise ValueError(contender)
        res = run_fio(ctx, "lat", uri, "randread", "4k", 1, runtime, lat_log=True)
    finally:
        if target is not None:
            target.stop()
    lat = read_log(res["lat_log"])
    # Percentiles from the per-I/O log (exact), not fio's bucketed histogram (~1.5 % steps).
    every = [v / 1000.0 for _, v, d, n, o in lat if d == 0]
    data = [v / 1000.0 for _, v, d, n, o in lat if d == 0 and holes.in_data(o, n)]
    hole = [v / 1000.0 for _, v, d, n, o in lat if d == 0 and not holes.in_data(o, n)]
    r = res["read"]
    return dict(ios=len(every), p50_us=percentile(every, 0.5), p99_us=percentile(every, 0.99),
                mean_us=r["mean_us"], fio_p50_us=r["p50_us"], fio_p99_us=r["p99_us"],
                data_ios=len(data), data_p50_us=percentile(data, 0.5),
                data_p99_us=percentile(data, 0.99), hole_ios=len(hole),
                hole_p50_us=percentile(hole, 0.5), hole_p99_us=percentile(hole, 0.99), **extra)


def run(ctx):
    image = make_image(ctx, "sparse25", ctx.size)
    holes = HoleMap(image)
    conditions = [(5, 2 if ctx.quick else 5), (0, 1 if ctx.quick else 2)]
    records = []
    for rep in range(1, ctx.reps + 1):
        for ci, (delay, runtime) in enumerate(conditions):
            shift = (rep - 1 + ci) % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            for contender in order:
                ctx.log("[latency rep %d/%d] %d ms: %s" % (rep, ctx.reps, delay, contender))
                remote = start_remote(ctx, image, delay)
                try:
                    m = _measure(ctx, contender, remote, runtime, holes)
                except Exception as e:  # noqa: BLE001
                    ctx.failure("latency %d ms %s rep %d" % (delay, contender, rep), e)
                    continue
                finally:
                    remote.stop()
                m.update(scenario="latency", contender=contender, delay_ms=delay, rep=rep,
                         runtime=runtime)
                records.append(m)
                ctx.log("    p50 %.0f µs p99 %.0f µs (data p50 %s, holes p50 %s)" % (
                    m["p50_us"], m["p99_us"], _fmt(m["data_p50_us"]), _fmt(m["hole_p50_us"])))
    return {"records": records}


def _fmt(v):
    return "-" if v is None else "%.0f µs" % v
