"""One full-hydration run per contender, each against its own fresh remote (so the remote's
log and stats count only that contender). Every function returns a progress.HydrationRun.

Timing (the same rule as perf-anchors.md §1, plus hydrate):
- nbdcopy: wall time of the process (remote already up).
- cow front + full read: from starting `nbdcopy FRONT null:` to its exit (front already up).
- cow front + scan filter: from the first client connection (which starts the scan) until the
  remote has served every 64 KiB block once; capped, then projected.
- q-s-d: from the block-stream command until query-jobs says concluded; capped, then projected.
- hydrate: from starting `hydrate serve` until its status says "complete" (hydrated *and*
  committed: the data is durable, which no peer guarantees).
"""

import os
import subprocess
import time

import nbd

from hydrate_clone import HydrateClone
from peers import NbdkitCowFront, QsdCopyOnRead
from procs import BenchError, unlink
from progress import HydrationRun, normalise, project, sample_until
from remote import Remote


def _sync():
    subprocess.run(["sync"], check=False)


def _remote_counts(run, remote):
    remote.progress.poll()
    run.remote_reads = remote.progress.reads
    run.remote_read_bytes = remote.progress.read_bytes
    run.remote_extents = remote.progress.extents_calls


def _verify(ctx, path, what):
    """The copy must equal the source image: a fast wrong answer is not a result."""
    if not ctx.verify:
        return
    r = subprocess.run(["cmp", path, ctx.current_image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    if r.returncode != 0:
        raise BenchError("%s: the hydrated copy %s differs from the source %s: %s" % (
            what, path, ctx.current_image, r.stdout.decode(errors="replace").strip()))


def run_nbdcopy(ctx, remote, tuned=False):
    name = "nbdcopy -C4 -T4" if tuned else "nbdcopy"
    dst = os.path.join(ctx.work, "nbdcopy-dst.img")
    unlink(dst)
    _sync()
    args = ["nbdcopy"]
    if tuned:
        args += ["-C", "4", "-T", "4", "--requests", "64"]
    args += [remote.uri, dst]
    log = os.path.join(ctx.tmp, "nbdcopy.log")
    start = time.monotonic()
    p = ctx.procs.start(name, args, log, deadline_s=ctx.run_deadline)
    usage = {}

    def done():
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == 0:
            return False
        p.returncode = os.waitstatus_to_exitcode(status)
        usage["ru"] = ru
        return True

    def prog():
        remote.progress.poll()
        return None, remote.progress.read_bytes

    samples, finished, elapsed = sample_until(done, prog, ctx.run_deadline, start=start)
    ctx.procs.stop(p)
    if p.returncode != 0:
        raise BenchError("%s exited with %s (log %s)" % (name, p.returncode, log))
    run = HydrationRun(name, elapsed, samples=normalise(samples))
    run.samples.append((elapsed, 1.0))
    ru = usage["ru"]
    run.cpu_s = ru.ru_utime + ru.ru_stime
    run.rss = ru.ru_maxrss * 1024
    _remote_counts(run, remote)
    _verify(ctx, dst, name)
    unlink(dst)
    return run


def run_cow_read(ctx, remote):
    """The anchors' cow front: hydrated when a client has read the whole disk through it."""
    front = NbdkitCowFront(ctx.procs, ctx.tmp)
    front.start(remote)
    remote.progress.poll()
    remote.progress.reset()
    try:
        _sync()
        log = os.path.join(ctx.tmp, "nbdcopy-front.log")
        start = time.monotonic()
        p = ctx.procs.start("nbdcopy front null:", ["nbdcopy", front.uri, "null:"], log,
                            deadline_s=ctx.run_deadline)

        def prog():
            remote.progress.poll()
            return None, remote.progress.read_bytes

        samples, finished, elapsed = sample_until(lambda: p.poll() is not None, prog,
                                                  ctx.run_deadline, start=start)
        if p.returncode != 0:
            raise BenchError("nbdcopy through the cow front exited with %s (log %s)" % (
                p.returncode, log))
        run = HydrationRun("cow + read", elapsed, samples=normalise(samples))
        run.samples.append((elapsed, 1.0))
        run.cpu_s, run.rss = front.usage()
        _remote_counts(run, remote)
        return run
    finally:
        front.stop()


def run_cow_scan(ctx, remote, size):
    """cow front + scan filter: background prefetch through the overlay once a client is
    connected. The scan reads every 64 KiB block (holes too), one after another."""
    front = NbdkitCowFront(ctx.procs, ctx.tmp, scan=True)
    front.start(remote)
    h = None
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                h = nbd.NBD()
                h.connect_uri(front.uri)
                break
            except nbd.Error as e:
                if time.monotonic() > deadline or front.proc.poll() is not None:
                    raise BenchError("cow+scan front did not answer: %s (log %s)" % (
                        e, front.log_path))
                time.sleep(0.02)
        start = time.monotonic()

        def prog():
            remote.progress.poll()
            return remote.progress.read_bytes / size, remote.progress.read_bytes

        samples, finished, elapsed = sample_until(
            lambda: remote.progress.read_bytes >= size, prog, ctx.cap, start=start)
        run = _capped_run("cow + scan", samples, finished, elapsed)
        run.cpu_s, run.rss = front.usage()
        _remote_counts(run, remote)
        return run
    finally:
        del h  # disconnects
        front.stop()


def run_qsd_stream(ctx, remote, size):
    qsd = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
    qsd.start(remote, size)
    remote.progress.poll()
    remote.progress.reset()
    try:
        _sync()
        start = time.monotonic()
        qsd.start_stream()
        state = {}

        def prog():
            status, cur, total = qsd.job()
            state["status"] = status
            return (cur / total if total else 0.0), cur

        samples, finished, elapsed = sample_until(lambda: state.get("status") == "concluded",
                                                  prog, ctx.cap, start=start)
        run = _capped_run("q-s-d stream", samples, finished, elapsed)
        run.cpu_s, run.rss = qsd.usage()
        _remote_counts(run, remote)
        return run
    finally:
        qsd.stop()
        unlink(qsd.overlay)


def run_hydrate(ctx, remote, label="hydrate", clone_extra=None):
    clone = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.hydrate_bin)
    _sync()
    start = time.monotonic()
    clone.start(remote.uri, clone_extra=clone_extra, wait_ready=False)
    last = {}
    try:
        def prog():
            s = clone.try_status()
            if s is None:
                return 0.0, 0
            last["s"] = s
            return s["hydrated_regions"] / max(1, s["regions"]), s["hydrated_bytes"]

        def done():
            # Its own status query, so the end is seen within 5 ms, not at the next sample.
            s = clone.try_status()
            if s is not None:
                last["s"] = s
            return s is not None and s.get("state") == "complete"

        samples, finished, elapsed = sample_until(done, prog, ctx.run_deadline, start=start)
        if not finished:
            raise BenchError("hydrate did not complete within %d s (log %s)" % (
                ctx.run_deadline, clone.log_path))
        run = HydrationRun(label, elapsed, samples=normalise(samples), durable=True)
        run.cpu_s, run.rss = clone.usage()
        s = last["s"]
        run.extra = {"block_status_calls": s["source"]["block_status_calls"],
                     "source_reads": s["source"]["reads"],
                     "fetched_bytes": s["fetched_bytes"], "zeroed_bytes": s["zeroed_bytes"],
                     "commits": s["commits"]}
        _remote_counts(run, remote)
    finally:
        clone.stop()
    _verify(ctx, clone.destination, label)
    unlink(clone.destination, clone.metadata)
    return run


def _capped_run(name, samples, finished, elapsed):
    fractions = [(t, f) for t, f, _ in samples]
    fraction = fractions[-1][1] if fractions else 0.0
    if finished:
        run = HydrationRun(name, elapsed, samples=fractions)
        run.samples.append((elapsed, 1.0))
        return run
    run = HydrationRun(name, project(elapsed, fraction, fractions), projected=True,
                       fraction_at_stop=fraction, samples=fractions)
    run.note = "stopped at %.1f %% after %.1f s; time projected from its steady rate" % (
        100 * fraction, elapsed)
    return run


def start_remote(ctx, image, delay_ms, delay_extents=False, rate=None):
    ctx.current_image = image
    remote = Remote(ctx.procs, ctx.tmp, image, delay_ms, delay_extents, rate)
    remote.start()
    return remote
