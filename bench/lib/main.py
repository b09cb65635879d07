"""bench/run's driver: runs the selected scenarios, saves every measurement to
RESULTS/latest.json, then renders RESULTS/latest.md and the plots from that file."""

import argparse
import atexit
import datetime
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "scenarios"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))  # nbdhelpers, shared with the tests

import environment  # noqa: E402
import report  # noqa: E402
from images import human, parse_size  # noqa: E402
from procs import BenchError, Procs  # noqa: E402

# Order matters only for the time budget: the long hydration matrix first.
SCENARIOS = ["hydration", "latency", "priority", "foreground", "hydrated", "boot", "footprint"]


class Context:
    def __init__(self, args):
        self.size = args.size
        self.reps = args.reps
        self.cap = args.cap
        self.hydrate_bin = args.hydrate
        self.work = args.work
        self.results = args.results
        self.only_conditions = args.conditions
        self.quick = args.quick
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="hydrate-bench.")
        self.run_deadline = 600  # no single copy or hydration may take longer than this
        self.verify = False
        self.current_image = None
        self.failures = []
        self.started = time.monotonic()

    def log(self, msg):
        print("[%6.1f s] %s" % (time.monotonic() - self.started, msg), flush=True)

    def failure(self, what, exc):
        text = "%s: %s" % (what, exc)
        self.failures.append(text)
        self.log("FAILED " + text)
        if not isinstance(exc, BenchError):
            traceback.print_exc()

    def want_condition(self, label):
        return not self.only_conditions or label in self.only_conditions

    def cleanup(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--size", default="1G", help="source image size (default 1G)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    p.add_argument("--cap", type=float, default=6.0,
                   help="seconds a latency-bound peer (q-s-d stream, cow+scan) may run before "
                        "its time is projected from its steady rate (default 6)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(SCENARIOS))
    p.add_argument("--conditions", default="",
                   help="conditions of (a)/(b) and (f) to run, '|'-separated labels (default: "
                        "all)")
    p.add_argument("--hydrate", required=True, help="the hydrate binary")
    p.add_argument("--work", required=True, help="scratch dir for images and destinations")
    p.add_argument("--results", required=True, help="where latest.md, .json and plots go")
    p.add_argument("--quick", action="store_true",
                   help="shorter fio runs, for developing the harness")
    p.add_argument("--render-only", action="store_true",
                   help="re-render latest.md and the plots from latest.json")
    args = p.parse_args()
    args.size = parse_size(args.size)
    args.conditions = [c for c in args.conditions.split("|") if c]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            p.error("unknown scenario %r (known: %s)" % (s, ", ".join(SCENARIOS)))
    if args.reps < 1:
        p.error("--reps must be at least 1")
    os.makedirs(args.results, exist_ok=True)
    os.makedirs(args.work, exist_ok=True)
    json_path = os.path.join(args.results, "latest.json")
    if args.render_only:
        report.render(json_path, args.results)
        return 0

    ctx = Context(args)
    atexit.register(ctx.cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    data = {"started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"),
            "args": {"size": args.size, "reps": args.reps, "cap": args.cap,
                     "scenarios": scenarios, "quick": args.quick,
                     "conditions": args.conditions},
            "env": environment.describe(args.hydrate), "scenarios": {}}
    ctx.data = data
    ctx.log("bench: size %s, %d repetitions, scenarios %s; load average %s" % (
        human(args.size), args.reps, ",".join(scenarios), data["env"]["load_start"]))
    for name in scenarios:
        module = importlib.import_module(name)
        start = time.monotonic()
        try:
            result = module.run(ctx)
        except Exception as e:  # noqa: BLE001 - report and go on with the next scenario
            ctx.failure("scenario " + name, e)
            result = {"error": str(e)}
        result["seconds"] = time.monotonic() - start
        result["load_after"] = environment.loadavg()
        data["scenarios"][name] = result
        ctx.log("scenario %s took %.0f s" % (name, result["seconds"]))
        # Save after every scenario, so a late failure keeps what was measured.
        data["failures"] = ctx.failures
        data["wall_seconds"] = time.monotonic() - ctx.started
        data["env"]["load_end"] = environment.loadavg()
        with open(json_path + ".tmp", "w") as f:
            json.dump(data, f, indent=1)
        os.rename(json_path + ".tmp", json_path)
    report.render(json_path, args.results)
    ctx.log("done in %.0f s; report: %s" % (time.monotonic() - ctx.started,
                                           os.path.join(args.results, "latest.md")))
    if ctx.failures:
        ctx.log("%d step(s) failed:\n  %s" % (len(ctx.failures), "\n  ".join(ctx.failures)))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench: " + str(e), file=sys.stderr)
        sys.exit(1)
