# Concurrent first writes: dozens of writes in flight at once, neighbouring writes that share a
# chunk (2 KiB halves; 6 KiB writes that straddle chunks), and two sequential streams whose
# neighbouring writes share a chunk too (130 KiB and 1026 KiB), deep enough (32 MiB in flight)
# to run into their own copy-ahead and keep several COW copiers busy at once, while a reader
# checks the snapshot. The snapshot keeps its pre-snapshot checksum, fio reads back and
# verifies everything it wrote to the origin, and no chunk is copied twice.
dev=/dev/vdb
[ -x /usr/bin/fio ] || skip "fio is not in the guest image"
dd if=/dev/urandom of=$dev bs=1M count=64 oflag=direct 2>/dev/null || fail "pattern fill of $dev"
pre=$(md5dev $dev)
window_sums $dev iflag=direct

snap_create $dev --store-file /tmp/conc.cow --store-size 80M
start_window_reader 7

/usr/bin/fio --filename=$dev --direct=1 --ioengine=libaio --verify=crc32c --do_verify=1 \
  --verify_fatal=1 --output=/tmp/fio.out \
  --name=halves --rw=randwrite --bs=2k --offset=0 --size=8M --iodepth=32 \
  --name=straddle --rw=randwrite --bs=6k --offset=8M --size=6M --iodepth=32 \
  --name=stream130 --rw=write --bs=130k --offset=16M --size=8190k --iodepth=32 \
  --name=stream1026 --rw=write --bs=1026k --offset=25522k --size=40014k --iodepth=32 \
  >/dev/null 2>/tmp/fio.err
rc=$?
stop_window_reader
[ $rc = 0 ] || fail "fio failed ($rc): $(grep -iE 'error|verify' /tmp/fio.out /tmp/fio.err | head -n 3)"
[ "$(md5dev "$SNAP_DEV")" = "$pre" ] || fail "snapshot checksum differs from the pre-snapshot one"
info=$(hydrate snap list)
[ "$(json_str state "$info")" = valid ] || fail "snapshot not valid: $info"
used=$(json_num store_used_chunks "$info")
# Chunks written: 2048 + 1536 + 2048 + 10004. Each is copied once; copy-ahead may also save
# the 236 unwritten chunks between the two streams, and nothing else (the second stream ends at
# the end of the device).
[ "${used:-0}" -ge 15636 ] && [ "${used:-0}" -le 15872 ] ||
  fail "expected 15636 to 15872 chunks in the store, found ${used:-none}: $info"
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy"
true
