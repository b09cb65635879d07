#!/usr/bin/env bash
# nbdinfo (libnbd) against the server: listing, JSON export details, the allocation map of a
# sparse image, the --can/--is flags, and socket activation.
. "$(dirname "$0")/../lib/interop.sh"
interop_init

SIZE_MIB=16
SIZE=$((SIZE_MIB << 20))
DESCRIPTION="interop test disk"
make_sparse "$T/disk.img" "$SIZE_MIB"
cp --sparse=always "$T/disk.img" "$T/ro.img"
server_start disk "$T/disk.img" --description "$DESCRIPTION"
DISK_URI=$URI
DISK_SOCK=$SOCK
server_start ro "$T/ro.img" ro
RO_URI=$URI

# json_get FILE PYTHON_EXPR: evaluates an expression over the parsed JSON (as `j`).
json_get() {
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

list_names_export() {
  client nbdinfo --list --json "nbd+unix:///?socket=$DISK_SOCK" >"$T/list.json"
  assert_eq "$(json_get "$T/list.json" '[e["export-name"] for e in j["exports"]]')" "['disk']" \
    "exports listed by NBD_OPT_LIST"
}

list_shows_description() {
  client nbdinfo --list --json "nbd+unix:///?socket=$DISK_SOCK" >"$T/list.json"
  assert_eq "$(json_get "$T/list.json" 'j["exports"][0].get("description")')" "$DESCRIPTION" \
    "description of the listed export"
}

# A plain export offers base:allocation only; hydrate:state belongs to clone exports.
list_contexts_plain() {
  client nbdinfo --list --json "nbd+unix:///?socket=$DISK_SOCK" >"$T/list.json"
  assert_eq "$(json_get "$T/list.json" 'sorted(j["exports"][0]["contexts"])')" "['base:allocation']" \
    "meta contexts of a plain export"
}

json_export_details() {
  client nbdinfo --json "$DISK_URI" >"$T/info.json"
  assert_eq "$(json_get "$T/info.json" 'j["protocol"]')" "newstyle-fixed" "protocol"
  assert_eq "$(json_get "$T/info.json" 'j["structured"]')" "True" "structured replies"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["export-name"]')" "disk" "export name"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["export-size"]')" "$SIZE" "export size"
  local flag
  for flag in can_flush can_fua can_trim can_zero can_cache can_df can_multi_conn; do
    assert_eq "$(json_get "$T/info.json" "j['exports'][0]['$flag']")" "True" "$flag"
  done
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0]["is_read_only"]')" "False" "is_read_only"
}

json_description() {
  client nbdinfo --json "$DISK_URI" >"$T/info.json"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("description")')" "$DESCRIPTION" \
    "NBD_INFO_DESCRIPTION"
}

# NBD_INFO_BLOCK_SIZE: byte-granular, 4 KiB preferred, 32 MiB payloads (research/nbd.md §1.11).
json_block_sizes() {
  client nbdinfo --json "$DISK_URI" >"$T/info.json"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_minimum")')" 1 "minimum block size"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_preferred")')" 4096 "preferred block size"
  assert_eq "$(json_get "$T/info.json" 'j["exports"][0].get("block_size_maximum")')" 33554432 "maximum payload"
}

# The allocation map, merged into runs of equal type, is exactly what make_sparse wrote.
map_sparse_image() {
  client nbdinfo --map --json "$DISK_URI" >"$T/map.json"
  /usr/bin/python3 - "$T/map.json" >"$T/map.txt" <<'EOF'
import json, sys
runs = []
for e in json.load(open(sys.argv[1])):
    kind = "hole" if e["type"] & 1 else "data"
    if e["type"] not in (0, 3):
        sys.exit("unexpected extent type %d at %d" % (e["type"], e["offset"]))
    if runs and runs[-1][2] == kind and runs[-1][0] + runs[-1][1] == e["offset"]:
        runs[-1][1] += e["length"]
    else:
        runs.append([e["offset"], e["length"], kind])
for r in runs:
    print(*r)
EOF
  assert_eq "$(cat "$T/map.txt")" "$(sparse_layout "$SIZE_MIB")" "allocation map"
}

can_flags() {
  local flag
  for flag in flush fua trim zero cache multi-conn df structured-reply; do
    assert_status 0 "nbdinfo --can $flag" nbdinfo --can "$flag" "$DISK_URI"
  done
  assert_status 2 "read-write export must not be read-only" nbdinfo --is readonly "$DISK_URI"
}

# A file that fallocate can zero makes WRITE_ZEROES with FAST_ZERO cheap: worth advertising.
can_fast_zero() {
  assert_status 0 "nbdinfo --can fast-zero" nbdinfo --can fast-zero "$DISK_URI"
}

is_readonly() {
  assert_status 0 "nbdinfo --is readonly on a :ro export" nbdinfo --is readonly "$RO_URI"
  assert_status 2 "a :ro export cannot trim" nbdinfo --can trim "$RO_URI"
}

socket_activation() {
  assert_status 0 "socket activation" nbdinfo --json -- \
    [ "$INTEROP_LIB/interop-server" --export "disk=$T/disk.img" ]
  cp "$T/last.out" "$T/activated.json"
  assert_eq "$(json_get "$T/activated.json" 'j["exports"][0]["export-size"]')" "$SIZE" \
    "size seen through socket activation"
}

# nbdsh itself (the shell around the Python binding the edge-case tests use).
nbdsh_write_read() {
  client nbdsh -u "$DISK_URI" \
    -c 'buf = b"nbdsh was here" * 300' \
    -c 'h.pwrite(buf, 12 << 20, nbd.CMD_FLAG_FUA)' \
    -c 'assert h.pread(len(buf), 12 << 20) == buf, "read back differs"' \
    -c 'h.flush()' >"$T/nbdsh.out" 2>&1 || fail "nbdsh: $(cat "$T/nbdsh.out")"
  assert_eq "$(dd if="$T/disk.img" bs=1 skip=$((12 << 20)) count=14 status=none)" "nbdsh was here" \
    "bytes written by nbdsh in the backing file"
  dd if=/dev/zero of="$T/disk.img" bs=1 seek=$((12 << 20)) count=4200 conv=notrunc status=none
  fallocate -p -o $((12 << 20)) -l 65536 "$T/disk.img"  # restore the hole map_sparse_image expects
}

run_case list_names_export list_names_export
run_case list_shows_description list_shows_description
run_case list_contexts_plain list_contexts_plain
run_case json_export_details json_export_details
run_case json_description json_description
run_case json_block_sizes json_block_sizes
run_case map_sparse_image map_sparse_image
run_case can_flags can_flags
run_case can_fast_zero can_fast_zero
run_case is_readonly is_readonly
run_case socket_activation socket_activation
run_case nbdsh_write_read nbdsh_write_read
interop_finish
