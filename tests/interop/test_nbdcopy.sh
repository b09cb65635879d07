#!/usr/bin/env bash
# nbdcopy (libnbd): random data through the server and back, byte for byte, with one
# connection and with four (multi-conn).
. "$(dirname "$0")/../lib/interop.sh"
interop_init

SIZE_MIB=64
truncate -s "${SIZE_MIB}M" "$T/disk.img"
server_start disk "$T/disk.img"

# roundtrip CASE [nbdcopy options…]: file → server → file; both the served file and the copy
# read back must equal the original.
roundtrip() {
  local tag=$1
  shift
  make_random "$T/$tag.src" "$SIZE_MIB"
  client nbdcopy "$@" "$T/$tag.src" "$URI"
  assert_same_file "$T/$tag.src" "$T/disk.img" "backing file after nbdcopy $* upload"
  rm -f "$T/$tag.back"
  client nbdcopy "$@" "$URI" "$T/$tag.back"
  assert_same_file "$T/$tag.src" "$T/$tag.back" "nbdcopy $* download"
  rm -f "$T/$tag.src" "$T/$tag.back"
}

roundtrip_one_connection() { roundtrip one -C 1 --flush; }
roundtrip_multi_conn() { roundtrip multi -C 4 -T 4 --requests=16 --request-size=1048576 --flush; }

# Zeros in the source become zero requests or holes; the served file must read back zero there.
roundtrip_sparse() {
  make_sparse "$T/sparse.src" "$SIZE_MIB"
  make_random "$T/noise" "$SIZE_MIB"
  client nbdcopy --flush "$T/noise" "$URI"   # dirty every byte first
  client nbdcopy --flush "$T/sparse.src" "$URI"
  assert_same_file "$T/sparse.src" "$T/disk.img" "backing file after a sparse upload"
  rm -f "$T/sparse.back"
  client nbdcopy "$URI" "$T/sparse.back"
  assert_same_file "$T/sparse.src" "$T/sparse.back" "sparse download"
}

# The same over TCP on 127.0.0.1 (every other case uses a Unix socket).
roundtrip_tcp() {
  truncate -s "${SIZE_MIB}M" "$T/tcp.img"
  server_start_tcp tcp "$T/tcp.img"
  make_random "$T/tcp.src" "$SIZE_MIB"
  client nbdcopy -C 2 --flush "$T/tcp.src" "$URI"
  client nbdcopy "$URI" "$T/tcp.back"
  assert_same_file "$T/tcp.src" "$T/tcp.back" "nbdcopy over TCP ($URI)"
  assert_same_file "$T/tcp.src" "$T/tcp.img" "backing file after nbdcopy over TCP"
}

run_case roundtrip_one_connection roundtrip_one_connection
run_case roundtrip_multi_conn roundtrip_multi_conn
run_case roundtrip_sparse roundtrip_sparse
run_case roundtrip_tcp roundtrip_tcp
interop_finish
