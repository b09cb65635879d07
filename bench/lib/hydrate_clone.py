"""hydrate as a contender: `hydrate serve -c CONFIG` with one clone export over the remote,
a fresh destination and metadata file per run, watched through its control socket."""

import json
import os
import time

from nbdhelpers import control_request, tail
from procs import BenchError, proc_usage, unlink, wait_for_nbd, wait_for_path

EXPORT = "vm"


class HydrateClone:
    def __init__(self, procs, tmp, work, binary, name="hydrate"):
        self.procs = procs
        self.binary = binary
        self.name = name
        self.sock = os.path.join(tmp, name + ".sock")
        self.control = os.path.join(tmp, name + ".control")
        self.config = os.path.join(tmp, name + ".yaml")
        self.log_path = os.path.join(tmp, name + ".log")
        # Destination and metadata live on the disk (not tmpfs): durability costs what it costs.
        self.destination = os.path.join(work, name + "-dest.img")
        self.metadata = os.path.join(work, name + ".meta")
        self.proc = None

    @property
    def uri(self):
        return "nbd+unix:///%s?socket=%s" % (EXPORT, self.sock)

    def start(self, source_uri, hydration=None, clone_extra=None, wait_ready=True, fresh=True):
        """Starts hydrate serve. `hydration` overrides keys of the hydration block."""
        if fresh:
            unlink(self.destination, self.metadata)
        unlink(self.sock, self.control)
        clone = {"source": source_uri, "destination": self.destination,
                 "metadata": self.metadata}
        if hydration:
            clone["hydration"] = hydration
        clone.update(clone_extra or {})
        config = {"listen": ["unix:" + self.sock], "control": self.control,
                  "exports": [{"name": EXPORT, "clone": clone}]}
        with open(self.config, "w") as f:
            json.dump(config, f, indent=1)  # JSON is YAML
        self.proc = self.procs.start("hydrate serve", [self.binary, "serve", "-c", self.config],
                                     self.log_path, deadline_s=1800)
        if wait_ready:
            wait_for_nbd(self.uri, self.proc, self.log_path)
        return self.proc

    def wait_control(self):
        wait_for_path(self.control, self.proc, self.log_path)

    def status(self):
        reply = control_request(self.control, {"command": "status", "export": EXPORT})
        if not reply.get("ok"):
            raise BenchError("hydrate status failed: %r" % reply)
        return reply["exports"][0]

    def try_status(self):
        """Status, or None while the control socket is not up yet."""
        try:
            return self.status()
        except (OSError, ValueError):
            if self.proc.poll() is not None:
                raise BenchError("hydrate serve exited with %s (log %s): %s" % (
                    self.proc.returncode, self.log_path, tail(self.log_path)))
            return None

    def ctl(self, request):
        request = dict(request, export=EXPORT)
        reply = control_request(self.control, request)
        if not reply.get("ok"):
            raise BenchError("hydrate ctl %r failed: %r" % (request, reply))
        return reply

    def wait_state(self, state, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.try_status()
            if s and s["state"] == state:
                return s
            time.sleep(0.02)
        raise BenchError("hydrate did not reach state %s within %d s (log %s)" % (
            state, timeout, self.log_path))

    def wait_scanned(self, timeout=60):
        """Returns once the allocation scan has finished (holes hydrated, data known)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                if "hydrate.allocation_scanned" in f.read():
                    return
            if self.proc.poll() is not None:
                raise BenchError("hydrate exited before its allocation scan finished")
            time.sleep(0.005)
        raise BenchError("hydrate's allocation scan did not finish within %d s" % timeout)

    def usage(self):
        return proc_usage(self.proc.pid)

    def stop(self):
        code = self.procs.stop(self.proc, timeout=30)
        self.proc = None
        return code

