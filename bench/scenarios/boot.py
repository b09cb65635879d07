"""Scenario (f): boot-like access. Replays bench/trace/boot.trace (recorded by
bench/trace/record from a real ext4 filesystem: mount, config files, programs and their
libraries, directory walks, scattered opens) against each contender as soon as it answers,
on the dense image (a boot reads allocated blocks, never holes). Think time is dropped, so
the replay asks of the disk what a KVM-speed boot asks.

Two conditions:
- 5 ms, no bandwidth cap: every contender below.
  - remote direct: every read is one round trip; the floor for a cold, local-less start.
  - hydrate, background hydration on (what a user gets) and off (on-demand only).
  - nbdkit cow front (cow-on-read), and with the scan filter prefetching.
  - qemu-storage-daemon COR export with block-stream running.
  - nbdcopy, then use: the copy must finish first; time = copy + replay on the local copy
    (served by `nbdkit file`).
- 20 ms + 100 Mbit/s (issue 18's slow link): remote direct, hydrate cold, hydrate with the
  boot profile the cold replay of the same repetition recorded, q-s-d stream. The physical
  bound is the trace's distinct bytes ÷ the link rate plus one round trip: no reader can do
  better, since each byte it needs must cross the link once."""

import os

from hydrate_clone import HydrateClone
from hydration_runs import start_remote
from images import make_image, parse_size
from peers import NbdkitCowFront, QsdCopyOnRead
from procs import unlink, wait_for_nbd, wait_for_path
from replay import distinct_bytes, load_trace, replay

TRACE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "trace",
                     "boot.trace")
IMAGE = "dense"
# (label, delay ms, nbdkit rate or None, contenders)
CONDITIONS = [
    ("5 ms", 5, None, ["remote direct", "hydrate", "hydrate (no background)", "cow front",
                       "cow + scan", "q-s-d stream", "nbdcopy, then use"]),
    ("20 ms + 100 Mbit/s", 20, "100M", ["remote direct", "hydrate", "hydrate profiled",
                                        "q-s-d stream"]),
]


def _one(ctx, cond, contender, remote, reads, profile):
    target = None
    extra = {}
    try:
        if contender == "remote direct":
            uri = remote.uri
        elif contender.startswith("hydrate"):
            target = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            hydration = {"enabled": False} if "no background" in contender else None
            clone_extra = {}
            if contender == "hydrate profiled":
                clone_extra = {"hydration": {"prefetch": [profile]}}
            elif contender == "hydrate" and cond != CONDITIONS[0][0]:
                # Recorded here, replayed by "hydrate profiled" in the same repetition.
                unlink(profile)
                clone_extra = {"profile": {"file": profile}}
            if hydration:
                clone_extra.setdefault("hydration", {}).update(hydration)
            target.start(remote.uri, clone_extra=clone_extra)
            uri = target.uri
        elif contender in ("cow front", "cow + scan"):
            target = NbdkitCowFront(ctx.procs, ctx.tmp, scan=contender == "cow + scan")
            target.start(remote)
            if target.scan:
                wait_for_path(target.sock, target.proc, target.log_path)
            uri = target.uri
        elif contender == "q-s-d stream":
            target = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
            target.start(remote, ctx.size)
            target.start_stream()
            uri = target.uri
        elif contender == "nbdcopy, then use":
            dst = os.path.join(ctx.work, "boot-copy.img")
            unlink(dst)
            _, copy_s, _ = ctx.procs.run("nbdcopy", ["nbdcopy", remote.uri, dst],
                                         os.path.join(ctx.tmp, "nbdcopy.log"), deadline_s=600)
            extra["copy_s"] = copy_s
            sock = os.path.join(ctx.tmp, "copy.sock")
            unlink(sock)
            log = os.path.join(ctx.tmp, "copy-nbdkit.log")
            proc = ctx.procs.start("nbdkit file (copy)", ["nbdkit", "-f", "--exit-with-parent",
                                                          "-U", sock, "file", dst], log, 600)
            uri = "nbd+unix:///?socket=" + sock
            wait_for_nbd(uri, proc, log)
            target = _Stoppable(ctx, proc, dst)
        else:
            raise ValueError(contender)
        seconds, nbytes = replay(uri, reads)
        if isinstance(target, HydrateClone):
            extra["hydrate_fetched_bytes"] = target.status()["fetched_bytes"]
        return seconds + extra.get("copy_s", 0.0), dict(extra, replay_s=seconds, bytes=nbytes)
    finally:
        if target is not None:
            target.stop()  # a recording clone writes its profile as it closes


class _Stoppable:
    def __init__(self, ctx, proc, path):
        self.ctx, self.proc, self.path = ctx, proc, path

    def stop(self):
        self.ctx.procs.stop(self.proc)
        unlink(self.path)


def _order(contenders, rep):
    shift = (rep - 1) % len(contenders)
    order = contenders[shift:] + contenders[:shift]
    if "hydrate profiled" in order:
        # It replays the profile the cold replay of this repetition recorded.
        order.remove("hydrate profiled")
        order.insert(order.index("hydrate") + 1, "hydrate profiled")
    return order


def run(ctx):
    image = make_image(ctx, IMAGE, ctx.size)
    reads = load_trace(TRACE, ctx.size)
    profile = os.path.join(ctx.work, "boot-trace.hprof")
    records = []
    conditions = []
    for cond, delay_ms, rate, contenders in CONDITIONS:
        if not ctx.want_condition(cond):
            continue
        conditions.append({"condition": cond, "delay_ms": delay_ms, "rate": rate,
                           "rate_bits": parse_size(rate) if rate else None})
        for rep in range(1, ctx.reps + 1):
            for contender in _order(contenders, rep):
                ctx.log("[boot %s rep %d/%d] %s" % (cond, rep, ctx.reps, contender))
                remote = start_remote(ctx, image, delay_ms, rate=rate)
                try:
                    seconds, extra = _one(ctx, cond, contender, remote, reads, profile)
                except Exception as e:  # noqa: BLE001
                    ctx.failure("boot %s %s rep %d" % (cond, contender, rep), e)
                    continue
                finally:
                    remote.progress.poll()
                    remote_reads = remote.progress.reads
                    remote_bytes = remote.progress.read_bytes
                    remote.stop()
                records.append(dict(extra, scenario="boot", condition=cond,
                                    contender=contender, rep=rep, seconds=seconds,
                                    remote_reads=remote_reads, remote_bytes=remote_bytes))
                ctx.log("    %.2f s, %.0f MiB from the remote" % (seconds, remote_bytes / 2**20))
    unlink(profile)
    return {"records": records, "trace_reads": len(reads),
            "trace_bytes": sum(r[3] for r in reads), "distinct_bytes": distinct_bytes(reads),
            "conditions": conditions, "delay_ms": CONDITIONS[0][1], "image": IMAGE}
