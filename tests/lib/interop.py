"""Shared helpers for the Python interop tests (run with Debian's /usr/bin/python3).

The server under test is `hydrate serve` or `nbdkit file` (INTEROP_SERVER=hydrate|nbdkit),
started through tests/lib/interop-server, exactly like the shell helpers in interop.sh.
Cases are registered with @case and run by run_cases(); results go to stdout and, when
INTEROP_RESULTS names a file, as "pass|fail|skip SCRIPT CASE" lines for test_against_nbdkit.sh.
"""

import errno
import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

import nbd

import nbdhelpers  # tests/lib/ too: already on sys.path for whoever imported this module

LIB = os.path.dirname(os.path.abspath(__file__))
SERVER = os.environ.get("INTEROP_SERVER", "hydrate")
CASE_TIMEOUT = int(os.environ.get("CASE_TIMEOUT", "180"))
SCRIPT = os.path.splitext(os.path.basename(sys.argv[0]))[0]
os.environ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")


class Skip(Exception):
    """Raise in a case that cannot run here (missing device, tool); the message says why."""


class Server:
    """One server under test on a Unix socket in `workdir`; a context manager that stops it."""

    def __init__(self, workdir, name, path, readonly=False, description=None):
        self.name = name
        self.socket = os.path.join(workdir, name + ".sock")
        self.uri = "nbd+unix:///%s?socket=%s" % (name, self.socket)
        self.log_path = os.path.join(workdir, name + ".server.log")
        spec = "%s=%s%s" % (name, path, ":ro" if readonly else "")
        args = [os.path.join(LIB, "interop-server"), "--listen", "unix:" + self.socket, "--export", spec]
        if description is not None:
            args += ["--description", description]
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        nbdhelpers.wait_for_nbd(self.uri, self.proc, 30, error=AssertionError,
                                log_path=self.log_path, log_lines=None)

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.log.close()
                return None
        self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def connect(uri, strict=True, structured=True, meta_contexts=(), opt_mode=False):
    """A libnbd handle connected to `uri`. strict=False lets it send requests the spec forbids."""
    h = nbd.NBD()
    if not strict:
        h.set_strict_mode(0)
    h.set_request_structured_replies(structured)
    for ctx in meta_contexts:
        h.add_meta_context(ctx)
    if opt_mode:
        h.set_opt_mode(True)
    h.connect_uri(uri)
    return h


def expect_errno(expected, fn, *args, **kwargs):
    """Calls fn and checks that it fails with nbd.Error carrying errno `expected` (a number from
    the errno module; the binding reports the symbolic name)."""
    want = errno.errorcode[expected]
    try:
        fn(*args, **kwargs)
    except nbd.Error as e:
        if e.errno != want:
            raise AssertionError("%s: expected %s, got %s (%s)" % (fn.__name__, want, e.errno, e.string))
        return e
    raise AssertionError("%s: expected failure with %s, but it succeeded" % (fn.__name__, want))


def still_works(h, size):
    """The connection survived the previous request: a read and a write round-trip."""
    probe = os.urandom(512)
    old = h.pread(512, size - 512)
    h.pwrite(probe, size - 512)
    if h.pread(512, size - 512) != probe:
        raise AssertionError("connection no longer reads back what it wrote")
    h.pwrite(old, size - 512)


def make_image(path, size, data_ranges=()):
    """A sparse file of `size` bytes with random data in each (offset, length) range."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, length in data_ranges:
            f.seek(off)
            f.write(os.urandom(length))


_cases = []


def case(fn):
    _cases.append(fn)
    return fn


def run_cases(setup=None):
    """Runs every registered case (each gets the `setup(workdir)` result, or the workdir)."""
    if SERVER not in ("hydrate", "nbdkit"):
        sys.exit("INTEROP_SERVER must be hydrate or nbdkit, not %r" % SERVER)
    if SERVER == "hydrate" and not os.access(os.environ.get("HYDRATE_BIN", ""), os.X_OK):
        sys.exit("HYDRATE_BIN must name the built hydrate binary (got %r)" % os.environ.get("HYDRATE_BIN"))
    workdir = tempfile.mkdtemp(prefix="interop-%s." % SCRIPT)
    print("# %s against %s, work dir %s" % (SCRIPT, SERVER, workdir), flush=True)
    results = {"pass": 0, "fail": 0, "skip": 0}
    failed = []
    context = None
    try:
        context = setup(workdir) if setup else workdir
        for fn in _cases:
            name = fn.__name__
            # A hung server must not hang the suite: dump the stacks and exit after CASE_TIMEOUT.
            faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
            try:
                fn(context)
                result = "pass"
                print("ok - %s" % name, flush=True)
            except Skip as e:
                result = "skip"
                print("ok - %s # SKIP %s" % (name, e), flush=True)
            except Exception as e:  # noqa: BLE001 - every failure of a case is reported the same way
                result = "fail"
                failed.append(name)
                print("not ok - %s: %s" % (name, e), flush=True)
                traceback.print_exc(file=sys.stderr)
            faulthandler.cancel_dump_traceback_later()
            results[result] += 1
            if os.environ.get("INTEROP_RESULTS"):
                with open(os.environ["INTEROP_RESULTS"], "a") as f:
                    f.write("%s %s %s\n" % (result, SCRIPT, name))
    finally:
        if context is not None and hasattr(context, "close"):
            context.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("# %s against %s: %d passed, %d failed, %d skipped" % (SCRIPT, SERVER, results["pass"], results["fail"], results["skip"]))
    if failed:
        print("# failed: " + " ".join(failed))
        sys.exit(1)
    if results["pass"] == 0:
        sys.exit("# no case passed")
