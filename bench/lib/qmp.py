"""A minimal QMP client (JSON lines over a Unix socket) for qemu-storage-daemon."""

import json
import socket
import time

from procs import BenchError


class Qmp:
    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise BenchError("cannot connect to QMP at %s: %s" % (path, e)) from e
                time.sleep(0.02)
        self.buf = b""
        self._read_message()  # greeting
        self.command("qmp_capabilities")

    def _read_message(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read_message()
            if "event" in reply:
                continue
            if "error" in reply:
                raise BenchError("QMP %s failed: %s" % (name, reply["error"].get("desc")))
            return reply.get("return")

    def close(self):
        self.sock.close()
