"""Source images, made once per size with nbdkit's data plugins and kept in the work dir.

- sparse25: `nbdkit sparse-random SIZE seed=1 percent=25 runlength=1048576` (perf-anchors §1):
  ~23 % data in 1 MiB-scale runs, the image every clone-engine row uses;
- sparse50: the same with percent=50 (scenario b);
- dense: `nbdkit random SIZE seed=2`, no holes at all (scenario b)."""

import os

from procs import BenchError

KINDS = {
    "sparse25": ["sparse-random", "{size}", "seed=1", "percent=25", "runlength=1048576"],
    "sparse50": ["sparse-random", "{size}", "seed=1", "percent=50", "runlength=1048576"],
    "dense": ["random", "{size}", "seed=2"],
}


def make_image(ctx, kind, size):
    path = os.path.join(ctx.work, "%s-%d.img" % (kind, size))
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    plugin = [a.format(size=size) for a in KINDS[kind]]
    ctx.log("creating the %s source image (%s) at %s" % (kind, human(size), path))
    tmp = path + ".tmp"
    ctx.procs.run("nbdcopy image", ["nbdcopy", "--", "[", "nbdkit"] + plugin + ["]", tmp],
                  os.path.join(ctx.tmp, "image.log"), deadline_s=600)
    if os.path.getsize(tmp) != size:
        raise BenchError("image %s has %d bytes, expected %d" % (tmp, os.path.getsize(tmp), size))
    os.rename(tmp, path)
    return path


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.4g %s" % (n, unit))
        n /= 1024.0


def parse_size(text):
    """'1G', '256M', '1T', '1073741824' -> bytes (binary units, as nbdkit reads them)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in scale:
            return int(float(t[:-1]) * scale[t[-1]])
        return int(t)
    except ValueError:
        raise BenchError("size %r is not a size (examples: 256M, 1G, 4G)" % text) from None
