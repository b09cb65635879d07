#!/usr/bin/python3
"""What only the plugin does, with real nbdkit processes: a clone from inline keys steered by
`hydrate status`/`hydrate ctl` on the plugin's control socket; nbdkit daemonizing (engine
threads must start after its fork); SIGTERM running .cleanup, which commits; readonly=true
refusing writes with EPERM while hydration goes on; engine failures reaching the client as EIO
and nbdkit's log with their context."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pluginlib import (HYDRATE, PLUGIN, PluginCloneTest, check, nbdkit_env, run,  # noqa: E402
                       start_nbdkit, wait_for_nbd)

import nbd  # noqa: E402

MiB = 1 << 20


def hydrate_cli(*args, check_status=True):
    return run([HYDRATE] + list(args), capture=True, check_status=check_status)


with PluginCloneTest("lifecycle") as t:

    def inline_clone_keys(extra=()):
        keys = ["source=" + t.source_uri(), "destination=" + t.destination,
                "metadata=" + t.metadata, "control=" + t.control]
        if not any(k.startswith("commit-interval=") for k in extra):
            keys.append("commit-interval=200ms")
        return keys + list(extra)

    def start_inline(extra=(), readonly=False):
        t.server_proc = start_nbdkit(t.nbd_sock, inline_clone_keys(extra), t.path("serve.log"),
                                     readonly=readonly)
        t.procs.append(t.server_proc)
        return t.server_proc

    def inline_keys_and_the_control_socket():
        src = t.make_source_image(32, percent=60, seed=41)
        t.start_source(src, delay_ms=2)
        start_inline(["rate=2MiB", "batch=256KiB"])
        # Named after the destination file (clone.img) when export= is not given.
        out = hydrate_cli("status", "--control", t.control)
        check("clone" in out and "hydrating" in out, "hydrate status: %s" % out)
        status = json.loads(hydrate_cli("status", "--json", "--control", t.control))
        vm = status["exports"][0]
        check(vm["name"] == "clone" and vm["hydration"]["rate"] == 2 * MiB,
              "status --json: %r" % vm)
        hydrate_cli("ctl", "clone", "pause", "--control", t.control)
        check(t.status("clone")["state"] == "paused", "state after ctl pause")
        paused_at = t.status("clone")["hydrated_regions"]
        time.sleep(0.5)
        check(t.status("clone")["hydrated_regions"] <= paused_at + 8,
              "hydration went on while paused")  # at most what was in flight
        hydrate_cli("ctl", "clone", "set", "rate=0", "batch=1MiB", "--control", t.control)
        s = t.status("clone")
        check(s["hydration"]["rate"] == 0 and s["hydration"]["batch"] == MiB,
              "ctl set: %r" % s["hydration"])
        bad = hydrate_cli("ctl", "nope", "pause", "--control", t.control, check_status=False)
        check(bad.returncode != 0 and b"nope" in bad.stderr, "ctl of an unknown export: %r" % bad.stderr)
        hydrate_cli("ctl", "clone", "resume", "--control", t.control)
        out = hydrate_cli("status", "--wait", "--interval", "0.2", "--control", t.control)
        check("complete" in out, "status --wait: %s" % out)
        h = nbd.NBD()
        h.connect_uri("nbd+unix:///clone?socket=" + t.nbd_sock)
        got = h.pread(32 * MiB, 0)
        h.shutdown()
        check(got == open(src, "rb").read(), "clone contents after completion")

    def daemonized_nbdkit_hydrates():
        """Without -f nbdkit forks after .get_ready: the engine threads must be started in
        .after_fork, in the child, or nothing would ever run."""
        src = t.make_source_image(32, percent=60, seed=42)
        t.start_source(src, delay_ms=1)
        pidfile = t.path("nbdkit.pid")
        t.server_proc = None  # the daemon is not our child; it is watched through its pid
        args = ["nbdkit", "-U", t.nbd_sock, "-P", pidfile, PLUGIN] + inline_clone_keys(["export=vm"])
        with open(t.path("serve.log"), "ab") as log:
            r = subprocess.run(args, stdout=log, stderr=log, env=nbdkit_env(), timeout=60)
        check(r.returncode == 0, "daemonizing nbdkit exited %d" % r.returncode)
        t.wait_for(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), "the pid file")
        pid = int(open(pidfile).read())
        try:
            # The parent returned at the fork; the child opens the clone in .after_fork and only
            # then serves.
            deadline = time.time() + 60
            while True:
                check(os.path.exists("/proc/%d" % pid), "the daemon died (its log is syslog's)")
                try:
                    h = t.connect()
                    h.shutdown()
                    break
                except nbd.Error:
                    check(time.time() < deadline, "the daemon did not serve within 60 s")
                    time.sleep(0.1)
            t.wait_complete(timeout=120)
            t.assert_clone_equals(src)
        finally:
            os.kill(pid, signal.SIGTERM)
            deadline = time.time() + 60
            while os.path.exists("/proc/%d" % pid) and time.time() < deadline:
                time.sleep(0.1)
        check(not os.path.exists("/proc/%d" % pid), "the daemon did not exit on SIGTERM")
        meta = t.meta_dump()
        active = meta["slots"][meta["active_slot"]]
        check(active["committed_regions"] == meta["region_count"] and "complete" in active["flag_names"],
              "metadata after the daemon's cleanup: %r" % active)

    def sigterm_commits_unflushed_writes():
        """.cleanup closes the clone: hydration stops, the destination is flushed and the map
        committed, so even writes the client never flushed survive a graceful stop."""
        src = t.make_source_image(32, percent=100, seed=43)
        t.start_source(src, delay_ms=2)
        proc = start_inline(["rate=4MiB", "batch=256KiB", "commit-interval=1h", "export=vm"])
        h = t.connect()
        data = os.urandom(3 * MiB + 12345)
        h.pwrite(data, 20 * MiB + 777)
        h.shutdown()
        before = t.status()
        check(before["state"] == "hydrating", "still hydrating before the stop: %r" % before["state"])
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        check(code == 0, "nbdkit exited %d on SIGTERM" % code)
        meta = t.meta_dump()
        active = meta["slots"][meta["active_slot"]]
        check(active["committed_regions"] >= before["hydrated_regions"],
              "%d regions committed at the stop, %d were hydrated before it"
              % (active["committed_regions"], before["hydrated_regions"]))
        t.stop_source()
        # Restart with the source gone: the written range is hydrated, so it reads from the
        # destination without the source.
        start_inline(["export=vm", "hydration=false"])
        h = t.connect()
        check(h.pread(len(data), 20 * MiB + 777) == data, "unflushed writes lost by a SIGTERM stop")
        h.shutdown()
        # A clone still waiting for its first source connection takes the whole connect
        # timeout (30 s) to close, in hydrate serve too; nothing is left to check here.
        t.stop_clone(signal.SIGKILL)

    def readonly_refuses_writes_and_still_hydrates():
        src = t.make_source_image(16, percent=50, seed=44)
        t.start_source(src, delay_ms=1)
        start_inline(["readonly=true", "export=vm"])
        h = t.connect()
        check(h.is_read_only(), "readonly=true not advertised")
        h.shutdown()
        h = nbd.NBD()
        h.set_strict_mode(0)
        h.connect_uri(t.uri())
        try:
            h.pwrite(b"x" * 4096, 0)
            raise AssertionError("a write to a readonly=true clone succeeded")
        except nbd.Error as e:
            check(e.errno == "EPERM", "write to a read-only clone failed with %s, expected EPERM" % e.errno)
        h.shutdown()
        t.wait_complete()
        t.assert_clone_equals(src)

    def failures_reach_the_client_as_eio_with_context():
        src = t.make_source_image(16, percent=100, seed=45)
        t.start_source(src)
        start_inline(["export=vm", "hydration=false", "source-timeout=1s"])
        t.stop_source(signal.SIGKILL)
        h = t.connect()
        try:
            h.pread(4096, 9 * MiB)
            raise AssertionError("a read of an unhydrated region succeeded with the source gone")
        except nbd.Error as e:
            check(e.errno == "EIO", "read with the source gone failed with %s, expected EIO" % e.errno)
        h.shutdown()
        log = t.serve_log()
        check("error:" in log and "vm" in log and str(9 * MiB) in log,
              "nbdkit's log does not carry the engine's message with export and offset: %s"
              % log[-3000:])

    t.case("inline_keys_and_the_control_socket", inline_keys_and_the_control_socket)
    t.case("daemonized_nbdkit_hydrates", daemonized_nbdkit_hydrates)
    t.case("sigterm_commits_unflushed_writes", sigterm_commits_unflushed_writes)
    t.case("readonly_refuses_writes_and_still_hydrates", readonly_refuses_writes_and_still_hydrates)
    t.case("failures_reach_the_client_as_eio_with_context",
           failures_reach_the_client_as_eio_with_context)
    t.finish()
