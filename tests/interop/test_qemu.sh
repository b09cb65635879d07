#!/usr/bin/env bash
# QEMU's NBD client: qemu-img info/compare/map and qemu-io requests with pattern checks.
. "$(dirname "$0")/../lib/interop.sh"
interop_init

SIZE_MIB=16
SIZE=$((SIZE_MIB << 20))
make_sparse "$T/disk.img" "$SIZE_MIB"
cp --sparse=always "$T/disk.img" "$T/backing-copy.img"
server_start disk "$T/disk.img"

json_get() {
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

qemu_img_info() {
  client qemu-img info --output=json "$URI" >"$T/info.json"
  assert_eq "$(json_get "$T/info.json" 'j["virtual-size"]')" "$SIZE" "virtual-size"
  assert_eq "$(json_get "$T/info.json" 'j["format"]')" "raw" "format"
}

qemu_img_compare() {
  assert_status 0 "qemu-img compare with an identical file" \
    qemu-img compare -f raw -F raw "$URI" "$T/backing-copy.img"
  cp --sparse=always "$T/backing-copy.img" "$T/changed.img"
  printf 'x' | dd of="$T/changed.img" bs=1 seek=$((5 << 20)) conv=notrunc status=none
  assert_status 1 "qemu-img compare with a file differing in one byte" \
    qemu-img compare -f raw -F raw "$URI" "$T/changed.img"
}

# qemu-img map (block status through qemu) shows data exactly where make_sparse wrote it.
qemu_img_map() {
  client qemu-img map --output=json -f raw "$URI" >"$T/map.json"
  /usr/bin/python3 - "$T/map.json" >"$T/map.txt" <<'PY'
import json, sys
runs = []
for e in json.load(open(sys.argv[1])):
    kind = "data" if e["data"] else "hole"
    if kind == "hole" and not e["zero"]:
        sys.exit("hole at %d does not read as zero" % e["start"])
    if runs and runs[-1][2] == kind:
        runs[-1][1] += e["length"]
    else:
        runs.append([e["start"], e["length"], kind])
for r in runs:
    print(*r)
PY
  assert_eq "$(cat "$T/map.txt")" "$(sparse_layout "$SIZE_MIB")" "qemu-img map"
}

# qemu_io CMD…: runs qemu-io commands against the export; qemu-io exits 1 if any failed.
qemu_io() {
  local args=() c
  for c in "$@"; do args+=(-c "$c"); done
  client qemu-io -f raw "${args[@]}" "$URI"
}

qemu_io_pattern() {
  qemu_io 'write -P 0xab 0 1M' 'read -P 0xab 0 1M' 'flush' >"$T/io.out" ||
    fail "qemu-io pattern write/read: $(cat "$T/io.out")"
  assert_eq "$(head -c 1048576 "$T/disk.img" | od -An -tx1 -v | tr -s ' \n' '\n' | sort -u | tr -d '\n')" \
    "ab" "bytes of the backing file after write -P 0xab"
  # The pattern check itself must be able to fail.
  if qemu_io 'read -P 0xcd 0 1M' >"$T/io.out"; then
    fail "qemu-io read -P 0xcd over 0xab data did not fail: $(cat "$T/io.out")"
  fi
  assert_contains "$(cat "$T/io.out")" "Pattern verification failed" "qemu-io mismatch report"
}

qemu_io_write_zeroes_and_discard() {
  qemu_io 'write -P 0x11 1M 2M' 'write -z 1M 1M' 'read -P 0 1M 1M' 'read -P 0x11 2M 1M' \
    'discard 2M 1M' 'flush' >"$T/io.out" || fail "qemu-io write -z / discard: $(cat "$T/io.out")"
  cmp -n $((1 << 20)) -i $((1 << 20)):0 "$T/disk.img" /dev/zero >/dev/null ||
    fail "backing file is not zero after write -z 1M 1M"
}

qemu_io_aio() {
  qemu_io 'aio_write -P 0x21 4M 64k' 'aio_write -P 0x22 5M 64k' 'aio_write -P 0x23 6M 1M' 'aio_flush' \
    'aio_read -P 0x21 4M 64k' 'aio_read -P 0x22 5M 64k' 'aio_read -P 0x23 6M 1M' 'aio_flush' \
    >"$T/io.out" || fail "qemu-io aio: $(cat "$T/io.out")"
  if grep -q 'Pattern verification failed\|failed' "$T/io.out"; then
    fail "qemu-io aio reported a failure: $(cat "$T/io.out")"
  fi
}

qemu_io_read_past_end() {
  if qemu_io "read $((SIZE - 512)) 4096" >"$T/io.out" 2>&1; then
    fail "a read across the end of the export succeeded: $(cat "$T/io.out")"
  fi
  assert_contains "$(cat "$T/io.out")" "read failed" "qemu-io error for a read across the end"
  qemu_io "read $((SIZE - 4096)) 4096" >"$T/io.out" || fail "the last 4 KiB cannot be read: $(cat "$T/io.out")"
}

run_case qemu_img_info qemu_img_info
run_case qemu_img_compare qemu_img_compare
run_case qemu_img_map qemu_img_map
run_case qemu_io_pattern qemu_io_pattern
run_case qemu_io_write_zeroes_and_discard qemu_io_write_zeroes_and_discard
run_case qemu_io_aio qemu_io_aio
run_case qemu_io_read_past_end qemu_io_read_past_end
interop_finish
