"""The peers hydrate is held against, started exactly as perf-anchors.md §7 runs them:
nbdkit's cow filter in front of the remote (cow-on-read, optionally with the scan filter for
background prefetch) and qemu-storage-daemon with a qcow2 overlay on the remote as backing,
copy-on-read, and block-stream."""

import os

from procs import BenchError, proc_usage, unlink, wait_for_nbd
from qmp import Qmp


class NbdkitCowFront:
    """`nbdkit --filter=cow nbd socket=REMOTE cow-on-read=true cow-block-size=64K`; with
    scan=True also `--filter=scan ... cow-on-cache=true`, which prefetches the whole disk through
    the cow overlay once a client connects (nbdkit-scan-filter(1))."""

    def __init__(self, procs, tmp, scan=False):
        self.procs = procs
        self.scan = scan
        name = "cow-scan" if scan else "cow"
        self.sock = os.path.join(tmp, name + ".sock")
        self.log_path = os.path.join(tmp, name + ".log")
        self.proc = None

    @property
    def uri(self):
        return "nbd+unix:///?socket=" + self.sock

    def start(self, remote):
        unlink(self.sock)
        args = ["nbdkit", "-f", "--exit-with-parent", "-U", self.sock]
        if self.scan:
            args.append("--filter=scan")
        args += ["--filter=cow", "nbd", "socket=" + remote.sock, "cow-on-read=true",
                 "cow-block-size=64K"]
        if self.scan:
            args.append("cow-on-cache=true")
        self.proc = self.procs.start("nbdkit cow front", args, self.log_path, deadline_s=1800)
        # The readiness probe connects a client; with the scan filter that starts the scan, so
        # the scan variant is probed by the caller's own connection instead.
        if not self.scan:
            wait_for_nbd(self.uri, self.proc, self.log_path)

    def usage(self):
        return proc_usage(self.proc.pid)

    def stop(self):
        self.procs.stop(self.proc)
        self.proc = None


class QsdCopyOnRead:
    """qemu-storage-daemon: qcow2 overlay (backing = the remote over nbd+unix), a copy-on-read
    node on top, exported over NBD; block-stream through QMP hydrates the overlay."""

    def __init__(self, procs, tmp, work):
        self.procs = procs
        self.tmp = tmp
        self.sock = os.path.join(tmp, "qsd.sock")
        self.qmp_sock = os.path.join(tmp, "qsd-qmp.sock")
        self.log_path = os.path.join(tmp, "qsd.log")
        self.overlay = os.path.join(work, "qsd-overlay.qcow2")
        self.proc = None
        self.qmp = None

    @property
    def uri(self):
        return "nbd+unix:///?socket=" + self.sock

    def start(self, remote, size):
        unlink(self.sock, self.qmp_sock, self.overlay)
        self.procs.run("qemu-img create", ["qemu-img", "create", "-q", "-f", "qcow2",
                                           self.overlay, str(size)],
                       self.log_path, deadline_s=60)
        args = ["qemu-storage-daemon",
                "--blockdev", "driver=nbd,node-name=remote,server.type=unix,server.path=%s,"
                              "read-only=on" % remote.sock,
                "--blockdev", "driver=file,node-name=ovl-file,filename=" + self.overlay,
                "--blockdev", "driver=qcow2,node-name=ovl,file=ovl-file,backing=remote",
                "--blockdev", "driver=copy-on-read,node-name=cor,file=ovl",
                "--nbd-server", "addr.type=unix,addr.path=" + self.sock,
                "--export", "type=nbd,id=exp,node-name=cor,name=,writable=on",
                "--chardev", "socket,id=qmp,path=%s,server=on,wait=off" % self.qmp_sock,
                "--monitor", "chardev=qmp"]
        self.proc = self.procs.start("qemu-storage-daemon", args, self.log_path, deadline_s=1800)
        wait_for_nbd(self.uri, self.proc, self.log_path)
        self.qmp = Qmp(self.qmp_sock)

    def start_stream(self):
        self.qmp.command("block-stream", **{"job-id": "hyd", "device": "ovl",
                                            "auto-dismiss": False})

    def job(self):
        """(status, offset, len) of the stream job."""
        jobs = self.qmp.command("query-jobs")
        for j in jobs:
            if j["id"] == "hyd":
                if j.get("error"):
                    raise BenchError("block-stream failed: %s" % j["error"])
                return j["status"], j["current-progress"], j["total-progress"]
        return None, 0, 1

    def usage(self):
        return proc_usage(self.proc.pid)

    def stop(self):
        if self.qmp:
            self.qmp.close()
            self.qmp = None
        self.procs.stop(self.proc)
        self.proc = None
