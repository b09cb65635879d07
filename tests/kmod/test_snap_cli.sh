#!/usr/bin/env bash
# `hydrate snap` on the host, where the module is never loaded (the host kernel is not 6.1):
# every bad input and a missing module give a clear one-line error and the right exit status.
set -uo pipefail
hydrate=${HYDRATE_BIN:-$(dirname "${BASH_SOURCE[0]}")/../../build/cli/hydrate}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME STATUS PATTERN -- COMMAND...: COMMAND exits STATUS and its stderr matches PATTERN.
expect() {
  local name=$1 status=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc == "$status" ]] && grep -qE -- "$pattern" <<<"$out"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name: exit $rc (want $status), stderr: $out"
  fi
}

if [[ -e /dev/hydrate-snap-ctl ]]; then
  echo "the hydrate_snap module is loaded on this host; these checks assume it is not"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
touch "$tmp/file"

expect "no subcommand" 2 "usage: hydrate snap" -- "$hydrate" snap
expect "unknown subcommand" 2 "unknown subcommand 'frobnicate'" -- "$hydrate" snap frobnicate
expect "unknown option" 2 "unknown option --bogus" -- "$hydrate" snap create /dev/null --bogus
expect "create without origin" 2 "which ORIGIN" -- "$hydrate" snap create
expect "store and store-file" 2 "not both" -- "$hydrate" snap create /dev/x --store /dev/y --store-file /z
expect "store-size alone" 2 "goes with --store-file" -- "$hydrate" snap create /dev/x --store-size 1M
expect "bad chunk size" 2 "power of two from 4K to 256K" -- "$hydrate" snap create /dev/x --chunk-size 3K
expect "bad size text" 2 "'lots' is not a size" -- "$hydrate" snap create /dev/x --chunk-size lots
expect "missing origin" 1 "origin $tmp/none: No such file or directory" -- "$hydrate" snap create "$tmp/none"
expect "origin not a block device" 1 "origin $tmp/file is not a block device" -- "$hydrate" snap create "$tmp/file"
expect "module missing (list)" 1 "hydrate_snap kernel module is not loaded" -- "$hydrate" snap list
expect "module missing (version)" 1 "not loaded \(modprobe hydrate_snap" -- "$hydrate" snap version
expect "module missing (destroy)" 1 "not loaded" -- "$hydrate" snap destroy 0
expect "cbt snapshot and reset" 2 "--reset applies to the live CBT only" -- "$hydrate" snap cbt 0 --snapshot --reset
expect "destroy without target" 2 "which ID or DEVICE" -- "$hydrate" snap destroy

echo "$passed passed, $failed failed"
((failed == 0))
