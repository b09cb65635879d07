#!/usr/bin/python3
"""Process lifecycle: graceful SIGTERM under load, and startup failures a user can fix.

- SIGTERM while a client has writes in flight: the server exits 0, every write it acknowledged
  is in the file, and nothing of the file is left dirty in the page cache (it flushed).
- A bad config, a missing image, a port in use: a non-zero exit and exactly one line on
  stderr naming what was wrong.
"""

import ctypes
import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import nbd  # noqa: E402

from interop import LIB, SERVER, Server, Skip, case, connect, run_cases  # noqa: E402

MiB = 1 << 20
SLOT = 4096
SIZE = 64 * MiB
SLOTS = SIZE // SLOT
QUEUE_DEPTH = 32


def slot_data(i):
    """4 KiB unique to slot i, so a block found in the wrong place is detected."""
    return struct.pack("<Q", i) * (SLOT // 8)


def dirty_pages(path):
    """Dirty page-cache pages of `path` via cachestat(2) (Linux 6.5+), or None if unavailable."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        rng = struct.pack("QQ", 0, 0)  # whole file
        out = ctypes.create_string_buffer(40)
        if libc.syscall(451, fd, rng, out, 0) != 0:
            return None
        _cache, dirty, writeback, _evicted, _recent = struct.unpack("5Q", out.raw)
        return dirty + writeback
    finally:
        os.close(fd)


# hydrate's structured log lines below warning level ("2026-…Z info export.opened …") are not
# part of an error report; everything else on stderr is.
INFO_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+ (debug|info) ")


def error_lines(stderr):
    text = stderr.decode(errors="replace")
    return [line for line in text.splitlines() if line.strip() and not INFO_LOG_LINE.match(line)]


def start_failure(args, timeout=20):
    """Runs interop-server with `args`, expecting it to exit on its own; returns (status, stderr lines)."""
    p = subprocess.run(
        [os.path.join(LIB, "interop-server")] + args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    return p.returncode, error_lines(p.stderr)


def check_one_line_error(status, lines, must_name, what):
    if status == 0:
        raise AssertionError("%s: the server exited 0" % what)
    if len(lines) != 1:
        raise AssertionError("%s: expected exactly one error line on stderr, got %d: %r" % (what, len(lines), lines))
    if must_name not in lines[0]:
        raise AssertionError("%s: the error does not name %r: %r" % (what, must_name, lines[0]))


@case
def sigterm_while_client_busy(workdir):
    path = os.path.join(workdir, "busy.img")
    with open(path, "wb") as f:
        f.truncate(SIZE)
    server = Server(workdir, "busy", path)
    h = connect(server.uri)
    in_flight = {}  # cookie -> slot
    acked = []
    next_slot = 0
    signalled = False
    deadline = time.monotonic() + 60
    connection_lost = False
    while time.monotonic() < deadline:
        while not connection_lost and next_slot < SLOTS and len(in_flight) < QUEUE_DEPTH:
            try:
                cookie = h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(slot_data(next_slot))), next_slot * SLOT)
            except nbd.Error:
                connection_lost = True
                break
            in_flight[cookie] = next_slot
            next_slot += 1
        if not in_flight:
            break
        try:
            h.poll(1)
        except nbd.Error:
            connection_lost = True
        for cookie in list(in_flight):
            try:
                if h.aio_command_completed(cookie):
                    acked.append(in_flight.pop(cookie))
            except nbd.Error:
                in_flight.pop(cookie)  # failed or lost with the connection: no promise made
        if h.aio_is_dead() or h.aio_is_closed():
            connection_lost = True
            in_flight.clear()
        # SIGTERM exactly while requests are in flight, once a quarter of the work is done.
        if not signalled and len(acked) >= SLOTS // 4 and in_flight:
            os.kill(server.proc.pid, 15)
            signalled = True
    if not signalled:
        raise AssertionError("the client finished before SIGTERM could be sent")
    print("# SIGTERM with requests in flight; %d of %d writes acknowledged, connection %s" % (len(acked), next_slot, "closed by the server" if connection_lost else "still open"), flush=True)
    try:
        status = server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.stop()
        raise AssertionError("the server did not exit within 30 s of SIGTERM")
    server.log.close()
    if status != 0:
        raise AssertionError("exit status %d after SIGTERM; output:\n%s" % (status, server.output()))
    with open(path, "rb") as f:
        data = f.read()
    wrong = [i for i in acked if data[i * SLOT : (i + 1) * SLOT] != slot_data(i)]
    if wrong:
        raise AssertionError("%d of %d acknowledged writes are not in the file (first: slot %d)" % (len(wrong), len(acked), wrong[0]))
    dirty = dirty_pages(path)
    if dirty is None:
        print("# cachestat(2) unavailable: durability after SIGTERM not checked", flush=True)
    elif dirty:
        raise AssertionError("%d pages of the image are still dirty after the server exited: it did not flush" % dirty)


@case
def socket_removed_after_shutdown(workdir):
    path = os.path.join(workdir, "gone.img")
    with open(path, "wb") as f:
        f.truncate(MiB)
    server = Server(workdir, "gone", path)
    status = server.stop()
    if status != 0:
        raise AssertionError("exit status %r after SIGTERM when idle" % status)
    if os.path.exists(server.socket):
        raise AssertionError("the Unix socket %s is left behind after shutdown" % server.socket)


@case
def port_in_use(workdir):
    path = os.path.join(workdir, "port.img")
    with open(path, "wb") as f:
        f.truncate(MiB)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        status, lines = start_failure(["--listen", "tcp://127.0.0.1:%d" % port, "--export", "disk=" + path])
    finally:
        holder.close()
    check_one_line_error(status, lines, str(port), "port in use")


@case
def missing_image(workdir):
    missing = os.path.join(workdir, "no-such-dir", "disk.img")
    status, lines = start_failure(["--listen", "unix:" + os.path.join(workdir, "m.sock"), "--export", "disk=" + missing])
    check_one_line_error(status, lines, missing, "missing image")


@case
def bad_config(workdir):
    if SERVER != "hydrate":
        raise Skip("configuration files are hydrate's; nbdkit has none")
    image = os.path.join(workdir, "cfg.img")
    with open(image, "wb") as f:
        f.truncate(MiB)
    config = os.path.join(workdir, "bad.yaml")
    with open(config, "w") as f:
        f.write('listen: [ "unix:%s" ]\nexports:\n  - name: disk\n    path: %s\n    sise: 12\n' % (os.path.join(workdir, "c.sock"), image))
    p = subprocess.run(
        [os.environ["HYDRATE_BIN"], "serve", "-c", config],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=20,
    )
    lines = error_lines(p.stderr)
    check_one_line_error(p.returncode, lines, "bad.yaml", "unknown key in config")
    if "sise" not in lines[0]:
        raise AssertionError("the error does not name the unknown key 'sise': %r" % lines[0])


if __name__ == "__main__":
    run_cases()
