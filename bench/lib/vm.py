"""A Debian guest under qemu-system-x86_64 (bench/vm): direct kernel boot of the image's own
kernel and initrd, one virtio disk (a file or an NBD URI), the serial console to a file that is
watched for the first `login:` prompt, QMP for a clean shutdown (ctrl-alt-delete with
-no-reboot: systemd reboots and qemu exits). TCG here, KVM when /dev/kvm exists."""

import os
import re
import time

from procs import BenchError, unlink
from qmp import Qmp

LOGIN = re.compile(rb"\n\S+ login: ")


def accel():
    return "kvm" if os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"


class Guest:
    def __init__(self, procs, tmp, image_dir, name="vm", mem_mib=2048, smp=2):
        self.procs = procs
        self.image_dir = image_dir
        self.name = name
        self.mem_mib = mem_mib
        self.smp = smp
        self.serial = os.path.join(tmp, name + ".serial")
        self.qmp_sock = os.path.join(tmp, name + "-qmp.sock")
        self.log_path = os.path.join(tmp, name + ".qemu.log")
        self.proc = None
        self.qmp = None
        self.started = None

    def start(self, drive):
        """`drive`: the -drive value's file part and options, e.g. "file=X,format=raw"."""
        unlink(self.serial, self.qmp_sock)
        args = ["qemu-system-x86_64", "-accel", accel(), "-m", str(self.mem_mib),
                "-smp", str(self.smp), "-nodefaults", "-display", "none", "-no-reboot",
                "-nic", "none", "-serial", "file:" + self.serial,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_sock,
                "-kernel", os.path.join(self.image_dir, "vmlinuz"),
                "-initrd", os.path.join(self.image_dir, "initrd.img"),
                "-append", "root=/dev/vda rw console=ttyS0",
                "-drive", drive + ",if=virtio"]
        self.started = time.monotonic()
        self.proc = self.procs.start("qemu " + self.name, args, self.log_path, deadline_s=1800)
        return self.started

    def wait_login(self, timeout=300, poll=None):
        """Blocks until the serial console shows `login:`; returns the monotonic instant.
        `poll()` is called about every 50 ms meanwhile (progress sampling)."""
        deadline = time.monotonic() + timeout
        pos, tailbuf, next_poll = 0, b"\n", 0.0
        while True:
            try:
                with open(self.serial, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos += len(chunk)
            except FileNotFoundError:
                chunk = b""
            now = time.monotonic()
            if chunk:
                buf = tailbuf + chunk
                if LOGIN.search(buf):
                    return now
                tailbuf = buf[-200:]
            if self.proc.poll() is not None:
                raise BenchError("qemu exited with %s before login (serial %s, log %s)" % (
                    self.proc.returncode, self.serial, self.log_path))
            if now > deadline:
                raise BenchError("no login: prompt within %d s (serial %s)" % (timeout,
                                                                               self.serial))
            if poll and now >= next_poll:
                poll()
                next_poll = now + 0.05
            time.sleep(0.01)

    def boot(self, drive, timeout=300, poll=None):
        """Starts qemu and waits for login; returns seconds from start to login."""
        start = self.start(drive)
        return self.wait_login(timeout, poll) - start

    def shutdown(self, timeout=90):
        """ctrl-alt-delete through QMP; returns the seconds until qemu exited, or None if it
        had to be killed (not a clean shutdown)."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        start = time.monotonic()
        try:
            self.qmp = Qmp(self.qmp_sock)
            self.qmp.command("send-key", keys=[{"type": "qcode", "data": k}
                                               for k in ("ctrl", "alt", "delete")])
        except (BenchError, OSError) as e:
            raise BenchError("QMP send-key failed: %s" % e) from e
        finally:
            if self.qmp:
                self.qmp.close()
                self.qmp = None
        try:
            self.proc.wait(timeout=timeout)
        except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
            self.kill()
            return None
        seconds = time.monotonic() - start
        self.procs.stop(self.proc)
        self.proc = None
        return seconds

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.procs.stop(self.proc)
            self.proc = None
