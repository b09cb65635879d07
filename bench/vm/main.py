"""bench/vm's driver: boots the cached Debian guest (bench/vm/build-image) on every contender,
interleaved, each on a fresh remote, destination and overlay; writes RESULTS/vm.json (every
measurement), vm.md (tables) and vm-*.png (progress with the login instant marked).
Method and contenders: bench/README.md, section bench/vm."""

import argparse
import atexit
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "lib"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import environment  # noqa: E402
import vm_report  # noqa: E402
from hydrate_clone import HydrateClone  # noqa: E402
from images import parse_size  # noqa: E402
from nbdhelpers import data_bytes  # noqa: E402
from peers import QsdCopyOnRead  # noqa: E402
from procs import BenchError, Procs, unlink  # noqa: E402
from progress import project  # noqa: E402
from remote import Remote  # noqa: E402
from vm import Guest, accel  # noqa: E402

CONTENDERS = ["local", "nbdcopy, then boot", "hydrate cold", "hydrate profiled",
              "q-s-d COR + stream", "remote direct"]
CONDITIONS = {"20 ms, 100 Mbit/s": (20, "100M"), "20 ms, 20 Mbit/s": (20, "20M")}
HYDRATE = ("hydrate cold", "hydrate profiled")
NO_PROFILES = "hydrate lacks boot profiles"


class Ctx:
    def __init__(self, a):
        self.a = a
        self.procs = Procs()
        self.tmp = tempfile.mkdtemp(prefix="hydrate-bench-vm.")
        self.work = a.work
        self.started = time.monotonic()
        self.failures = []
        self.profiles = {}  # condition -> recorded profile file

    def log(self, msg):
        print("[%6.1f s] %s" % (time.monotonic() - self.started, msg), flush=True)

    def cleanup(self):
        self.procs.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _sync():
    subprocess.run(["sync"], check=False)


class Run:
    """One contender's boot: progress samples (t, fraction|None, remote bytes) from t0."""

    def __init__(self, ctx, remote, t0):
        self.ctx, self.remote, self.t0 = ctx, remote, t0
        self.samples = []
        self.fraction = lambda: None

    def poll(self):
        self.remote.progress.poll()
        self.samples.append((time.monotonic() - self.t0, self.fraction(),
                             self.remote.progress.read_bytes))

    def kept_samples(self, step=0.25):
        """The samples to save: one per `step` seconds and the last (they are taken every
        50 ms; a 500 s copy would otherwise put megabytes in vm.json for one plot)."""
        kept = []
        for s in self.samples:
            if not kept or s[0] - kept[-1][0] >= step:
                kept.append(s)
        if self.samples and kept[-1] is not self.samples[-1]:
            kept.append(self.samples[-1])
        return kept

    def until(self, done, cap):
        """Samples until done() or `cap` seconds since t0; returns (finished, seconds)."""
        while True:
            self.poll()
            if done():
                return True, time.monotonic() - self.t0
            if time.monotonic() - self.t0 >= cap:
                return False, time.monotonic() - self.t0
            time.sleep(0.05)


def _boot_local(ctx, path, rec, key="login_s"):
    g = Guest(ctx.procs, ctx.tmp, ctx.image_dir, name="local")
    try:
        rec[key] = g.boot("file=%s,format=raw" % path)
        rec[key.replace("login", "shutdown")] = g.shutdown()
    finally:
        g.kill()


def _checks(ctx, clone, rec):
    """After completion: the VM is down; e2fsck -fn, hydrate meta check, a second boot."""
    r = subprocess.run(["e2fsck", "-fn", clone.destination], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    rec["e2fsck_ok"] = r.returncode == 0
    rec["e2fsck"] = r.stdout.decode(errors="replace").strip().splitlines()[-1:]
    r = subprocess.run([ctx.a.hydrate, "meta", "check", clone.metadata], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=120)
    rec["meta_check_ok"] = r.returncode == 0
    rec["meta_check"] = r.stdout.decode(errors="replace").strip()
    _boot_local(ctx, clone.destination, rec, key="second_login_s")


def run_one(ctx, cond, contender, rnd, complete):
    delay, rate = CONDITIONS[cond]
    remote = Remote(ctx.procs, ctx.tmp, ctx.image, delay, delay_extents=True, rate=rate)
    remote.start()
    rec = {"condition": cond, "contender": contender, "round": rnd}
    guest = Guest(ctx.procs, ctx.tmp, ctx.image_dir)
    clone = qsd = None
    drive = None
    _sync()
    t0 = time.monotonic()
    run = Run(ctx, remote, t0)
    try:
        if contender == "local":
            dst = os.path.join(ctx.work, "local.img")
            subprocess.run(["cp", "--sparse=always", ctx.image, dst], check=True)
            _sync()
            run.t0 = t0 = time.monotonic()
            drive = "file=%s,format=raw" % dst
        elif contender == "remote direct":
            drive = "file=%s,format=raw,snapshot=on" % remote.uri
        elif contender == "nbdcopy, then boot":
            dst = os.path.join(ctx.work, "nbdcopy.img")
            unlink(dst)
            p = ctx.procs.start("nbdcopy", ["nbdcopy", remote.uri, dst],
                                os.path.join(ctx.tmp, "nbdcopy.log"), deadline_s=1800)
            run.fraction = lambda: remote.progress.read_bytes / ctx.data
            finished, secs = run.until(lambda: p.poll() is not None, ctx.a.cap)
            if not finished:
                ctx.procs.stop(p)
                frac = remote.progress.read_bytes / ctx.data
                rec.update(copy_s=project(secs, frac, [(t, f) for t, f, _ in run.samples]),
                           projected=True, fraction_at_stop=frac)
                rec["complete_s"] = rec["copy_s"]
                rec["samples"] = run.kept_samples()
                return rec  # login = projected copy + the round's local boot (report)
            if p.returncode != 0:
                raise BenchError("nbdcopy exited with %s" % p.returncode)
            rec["copy_s"] = rec["complete_s"] = secs
            drive = "file=%s,format=raw" % dst
        elif contender in HYDRATE:
            clone = HydrateClone(ctx.procs, ctx.tmp, ctx.work, ctx.a.hydrate)
            extra = {"profile": {"file": os.path.join(ctx.work, "cold-%d.hprof" % rnd)}}
            if not ctx.has_profiles:
                if contender == "hydrate profiled":
                    raise BenchError(NO_PROFILES)
                extra = {}
            elif contender == "hydrate profiled":
                extra = {"hydration": {"prefetch": [ctx.profiles[cond]]}}
            clone.start(remote.uri, clone_extra=extra, wait_ready=False)
            clone.wait_control()
            # The copy in data bytes (status `percent` counts data, not source holes).
            run.fraction = lambda: clone.status()["percent"] / 100.0
            drive = "file=%s,format=raw" % clone.uri
        elif contender == "q-s-d COR + stream":
            qsd = QsdCopyOnRead(ctx.procs, ctx.tmp, ctx.work)
            qsd.start(remote, ctx.size)
            qsd.start_stream()
            run.fraction = lambda: (lambda j: j[1] / j[2] if j[2] else 0.0)(qsd.job())
            drive = "file=%s,format=raw" % qsd.uri
        guest.start(drive)
        login = guest.wait_login(timeout=600, poll=run.poll)
        remote.progress.poll()
        rec["login_s"] = login - t0
        rec["fetched_before_login"] = remote.progress.read_bytes
        rec["login_t"] = login - t0
        if clone is not None:
            st = clone.status()
            rec["hydrate_fetched_before_login"] = st["fetched_bytes"]
            rec["misses_before_login"] = st["on_demand_fetches"]
            rec["profile_status"] = st.get("profile")
            if contender == "hydrate cold" and ctx.has_profiles:
                # Let a commit write the profile; the profiled contender replays it.
                time.sleep(2.5)
                ctx.profiles[cond] = extra["profile"]["file"]
            if complete:
                finished, secs = run.until(lambda: clone.status()["state"] == "complete",
                                           ctx.a.complete_deadline)
                rec["complete_s"] = secs if finished else None
                rec["shutdown_s"] = guest.shutdown()
                clone.stop()
                if finished:
                    _checks(ctx, clone, rec)
        elif qsd is not None:
            finished, secs = run.until(lambda: qsd.job()[0] == "concluded",
                                       rec["login_s"] + ctx.a.cap)
            frac = run.samples[-1][1] or 0.0
            rec["complete_s"] = secs if finished else project(
                secs, frac, [(t, f) for t, f, _ in run.samples if f is not None])
            rec["projected"] = not finished
            rec["fraction_at_stop"] = frac
        rec["samples"] = run.kept_samples()
        return rec
    finally:
        guest.kill()
        if clone is not None and clone.proc is not None:
            clone.stop()
        if qsd is not None:
            qsd.stop()
        remote.stop()
        for f in ("local.img", "nbdcopy.img", "hydrate-dest.img", "hydrate.meta",
                  "qsd-overlay.qcow2"):
            unlink(os.path.join(ctx.work, f))


def _summary(rec):
    if rec.get("login_s") is None:  # an nbdcopy stopped at the cap: the report adds the boot
        return "copy %s%.1f s, login = copy + the round's local boot" % (
            "~" if rec.get("projected") else "", rec.get("copy_s") or float("nan"))
    complete = rec.get("complete_s")
    return "login %.1f s, fetched %.0f MiB before login%s, complete %s" % (
        rec["login_s"], (rec.get("fetched_before_login") or 0) / 2**20,
        ", %d misses" % rec["misses_before_login"] if "misses_before_login" in rec else "",
        "–" if complete is None else "%s%.1f s" % ("~" if rec.get("projected") else "", complete))


def has_profiles(ctx):
    """Whether this hydrate accepts boot profiles (clone.profile, hydration.prefetch): its
    config parser rejects unknown keys, so a config that uses them says so at once."""
    d = os.path.join(ctx.tmp, "probe")
    os.makedirs(d)
    open(os.path.join(d, "src"), "wb").truncate(1 << 20)
    cfg = {"listen": ["unix:" + os.path.join(d, "s")], "control": os.path.join(d, "c"),
           "exports": [{"name": "p", "clone": {
               "source": os.path.join(d, "src"), "destination": os.path.join(d, "dst"),
               "metadata": os.path.join(d, "meta"),
               "profile": {"file": os.path.join(d, "x.hprof")}}}]}
    with open(os.path.join(d, "c.yaml"), "w") as f:
        json.dump(cfg, f)
    try:
        r = subprocess.run([ctx.a.hydrate, "serve", "-c", os.path.join(d, "c.yaml")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=3)
        return "unknown key" not in r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired:
        return True  # it served: the keys were accepted


def main():
    p = argparse.ArgumentParser(prog="bench/vm/run", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--conditions", default="|".join(CONDITIONS),
                   help="'|'-separated labels of: " + ", ".join(CONDITIONS))
    p.add_argument("--contenders", default="|".join(CONTENDERS))
    p.add_argument("--quick", action="store_true", help="one round, the 100 Mbit/s condition")
    p.add_argument("--cap", type=float, default=40.0,
                   help="s an nbdcopy copy, or a q-s-d stream after login, may run before its "
                        "time is projected from its steady rate (default 40)")
    p.add_argument("--complete-max", type=float, default=200.0,
                   help="run hydrate profiled to completion (round 1) only where the copy "
                        "bound is at most this many s; hydrate cold always does (default 200)")
    p.add_argument("--complete-deadline", type=float, default=1500.0)
    p.add_argument("--no-complete", action="store_true",
                   help="time to login only: no contender runs to completion")
    p.add_argument("--hydrate", required=True)
    p.add_argument("--image-dir", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--render-only", action="store_true")
    a = p.parse_args()
    os.makedirs(a.results, exist_ok=True)
    json_path = os.path.join(a.results, "vm.json")
    if a.render_only:
        vm_report.render(json_path, a.results)
        return 0
    if a.quick:
        a.rounds, a.conditions = 1, "20 ms, 100 Mbit/s"
    conds = [c for c in a.conditions.split("|") if c]
    contenders = [c for c in a.contenders.split("|") if c]
    for c in conds:
        if c not in CONDITIONS:
            p.error("unknown condition %r" % c)
    os.makedirs(a.work, exist_ok=True)
    ctx = Ctx(a)
    atexit.register(ctx.cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))
    ctx.image_dir = a.image_dir
    ctx.image = os.path.join(a.image_dir, "disk.img")
    ctx.size = os.path.getsize(ctx.image)
    ctx.data = data_bytes(ctx.image)
    ctx.has_profiles = has_profiles(ctx)
    env = environment.describe(a.hydrate)
    env["boot_profiles"] = ctx.has_profiles
    env["accel"] = accel()
    env["qemu"] = subprocess.run(["qemu-system-x86_64", "--version"], stdout=subprocess.PIPE,
                                 text=True).stdout.splitlines()[0]
    data = {"started_utc": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S"),
            "args": {"rounds": a.rounds, "conditions": conds, "cap": a.cap,
                     "contenders": contenders, "quick": a.quick},
            "image": {"size": ctx.size, "data_bytes": ctx.data, "dir": a.image_dir},
            "rates": {c: parse_size(CONDITIONS[c][1]) for c in conds},
            "env": env, "records": [], "load": [], "failures": ctx.failures}
    ctx.log("bench/vm: %s, %d round(s), %s; image %.0f MiB data; load %s" % (
        accel(), a.rounds, conds, ctx.data / 2**20, env["load_start"]))
    for cond in conds:
        bound = ctx.data * 8 / data["rates"][cond]
        for rnd in range(1, a.rounds + 1):
            shift = (rnd - 1) % len(contenders)
            order = contenders[shift:] + contenders[:shift]
            if rnd == 1 and "hydrate cold" in order and "hydrate profiled" in order:
                # The profiled contender replays the profile an earlier cold boot recorded.
                order.remove("hydrate profiled")
                order.insert(order.index("hydrate cold") + 1, "hydrate profiled")
            for c in order:
                complete = rnd == 1 and not a.no_complete and (
                    c == "hydrate cold" or bound <= a.complete_max)
                ctx.log("[%s, round %d] %s%s" % (cond, rnd, c, ", to completion" if complete
                                                 and c in HYDRATE else ""))
                try:
                    if c == "hydrate profiled" and ctx.has_profiles and cond not in ctx.profiles:
                        run_one(ctx, cond, "hydrate cold", 0, False)  # records one
                    rec = run_one(ctx, cond, c, rnd, complete)
                    ctx.log("    " + _summary(rec))
                except Exception as e:  # noqa: BLE001 - record and go on
                    ctx.log("    FAILED %s" % e)
                    if not isinstance(e, BenchError):
                        traceback.print_exc()
                    ctx.failures.append("%s, round %d, %s: %s" % (cond, rnd, c, e))
                    rec = {"condition": cond, "contender": c, "round": rnd, "error": str(e)}
                data["records"].append(rec)
                data["wall_seconds"] = time.monotonic() - ctx.started
                data["env"]["load_end"] = environment.loadavg()
                with open(json_path + ".tmp", "w") as f:
                    json.dump(data, f, indent=1)
                os.rename(json_path + ".tmp", json_path)
        data["load"].append((cond, environment.loadavg()))
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1)
    vm_report.render(json_path, a.results)
    ctx.log("done in %.0f s: %s" % (time.monotonic() - ctx.started,
                                    os.path.join(a.results, "vm.md")))
    return 1 if ctx.failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench/vm: " + str(e), file=sys.stderr)
        sys.exit(1)
