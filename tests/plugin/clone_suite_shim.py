#!/usr/bin/python3
"""Runs one of the clone engine's integration scripts (tests/clone/test_*.py) with the clone
served by nbdkit running the plugin instead of `hydrate serve`:

    clone_suite_shim.py tests/clone/test_restart.py

clonelib.CloneTest is replaced by pluginlib.PluginCloneTest before the script runs, so every
case drives the same real processes (nbdkit sources, libnbd clients, the control socket) as
it does against hydrate serve. test_clone_suites.py runs this and judges the results."""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pluginlib  # noqa: E402  (first: it puts tests/clone on the path)
import clonelib  # noqa: E402

if len(sys.argv) != 2:
    sys.exit("usage: clone_suite_shim.py tests/clone/test_NAME.py")
script = os.path.abspath(sys.argv[1])
clonelib.CloneTest = pluginlib.PluginCloneTest
sys.path.insert(0, os.path.dirname(script))
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
