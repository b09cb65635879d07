"""Processes the benchmark starts: every one has a deadline, dies with the harness
(PR_SET_PDEATHSIG), and is stopped by its own pid at the end of its step or at exit."""

import ctypes
import os
import signal
import subprocess
import threading
import time

import nbdhelpers
from nbdhelpers import tail

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    """A step of the benchmark could not run; the message says which and why."""


def _die_with_parent():
    # If the harness is killed (even with SIGKILL) its servers must not outlive it.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Procs:
    """Registry of running processes with deadlines, enforced by a watchdog thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running = {}  # pid -> (Popen, deadline, name)
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    def start(self, name, args, log_path, deadline_s, env=None):
        """Starts `args` with stdout+stderr appended to log_path; killed after deadline_s."""
        log = open(log_path, "ab")
        try:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, env=env)
        except OSError as e:
            raise BenchError("cannot start %s (%s): %s" % (name, args[0], e)) from e
        finally:
            log.close()
        with self._lock:
            self._running[p.pid] = (p, time.monotonic() + deadline_s, name)
        return p

    def run(self, name, args, log_path, deadline_s, env=None, check=True):
        """Runs to completion; returns (returncode, wall seconds, rusage of the child)."""
        start = time.monotonic()
        p = self.start(name, args, log_path, deadline_s, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - start
        p.returncode = os.waitstatus_to_exitcode(status)
        self._forget(p)
        if check and p.returncode != 0:
            raise BenchError("%s exited with %d (log: %s): %s" % (
                name, p.returncode, log_path, tail(log_path)))
        return p.returncode, wall, usage

    def stop(self, p, timeout=15):
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit code."""
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self._forget(p)
        return p.returncode

    def stop_all(self):
        with self._lock:
            procs = [v[0] for v in self._running.values()]
        for p in reversed(procs):
            self.stop(p, timeout=5)
        self._stop.set()

    def _forget(self, p):
        with self._lock:
            self._running.pop(p.pid, None)

    def _watch(self):
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                late = [(p, name) for p, deadline, name in self._running.values()
                        if deadline < now and p.poll() is None]
            for p, name in late:
                print("bench: %s (pid %d) passed its deadline; killing it" % (name, p.pid),
                      flush=True)
                p.kill()


def wait_for_nbd(uri, proc, log_path, timeout=60):
    """Waits until an NBD server answers on `uri` (a handshake through libnbd)."""
    nbdhelpers.wait_for_nbd(uri, proc, timeout, error=BenchError, log_path=log_path)


def wait_for_path(path, proc, log_path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc is not None and proc.poll() is not None:
            raise BenchError("process exited before creating %s (log %s): %s" % (
                path, log_path, tail(log_path)))
        time.sleep(0.02)
    raise BenchError("%s did not appear within %d s (log %s)" % (path, timeout, log_path))


def proc_usage(pid):
    """(cpu seconds user+system, peak RSS bytes) of a running process from /proc."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        peak = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
        return cpu, peak
    except (OSError, IndexError, ValueError):
        return None, None


def unlink(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
