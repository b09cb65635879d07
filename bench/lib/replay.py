"""Replays a recorded read trace (bench/trace/boot.trace) over NBD with libnbd's async API.

The trace keeps each read's recorded start and end. Replay preserves the recorded
dependencies, not the recorded clock: a read is issued once every read that had *completed*
before it started (in the recording) has completed in the replay. So a reader that waited for
data waits again, reads that overlapped overlap again, and think time is dropped: the result is
the I/O-bound time of the workload on the target."""

import bisect
import time

import nbd

from procs import BenchError


def load_trace(path, size):
    """[(start_us, end_us, offset, length)] with offsets folded into a device of `size`."""
    reads = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#") or not line.strip():
                continue
            try:
                t0, t1, off, length = (int(x) for x in line.split(","))
            except ValueError:
                raise BenchError("%s:%d: expected start_us,end_us,offset,length, got %r" % (
                    path, n, line.strip())) from None
            if length <= 0 or length > size:
                raise BenchError("%s:%d: read length %d does not fit a %d-byte device" % (
                    path, n, length, size))
            if off + length > size:  # a smaller device than the recording: fold, keep alignment
                off = (off % (size - length + 1)) & ~4095
            reads.append((t0, t1, off, length))
    reads.sort()
    if not reads:
        raise BenchError("trace %s holds no reads" % path)
    return reads


def distinct_bytes(reads):
    """Bytes the trace touches at least once (the union of its read ranges)."""
    total, end = 0, 0
    for off, length in sorted((r[2], r[3]) for r in reads):
        if off + length > end:
            total += off + length - max(off, end)
            end = off + length
    return total


def replay(uri, reads, timeout=300):
    """Returns (seconds, bytes read)."""
    ends = sorted(range(len(reads)), key=lambda i: reads[i][1])
    end_rank = [0] * len(reads)
    for rank, i in enumerate(ends):
        end_rank[i] = rank
    sorted_ends = [reads[i][1] for i in ends]
    # need[i]: how many reads (in recorded completion order) must be done before i starts.
    need = [bisect.bisect_left(sorted_ends, r[0]) for r in reads]
    done_by_rank = [False] * len(reads)
    errors = []

    h = nbd.NBD()
    h.connect_uri(uri)
    try:
        prefix = 0   # reads [0, prefix) in completion order are all done
        issued = 0
        total = 0
        start = time.monotonic()
        deadline = start + timeout
        while prefix < len(reads):
            while issued < len(reads) and need[issued] <= prefix:
                off, length = reads[issued][2], reads[issued][3]
                rank = end_rank[issued]

                def completed(err, rank=rank):
                    if err.value:
                        errors.append(err.value)
                    done_by_rank[rank] = True
                    return 1

                h.aio_pread(nbd.Buffer(length), off, completion=completed)
                total += length
                issued += 1
            h.poll(1)
            while prefix < len(reads) and done_by_rank[prefix]:
                prefix += 1
            if errors:
                raise BenchError("trace replay on %s: a read failed with errno %d" % (
                    uri, errors[0]))
            if time.monotonic() > deadline:
                raise BenchError("trace replay on %s did not finish within %d s" % (
                    uri, timeout))
        return time.monotonic() - start, total
    finally:
        h.shutdown()
