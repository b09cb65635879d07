"""fio with its nbd engine (libnbd underneath, one NBD connection per job), as bench/plain and
perf-anchors.md run it. Results come back as numbers, and optionally per-I/O latency logs."""

import glob
import json
import os

from nbdhelpers import tail
from procs import BenchError


def run_fio(ctx, name, uri, rw, bs, iodepth, runtime, extra=(), lat_log=False, iops_log=False,
            ramp=0):
    """Runs one fio job; returns a dict with iops, MBps, p50/p99 (µs) per direction, and the
    paths of the per-I/O logs if asked for."""
    out = os.path.join(ctx.tmp, "fio-%s.json" % name)
    log = os.path.join(ctx.tmp, "fio-%s.log" % name)
    prefix = os.path.join(ctx.tmp, "fio-%s" % name)
    for old in glob.glob(prefix + "_*.log"):
        os.unlink(old)
    args = ["fio", "--name=" + name, "--ioengine=nbd", "--uri=" + uri, "--rw=" + rw,
            "--bs=" + bs, "--iodepth=%d" % iodepth, "--time_based", "--runtime=%g" % runtime,
            "--output-format=json", "--output=" + out]
    if ramp:
        args.append("--ramp_time=%g" % ramp)
    if lat_log:
        # One line per I/O: time ms, completion latency ns, direction, size, offset.
        args += ["--write_lat_log=" + prefix, "--log_offset=1"]
    if iops_log:
        args += ["--write_iops_log=" + prefix, "--log_avg_msec=250"]
    args += list(extra)
    ctx.procs.run("fio " + name, args, log, deadline_s=runtime + 120)
    try:
        with open(out) as f:
            job = json.load(f)["jobs"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        raise BenchError("fio %s wrote no usable JSON (%s): %s" % (name, e, tail(log))) from e
    res = {}
    for side in ("read", "write"):
        d = job[side]
        pct = d.get("clat_ns", {}).get("percentile", {})
        res[side] = {"iops": d["iops"], "MBps": d["bw_bytes"] / 1e6, "ios": d["total_ios"],
                     "p50_us": pct.get("50.000000", 0) / 1000.0,
                     "p99_us": pct.get("99.000000", 0) / 1000.0,
                     "mean_us": d.get("clat_ns", {}).get("mean", 0) / 1000.0}
    if lat_log:
        res["lat_log"] = _one(prefix + "_clat.*.log")
    if iops_log:
        res["iops_log"] = _one(prefix + "_iops.*.log")
    return res


def _one(pattern):
    files = sorted(glob.glob(pattern))
    if not files:
        raise BenchError("fio wrote no log matching %s" % pattern)
    return files[0]


def read_log(path):
    """[(time ms, value, direction 0=read 1=write, size, offset)] from a fio log."""
    out = []
    with open(path) as f:
        for line in f:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) < 4:
                continue
            offset = int(parts[4]) if len(parts) > 4 else -1
            out.append((int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]), offset))
    return out


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)
