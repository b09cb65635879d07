#!/usr/bin/env bash
# The interop checks that apply to an nbdkit plugin, with libnbd's and QEMU's real clients,
# against both exports the plugin serves: a plain file (file=) and a clone (source=,
# destination=, metadata=) whose source is a second nbdkit process. nbdinfo (details, list,
# allocation map), nbdcopy round trips with one and four connections, qemu-img
# info/compare/map, qemu-io requests with pattern checks, nbdsh; for the clone also that the
# source is never written and that flushed writes survive a restart.
. "$(dirname "$0")/../lib/interop.sh"
interop_init
. "$(dirname "$0")/plugin.sh"

SIZE_MIB=16
SIZE=$((SIZE_MIB << 20))
DESCRIPTION="plugin interop disk"
make_sparse "$T/pristine.img" "$SIZE_MIB"

# start_export KIND: serves a fresh copy of pristine.img as export "disk" and sets KIND,
# EXPECTED (a file holding what the export must read as) and SOURCE_IMG (clone only).
start_export() {
  KIND=$1
  EXPECTED="$T/expected.img"
  cp --sparse=always "$T/pristine.img" "$EXPECTED"
  rm -f "$T/disk.img" "$T/clone.img" "$T/clone.meta"
  case "$KIND" in
    plain)
      cp --sparse=always "$T/pristine.img" "$T/disk.img"
      plugin_start disk file="$T/disk.img" export=disk description="$DESCRIPTION"
      ;;
    clone)
      SOURCE_IMG="$T/source.img"
      cp --sparse=always "$T/pristine.img" "$SOURCE_IMG"
      rm -f "$T/source.sock"
      nbdkit -f --exit-with-parent -r -U "$T/source.sock" file "$SOURCE_IMG" >"$T/source.log" 2>&1 &
      SOURCE_PID=$!
      _pids+=("$SOURCE_PID")
      wait_ready "nbd+unix:///?socket=$T/source.sock" "$SOURCE_PID" "$T/source.log"
      # No background hydration until the restart: the cases see a clone that is hydrated
      # only where they read or wrote.
      plugin_start disk source="nbd+unix:///?socket=$T/source.sock" destination="$T/clone.img" \
        metadata="$T/clone.meta" export=disk description="$DESCRIPTION" hydration=false \
        commit-interval=100ms control="$T/control.sock"
      ;;
  esac
}

stop_export() {
  local status=0
  server_stop "$SERVER_PID" || status=$?
  if [ "$KIND" = clone ]; then server_stop "$SOURCE_PID" || true; fi
  if [ "$status" -ne 0 ]; then
    echo "not ok - $KIND: nbdkit with the plugin exited $status on SIGTERM"
    _failed=$((_failed + 1))
  fi
}

nbdinfo_details() {
  client nbdinfo --json "$URI" >"$T/info.json"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["export-name"]')" "disk" "export name"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["export-size"]')" "$SIZE" "export size"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("description")')" "$DESCRIPTION" "description"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["is_read_only"]')" "False" "is_read_only"
  local flag
  for flag in can_flush can_fua can_trim can_zero can_cache can_df can_multi_conn; do
    assert_eq "$(json_get "$T/info.json" "j['exports'][0]['$flag']")" "True" "$flag"
  done
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_minimum")')" 1 "minimum block size"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_preferred")')" 4096 "preferred block size"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_maximum")')" $((32 << 20)) "maximum block size"
  assert_eq "$(json_get "$T/info.json" '"base:allocation" in j["exports"][0]["contexts"]')" "True" "base:allocation offered"
}

nbdinfo_list() {
  client nbdinfo --list --json "nbd+unix:///?socket=$SOCK" >"$T/list.json"
  assert_eq "$(json_get "$T/list.json" '[(e["export-name"], e.get("description")) for e in j["exports"]]')" \
    "[('disk', '$DESCRIPTION')]" "exports listed"
}

# The allocation map, merged into runs, is the layout make_sparse wrote (for the clone, not yet
# hydrated anywhere, it is the source's map passed through the engine and nbdkit).
map_matches_layout() {
  client nbdinfo --map --json "$URI" >"$T/map.json"
  /usr/bin/python3 - "$T/map.json" >"$T/map.txt" <<'PY'
import json, sys
runs = []
for e in json.load(open(sys.argv[1])):
    kind = "hole" if e["type"] & 1 else "data"
    if kind == "hole" and not e["type"] & 2:
        sys.exit("hole at %d does not read as zero" % e["offset"])
    if runs and runs[-1][2] == kind and runs[-1][0] + runs[-1][1] == e["offset"]:
        runs[-1][1] += e["length"]
    else:
        runs.append([e["offset"], e["length"], kind])
for r in runs:
    print(*r)
PY
  assert_eq "$(cat "$T/map.txt")" "$(sparse_layout "$SIZE_MIB")" "allocation map"
}

qemu_img_checks() {
  client qemu-img info --output=json "$URI" >"$T/qinfo.json"
  assert_eq "$(json_get "$T/qinfo.json" 'j["virtual-size"]')" "$SIZE" "qemu-img virtual-size"
  assert_status 0 "qemu-img compare with the expected content" \
    qemu-img compare -f raw -F raw "$URI" "$EXPECTED"
  cp --sparse=always "$EXPECTED" "$T/changed.img"
  printf 'x' | dd of="$T/changed.img" bs=1 seek=$((5 << 20)) conv=notrunc status=none
  assert_status 1 "qemu-img compare with a file differing in one byte" \
    qemu-img compare -f raw -F raw "$URI" "$T/changed.img"
}

qemu_io() {
  local args=() c
  for c in "$@"; do args+=(-c "$c"); done
  client qemu-io -f raw "${args[@]}" "$URI"
}

# expect_bytes OFFSET LENGTH BYTE: records in $EXPECTED what a write did.
expect_bytes() {
  head -c "$2" /dev/zero | tr '\0' "$3" | dd of="$EXPECTED" bs=1M seek="$1" oflag=seek_bytes conv=notrunc status=none
}

qemu_io_requests() {
  qemu_io 'write -P 0xab 0 1M' 'read -P 0xab 0 1M' 'flush' >"$T/io.out" ||
    fail "qemu-io pattern write/read: $(cat "$T/io.out")"
  expect_bytes 0 $((1 << 20)) '\253'
  if qemu_io 'read -P 0xcd 0 1M' >"$T/io.out"; then
    fail "qemu-io read -P 0xcd over 0xab data did not fail: $(cat "$T/io.out")"
  fi
  assert_contains "$(cat "$T/io.out")" "Pattern verification failed" "qemu-io mismatch report"
  # Partial regions, write zeroes, discard, and requests in flight together.
  qemu_io 'write -P 0x11 1M 2M' 'write -z 1M 1M' 'read -P 0 1M 1M' 'read -P 0x11 2M 1M' \
    'write -P 0x33 5000 3000' 'read -P 0x33 5000 3000' \
    'aio_write -P 0x21 9M 64k' 'aio_write -P 0x22 10M 4k' 'aio_write -P 0x23 11M 1M' 'aio_flush' \
    'aio_read -P 0x21 9M 64k' 'aio_read -P 0x22 10M 4k' 'aio_read -P 0x23 11M 1M' 'aio_flush' \
    >"$T/io.out" || fail "qemu-io requests: $(cat "$T/io.out")"
  if grep -q 'Pattern verification failed\|failed' "$T/io.out"; then
    fail "qemu-io reported a failure: $(cat "$T/io.out")"
  fi
  expect_bytes $((1 << 20)) $((1 << 20)) '\0'
  expect_bytes $((2 << 20)) $((1 << 20)) '\021'
  expect_bytes 5000 3000 '\063'
  expect_bytes $((9 << 20)) 65536 '\041'
  expect_bytes $((10 << 20)) 4096 '\042'
  expect_bytes $((11 << 20)) $((1 << 20)) '\043'
  assert_status 0 "the export after qemu-io writes" qemu-img compare -f raw -F raw "$URI" "$EXPECTED"
  if qemu_io "read $((SIZE - 512)) 4096" >"$T/io.out" 2>&1; then
    fail "a read across the end of the export succeeded: $(cat "$T/io.out")"
  fi
}

nbdsh_write_read() {
  client nbdsh -u "$URI" \
    -c 'buf = b"nbdsh was here" * 300' \
    -c 'h.pwrite(buf, 12 << 20, nbd.CMD_FLAG_FUA)' \
    -c 'assert h.pread(len(buf), 12 << 20) == buf, "read back differs"' \
    -c 'h.flush()' >"$T/nbdsh.out" 2>&1 || fail "nbdsh: $(cat "$T/nbdsh.out")"
  /usr/bin/python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(12<<20); f.write(b"nbdsh was here"*300)' "$EXPECTED"
}

# roundtrip TAG [nbdcopy options…]: random data → export → file, byte for byte.
roundtrip() {
  local tag=$1
  shift
  make_random "$T/$tag.src" "$SIZE_MIB"
  client nbdcopy "$@" "$T/$tag.src" "$URI"
  rm -f "$T/$tag.back"
  client nbdcopy "$@" "$URI" "$T/$tag.back"
  assert_same_file "$T/$tag.src" "$T/$tag.back" "nbdcopy $* download after upload"
  cp "$T/$tag.src" "$EXPECTED"
  rm -f "$T/$tag.src" "$T/$tag.back"
}

nbdcopy_one_connection() { roundtrip one -C 1 --flush; }
nbdcopy_multi_conn() { roundtrip multi -C 4 -T 4 --requests=16 --request-size=1048576 --flush; }

# The clone's source is read-only (I6): everything written went to the destination only.
source_untouched() {
  assert_same_file "$SOURCE_IMG" "$T/pristine.img" "the clone's source after client writes"
}

# Flushed writes survive a graceful restart (the plugin's .cleanup commits the map; the restart
# is done by restart_clone, outside the case) and hydration then finishes without overwriting
# them.
clone_restart_keeps_writes() {
  assert_eq "$STOP_STATUS" 0 "nbdkit's exit status after SIGTERM"
  assert_eq "$(json_get "$T/before-restart.json" 'j["exports"][0]["state"]')" paused \
    "clone state before the restart"
  [ "$(json_get "$T/before-restart.json" 'j["exports"][0]["hydrated_regions"] < j["exports"][0]["regions"]')" = True ] ||
    fail "the clone was already complete before the restart: $(cat "$T/before-restart.json")"
  assert_status 0 "the restarted clone" qemu-img compare -f raw -F raw "$URI" "$EXPECTED"
  client "$HYDRATE_BIN" status --control "$T/control.sock" --wait --interval 0.2 >"$T/status.out" 2>&1 ||
    fail "hydrate status --wait: $(cat "$T/status.out")"
  assert_status 0 "the completed clone" qemu-img compare -f raw -F raw "$URI" "$EXPECTED"
  assert_same_file "$T/clone.img" "$EXPECTED" "the destination file of the completed clone"
}

restart_clone() {
  client "$HYDRATE_BIN" status --json --control "$T/control.sock" >"$T/before-restart.json" 2>&1 || true
  STOP_STATUS=0
  server_stop "$SERVER_PID" 60 || STOP_STATUS=$?
  plugin_start disk source="nbd+unix:///?socket=$T/source.sock" destination="$T/clone.img" \
    metadata="$T/clone.meta" export=disk description="$DESCRIPTION" commit-interval=100ms \
    control="$T/control.sock"
}

for kind in plain clone; do
  start_export "$kind"
  # First, before any client reads: a read of a hole hydrates it by copy-on-read, which
  # writes zeroes, and the destination then reports that range as (zero) data.
  run_case "$kind.map_matches_layout" map_matches_layout
  run_case "$kind.nbdinfo_details" nbdinfo_details
  run_case "$kind.nbdinfo_list" nbdinfo_list
  run_case "$kind.qemu_img_checks" qemu_img_checks
  run_case "$kind.qemu_io_requests" qemu_io_requests
  run_case "$kind.nbdsh_write_read" nbdsh_write_read
  # Before nbdcopy overwrites everything: the clone is still partly hydrated here.
  if [ "$kind" = clone ]; then
    restart_clone
    run_case clone.restart_keeps_writes clone_restart_keeps_writes
  fi
  run_case "$kind.nbdcopy_one_connection" nbdcopy_one_connection
  run_case "$kind.nbdcopy_multi_conn" nbdcopy_multi_conn
  [ "$kind" = clone ] && run_case clone.source_untouched source_untouched
  stop_export
done
interop_finish
