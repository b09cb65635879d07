# COW store too small: the snapshot is invalidated with a reason, its reads fail with EIO, and
# every origin write succeeds and reads back.
dev=/dev/vdb
dd if=/dev/urandom of=/tmp/expect bs=1M count=64 2>/dev/null
dd if=/tmp/expect of=$dev bs=1M oflag=direct 2>/dev/null || fail "fill $dev"
snap_create $dev --store-file /tmp/small.cow --store-size 1M
# 16 MiB of new data: 4096 chunks for a store of 256.
dd if=/dev/urandom of=/tmp/new bs=1M count=16 2>/dev/null
dd if=/tmp/new of=$dev bs=1M seek=8 oflag=direct 2>/dev/null || fail "origin write failed after the store filled"
dd if=/tmp/new of=/tmp/expect bs=1M seek=8 conv=notrunc 2>/dev/null
# And more after the snapshot is already invalid, buffered this time.
dd if=/tmp/new of=$dev bs=1M seek=40 count=4 conv=notrunc,fsync 2>/dev/null || fail "buffered origin write"
dd if=/tmp/new of=/tmp/expect bs=1M seek=40 count=4 conv=notrunc 2>/dev/null
[ "$(md5dev $dev)" = "$(md5file /tmp/expect)" ] || fail "origin does not read back what was written"

info=$(hydrate snap list)
[ "$(json_str state "$info")" = invalid ] || fail "snapshot not marked invalid: $info"
echo "$info" | grep -q '"reason": "COW store full"' || fail "no reason given: $info"
if dd if="$SNAP_DEV" of=/dev/null bs=4096 count=1 iflag=direct 2>/tmp/dd.err; then
  fail "reading the invalid snapshot succeeded"
fi
grep -qi "Input/output error" /tmp/dd.err || fail "snapshot read failed without EIO: $(cat /tmp/dd.err)"
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy"
true
