"""Scenario (f): boot-like access. Replays bench/trace/boot.trace (recorded by
bench/trace/record from a real ext4 filesystem: mount, config files, programs and their
libraries, directory walks, scattered opens) against each contender as soon as it answers,
on the dense image (a boot reads allocated blocks, never holes) at 5 ms.

- remote direct: every read is one round trip; the floor for a cold, local-less start.
- hydrate, background hydration on (what a user gets) and off (on-demand only).
- nbdkit cow front (cow-on-read), and with the scan filter prefetching.
- qemu-storage-daemon COR export with block-stream running.
- nbdcopy, then use: the copy must finish first; time = copy + replay on the local copy
  (served by `nbdkit file`)."""

import os

from hydrate_clone import HydrateClone
from hydration_runs import start_remote
from images import make_image
from peers import NbdkitCowFront, QsdCopyOnRead
from procs import unlink, wait_for_nbd, wait_for_path
from replay import load_trace, replay

TRACE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "trace",
                     "boot.trace")
DELAY_MS = 5
IMAGE = "dense"
CONTENDERS = ["remote direct", "hydrate", "hydrate (no background)", "cow front", "cow + scan",
              "q-s-d stream", "nbdcopy, then use"]


def _one(ctx, contender, remote, reads):
    target = None
    extra = {}
    try:
        if contender == "remote direct":
            uri = remote.uri
        elif contender.startswith("hydrate"):
            target = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
            hydration = {"enabled": False} if "no background" in contender else None
            target.start(remote.uri, hydration=hydration)
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
        return seconds + extra.get("copy_s", 0.0), dict(extra, replay_s=seconds, bytes=nbytes)
    finally:
        if target is not None:
            target.stop()


class _Stoppable:
    def __init__(self, ctx, proc, path):
        self.ctx, self.proc, self.path = ctx, proc, path

    def stop(self):
        self.ctx.procs.stop(self.proc)
        unlink(self.path)


def run(ctx):
    image = make_image(ctx, IMAGE, ctx.size)
    reads = load_trace(TRACE, ctx.size)
    records = []
    for rep in range(1, ctx.reps + 1):
        shift = (rep - 1) % len(CONTENDERS)
        for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
            ctx.log("[boot rep %d/%d] %s" % (rep, ctx.reps, contender))
            remote = start_remote(ctx, image, DELAY_MS)
            try:
                seconds, extra = _one(ctx, contender, remote, reads)
            except Exception as e:  # noqa: BLE001
                ctx.failure("boot %s rep %d" % (contender, rep), e)
                continue
            finally:
                remote.progress.poll()
                remote_reads = remote.progress.reads
                remote.stop()
            records.append(dict(extra, scenario="boot", contender=contender, rep=rep,
                                seconds=seconds, remote_reads=remote_reads))
            ctx.log("    %.2f s" % seconds)
    return {"records": records, "trace_reads": len(reads),
            "trace_bytes": sum(r[3] for r in reads), "delay_ms": DELAY_MS, "image": IMAGE}

