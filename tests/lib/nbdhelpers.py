"""Helpers the script tests (tests/clone, tests/plugin, tests/lib/interop.py) and the benchmarks
(bench/) share for driving a server under test: wait until an NBD server answers, ask hydrate's
control socket, walk a file's data extents, read the end of a log.

Each caller raises its own exception type (a test's Failure, the benchmark's BenchError), so
the functions that can fail take the class to raise as `error`. Standard library and libnbd's
`nbd` module only (Debian's /usr/bin/python3)."""

import json
import os
import socket
import time

import nbd


def tail(path, lines=15):
    """The last `lines` lines of the file at `path` (all of it if `lines` is None), stripped;
    "(no log)" if it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            kept = f.readlines()
    except OSError:
        return "(no log)"
    if lines is not None:
        kept = kept[-lines:]
    return "".join(kept).strip()


def wait_for_nbd(uri, proc=None, timeout=60, error=RuntimeError, log_path=None, log_lines=15):
    """Waits until an NBD server answers on `uri` (a full handshake through libnbd). Raises
    `error` if `proc` (the server's Popen, if given) exits first or nothing answers within
    `timeout` seconds; the message then ends with the tail of `log_path`, when given."""

    def fail(what):
        if log_path:
            what += " (log %s):\n%s" % (log_path, tail(log_path, log_lines))
        raise error(what)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            fail("the server for %s exited with %s before answering" % (uri, proc.returncode))
        h = nbd.NBD()
        try:
            h.connect_uri(uri)
            h.shutdown()
            return
        except nbd.Error:
            time.sleep(0.02)
        finally:
            del h  # close the handle now, not when the collector gets to it
    fail("no NBD server answered on %s within %d s" % (uri, timeout))


def control_request(path, request, timeout=10):
    """Sends one JSON request line to hydrate's control socket at `path` and returns the
    decoded reply line. Raises OSError (socket) or ValueError (no or bad JSON reply)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return json.loads(data)


def data_extents(path):
    """[(offset, length)] of the data (non-hole) ranges of a file (SEEK_DATA / SEEK_HOLE)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        out, at = [], 0
        while at < size:
            try:
                at = os.lseek(fd, at, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after `at`
                break
            end = os.lseek(fd, at, os.SEEK_HOLE)
            out.append((at, end - at))
            at = end
        return out
    finally:
        os.close(fd)


def data_bytes(path):
    """Bytes of the file at `path` that are not in holes."""
    return sum(length for _, length in data_extents(path))
