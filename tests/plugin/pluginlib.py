"""Shared helpers for the plugin tests: the built nbdkit-hydrate-plugin.so, run by the real
nbdkit on a Unix socket in a private temporary directory.

    with PluginCloneTest("name") as t:          # clonelib.CloneTest, but the clone is served
        src = t.make_source_image(64)            # by `nbdkit … nbdkit-hydrate-plugin.so
        t.start_source(src, delay_ms=2)          #  config=hydrate.yaml export=vm`
        t.start_clone()
        t.wait_complete()
        t.assert_clone_equals(src)
"""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "clone"))

from clonelib import (HYDRATE, CloneTest, Failure, check, control_request,  # noqa: E402,F401
                      read_range, run, wait_for_nbd)

os.environ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")


def plugin_path():
    """HYDRATE_PLUGIN if set, else the plugin in HYDRATE_BUILD_DIR. Exits (a failure, not a
    skip) when it is missing: a test of the plugin that cannot find it has not passed."""
    path = os.environ.get("HYDRATE_PLUGIN")
    if not path:
        build = os.environ.get("HYDRATE_BUILD_DIR")
        if not build:
            sys.exit("HYDRATE_BUILD_DIR (or HYDRATE_PLUGIN) must locate nbdkit-hydrate-plugin.so")
        path = os.path.join(build, "plugins", "nbdkit", "nbdkit-hydrate-plugin.so")
    if not os.path.isfile(path):
        sys.exit("the nbdkit plugin is not built: %s does not exist" % path)
    return os.path.abspath(path)


PLUGIN = plugin_path()


def nbdkit_env():
    """nbdkit itself is not built with sanitizers: a sanitized plugin needs its runtime
    preloaded (the ASan build tree)."""
    env = dict(os.environ)
    out = subprocess.run(["ldd", PLUGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    preload = []
    for line in out.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and ("libasan" in parts[0] or "libtsan" in parts[0] or "libubsan" in parts[0]):
            preload.append(parts[2])
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    return env


def nbdkit_argv(socket, keys, filters=(), readonly=False, verbose=None):
    """`nbdkit -f -U SOCKET [--filter=F…] PLUGIN KEY=VALUE…` (filter parameters go among the
    keys: nbdkit hands each key to the first layer that knows it)."""
    if verbose is None:
        verbose = bool(os.environ.get("PLUGIN_TEST_VERBOSE"))
    args = ["nbdkit", "-f", "--exit-with-parent", "-U", socket]
    if readonly:
        args.append("-r")
    if verbose:
        args.append("-v")
    args += ["--filter=" + f for f in filters]
    args.append(PLUGIN)
    args += list(keys)
    return args


def start_nbdkit(socket, keys, log_path, filters=(), readonly=False, wait=True):
    """Starts nbdkit with the plugin; waits until it answers unless `wait` is false."""
    if os.path.exists(socket):
        os.unlink(socket)
    log = open(log_path, "ab")
    proc = subprocess.Popen(nbdkit_argv(socket, keys, filters, readonly), stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL, env=nbdkit_env())
    log.close()
    if wait:
        wait_for_nbd("nbd+unix:///?socket=" + socket, proc)
    return proc


class PluginCloneTest(CloneTest):
    """clonelib.CloneTest with the clone served by nbdkit running the plugin (the same YAML
    file through config=, plus any extra `keys`). Logs go to serve.log like hydrate serve's."""

    SERVER = "nbdkit running the plugin"

    def __init__(self, name):
        super().__init__("plugin-" + name)
        self.filters = ()
        self.extra_keys = ()

    def launch_server(self, config, keys=None, filters=None):
        """nbdkit with the plugin on `config`, plus `keys` (default: extra_keys) and `filters`
        (default: filters)."""
        keys = ["config=" + config, "export=vm"] + list(self.extra_keys if keys is None else keys)
        filters = self.filters if filters is None else filters
        return start_nbdkit(self.nbd_sock, keys, self.path("serve.log"), filters, wait=False)

    def serve_log(self):
        with open(self.path("serve.log"), errors="replace") as f:
            return f.read()

