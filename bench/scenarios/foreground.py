"""Scenario (d): foreground fio (4 KiB random read/write 50/50, QD 16) on a cold clone while
its background hydration runs, against the same fio on the same cold clone with background
hydration off ("idle"). The source is the dense image at 5 ms, so hydration has real work to do
for several seconds.

- Foreground: IOPS (reads + writes) over the interval in which the background was running:
  from fio's start until the clone was complete, or until fio ended (fio's 250 ms IOPS log);
  the idle run is averaged over the same interval.
- Background: the fraction of the disk made local during that interval, per second, compared
  by the report with the same contender's idle rate from scenario (a) (dense, 5 ms).
- Contenders: hydrate (hydration on vs `enabled: false`), nbdkit cow front (with the scan
  filter vs without) and qemu-storage-daemon (COR export with block-stream vs without).
  nbdcopy-then-use has no foreground until the copy ends: it is not a contender here."""

import os
import time

from fio import read_log
from hydrate_clone import HydrateClone
from hydration_runs import run_cow_scan, run_hydrate, run_qsd_stream, start_remote
from images import make_image
from peers import NbdkitCowFront, QsdCopyOnRead
from procs import BenchError, wait_for_path
from progress import SAMPLE_INTERVAL

CONTENDERS = ["hydrate", "cow + scan", "q-s-d stream"]
DELAY_MS = 5
IMAGE = "dense"


class _Target:
    """A contender with or without its background hydration, seen through one interface."""

    def __init__(self, ctx, contender, remote, background):
        self.contender = contender
        self.remote = remote
        self.background = background
        self.size = ctx.size
        self.state = {}
        if contender == "hydrate":
            self.h = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            self.h.start(remote.uri, hydration=None if background else {"enabled": False})
        elif contender == "cow + scan":
            self.h = NbdkitCowFront(ctx.procs, ctx.tmp, scan=background)
            self.h.start(remote)
            if background:  # no probe client: it would start the scan early
                wait_for_path(self.h.sock, self.h.proc, self.h.log_path)
        elif contender == "q-s-d stream":
            self.h = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
            self.h.start(remote, ctx.size)
        else:
            raise ValueError(contender)
        remote.progress.poll()
        remote.progress.reset()

    @property
    def uri(self):
        return self.h.uri

    def begin(self):
        if self.contender == "q-s-d stream" and self.background:
            self.h.start_stream()

    def progress(self):
        """Fraction of the disk that is local now, and whether the clone is complete."""
        if self.contender == "hydrate":
            s = self.h.status()
            return s["hydrated_regions"] / max(1, s["regions"]), s["state"] == "complete"
        if self.contender == "cow + scan":
            self.remote.progress.poll()
            f = len(self.remote.progress.blocks) / ((self.size + 0xFFFF) >> 16)
            return f, f >= 1.0
        if self.background:
            status, cur, total = self.h.job()
            return (cur / total if total else 0.0), status == "concluded"
        return 0.0, False

    def stop(self):
        self.h.stop()


def _run_fio_sampling(ctx, target, runtime):
    prefix = os.path.join(ctx.tmp, "fio-fg")
    for f in os.listdir(ctx.tmp):
        if f.startswith("fio-fg_"):
            os.unlink(os.path.join(ctx.tmp, f))
    out = prefix + ".json"
    args = ["fio", "--name=fg", "--ioengine=nbd", "--uri=" + target.uri, "--rw=randrw",
            "--rwmixread=50", "--bs=4k", "--iodepth=16", "--time_based",
            "--runtime=%g" % runtime, "--write_iops_log=" + prefix, "--log_avg_msec=250",
            "--output-format=json", "--output=" + out]
    log = prefix + ".log"
    target.begin()
    start = time.monotonic()
    p = ctx.procs.start("fio foreground", args, log, deadline_s=runtime + 120)
    samples, done_at = [], None
    while p.poll() is None:
        t = time.monotonic() - start
        f, complete = target.progress()
        samples.append((t, f))
        if complete and done_at is None:
            done_at = t
        time.sleep(SAMPLE_INTERVAL)
    ctx.procs.stop(p)
    if p.returncode != 0:
        raise BenchError("fio foreground exited with %s (log %s)" % (p.returncode, log))
    iops_log = [os.path.join(ctx.tmp, f) for f in sorted(os.listdir(ctx.tmp))
                if f.startswith("fio-fg_iops")]
    if not iops_log:
        raise BenchError("fio wrote no IOPS log for the foreground run")
    return samples, done_at, iops_log[0]


def run(ctx):
    image = make_image(ctx, IMAGE, ctx.size)
    runtime = 3 if ctx.quick else 5
    records = []
    for rep in range(1, ctx.reps + 1):
        shift = (rep - 1) % len(CONTENDERS)
        for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
            rec = {"scenario": "foreground", "contender": contender, "rep": rep,
                   "delay_ms": DELAY_MS, "image": IMAGE, "runtime": runtime}
            try:
                for background in (True, False):
                    ctx.log("[foreground rep %d/%d] %s, background %s" % (
                        rep, ctx.reps, contender, "on" if background else "off"))
                    remote = start_remote(ctx, image, DELAY_MS)
                    target = None
                    try:
                        target = _Target(ctx, contender, remote, background)
                        samples, done_at, iops_log = _run_fio_sampling(ctx, target, runtime)
                        key = "loaded" if background else "idle"
                        rec[key + "_samples"] = samples
                        rec[key + "_iops_log"] = [list(x) for x in read_log(iops_log)]
                        if background:
                            rec["done_at"] = done_at
                    finally:
                        if target is not None:
                            target.stop()
                        remote.stop()
                interval = rec["done_at"] or runtime
                rec["interval_s"] = interval
                rec["loaded_iops"] = _iops_from(rec["loaded_iops_log"], interval)
                rec["idle_iops"] = _iops_from(rec["idle_iops_log"], interval)
                s = rec["loaded_samples"]
                f0 = s[0][1] if s else 0.0
                f1 = 1.0 if rec["done_at"] else (s[-1][1] if s else 0.0)
                rec["gained_fraction"] = f1 - f0
                rec["loaded_rate_per_s"] = (f1 - f0) / interval
            except Exception as e:  # noqa: BLE001
                ctx.failure("foreground %s rep %d" % (contender, rep), e)
                continue
            records.append(rec)
            ctx.log("    foreground %.0f IOPS loaded vs %.0f idle over %.2f s; background made "
                    "%.1f %% local" % (rec["loaded_iops"], rec["idle_iops"], interval,
                                       100 * rec["gained_fraction"]))
    result = {"records": records}
    result["idle_hydration"] = _idle_rates(ctx, image)
    return result


def _iops_from(log, until_s):
    buckets = {}
    for t_ms, value, *_ in log:
        buckets[t_ms] = buckets.get(t_ms, 0) + value
    times = sorted(buckets)
    chosen = [t for t in times if t <= until_s * 1000 + 125] or times[:1]
    return sum(buckets[t] for t in chosen) / len(chosen) if chosen else 0.0


def _idle_rates(ctx, image):
    """Idle hydration time per contender (dense, 5 ms): taken from scenario (a) when it ran in
    this invocation, otherwise measured here once per repetition."""
    hyd = ctx.data["scenarios"].get("hydration", {}).get("records", [])
    have = {r["contender"] for r in hyd if r["condition"] == "dense, 5 ms"}
    out = {}
    runners = {"hydrate": lambda rm: run_hydrate(ctx, rm),
               "cow + scan": lambda rm: run_cow_scan(ctx, rm, ctx.size),
               "q-s-d stream": lambda rm: run_qsd_stream(ctx, rm, ctx.size)}
    for contender in CONTENDERS:
        if contender in have:
            out[contender] = {"from": "hydration", "seconds": [
                r["seconds"] for r in hyd
                if r["condition"] == "dense, 5 ms" and r["contender"] == contender]}
            continue
        secs = []
        for rep in range(ctx.reps):
            ctx.log("[foreground] idle hydration time, %s (rep %d)" % (contender, rep + 1))
            remote = start_remote(ctx, image, DELAY_MS)
            try:
                secs.append(runners[contender](remote).seconds)
            except Exception as e:  # noqa: BLE001
                ctx.failure("foreground idle hydration %s" % contender, e)
            finally:
                remote.stop()
        out[contender] = {"from": "foreground", "seconds": secs}
    return out
