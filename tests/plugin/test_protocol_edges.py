#!/usr/bin/python3
"""The foundation's protocol edge cases (tests/interop/test_protocol_edges.py, through libnbd
with strict mode off) against nbdkit running the plugin, once with a plain export (file=) and
once with a clone export (source=, destination=, metadata=) whose source is the image the
cases expect. The cases are imported, not copied: interop.Server is swapped for a server that
starts nbdkit with the plugin.

Where nbdkit itself answers differently from `hydrate serve` (it sits between the client and
the plugin), the case is expected to fail; EXPECTED_DIFFERENCES says why, and such a case
passing is reported too, so the list cannot go stale.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import interop  # noqa: E402
import nbdhelpers  # noqa: E402
from pluginlib import nbdkit_argv, nbdkit_env  # noqa: E402

EXPECTED_DIFFERENCES = {
    "oversized_read": "nbdkit accepts requests up to 64 MiB whatever block size the plugin "
                      "advertises, and the plugin serves them in 32 MiB pieces",
    "read_hole_as_offset_hole": "nbdkit never sends NBD_REPLY_TYPE_OFFSET_HOLE",
    "opt_info_unknown_export": "nbdkit serves the plugin's one export under any export name",
}


class PluginServer(interop.Server):
    """interop.Server, served by nbdkit running the plugin (the base class is bound here, before
    load_foundation_cases swaps interop.Server for this one). KIND (class attribute, set per
    pass) is "plain" or "clone"."""

    KIND = "plain"

    def __init__(self, workdir, name, path, readonly=False, description=None):
        self.name = name
        self.socket = os.path.join(workdir, name + ".sock")
        self.uri = "nbd+unix:///%s?socket=%s" % (name, self.socket)
        self.log_path = os.path.join(workdir, name + ".nbdkit.log")
        keys = ["export=" + name]
        if self.KIND == "plain":
            keys.append("file=" + path)
        else:
            # The image the cases prepared is the clone's source; the clone starts empty and
            # hydrates in the background while the cases run.
            keys += ["source=" + path, "destination=" + os.path.join(workdir, name + ".clone"),
                     "metadata=" + os.path.join(workdir, name + ".meta"),
                     "commit-interval=100ms"]
        if readonly:
            keys.append("readonly=true")
        if description is not None:
            keys.append("description=" + description)
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(nbdkit_argv(self.socket, keys), stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=nbdkit_env())
        nbdhelpers.wait_for_nbd(self.uri, self.proc, 60, error=AssertionError,
                                log_path=self.log_path, log_lines=None)


def load_foundation_cases():
    interop.Server = PluginServer  # before the module binds the name
    path = os.path.join(HERE, "..", "interop", "test_protocol_edges.py")
    spec = importlib.util.spec_from_file_location("foundation_protocol_edges", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers the cases; runs nothing (not __main__)
    return module


def run_pass(module, kind):
    PluginServer.KIND = kind
    workdir = tempfile.mkdtemp(prefix="plugin-edges-%s." % kind)
    unexpected = []
    counts = {"pass": 0, "expected-fail": 0}
    setup = None
    try:
        setup = module.Setup(workdir)
        for fn in interop._cases:
            name = fn.__name__
            try:
                fn(setup)
                outcome, detail = "pass", ""
            except Exception as e:  # noqa: BLE001 - every failure is reported the same way
                outcome, detail = "fail", str(e)
                if name not in EXPECTED_DIFFERENCES:
                    traceback.print_exc(file=sys.stderr)
            label = "%s.%s" % (kind, name)
            if name in EXPECTED_DIFFERENCES:
                if outcome == "fail":
                    counts["expected-fail"] += 1
                    print("ok - %s # expected difference: %s" % (label, EXPECTED_DIFFERENCES[name]),
                          flush=True)
                else:
                    unexpected.append(label)
                    print("not ok - %s passed, but is listed as an nbdkit difference" % label,
                          flush=True)
            elif outcome == "pass":
                counts["pass"] += 1
                print("ok - %s" % label, flush=True)
            else:
                unexpected.append(label)
                print("not ok - %s: %s" % (label, detail), flush=True)
    except Exception:  # noqa: BLE001 - a broken setup fails the pass
        traceback.print_exc()
        unexpected.append(kind + ".setup")
    finally:
        if setup is not None:
            for server in (setup.rw, setup.ro):
                if unexpected:
                    print("--- %s nbdkit log (tail)\n%s" % (server.name, server.output()[-3000:]))
            setup.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return counts, unexpected


def main():
    module = load_foundation_cases()
    if not interop._cases:
        sys.exit("no case was registered by tests/interop/test_protocol_edges.py")
    failed = []
    for kind in ("plain", "clone"):
        counts, unexpected = run_pass(module, kind)
        print("# %s: %d passed, %d expected differences, %d unexpected" % (
            kind, counts["pass"], counts["expected-fail"], len(unexpected)), flush=True)
        if counts["pass"] == 0:
            unexpected.append(kind + ": no case passed")
        failed += unexpected
    if failed:
        print("# failed: " + " ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
