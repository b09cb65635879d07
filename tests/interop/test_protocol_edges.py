#!/usr/bin/python3
"""Protocol edge cases through libnbd's Python binding (what nbdsh runs).

Strict mode is turned off so libnbd sends requests the spec forbids; each case checks the
exact errno the server answers and that the connection still works afterwards. Error values
are the spec's (research/nbd.md §1.14): EINVAL for reads/trims/cache/block-status outside the
export, ENOSPC for writes/zeroes past the end, EPERM for writes to a read-only export.
"""

import errno
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import nbd  # noqa: E402

from interop import Server, case, connect, expect_errno, make_image, run_cases, still_works  # noqa: E402

MiB = 1 << 20
SIZE = 64 * MiB
DATA = [(1 * MiB, 64 * 1024), (5 * MiB, 2 * MiB), (SIZE - 64 * 1024, 64 * 1024)]
HOLE = (8 * MiB, 4 * MiB)  # never written by any case
SCRATCH = 40 * MiB  # cases that write use [40 MiB, 48 MiB)


class Setup:
    def __init__(self, workdir):
        self.rw_path = os.path.join(workdir, "disk.img")
        self.ro_path = os.path.join(workdir, "ro.img")
        make_image(self.rw_path, SIZE, DATA)
        make_image(self.ro_path, SIZE, DATA)
        self.rw = Server(workdir, "disk", self.rw_path)
        self.ro = Server(workdir, "ro", self.ro_path, readonly=True)

    def close(self):
        self.rw.stop()
        self.ro.stop()


def loose(s, **kw):
    return connect(s.rw.uri, strict=False, **kw)


@case
def read_out_of_range(s):
    h = loose(s)
    expect_errno(errno.EINVAL, h.pread, 512, SIZE)
    expect_errno(errno.EINVAL, h.pread, 4096, SIZE - 512)
    still_works(h, SIZE)


@case
def write_out_of_range(s):
    h = loose(s)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * 512, SIZE)
    expect_errno(errno.ENOSPC, h.pwrite, b"x" * 4096, SIZE - 512)
    expect_errno(errno.ENOSPC, h.zero, 4096, SIZE - 512)
    expect_errno(errno.EINVAL, h.trim, 4096, SIZE - 512)
    expect_errno(errno.EINVAL, h.cache, 4096, SIZE)
    still_works(h, SIZE)


@case
def offset_plus_length_overflows(s):
    h = loose(s)
    expect_errno(errno.EINVAL, h.pread, 4096, (1 << 64) - 1024)
    expect_errno(errno.ENOSPC, h.pwrite, b"y" * 4096, (1 << 64) - 1024)
    expect_errno(errno.EINVAL, h.trim, 1 << 30, (1 << 64) - 4096)
    still_works(h, SIZE)


@case
def unknown_command_flag(s):
    h = loose(s)
    expect_errno(errno.EINVAL, h.pread, 512, 0, 1 << 6)
    expect_errno(errno.EINVAL, h.pread, 512, 0, nbd.CMD_FLAG_NO_HOLE)  # a flag for WRITE_ZEROES only
    still_works(h, SIZE)


@case
def zero_length_read(s):
    """The spec says a client SHOULD NOT send it and a server SHOULD NOT disconnect; both
    success (qemu-nbd) and EINVAL (nbdkit) are seen in practice, so either is accepted."""
    h = loose(s)
    try:
        h.pread(0, 4096)
    except nbd.Error as e:
        if e.errno != "EINVAL":
            raise AssertionError("zero-length read failed with %s, expected success or EINVAL" % e)
    still_works(h, SIZE)


@case
def oversized_read(s):
    """33 MiB is above the 32 MiB maximum payload every server must accept (and the one
    hydrate advertises): EINVAL, and the connection stays in sync."""
    h = loose(s)
    expect_errno(errno.EINVAL, h.pread, 33 * MiB, 0)
    still_works(h, SIZE)


@case
def write_to_read_only(s):
    h = connect(s.ro.uri, strict=False)
    if not h.is_read_only():
        raise AssertionError("the :ro export does not advertise READ_ONLY")
    before = h.pread(4096, DATA[0][0])
    expect_errno(errno.EPERM, h.pwrite, b"z" * 4096, DATA[0][0])
    expect_errno(errno.EPERM, h.trim, 4096, DATA[0][0])
    expect_errno(errno.EPERM, h.zero, 4096, DATA[0][0])
    if h.pread(4096, DATA[0][0]) != before:
        raise AssertionError("a refused write changed the data of the read-only export")
    with open(s.ro_path, "rb") as f:
        f.seek(DATA[0][0])
        if f.read(4096) != before:
            raise AssertionError("the read-only export's file changed")


@case
def block_status_req_one(s):
    h = connect(s.rw.uri, strict=False, meta_contexts=["base:allocation"])
    if not h.can_meta_context("base:allocation"):
        raise AssertionError("base:allocation was not negotiated")
    seen = {}

    def collect(key):
        def cb(metacontext, offset, entries, err):
            seen[key] = (metacontext, offset, list(entries))
            return 0

        return cb

    # 1 MiB hole, then 64 KiB of data.
    h.block_status(2 * MiB, 0, collect("one"), nbd.CMD_FLAG_REQ_ONE)
    ctx, off, entries = seen["one"]
    if ctx != "base:allocation" or off != 0:
        raise AssertionError("unexpected context/offset in reply: %r %r" % (ctx, off))
    if len(entries) != 2:
        raise AssertionError("REQ_ONE must give exactly one extent, got %r" % entries)
    if entries[0] > 2 * MiB or entries[1] & 3 != 3:
        raise AssertionError("REQ_ONE extent %r should be a hole,zero run within the request" % entries)
    h.block_status(2 * MiB, 0, collect("all"))
    _, _, entries = seen["all"]
    pairs = list(zip(entries[0::2], entries[1::2]))
    if pairs[0] != (MiB, 3) or pairs[1][1] & 1 != 0:
        raise AssertionError("block status of hole then data: %r" % pairs)
    expect_errno(errno.EINVAL, h.block_status, 4096, SIZE, collect("past"))
    still_works(h, SIZE)


@case
def read_hole_as_offset_hole(s):
    """Holes reported by the export come back as OFFSET_HOLE chunks (no zero bytes on the wire)."""
    h = connect(s.rw.uri)
    chunks = []

    def cb(subbuf, offset, status, err):
        chunks.append((offset, len(subbuf), status))
        return 0

    buf = h.pread_structured(HOLE[1], HOLE[0], cb)
    if buf != bytes(HOLE[1]):
        raise AssertionError("a hole did not read as zeros")
    covered = sum(length for _, length, _ in chunks)
    if covered != HOLE[1]:
        raise AssertionError("chunks cover %d bytes of %d" % (covered, HOLE[1]))
    holes = [c for c in chunks if c[2] == nbd.READ_HOLE]
    if not holes:
        raise AssertionError("a %d-byte read of a hole came back without OFFSET_HOLE chunks: %r" % (HOLE[1], chunks[:4]))


@case
def df_read_is_one_chunk(s):
    """DF: one content chunk even across data and a hole, and the right bytes."""
    h = connect(s.rw.uri)
    if not h.can_df():
        raise AssertionError("DF not advertised with structured replies")
    chunks = []

    def cb(subbuf, offset, status, err):
        chunks.append((offset, len(subbuf), status))
        return 0

    start = DATA[0][0] - 32 * 1024  # 32 KiB hole, 32 KiB data
    buf = h.pread_structured(65536, start, cb, nbd.CMD_FLAG_DF)
    if chunks != [(start, 65536, nbd.READ_DATA)]:
        raise AssertionError("DF read came back as %r, expected one data chunk" % chunks)
    with open(s.rw_path, "rb") as f:
        f.seek(start)
        if f.read(65536) != buf:
            raise AssertionError("DF read returned the wrong bytes")


@case
def fast_zero(s):
    h = loose(s)
    if not h.can_fast_zero():
        raise AssertionError("FAST_ZERO not advertised for a file export")
    off = SCRATCH
    h.pwrite(os.urandom(MiB), off)
    h.zero(MiB, off, nbd.CMD_FLAG_FAST_ZERO)
    if h.pread(MiB, off) != bytes(MiB):
        raise AssertionError("range not zero after WRITE_ZEROES with FAST_ZERO")
    still_works(h, SIZE)


@case
def write_zeroes_no_hole_and_fua(s):
    h = loose(s)
    off = SCRATCH + MiB
    h.pwrite(os.urandom(MiB), off, nbd.CMD_FLAG_FUA)
    h.zero(MiB, off, nbd.CMD_FLAG_NO_HOLE | nbd.CMD_FLAG_FUA)
    if h.pread(MiB, off) != bytes(MiB):
        raise AssertionError("range not zero after WRITE_ZEROES with NO_HOLE")
    h.trim(MiB, off, nbd.CMD_FLAG_FUA)
    h.flush()


@case
def cache(s):
    h = loose(s)
    if not h.can_cache():
        raise AssertionError("CACHE not advertised")
    h.cache(4 * MiB, 0)
    h.cache(SIZE, 0)
    still_works(h, SIZE)


@case
def structured_replies_off(s):
    h = connect(s.rw.uri, strict=False, structured=False, meta_contexts=["base:allocation"])
    if h.get_structured_replies_negotiated():
        raise AssertionError("structured replies negotiated although not requested")
    if h.can_df():
        raise AssertionError("DF advertised without structured replies (the spec forbids it)")
    with open(s.rw_path, "rb") as f:
        f.seek(DATA[1][0])
        expected = f.read(MiB)
    if h.pread(MiB, DATA[1][0]) != expected:
        raise AssertionError("simple-reply read returned the wrong bytes")
    expect_errno(errno.EINVAL, h.pread, 4096, SIZE - 512)
    expect_errno(errno.EINVAL, h.block_status, 4096, 0, lambda *a: 0)
    still_works(h, SIZE)


@case
def opt_mode_session(s):
    h = connect(s.rw.uri, opt_mode=True)
    if not h.aio_is_negotiating():
        raise AssertionError("not in option mode")
    names = []
    n = h.opt_list(lambda name, desc: names.append(name))
    if n < 1 or len(names) != n:
        raise AssertionError("NBD_OPT_LIST gave %r" % names)
    h.set_export_name("disk")
    h.opt_info()
    if h.get_size() != SIZE:
        raise AssertionError("NBD_OPT_INFO size %d, expected %d" % (h.get_size(), SIZE))
    h.opt_go()
    if h.get_size() != SIZE or h.pread(4096, DATA[0][0]) == bytes(4096):
        raise AssertionError("after NBD_OPT_GO the export does not read as expected")
    h.shutdown()
    h = connect(s.rw.uri, opt_mode=True)
    h.opt_abort()
    if not h.aio_is_closed():
        raise AssertionError("NBD_OPT_ABORT did not end the session")


@case
def opt_info_unknown_export(s):
    h = connect(s.rw.uri, opt_mode=True)
    h.set_export_name("no-such-export")
    expect_errno(errno.ENOENT, h.opt_info)
    h.set_export_name("disk")
    h.opt_go()  # the session goes on after the error
    still_works(h, SIZE)


@case
def multi_conn_flush_visibility(s):
    """Write on connection 1, flush on 2, read on 3 (qemu-iotests nbd-multiconn)."""
    handles = [connect(s.rw.uri) for _ in range(3)]
    if not all(h.can_multi_conn() for h in handles):
        raise AssertionError("CAN_MULTI_CONN not advertised")
    off = SCRATCH + 4 * MiB
    for round_ in range(4):
        data = os.urandom(256 * 1024)
        handles[round_ % 3].pwrite(data, off)
        handles[(round_ + 1) % 3].flush()
        if handles[(round_ + 2) % 3].pread(len(data), off) != data:
            raise AssertionError("round %d: a write flushed on another connection is not visible on a third" % round_)


if __name__ == "__main__":
    run_cases(Setup)
