"""What the report records about the machine and the tools: a number without its context
cannot be compared with anything."""

import os
import platform
import subprocess


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _first_line(args):
    try:
        r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode(errors="replace").strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def _mem_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe(hydrate_bin):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    commit = _first_line(["git", "-C", root, "log", "-1", "--format=%h %s"])
    dirty = _first_line(["git", "-C", root, "status", "--porcelain", "--", "engine",
                         "nbd-server", "cli", "config"])
    return {
        "host": platform.node(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_gib": round(_mem_gib(), 1),
        "load_start": loadavg(),
        "hydrate": _first_line([hydrate_bin, "--version"]) + " (" + hydrate_bin + ")",
        "git": commit + ("" if dirty in ("", "unknown") else " + uncommitted engine changes"),
        "nbdkit": _first_line(["nbdkit", "--version"]),
        "nbdcopy": _first_line(["nbdcopy", "--version"]),
        "qemu-storage-daemon": _first_line(["qemu-storage-daemon", "--version"]),
        "fio": _first_line(["fio", "--version"]),
        "python": platform.python_version(),
    }
