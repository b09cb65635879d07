# Raw device: pattern-fill, snapshot, overwrite random chunks (aligned, unaligned, multi-chunk,
# write-zeroes) while reading the snapshot; the snapshot keeps the pre-snapshot checksum and the
# origin holds exactly what was written.
dev=/dev/vdb
dd if=/dev/urandom of=/tmp/expect bs=1M count=64 2>/dev/null
dd if=/tmp/expect of=$dev bs=1M oflag=direct 2>/dev/null || fail "pattern fill of $dev"
pre=$(md5dev $dev)
[ "$pre" = "$(md5file /tmp/expect)" ] || fail "pattern did not land on $dev"

snap_create $dev --store-file /tmp/raw.cow --store-size 80M
[ -b "$SNAP_DEV" ] || fail "$SNAP_DEV did not appear"
[ "$(md5dev "$SNAP_DEV")" = "$pre" ] || fail "snapshot differs from the origin right after create"

# The reader cycles through 4 MiB windows of the snapshot, so its reads and the writes below
# overlap in time and place many times over.
window_sums /tmp/expect
start_window_reader 1

i=0
while [ $i -lt 120 ]; do
  case $((RANDOM % 4)) in
    0 | 1) rand_write $dev /tmp/expect 4096 $((RANDOM % 16384)) 1 ;;
    2) rand_write $dev /tmp/expect 512 $((RANDOM * 4 % 131072 + 1)) 3 ;;
    3) rand_write $dev /tmp/expect 65536 $((RANDOM % 1023)) 2 ;;
  esac
  i=$((i + 1))
done
# Buffered writes reach the device from writeback workers, not from this task.
dd if=/dev/urandom of=/tmp/blk bs=4096 count=64 2>/dev/null
dd if=/tmp/blk of=$dev bs=4096 seek=8000 conv=notrunc,fsync 2>/dev/null || fail "buffered write"
dd if=/tmp/blk of=/tmp/expect bs=4096 seek=8000 conv=notrunc 2>/dev/null
# Write-zeroes and discard change data too.
if /usr/bin/blkdiscard -z -o 1048576 -l 262144 $dev; then
  dd if=/dev/zero of=/tmp/expect bs=4096 seek=256 count=64 conv=notrunc 2>/dev/null
  log "write-zeroes exercised"
fi

stop_window_reader
[ "$(md5dev "$SNAP_DEV")" = "$pre" ] || fail "snapshot checksum differs from the pre-snapshot one"
[ "$(md5dev $dev)" = "$(md5file /tmp/expect)" ] || fail "origin does not hold what was written"
info=$(hydrate snap list)
used=$(json_num store_used_chunks "$info")
[ "${used:-0}" -gt 0 ] || fail "no chunk was copied to the store: $info"
[ "$(json_str state "$info")" = valid ] || fail "snapshot not valid: $info"
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy"
[ -e "$SNAP_DEV" ] && fail "$SNAP_DEV still exists after destroy"
true
