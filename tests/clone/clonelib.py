"""Shared helpers for the clone integration tests: real nbdkit sources, a real `hydrate serve`,
libnbd clients. Every process runs under a deadline and is stopped at exit; sockets live in a
private temporary directory.

    with CloneTest("name") as t:
        src = t.make_source_image(64, percent=25)        # MiB of sparse-random data
        t.start_source(src, delay_ms=2)                  # nbdkit file + delay (+ stats)
        t.start_clone()                                  # hydrate serve with one clone export
        t.wait_complete()
        t.assert_clone_equals(src)
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import nbd

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import nbdhelpers  # noqa: E402
from nbdhelpers import control_request  # noqa: E402,F401  (pluginlib imports it from here)

HYDRATE = os.environ.get("HYDRATE_BIN") or os.path.join(
    os.environ.get("HYDRATE_BUILD_DIR", "build"), "cli", "hydrate")


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class CloneTest:
    # What serves the clone, for messages; a subclass that serves it otherwise says so.
    SERVER = "hydrate serve"

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="clone-" + name + ".")
        self.procs = []
        self.source_proc = None
        self.server_proc = None
        self.source_sock = os.path.join(self.dir, "source.sock")
        self.nbd_sock = os.path.join(self.dir, "nbd.sock")
        self.control = os.path.join(self.dir, "control.sock")
        self.destination = os.path.join(self.dir, "clone.img")
        self.metadata = os.path.join(self.dir, "clone.meta")
        self.stats_file = os.path.join(self.dir, "source.stats")
        self.passed = 0
        self.failed = []

    # --- lifecycle --------------------------------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def case(self, name, fn):
        """Runs one case; failures are recorded, the script goes on."""
        start = time.time()
        try:
            fn()
            self.passed += 1
            print("ok - %s (%.1f s)" % (name, time.time() - start), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            self.failed.append(name)
            print("not ok - %s: %s" % (name, e), flush=True)
            traceback.print_exc()
            for log in ("serve.log", "source.log"):
                path = os.path.join(self.dir, log)
                if os.path.exists(path):
                    print("--- %s (tail)" % log)
                    print(nbdhelpers.tail(path, 40))
        finally:
            self.stop_all()
            for f in os.listdir(self.dir):
                os.unlink(os.path.join(self.dir, f)) if not os.path.isdir(
                    os.path.join(self.dir, f)) else shutil.rmtree(os.path.join(self.dir, f))

    def finish(self):
        print("# %s: %d passed, %d failed" % (self.name, self.passed, len(self.failed)))
        if self.failed:
            print("# failed: " + " ".join(self.failed))
        sys.exit(1 if self.failed or not self.passed else 0)

    # --- data ---------------------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.dir, name)

    def make_source_image(self, mib, percent=25, seed=1, name="source.img"):
        """A sparse image with about `percent` % data in 1 MiB runs (nbdkit sparse-random)."""
        out = self.path(name)
        run(["nbdcopy", "--", "[", "nbdkit", "sparse-random", "%dM" % mib, "seed=%d" % seed,
             "percent=%d" % percent, "runlength=1048576", "]", out])
        return out

    def data_bytes(self, image):
        """Bytes of `image` that are not in holes (SEEK_DATA/SEEK_HOLE)."""
        return nbdhelpers.data_bytes(image)

    # --- source ---------------------------------------------------------------------------------
    def start_source(self, image, delay_ms=0, extra_filters=(), extra_params=(), readonly=True,
                     stats=True):
        """nbdkit file IMAGE on a Unix socket, optionally delayed, with a stats file."""
        if os.path.exists(self.source_sock):
            os.unlink(self.source_sock)
        args = ["nbdkit", "-f", "--exit-with-parent", "-U", self.source_sock]
        if readonly:
            args.append("-r")
        filters = list(extra_filters)
        if stats:
            filters.append("stats")
        if delay_ms:
            filters.append("delay")
        for f in filters:
            args.append("--filter=" + f)
        args += ["file", image]
        if stats:
            args.append("statsfile=" + self.stats_file)
        if delay_ms:
            args += ["delay-read=%dms" % delay_ms, "delay-extents=%dms" % delay_ms]
        args += list(extra_params)
        log = open(self.path("source.log"), "ab")
        self.source_proc = subprocess.Popen(args, stdout=log, stderr=log)
        self.procs.append(self.source_proc)
        wait_for_nbd("nbd+unix:///?socket=" + self.source_sock, self.source_proc)
        return self.source_proc

    def stop_source(self, sig=signal.SIGTERM):
        p = self.source_proc
        if p and p.poll() is None:
            p.send_signal(sig)
            p.wait(timeout=15)
        self.source_proc = None

    def source_stats(self):
        """{"read": (ops, bytes), "extents": (ops, bytes)} from the stats file (source stopped)."""
        out = {}
        with open(self.stats_file) as f:
            for line in f:
                m = re.match(r"^(\w+): (\d+) ops, [\d.]+ s, ([\d.]+) (\w+)", line)
                if m:
                    scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(4)]
                    out[m.group(1)] = (int(m.group(2)), float(m.group(3)) * scale)
        return out

    # --- clone --------------------------------------------------------------------------------
    def source_uri(self):
        return "nbd+unix:///?socket=" + self.source_sock

    def write_config(self, clone_extra=None, name="vm", source=None):
        clone = {
            "source": source or self.source_uri(),
            "destination": self.destination,
            "metadata": self.metadata,
            "commit_interval": "200ms",
            "source_timeout": "10s",
        }
        clone.update(clone_extra or {})
        config = {
            "listen": ["unix:" + self.nbd_sock],
            "control": self.control,
            "exports": [{"name": name, "clone": clone}],
        }
        path = self.path("hydrate.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=1)  # JSON is YAML
        return path

    def start_clone(self, clone_extra=None, wait=True, expect_failure=False, source=None,
                    **launch):
        """Writes the configuration and starts the server on it (`launch` goes to
        launch_server). With expect_failure, waits for it to exit and returns (status, log)."""
        config = self.write_config(clone_extra, source=source)
        if os.path.exists(self.nbd_sock):
            os.unlink(self.nbd_sock)
        self.server_proc = self.launch_server(config, **launch)
        self.procs.append(self.server_proc)
        if expect_failure:
            try:
                code = self.server_proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise Failure("%s kept running; expected it to refuse to start" % self.SERVER)
            with open(self.path("serve.log"), errors="replace") as f:
                return code, f.read()
        if wait:
            wait_for_nbd(self.uri(), self.server_proc)
        return self.server_proc

    def launch_server(self, config):
        """Starts the server for the clone on `config`, logging to serve.log; returns its Popen."""
        log = open(self.path("serve.log"), "ab")
        return subprocess.Popen([HYDRATE, "serve", "-c", config], stdout=log, stderr=log)

    def stop_clone(self, sig=signal.SIGTERM, timeout=60):
        p = self.server_proc
        if p and p.poll() is None:
            p.send_signal(sig)
            code = p.wait(timeout=timeout)
            self.server_proc = None
            return code
        self.server_proc = None
        return p.returncode if p else None

    def uri(self, name="vm"):
        return "nbd+unix:///%s?socket=%s" % (name, self.nbd_sock)

    def connect(self, name="vm", contexts=()):
        h = nbd.NBD()
        for c in contexts:
            h.add_meta_context(c)
        h.connect_uri(self.uri(name))
        return h

    def status(self, name="vm"):
        reply = control_request(self.control, {"command": "status", "export": name})
        check(reply.get("ok"), "status failed: %r" % reply)
        return reply["exports"][0]

    def ctl(self, request):
        return control_request(self.control, request)

    def wait_for(self, predicate, what, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            if self.server_proc and self.server_proc.poll() is not None:
                raise Failure("hydrate serve exited (%s) while waiting for %s" % (
                    self.server_proc.returncode, what))
            time.sleep(0.05)
        raise Failure("timed out waiting for " + what)

    def wait_complete(self, timeout=180):
        return self.wait_for(lambda: self.status()["state"] == "complete" and self.status(),
                             "the clone to complete", timeout)

    def read_clone(self, name="vm"):
        out = self.path("clone-read.img")
        if os.path.exists(out):
            os.unlink(out)
        run(["nbdcopy", self.uri(name), out])
        return out

    def assert_clone_equals(self, expected, name="vm"):
        got = self.read_clone(name)
        assert_same_file(got, expected, "clone contents read over NBD")

    def meta_dump(self):
        out = run([HYDRATE, "meta", "dump", "--json", self.metadata], capture=True)
        return json.loads(out)


# --- plain helpers ----------------------------------------------------------------------------
def run(args, capture=False, timeout=300, check_status=True):
    r = subprocess.run(args, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE, timeout=timeout)
    if check_status and r.returncode != 0:
        raise Failure("%s exited %d: %s" % (" ".join(args), r.returncode,
                                             r.stderr.decode(errors="replace")[-2000:]))
    if capture and check_status:
        return r.stdout.decode()
    return r


def wait_for_nbd(uri, proc, timeout=60):
    """nbdhelpers.wait_for_nbd, failing the case."""
    nbdhelpers.wait_for_nbd(uri, proc, timeout, error=Failure)


def assert_same_file(a, b, what):
    r = subprocess.run(["cmp", a, b], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(r.returncode == 0, "%s: %s and %s differ: %s" % (what, a, b, r.stdout.decode()))


def read_range(path, offset, length):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
