# A partitioned disk: snapshot one partition while writing both (through the partitions and
# through the whole disk); the snapshot keeps its checksum, the other partition is untouched
# by the module (no copies, no CBT bits) and both read back what was written.
p1=/dev/vdc1
p2=/dev/vdc2
[ -b $p1 ] && [ -b $p2 ] || fail "partitions of /dev/vdc did not appear"
p1_blocks=$(($(cat /sys/class/block/vdc1/size) / 8))
p2_blocks=$(($(cat /sys/class/block/vdc2/size) / 8))
p2_start=$(cat /sys/class/block/vdc2/start)
dd if=/dev/urandom of=/tmp/p1.expect bs=4096 count=$p1_blocks 2>/dev/null
dd if=/dev/urandom of=/tmp/p2.expect bs=4096 count=$p2_blocks 2>/dev/null
dd if=/tmp/p1.expect of=$p1 bs=1M oflag=direct 2>/dev/null || fail "fill $p1"
dd if=/tmp/p2.expect of=$p2 bs=1M oflag=direct 2>/dev/null || fail "fill $p2"
pre1=$(md5dev $p1)

snap_create $p1 --store-file /tmp/p1.cow --store-size 32M
p1_writes=0
i=0
while [ $i -lt 60 ]; do
  rand_write $p1 /tmp/p1.expect 4096 $((RANDOM % p1_blocks)) 1
  rand_write $p2 /tmp/p2.expect 4096 $((RANDOM % p2_blocks)) 1
  i=$((i + 1))
done
# The whole disk, inside partition 2 only.
j=0
while [ $j -lt 10 ]; do
  blk=$((RANDOM % (p2_blocks - 1)))
  dd if=/dev/urandom of=/tmp/blk bs=4096 count=1 2>/dev/null
  dd if=/tmp/blk of=/dev/vdc bs=512 seek=$((p2_start + blk * 8)) conv=notrunc,fsync oflag=direct 2>/dev/null ||
    fail "whole-disk write"
  dd if=/tmp/blk of=/tmp/p2.expect bs=4096 seek=$blk conv=notrunc 2>/dev/null
  j=$((j + 1))
done

[ "$(md5dev "$SNAP_DEV")" = "$pre1" ] || fail "snapshot of $p1 changed"
[ "$(md5dev $p1)" = "$(md5file /tmp/p1.expect)" ] || fail "$p1 does not hold what was written"
[ "$(md5dev $p2)" = "$(md5file /tmp/p2.expect)" ] || fail "$p2 does not hold what was written"
info=$(hydrate snap list)
used=$(json_num store_used_chunks "$info")
dirty=$(json_num cbt_dirty_chunks "$info")
[ "$used" -le 60 ] || fail "$used chunks copied for 60 writes to $p1: writes to $p2 were copied too"
[ "$dirty" -le 60 ] && [ "$dirty" -ge 1 ] || fail "CBT of $p1 has $dirty chunks for 60 writes"
hydrate snap destroy "$SNAP_ID" >/dev/null || fail "destroy"
true
