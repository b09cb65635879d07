"""The remote source every contender reads from: `nbdkit file IMAGE` on a Unix socket behind
the delay filter (WAN round trip), optionally the rate filter (bandwidth cap), and the log and
stats filters, which count what each contender asked of the remote (progress over time, bytes
read, BLOCK_STATUS calls). The command is perf-anchors.md §7's, plus log/stats/rate."""

import os
import re

from procs import BenchError, unlink, wait_for_nbd

_LOG_START = re.compile(r"connection=(\d+) (Read|Extents|Cache) id=(\d+) offset=0x([0-9a-f]+) "
                        r"count=0x([0-9a-f]+)")
_LOG_DONE = re.compile(r"connection=(\d+) \.\.\.(Read|Extents|Cache) id=(\d+)\b.* return=0")
_STATS = re.compile(r"^(\w+): (\d+) ops, [\d.]+ s, ([\d.]+) (\w+)")


class Remote:
    def __init__(self, procs, tmp, image, delay_ms=0, delay_extents=False, rate=None,
                 name="remote"):
        self.procs = procs
        self.image = image
        self.delay_ms = delay_ms
        self.delay_extents = delay_extents
        self.rate = rate  # nbdkit rate filter syntax, bits per second (e.g. "1G")
        self.sock = os.path.join(tmp, name + ".sock")
        self.log_path = os.path.join(tmp, name + ".log")       # nbdkit's own messages
        self.reqlog = os.path.join(tmp, name + ".requests")    # log filter: one line per request
        self.statsfile = os.path.join(tmp, name + ".stats")
        self.proc = None

    @property
    def uri(self):
        return "nbd+unix:///?socket=" + self.sock

    def describe(self):
        parts = ["%g ms" % self.delay_ms]
        if self.delay_extents:
            parts.append("block-status delayed too")
        if self.rate:
            parts.append("rate %sbit/s" % self.rate)
        return ", ".join(parts)

    def start(self):
        unlink(self.sock, self.reqlog, self.statsfile)
        args = ["nbdkit", "-f", "--exit-with-parent", "-r", "-U", self.sock,
                "--filter=log", "--filter=stats"]
        if self.rate:
            args.append("--filter=rate")
        if self.delay_ms:
            args.append("--filter=delay")
        args += ["file", self.image, "logfile=" + self.reqlog, "statsfile=" + self.statsfile]
        if self.rate:
            # The filter's bucket starts full and holds `burstiness` seconds of the rate (2 s by
            # default: 256 MB at 1 Gbit/s, more than the sparse image's data), so a cap would not
            # cap. A quarter second still holds several 4 MiB requests.
            args += ["rate=" + self.rate, "burstiness=0.25"]
        if self.delay_ms:
            args += ["delay-read=%gms" % self.delay_ms]
            if self.delay_extents:
                args += ["delay-extents=%gms" % self.delay_ms]
        self.proc = self.procs.start("nbdkit remote", args, self.log_path, deadline_s=1800)
        wait_for_nbd(self.uri, self.proc, self.log_path)
        # The readiness probe is not a contender's request: count from here.
        self.progress = RequestLog(self.reqlog)
        self.progress.poll()
        self.progress.reset()

    def stop(self):
        """Stops the remote; returns its stats {"read": (ops, bytes), "extents": (ops, ...)}."""
        self.procs.stop(self.proc)
        self.proc = None
        return read_stats(self.statsfile)


class RequestLog:
    """Follows the log filter's file: bytes read and calls completed so far, incrementally."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.partial = ""
        self.pending = {}
        self.reset()

    def reset(self):
        self.read_bytes = 0
        self.reads = 0
        self.extents_calls = 0
        self.cache_calls = 0
        self.blocks = set()  # 64 KiB blocks of the source read at least once

    def poll(self):
        try:
            with open(self.path) as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return
        data = self.partial + data
        lines = data.split("\n")
        self.partial = lines.pop()
        for line in lines:
            m = _LOG_START.search(line)
            if m:
                self.pending[(m.group(1), m.group(3))] = (int(m.group(4), 16),
                                                          int(m.group(5), 16))
                continue
            m = _LOG_DONE.search(line)
            if m:
                offset, count = self.pending.pop((m.group(1), m.group(3)), (0, 0))
                kind = m.group(2)
                if kind == "Read":
                    self.read_bytes += count
                    self.reads += 1
                    self.blocks.update(range(offset >> 16, (offset + count + 0xFFFF) >> 16))
                elif kind == "Extents":
                    self.extents_calls += 1
                else:
                    self.cache_calls += 1


def read_stats(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = _STATS.match(line)
                if m:
                    scale = {"B": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
                             "TiB": 1 << 40}[m.group(4)]
                    out[m.group(1)] = (int(m.group(2)), float(m.group(3)) * scale)
    except FileNotFoundError:
        raise BenchError("the remote's stats file %s is missing (did nbdkit exit cleanly?)" % path)
    return out
