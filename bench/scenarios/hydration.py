"""Scenarios (a) and (b): time to full hydration for every contender, per remote condition,
interleaved inside each repetition (the contender that goes first rotates), plus the
clone-engine rows (delay-extents, BLOCK_STATUS counts) and, from the same runs, (g) CPU
seconds and peak RSS per GiB hydrated."""

import dataclasses

from hydration_runs import (run_cow_read, run_cow_scan, run_hydrate, run_nbdcopy,
                            run_qsd_stream, start_remote)
from images import make_image
from nbdhelpers import data_bytes

# (label, image kind, delay ms, delay block-status too, rate cap)
CONDITIONS = [
    ("0 ms", "sparse25", 0, False, None),
    ("5 ms", "sparse25", 5, False, None),
    ("20 ms", "sparse25", 20, False, None),
    ("50 ms", "sparse25", 50, False, None),
    ("5 ms + block-status 5 ms", "sparse25", 5, True, None),
    ("1 Gbit/s + 5 ms", "sparse25", 5, False, "1G"),
    ("dense, 5 ms", "dense", 5, False, None),
    ("50 % sparse, 5 ms", "sparse50", 5, False, None),
]

CONTENDERS = ["hydrate", "nbdcopy", "nbdcopy -C4 -T4", "cow + read", "cow + scan",
              "q-s-d stream"]


def _run_one(ctx, contender, image, delay, delay_extents, rate):
    remote = start_remote(ctx, image, delay, delay_extents, rate)
    try:
        if contender == "hydrate":
            run = run_hydrate(ctx, remote)
        elif contender == "nbdcopy":
            run = run_nbdcopy(ctx, remote)
        elif contender == "nbdcopy -C4 -T4":
            run = run_nbdcopy(ctx, remote, tuned=True)
        elif contender == "cow + read":
            run = run_cow_read(ctx, remote)
        elif contender == "cow + scan":
            run = run_cow_scan(ctx, remote, ctx.size)
        elif contender == "q-s-d stream":
            run = run_qsd_stream(ctx, remote, ctx.size)
        else:
            raise ValueError(contender)
    finally:
        stats = remote.stop()
    run.extra["remote_stats"] = {k: list(v) for k, v in stats.items()}
    return run


def run(ctx):
    conditions = [c for c in CONDITIONS if ctx.want_condition(c[0])]
    images = {}
    for _, kind, *_ in conditions:
        if kind not in images:
            path = make_image(ctx, kind, ctx.size)
            images[kind] = {"path": path, "data_bytes": data_bytes(path)}
    records = []
    for rep in range(1, ctx.reps + 1):
        for ci, (label, kind, delay, delay_extents, rate) in enumerate(conditions):
            # Rotate who goes first, so drift inside a repetition favours nobody.
            shift = (rep - 1 + ci) % len(CONTENDERS)
            order = CONTENDERS[shift:] + CONTENDERS[:shift]
            for contender in order:
                ctx.log("[hydration rep %d/%d] %s: %s" % (rep, ctx.reps, label, contender))
                ctx.verify = rep == 1 and contender in ("hydrate", "nbdcopy")
                try:
                    r = _run_one(ctx, contender, images[kind]["path"], delay, delay_extents, rate)
                except Exception as e:  # noqa: BLE001 - one failed run must not end the suite
                    ctx.failure("hydration %s %s rep %d" % (label, contender, rep), e)
                    continue
                rec = dataclasses.asdict(r)
                rec.update(scenario="hydration", condition=label, image=kind, delay_ms=delay,
                           delay_extents=delay_extents, rate=rate, rep=rep, size=ctx.size,
                           data_bytes=images[kind]["data_bytes"])
                records.append(rec)
                ctx.log("    %.3f s%s" % (r.seconds, " (projected: %s)" % r.note
                                          if r.projected else ""))
    return {"records": records, "images": images}
