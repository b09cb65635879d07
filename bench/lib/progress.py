"""Hydration runs: sample a contender's progress every ~50 ms until it is done or the time cap
is reached, and describe the outcome the same way for every contender."""

import time
from dataclasses import dataclass, field

SAMPLE_INTERVAL = 0.05


@dataclass
class HydrationRun:
    contender: str
    seconds: float                # to completion, or projected from progress at the cap
    projected: bool = False       # True when the run hit the cap and `seconds` is extrapolated
    fraction_at_stop: float = 1.0
    samples: list = field(default_factory=list)  # (seconds since start, fraction 0..1)
    cpu_s: float = None           # CPU seconds of the hydrating process(es)
    rss: int = None               # peak RSS bytes of the hydrating process
    remote_reads: int = 0
    remote_read_bytes: int = 0
    remote_extents: int = 0
    durable: bool = False         # data flushed to stable storage when "complete"
    note: str = ""
    extra: dict = field(default_factory=dict)


DONE_CHECK_INTERVAL = 0.005


def sample_until(done, progress, cap_s, interval=SAMPLE_INTERVAL, start=None):
    """Calls progress() -> (fraction or None, bytes) every `interval` until done() is true or
    cap_s passes; done() itself is checked every 5 ms, so the end time is not rounded up to the
    sampling interval (runs of well under a second are common). Returns
    (samples [(t, fraction|None, bytes)], finished, elapsed)."""
    start = time.monotonic() if start is None else start
    samples = []
    while True:
        now = time.monotonic()
        fraction, nbytes = progress()
        samples.append((now - start, fraction, nbytes))
        next_sample = now + interval
        while True:
            if done():
                end = time.monotonic()
                return samples, True, end - start
            t = time.monotonic()
            if t - start >= cap_s:
                return samples, False, t - start
            if t >= next_sample:
                break
            time.sleep(min(DONE_CHECK_INTERVAL, next_sample - t))


def normalise(samples, total_bytes=None):
    """Turns raw samples into (t, fraction). Byte counts are divided by total_bytes, or by the
    final count when the run finished (the bytes it needed in the end)."""
    if not samples:
        return []
    final = total_bytes or samples[-1][2] or 1
    out = []
    for t, fraction, nbytes in samples:
        out.append((t, min(1.0, fraction if fraction is not None else nbytes / final)))
    return out


def project(elapsed, fraction, samples):
    """Time to 100 % for a run stopped at `fraction`: the latency-bound peers progress at a
    steady rate, so extrapolate from the rate over the second half of the run."""
    if fraction <= 0:
        return float("inf")
    half = [s for s in samples if s[0] >= elapsed / 2 and s[1] is not None]
    if len(half) >= 2 and half[-1][1] > half[0][1]:
        rate = (half[-1][1] - half[0][1]) / (half[-1][0] - half[0][0])
        return elapsed + (1.0 - fraction) / rate
    return elapsed / fraction
