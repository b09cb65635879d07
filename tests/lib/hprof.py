"""Boot profile files (docs/profile-format.md) written from Python: an independent encoder of
the documented layout, for the CLI tests and the fuzz seed corpus."""
import struct
import zlib

MAGIC = b"HYDRPROF"
VERSION = 1
HEADER = struct.Struct("<8sIIQIIQQ")  # magic, version, checksum, source size, region size,
                                      # identity length, run count, region total


def encode(source_size, region_size, identity, runs, version=VERSION):
    """runs: (first_region, count) pairs in recorded order."""
    ident = identity.encode()
    body = ident + b"".join(struct.pack("<QQ", first, count) for first, count in runs)
    total = sum(count for _, count in runs)
    header = HEADER.pack(MAGIC, version, 0, source_size, region_size, len(ident), len(runs),
                         total)
    data = bytearray(header + body)
    crc = zlib.crc32(bytes(data[:12]) + bytes(data[16:]))
    struct.pack_into("<I", data, 12, crc)
    return bytes(data)


def write(path, *args, **kwargs):
    with open(path, "wb") as f:
        f.write(encode(*args, **kwargs))
